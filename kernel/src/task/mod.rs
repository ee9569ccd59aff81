//! Tasks: processes (an address space and a program) and their threads, the
//! scheduler that shares the CPU between them, and what happens when one faults.

pub mod address_space;
mod fault_report;
mod launch;
pub mod loader;
pub mod process;
pub mod scheduler;
pub mod symbols;

pub use launch::launch_requested;

#[cfg(target_arch = "x86_64")]
use crate::arch::exception::{fault_address, ExceptionFrame, Vector};
#[cfg(target_arch = "aarch64")]
use crate::arch::exception::{ExceptionClass, ExceptionFrame};
use alloc::{format, string::String};

/// Hand the CPU to the tasks: from here on this context is the idle loop, which
/// the first timer tick leaves for the first ready thread. Never returns: the
/// scheduler powers off when the last process ends.
pub fn run() -> ! {
    crate::arch::cpu::enable_interrupts();
    loop {
        crate::arch::cpu::wait_for_interrupt();
    }
}

#[cfg(target_arch = "aarch64")]
/// An exception from EL0 that is not a system call: report it in one line and
/// kill the process. Every other process goes on.
pub fn fault(frame: &ExceptionFrame) {
    let class = frame.class();
    let mut what = format!("{}", class);
    // FAR_EL1 is only meaningful for aborts; elsewhere it holds a stale value.
    let mut far = String::new();
    if let Some(detail) = frame.abort_detail() {
        what = format!("{}: {}", what, detail);
        far = format!(" FAR={:#x}", frame.far);
    }
    if class == ExceptionClass::BrkAarch64 {
        what = if frame.brk_immediate() == crate::arch::debug::TRAMPOLINE_BRK_IMMEDIATE
            && frame.elr == brk_abi::layout::XOL_PAGE
        {
            format!("{}: the return-probe trampoline, reached with no return probe armed", what)
        } else {
            format!("{}: brk #{:#x}, which no probe owns", what, frame.brk_immediate())
        };
    }
    fault_report::report_and_kill(what, far, "ELR", frame.elr);
}

#[cfg(target_arch = "x86_64")]
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
