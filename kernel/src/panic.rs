//! The panic handler: print message and location, power off with status 2.

use crate::{
    arch::{Cpu, Machine},
    console,
    power::{self, ExitStatus},
};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    Machine::disable_interrupts();
    let (file, line) = info.location().map_or(("<unknown>", 0), |l| (l.file(), l.line()));
    console::print_on_the_way_down(format_args!("kernel panic at {}:{}: {}\n", file, line, info.message()));
    power::exit(ExitStatus::Panic)
}
