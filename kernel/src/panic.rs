//! The panic handler: print message and location, power off with status 2.

use crate::power::{self, ExitStatus};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::arch::cpu::disable_interrupts();
    let (file, line) = info.location().map_or(("<unknown>", 0), |l| (l.file(), l.line()));
    crate::console::print_on_the_way_down(format_args!("kernel panic at {}:{}: {}\n", file, line, info.message()));
    power::exit(ExitStatus::Panic)
}
