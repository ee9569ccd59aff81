//! Powering off with a status the host can read.
//!
//! The status line first, flushed out of the console; then the machine's own
//! ways down, in its order (`Power`: on aarch64 semihosting SYS_EXIT, then
//! PSCI SYSTEM_OFF; on a PC QEMU's isa-debug-exit port under a hypervisor,
//! then the firmware's ResetSystem), each line they say flushed too; then, if
//! the machine still runs, halting the core.

use crate::{
    arch::{Cpu, Machine, Power},
    console,
};
use core::sync::atomic::{AtomicBool, Ordering};

mod exit_status;

pub use exit_status::ExitStatus;

static EXITING: AtomicBool = AtomicBool::new(false);

/// Stop the machine with `status`. Never returns.
pub fn exit(status: ExitStatus) -> ! {
    Machine::disable_interrupts();
    if EXITING.swap(true, Ordering::SeqCst) {
        // A fault while exiting: do not recurse, just stop.
        Machine::halt();
    }
    say(format_args!("status {} ({})", status as u32, status.describe()));
    Machine::power_off(status as u32, &mut say);
    Machine::halt()
}

/// One `power off:` line, out of the console before the next step.
fn say(line: core::fmt::Arguments<'_>) {
    console::print_on_the_way_down(format_args!("power off: {}\n", line));
    console::flush();
}
