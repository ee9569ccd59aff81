//! Tasks: processes (an address space and a program) and their threads, the
//! scheduler that shares the CPU between them, and what happens when one faults.
//!
//! The scheduler, the process and thread records, the symbol tables, starting
//! the requested programs and the fault report line are the aarch64 kernel's
//! own files (they are architecture-free: every machine detail they need goes
//! through `crate::arch`); the address space, the ELF loader and what a fault
//! is called are this port's.

#[path = "address_space_x86_64.rs"]
pub mod address_space;
mod fault_report;
mod launch;
#[path = "loader_x86_64.rs"]
pub mod loader;
pub mod process;
pub mod scheduler;
pub mod symbols;

pub use launch::launch_requested;

use crate::arch::exception::{fault_address, ExceptionFrame, Vector};
use alloc::{format, string::String};

/// Hand the CPU to the tasks: this context becomes the idle loop, which the
/// next timer tick leaves for the first ready thread. Never returns: the
/// scheduler powers off when the last process ends.
pub fn run() -> ! {
    loop {
        crate::arch::cpu::wait_for_interrupt();
    }
}

/// An exception from ring 3 that no one claimed: report it in one line and
/// kill the process. Every other process goes on.
pub fn fault(frame: &ExceptionFrame) {
    let class = frame.class();
    let what = match (class, frame.page_fault_detail()) {
        (_, Some(detail)) => format!("{}: {}", class, detail),
        // RIP is past the `int3`: slot 0 of the XOL page is the trampoline.
        (Vector::Breakpoint, None) if frame.rip.wrapping_sub(1) == brk_abi::layout::XOL_PAGE => {
            format!("{}: the return-probe trampoline, reached with no return probe armed", class)
        }
        (Vector::Breakpoint, None) => format!("{} not placed by a probe", class),
        (Vector::GeneralProtection | Vector::StackSegment | Vector::SegmentNotPresent, None)
            if frame.error_code != 0 =>
        {
            format!("{}: selector error code {:#x}", class, frame.error_code)
        }
        _ => format!("{}", class),
    };
    // CR2 is meaningful for page faults only; elsewhere it holds a stale value.
    let cr2 = if class == Vector::PageFault { format!(" CR2={:#x}", fault_address()) } else { String::new() };
    fault_report::report_and_kill(what, cr2, "RIP", frame.rip);
}
