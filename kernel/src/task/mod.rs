//! Tasks: processes (an address space and a program) and their threads, the
//! scheduler that shares the CPU between them, and what happens when one faults.

pub mod address_space;
pub mod loader;
pub mod process;
pub mod scheduler;
pub mod symbols;

use crate::{
    arch::exception::{ExceptionClass, ExceptionFrame},
    bootargs::{BootArgs, ProgramRequest},
    println, programs,
};
use alloc::{format, string::String};
use process::Expectation;

/// Start a process for each `run=`, `test=` and `expect-fault=` boot argument.
/// Returns how many were started; a request that cannot be started is reported
/// and, if it was a test, counted as a failure by returning it in `failed`.
pub fn launch_requested(args: &BootArgs) -> (usize, usize) {
    // The scheduler's lock is also taken by the tick interrupt: from here on,
    // interrupts stay masked at EL1 except in the idle loop (`run`).
    crate::arch::cpu::disable_interrupts();
    scheduler::init();
    let (mut started, mut failed) = (0, 0);
    for request in &args.programs {
        match launch(request) {
            Ok(pid) => {
                started += 1;
                println!("task: started pid {} {} {}", pid, request.name, request.args);
            }
            Err(why) => {
                println!("task: cannot start '{}': {}", request.name, why);
                if request.expectation != Expectation::Nothing {
                    failed += 1;
                }
            }
        }
    }
    (started, failed)
}

fn launch(request: &ProgramRequest) -> Result<process::Pid, String> {
    let image = programs::find(&request.name).ok_or_else(|| {
        format!("no such program (packed into this kernel: {})", programs::names().collect::<alloc::vec::Vec<_>>().join(", "))
    })?;
    scheduler::with(|s| {
        s.spawn_process(scheduler::Launch {
            name: &request.name,
            image,
            args: &request.args,
            expectation: request.expectation,
        })
    })
}

/// Hand the CPU to the tasks: from here on this context is the idle loop, which
/// the first timer tick leaves for the first ready thread. Never returns: the
/// scheduler powers off when the last process ends.
pub fn run() -> ! {
    crate::arch::cpu::enable_interrupts();
    loop {
        crate::arch::cpu::wait_for_interrupt();
    }
}

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
        what = if frame.brk_immediate() == crate::arch::debug::TRAMPOLINE_BRK_IMMEDIATE && frame.elr == brk_abi::layout::XOL_PAGE {
            format!("{}: the return-probe trampoline, reached with no return probe armed", what)
        } else {
            format!("{}: brk #{:#x}, which no probe owns", what, frame.brk_immediate())
        };
    }
    // A fault in an instruction stepped out of line is the probed
    // instruction's: report it at the probed address, not in the XOL page.
    let elr = scheduler::with(|s| {
        let (thread, process) = s.current();
        match crate::probe::abandon_step(thread, process, frame.elr) {
            Some(breakpoint) => {
                what = format!("{} (stepping a probed instruction out of line)", what);
                breakpoint
            }
            None => frame.elr,
        }
    });
    let location = scheduler::describe_current(elr);
    scheduler::with(|s| {
        let (thread, process) = s.current();
        let line = format!(
            "{} (pid {} {}, tid {}):{} ELR={:#x} at {}",
            what,
            process.pid,
            process.title(),
            thread.tid,
            far,
            elr,
            location
        );
        println!("fault: {}; process killed", line);
        s.kill_current_process(what);
    });
}
