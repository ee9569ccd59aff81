//! The boot order on a UEFI PC: [`efi_main`] runs under the firmware: heap,
//! the console (GOP screen, firmware text output, 16550 UART), boot arguments,
//! the banner, the TSC calibration, ExitBootServices. Then [`kernel_main`] runs
//! on the kernel's own stack: the boot core's GDT/TSS and GS area, IDT,
//! frames, paging, SSE off, the local APIC timer (8259s masked), the other
//! processors the MADT lists (INIT-SIPI-SIPI, `arch::smp`), then
//! [`crate::run`] with this architecture's self-tests (`selftests.rs`), then
//! tasks, then power off.

mod selftests;

// The boot order is this architecture's own code: it reaches into the
// architecture's modules, not only through the contract.
use crate::arch::x86_64 as arch;
use crate::{
    board,
    board::uefi_pc::{acpi, console, firmware, firmware::Platform},
    bootargs, cores, exception, memory, println, run, time,
};
use alloc::{boxed::Box, format, string::String, vec::Vec};
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
    if let Ok(trampoline) = platform.ap_trampoline {
        arch::smp::install_trampoline(trampoline);
    }
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
    arch::smp::init_boot_core();
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
    start_other_cores(platform);
    arch::cpu::enable_interrupts();

    run::self_tests_and_tasks(platform, selftests::SELF_TESTS)
}

/// Start every other processor the MADT lists (enabled, by APIC id), as many
/// as `cores=` allows, each ending in [`arrived`]; report the ones the MADT
/// lists but that may not be started, in one line.
fn start_other_cores(platform: &Platform) {
    let boot_apic_id = arch::smp::boot_core_apic_id();
    cores::boot_core_is(format!("APIC id {}", boot_apic_id));
    let processors = match acpi::processors() {
        Ok(processors) => processors,
        Err(why) => {
            println!("cores:   core 0 (APIC id {}) only: {}", boot_apic_id, why);
            return;
        }
    };
    let others = processors.iter().filter(|p| p.apic_id != boot_apic_id);
    let candidates: Vec<cores::Candidate<u32>> = others
        .clone()
        .filter(|p| p.enabled)
        .map(|p| cores::Candidate { id: p.apic_id, name: format!("APIC id {}", p.apic_id) })
        .collect();
    let wanted = bootargs::cores_wanted(&platform.bootargs).unwrap_or(usize::MAX);
    // The test of a processor that never answers: the last one started gets
    // its INIT and no STARTUP (`bring_up` starts at most `wanted - 1`, and
    // never more than the kernel's most cores).
    let started = candidates.len().min(wanted.clamp(1, cores::MAX_CORES) - 1);
    let withheld = bootargs::withholds_startup_ipi(&platform.bootargs)
        .then(|| started.checked_sub(1))
        .flatten()
        .map(|last| candidates[last].id);
    if let Some(id) = withheld {
        println!("cores:   {}: APIC id {} gets INIT and no STARTUP IPI", bootargs::AP_NO_SIPI, id);
    }
    match &platform.ap_trampoline {
        Err(why) if !candidates.is_empty() => println!("cores:   no other core can start: {}", why),
        _ => {}
    }
    arch::smp::when_set_up(arrived);
    cores::bring_up(&candidates, wanted, |index, &apic_id, stack_top| {
        arch::smp::start(index, apic_id, stack_top, withheld == Some(apic_id))
    });
    let not_started: Vec<String> = others
        .filter(|p| !p.enabled)
        .map(|p| {
            let why = if p.online_capable { "online capable, not enabled: may be hot-added" } else { "disabled" };
            format!("APIC id {} {}", p.apic_id, why)
        })
        .collect();
    if !not_started.is_empty() {
        println!("cores:   not started, as the MADT says: {}", not_started.join("; "));
    }
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

/// A started processor, set up (`arch::smp`'s entry): it is up, and joins the
/// scheduler.
fn arrived(index: usize) -> ! {
    cores::arrive(index);
    crate::run::secondary_core()
}
