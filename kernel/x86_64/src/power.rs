//! Powering off with a status the host can read.
//!
//! Under QEMU the isa-debug-exit port ends the run with host status
//! `33 + 2 * status`. On a real PC that write goes nowhere; the runtime
//! services' ResetSystem is not an option either, because after
//! ExitBootServices the kernel maps the firmware's runtime code like any other
//! memory (read/write, never executable, W^X), so the kernel says so and halts.

use crate::{arch, console, time};
use core::sync::atomic::{AtomicBool, Ordering};

#[path = "../../src/power/exit_status.rs"]
mod exit_status;

pub use exit_status::ExitStatus;

static EXITING: AtomicBool = AtomicBool::new(false);

/// Stop the machine with `status`. Never returns.
pub fn exit(status: ExitStatus) -> ! {
    arch::cpu::disable_interrupts();
    if EXITING.swap(true, Ordering::SeqCst) {
        // A fault while exiting: do not recurse, just stop.
        arch::cpu::halt();
    }
    console::print_on_the_way_down(format_args!("power off: status {} ({})\n", status as u32, status.describe()));
    arch::poweroff::debug_exit(status as u32);
    // QEMU ends the run shortly after the write, not at once: give it a second
    // before concluding that nobody listened.
    time::delay_ms(1000);
    console::print_on_the_way_down(format_args!("halted: power the machine off\n"));
    arch::cpu::halt()
}
