//! The boot order on a UEFI PC: [`efi_main`] runs under the firmware: heap,
//! the console (GOP screen, firmware text output, 16550 UART), boot arguments,
//! the banner, the TSC calibration, ExitBootServices. Then [`kernel_main`] runs
//! on the kernel's own stack: GDT/TSS, IDT, frames, paging, SSE off, the local
//! APIC timer (8259s masked), then [`crate::run`] with this architecture's
//! self-tests (`selftests.rs`), then tasks, then power off.

mod selftests;

// The boot order is this architecture's own code: it reaches into the
// architecture's modules, not only through the contract.
use crate::arch::x86_64 as arch;
use crate::{
    board,
    board::uefi_pc::{acpi, console, firmware, firmware::Platform},
    bootargs, exception, memory, println, run, time,
};
use alloc::boxed::Box;
use uefi::prelude::*;

/// The UEFI entry point: the firmware's boot services are still running.
#[entry]
fn efi_main() -> Status {
    memory::heap::init();
    // The ACPI tables first (nothing printed): the SPCR names the UART.
    acpi::init();
    let console = console::init();
    let mut platform = firmware::discover();
    if platform.bootargs.split_whitespace().any(|word| word == bootargs::FIRMWARE_LEFT_AVX_ON) {
        if arch::cpu::turn_avx_on_as_a_firmware_may() {
            println!(
                "{}: CR4.OSXSAVE set and XCR0 = x87 | SSE | AVX, as a firmware may leave them",
                bootargs::FIRMWARE_LEFT_AVX_ON
            );
        } else {
            println!("{}: this processor has no XSAVE or no AVX; nothing to turn on", bootargs::FIRMWARE_LEFT_AVX_ON);
        }
    }
    arch::memory_layout::set_kernel_image(platform.image.base, platform.image.end());
    arch::timer::calibrate();
    print_banner(&platform, &console);
    firmware::exit_boot_services(&mut platform);
    // The machine is ours. Nothing of the firmware's stays in use: leave its
    // stack for the kernel's own (whose guard page becomes real with paging).
    arch::cpu::disable_interrupts();
    let platform = Box::into_raw(Box::new(platform));
    // SAFETY: the boot stack is a static of the image, unused until now, and
    // 16-byte aligned at its top; `platform` lives on the heap, not on the
    // firmware stack we leave behind.
    unsafe { arch::exception::switch_stack(arch::memory_layout::boot_stack_top() as u64, kernel_main, platform as u64) }
}

/// The kernel proper, on its own stack, after ExitBootServices.
extern "sysv64" fn kernel_main(platform: u64) -> ! {
    // SAFETY: `efi_main` passes a leaked `Box<Platform>`, never freed.
    let platform: &'static Platform = unsafe { &*(platform as *const Platform) };
    arch::gdt::init(arch::memory_layout::double_fault_stack_top() as u64);
    exception::init();
    memory::init(&platform.ram, platform.reserved.iter().copied(), arch::memory_layout::kernel_image());
    let cpu = arch::cpu::identify();
    let (smep, smap) = arch::cpu::enable_protection(&cpu);
    board::uefi_pc::memory::paging_init(platform);
    arch::cpu::disable_sse();
    println!(
        "cpu:     NX, WP, global pages on; SMEP {}, SMAP {}; SSE, AVX (XSAVE) and x87 off",
        if smep { "on" } else { "not offered" },
        if smap { "on" } else { "not offered" }
    );
    time::init(platform);
    arch::cpu::enable_interrupts();

    run::self_tests_and_tasks(platform, selftests::SELF_TESTS)
}

/// The boot banner, printed while the firmware still runs: every figure is
/// read from the firmware or the processor.
fn print_banner(platform: &Platform, console: &str) {
    let cpu = arch::cpu::identify();
    println!("brk-path kernel {}", env!("CARGO_PKG_VERSION"));
    println!("board:   UEFI PC (firmware {} {:#x})", platform.firmware_vendor, platform.firmware_revision);
    println!("cpu:     {}", cpu);
    println!("entered: ring 0, long mode, UEFI {}", platform.uefi_revision);
    println!("ram:     {} MiB usable (UEFI memory map)", firmware::usable_ram_mib());
    println!(
        "caches:  coherent instruction fetch, no cache maintenance for written code (CPUID line size {} B)",
        cpu.line_size
    );
    for line in arch::timer::banner_lines(time::TICK_MS) {
        println!("timer:   {}", line);
    }
    println!("console: {}", console);
    println!("acpi:    {}", acpi::describe());
    if !platform.bootargs.is_empty() {
        println!("args:    {} ({})", platform.bootargs, platform.bootargs_source);
    }
}
