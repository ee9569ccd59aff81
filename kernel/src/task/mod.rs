//! Tasks: processes (an address space and a program) and their threads, the
//! scheduler that shares the CPU between them, and what happens when one faults.

pub mod address_space;
mod fault_report;
mod launch;
pub mod loader;
pub mod on_core;
pub mod process;
pub mod scheduler;
pub mod symbols;
pub mod trampoline_area;

pub use launch::{launch_requested, start};

use crate::arch::{Frame, Machine, Traps};

/// Hand the CPU to the tasks: from here on this context is the idle loop, which
/// the first timer tick leaves for the first ready thread. Never returns: the
/// scheduler powers off when the last process ends, or, with the shell, when
/// it is told to (`poweroff`).
pub fn run() -> ! {
    <crate::arch::Machine as crate::arch::Cpu>::enable_interrupts();
    loop {
        // Back in the idle loop after a pass that switched a thread out: this
        // core is off that thread's kernel stack.
        on_core::off_the_old_stack();
        <crate::arch::Machine as crate::arch::Cpu>::wait_for_interrupt();
    }
}

/// An exception from user mode that no one claimed: report it in one line,
/// as the architecture describes it, and kill the process. Every other
/// process goes on. Cold: kept out of the dispatcher's hot paths.
#[cold]
pub fn fault(frame: &Frame) {
    fault_report::report_and_kill(Machine::describe_fault(frame));
}
