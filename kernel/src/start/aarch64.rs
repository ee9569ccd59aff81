//! The boot order on an aarch64 board: `arch/aarch64/boot.s` drops to EL1, sets
//! a stack and zeroes BSS, then calls [`kernel_main`], which brings the machine
//! up piece by piece (console, device tree, memory, MMU, exceptions,
//! interrupts, timer), prints the banner read from the hardware, starts the
//! other cores ([`start_other_cores`]), and hands over to [`crate::run`] with
//! this architecture's self-tests (`selftests.rs`), then tasks, then power off.
//! Each other core enters through `boot.s` (`secondary_entry`) and
//! [`secondary_main_aarch64`].

mod selftests;

// The boot order is this architecture's own code: it reaches into the
// architecture's modules, not only through the contract.
use crate::arch::aarch64 as arch;
use crate::{
    arch::{Machine, Traps},
    board, bootargs, console, cores,
    devicetree::{self, Core, EnableMethod},
    drivers, exception, memory, power, println, run, time,
};
use alloc::{format, string::String, vec::Vec};

/// Rust entry point, called once by `arch/aarch64/boot.s` on the boot core at EL1 with
/// the boot map live (MMU and caches on, `arch/aarch64/boot_map.rs`), a valid
/// stack and zeroed BSS.
#[no_mangle]
pub extern "C" fn kernel_main(dtb_addr: usize, entry_el: u64) -> ! {
    // TPIDR_EL1 resets to an UNKNOWN value: the boot core is core 0.
    arch::smp::set_core_index(0);
    // Without a device tree the board table is the machine's description, so its
    // UART is the console from the start (a fault while reading the tree is then
    // reported). With one, nothing is written anywhere the tree does not name.
    if !devicetree::present(dtb_addr) {
        console::attach_sink(board::console_uart(board::memory::UART_BASE));
    }
    memory::heap::init();
    exception::init();

    let mut platform = devicetree::discover(dtb_addr);
    if let Some(why) = platform.missing() {
        stop_on_an_incomplete_tree(&platform, why);
    }
    console::attach_sink(board::console_uart(platform.uart_base));
    board::init_console_hardware(&mut platform);
    arch::power::use_psci(platform.psci);
    refuse_el3_entry(entry_el);

    cover_ram_with_the_boot_map(&platform);
    memory::init(&platform.ram, platform.reserved.iter().map(|r| r.region), arch::memory_layout::kernel_image());
    arch::mmu::enable(&platform);

    drivers::interrupt_controller_init(&platform);
    arch::smp::init_this_core_interrupts(0);
    time::init(&platform);
    arch::cpu::enable_interrupts();

    print_banner(&platform, entry_el);
    // After `time::init`: the wait for each core is bounded by the counter.
    start_other_cores(&platform);

    run::self_tests_and_tasks(&platform, selftests::SELF_TESTS)
}

/// Start every other core the device tree (or the board table) lists, as many
/// as `cores=N` allows, each by its `enable-method`: PSCI `CPU_ON` (QEMU virt,
/// boards with Trusted Firmware) or the spin table (the Raspberry Pi 4's
/// firmware). `cores::bring_up` prints a `cores:` line for each and waits a
/// bounded time for it; a core that does not answer is named and left out.
fn start_other_cores(platform: &devicetree::Platform) {
    let boot_core = arch::smp::this_core_affinity();
    cores::boot_core_is(format!("MPIDR {:#x}", boot_core));
    let candidates: Vec<cores::Candidate<Core>> = platform
        .cores
        .iter()
        .filter(|core| core.mpidr != boot_core)
        .map(|core| cores::Candidate { id: core.clone(), name: format!("MPIDR {:#x}", core.mpidr) })
        .collect();
    let wanted = bootargs::cores_wanted(&platform.bootargs).unwrap_or(usize::MAX);
    cores::bring_up(&candidates, wanted, |index, core, stack_top| start_core(platform, index, core, stack_top));
}

/// Start `core` as core `index` on the stack ending at `stack_top`; `Err` says
/// why the machine refused at once.
fn start_core(platform: &devicetree::Platform, index: usize, core: &Core, stack_top: usize) -> Result<(), String> {
    arch::smp::prepare_to_start(index, core.mpidr, stack_top);
    let entry = arch::smp::secondary_entry_address();
    match &core.enable_method {
        EnableMethod::Psci => {
            let conduit = platform
                .psci
                .ok_or_else(|| String::from("its enable-method is \"psci\", but the device tree has no /psci node"))?;
            // The context id (x0 on arrival) is the index; boot.s finds its slot by
            // MPIDR all the same, as a core released from a spin table must.
            arch::psci::cpu_on(conduit, core.mpidr, entry, index as u64)
                .map_err(|error| format!("PSCI CPU_ON returned {}", error))
        }
        EnableMethod::SpinTable { release_address } => arch::smp::release_from_spin_table(*release_address, entry),
        EnableMethod::Unusable(why) => Err(format!("{}: no way to start it", why)),
    }
}

