//! Starting the processes the boot arguments ask for (`run=`, `test=`,
//! `expect-fault=`), on either architecture.

use super::scheduler;
use crate::{
    bootargs::{BootArgs, Expectation, ProgramRequest},
    println, programs,
};
use alloc::{format, string::String, vec::Vec};

/// What became of the program requests of the boot arguments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Launched {
    /// Processes started.
    pub started: usize,
    /// `test=` and `expect-fault=` requests that could not be started: failed tests.
    pub failed_tests: usize,
    /// `run=` requests that could not be started.
    pub not_started: usize,
}

/// Start a process for each `run=`, `test=` and `expect-fault=` boot argument.
/// A request that cannot be started is reported with its reason and counted
/// (as a failed test if it was one); the others start all the same, and the
/// scheduler's end-of-run report counts them again into the exit status.
/// `hooks` are what the scheduler calls at a process's start and end.
pub fn launch_requested(args: &BootArgs, hooks: scheduler::Hooks) -> Launched {
    // The scheduler's lock is also taken by the tick interrupt: from here on,
    // interrupts stay masked in the kernel except in the idle loop (`run`).
    <crate::arch::Machine as crate::arch::Cpu>::disable_interrupts();
    scheduler::init(hooks);
    let mut launched = Launched::default();
    for request in &args.programs {
        match start(request) {
            Some(_) => launched.started += 1,
            None => {
                if request.expectation == Expectation::Nothing {
                    launched.not_started += 1;
                } else {
                    launched.failed_tests += 1;
                }
            }
        }
    }
    scheduler::with(|s| s.note_launch(launched));
    launched
}

/// Start `request`'s program as a new process (at boot, or the shell's
/// `run`), saying in one line that it started (`task: started pid ...`) or
/// why it could not (`task: cannot start ...`).
pub fn start(request: &ProgramRequest) -> Option<super::process::Pid> {
    match launch(request) {
        Ok(pid) => {
            println!("task: started pid {} {} {}", pid, request.name, request.args);
            Some(pid)
        }
        Err(why) => {
            println!("task: cannot start '{}': {}", request.name, why);
            None
        }
    }
}

fn launch(request: &ProgramRequest) -> Result<super::process::Pid, String> {
    let image = programs::find(&request.name).ok_or_else(|| {
        format!("no such program (packed into this kernel: {})", programs::names().collect::<Vec<_>>().join(", "))
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
