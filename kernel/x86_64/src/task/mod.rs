//! Tasks: processes (an address space and a program) and their threads, the
//! scheduler that shares the CPU between them, and what happens when one faults.
//!
//! The scheduler, the process and thread records and the symbol tables are the
//! aarch64 kernel's own files (they are architecture-free: every machine detail
//! they need goes through `crate::arch`); the address space and the ELF loader
//! are this port's.

pub mod address_space;
pub mod loader;
#[path = "../../../src/task/process.rs"]
pub mod process;
#[path = "../../../src/task/scheduler.rs"]
pub mod scheduler;
#[path = "../../../src/task/symbols.rs"]
pub mod symbols;

use crate::{
    arch::exception::{fault_address, ExceptionFrame, Vector},
    bootargs::BootArgs,
    println, programs,
};
use alloc::{format, string::String, vec::Vec};
use process::Expectation;

/// Start a process for each `run=`, `test=` and `expect-fault=` boot argument.
/// Returns (started, failed to start that should have run as tests).
pub fn launch_requested(args: &BootArgs) -> (usize, usize) {
    // The scheduler's lock is also taken by the tick: from here on interrupts
    // stay masked in ring 0 except in the idle loop (`run`).
    crate::arch::cpu::disable_interrupts();
    scheduler::init();
    args.programs.iter().fold((0, 0), |(started, failed), request| {
        let image = programs::find(&request.name).ok_or_else(|| {
            format!("no such program (packed into this kernel: {})", programs::names().collect::<Vec<_>>().join(", "))
        });
        let launched = image.and_then(|image| {
            scheduler::with(|s| {
                s.spawn_process(scheduler::Launch {
                    name: &request.name,
                    image,
                    args: &request.args,
                    expectation: request.expectation,
                })
            })
        });
        match launched {
            Ok(pid) => {
                println!("task: started pid {} {} {}", pid, request.name, request.args);
                (started + 1, failed)
            }
            Err(why) => {
                println!("task: cannot start '{}': {}", request.name, why);
                (started, failed + usize::from(request.expectation != Expectation::Nothing))
            }
        }
    })
}

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
    let mut what = match (class, frame.page_fault_detail()) {
        (_, Some(detail)) => format!("{}: {}", class, detail),
        (Vector::Breakpoint, None) => format!("{} not placed by a probe", class),
        (Vector::GeneralProtection | Vector::StackSegment | Vector::SegmentNotPresent, None) if frame.error_code != 0 => {
            format!("{}: selector error code {:#x}", class, frame.error_code)
        }
        _ => format!("{}", class),
    };
    // CR2 is meaningful for page faults only; elsewhere it holds a stale value.
    let cr2 = if class == Vector::PageFault { format!(" CR2={:#x}", fault_address()) } else { String::new() };
    // A fault in an instruction stepped out of line is the probed
    // instruction's: report it at the probed address, not in the XOL page.
    let rip = scheduler::with(|s| {
        let (thread, process) = s.current();
        match crate::probe::abandon_step(thread, process, frame.rip) {
            Some(probed) => {
                what = format!("{} (stepping a probed instruction out of line)", what);
                probed
            }
            None => frame.rip,
        }
    });
    let location = scheduler::describe_current(rip);
    scheduler::with(|s| {
        let (thread, process) = s.current();
        println!(
            "fault: {} (pid {} {}, tid {}):{} RIP={:#x} at {}; process killed",
            what,
            process.pid,
            process.title(),
            thread.tid,
            cr2,
            rip,
            location
        );
        s.kill_current_process(what);
    });
}