/// Rust entry point of every other core, called by `boot.s`
/// (`secondary_entry`) at EL1 with its MMU and caches on (the kernel's own
/// table), interrupts masked, on the stack `cores::bring_up` gave it. It
/// takes the exception vectors, its index in TPIDR_EL1, its GIC CPU interface
/// with the cross-core SGI and the tick's PPI (both banked per core) and its
/// own tick, then reports to `cores` and waits there to join the scheduler.
#[no_mangle]
pub extern "C" fn secondary_main_aarch64(index: usize) -> ! {
    Machine::init_traps();
    arch::smp::set_core_index(index);
    arch::smp::init_this_core_interrupts(index);
    arch::timer::start_tick_on_this_core();
    time::start_on_this_core();
    cores::arrive(index);
    crate::run::secondary_core()
}

/// Add the RAM the platform reports to the boot map, so that the frames the MMU
/// set-up takes are reachable wherever the allocator finds them; RAM that cannot
/// be added is said, and no frame there is used before the MMU set-up.
fn cover_ram_with_the_boot_map(platform: &devicetree::Platform) {
    for ram in &platform.ram {
        if let Err(why) = arch::boot_map::cover_ram(ram.base, ram.size) {
            println!(
                "memory:  RAM at {:#x} ({} MiB) left out of the boot map ({:?}): frames there are not used before the MMU set-up",
                ram.base,
                ram.size >> 20,
                why
            );
        }
    }
}

/// The device tree lacks a device the kernel needs: say so on its UART if it has
/// one (never on the board table's guess), and stop with status 6.
fn stop_on_an_incomplete_tree(platform: &devicetree::Platform, why: &str) -> ! {
    if platform.uart_source == devicetree::Source::DeviceTree {
        console::attach_sink(board::console_uart(platform.uart_base));
        println!("boot: {}: stopping (with a device tree, every device comes from it; no address is guessed)", why);
    }
    power::exit(power::ExitStatus::UnsupportedBoot)
}

/// Stop, saying why, when the loader entered the kernel at EL3. boot.s drops to
/// EL1 from there, but EL3 is the firmware's: what it would set up for the
/// lower levels is left undone (CNTFRQ_EL0, the GIC's interrupt groups, so the
/// timer stays a Secure Group 0 interrupt EL1 never sees; CPUECTLR_EL1.SMPEN).
/// The Pi's own armstub does that and enters at EL2, as QEMU does without
/// `secure=on`.
fn refuse_el3_entry(entry_el: u64) {
    if entry_el == 3 {
        println!(
            "boot: entered at EL3, where the firmware's set-up of the lower levels (CNTFRQ_EL0, GIC interrupt groups, \
             CPUECTLR_EL1.SMPEN) is missing: enter at EL2 or EL1 instead (Raspberry Pi: without kernel_old=1 or a \
             custom armstub; QEMU virt: without secure=on)"
        );
        power::exit(power::ExitStatus::UnsupportedBoot);
    }
}

/// The boot banner: every figure is read from the hardware or the device tree.
fn print_banner(platform: &devicetree::Platform, entry_el: u64) {
    let cpu = arch::cpu::identify();
    let caches = arch::cache::geometry();
    println!("brk-path kernel {}", env!("CARGO_PKG_VERSION"));
    println!("board:   {} ({})", platform.board_name, platform.board_source.describe("device tree model"));
    println!("cpu:     {}", cpu);
    println!("entered: EL{}", entry_el);
    for region in platform.ram.iter() {
        println!(
            "ram:     {} MiB at {:#010x} ({})",
            region.size / (1024 * 1024),
            region.base,
            platform.ram_source.describe("device tree /memory"),
        );
    }
    println!(
        "caches:  D-line {} B, I-line {} B, CTR_EL0.IDC={} DIC={} L1Ip={} ({})",
        caches.dcache_line,
        caches.icache_line,
        caches.idc as u8,
        caches.dic as u8,
        arch::cache::icache_policy(),
        if caches.icache_aliasing {
            "may alias: code written through the kernel's alias is made visible with IC IALLUIS"
        } else {
            "no aliases: IC IVAU by the kernel's alias"
        }
    );
    println!(
        "timer:   {} Hz (CNTFRQ_EL0), tick every {} ms on INTID {} ({})",
        time::frequency(),
        time::TICK_MS,
        platform.timer_irq,
        platform.timer_source.describe("device tree")
    );
    println!("console: PL011 at {:#010x} ({})", platform.uart_base, platform.uart_source.describe("device tree"));
    println!(
        "gic:     GICv2 distributor {:#010x}, cpu interface {:#010x} ({})",
        platform.gic.distributor,
        platform.gic.cpu_interface,
        platform.gic_source.describe("device tree")
    );
    for reserved in &platform.reserved {
        println!(
            "reserved: {:#010x}-{:#010x} {}{}",
            reserved.region.base,
            reserved.region.end(),
            reserved.what,
            if reserved.no_map { " (no-map: never mapped)" } else { "" }
        );
    }
}
