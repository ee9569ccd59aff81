//! Powering off with a status the host can read.
//!
//! Order of attempts: semihosting SYS_EXIT (QEMU exits with our status), then
//! PSCI SYSTEM_OFF (status lost), then halting the core.

use crate::{arch, console};
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Once;

mod exit_status;

pub use exit_status::ExitStatus;

static PSCI: Once<Option<arch::psci::Conduit>> = Once::new();
static EXITING: AtomicBool = AtomicBool::new(false);

/// Remember how to reach PSCI (from the device tree).
pub fn init(psci: Option<arch::psci::Conduit>) {
    PSCI.call_once(|| psci);
}

/// Stop the machine with `status`. Never returns.
pub fn exit(status: ExitStatus) -> ! {
    arch::cpu::disable_interrupts();
    if EXITING.swap(true, Ordering::SeqCst) {
        // A fault while exiting: do not recurse, just stop.
        arch::cpu::halt();
    }
    console::print_on_the_way_down(format_args!("power off: status {} ({})\n", status as u32, status.describe()));
    console::flush();
    arch::semihosting::exit(status as u32);
    if let Some(Some(conduit)) = PSCI.get() {
        console::print_on_the_way_down(format_args!("power off: no semihosting host, PSCI SYSTEM_OFF\n"));
        console::flush();
        arch::psci::system_off(*conduit);
    }
    console::print_on_the_way_down(format_args!("power off: no way to power off, halting\n"));
    arch::cpu::halt()
}
