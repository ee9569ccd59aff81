//! Powering off with a status the host can read.
//!
//! Under QEMU the isa-debug-exit port ends the run with host status
//! `33 + 2 * status`. On a real PC that write goes nowhere; the runtime
//! services' ResetSystem is not an option either, because after
//! ExitBootServices the kernel maps the firmware's runtime code like any other
//! memory (read/write, never executable, W^X), so the kernel says so and halts.

use crate::{arch, console, time};
use core::sync::atomic::{AtomicBool, Ordering};

/// Why the kernel stops. The number is the status behind QEMU's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitStatus {
    Success = 0,
    SelfTestFailed = 1,
    Panic = 2,
    UnexpectedException = 3,
    /// A task run as a test (`test=`, `expect-fault=`) did not do what it should.
    TaskFailed = 4,
}

impl ExitStatus {
    fn describe(self) -> &'static str {
        match self {
            ExitStatus::Success => "success",
            ExitStatus::SelfTestFailed => "self-test failed",
            ExitStatus::Panic => "panic",
            ExitStatus::UnexpectedException => "unexpected exception",
            ExitStatus::TaskFailed => "task test failed",
        }
    }
}

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
