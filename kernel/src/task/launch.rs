//! Starting the processes the boot arguments ask for (`run=`, `test=`,
//! `expect-fault=`). Both kernels compile this file (the x86_64 one through
//! `#[path]`).

use super::{process::Expectation, scheduler};
use crate::{
    bootargs::{BootArgs, ProgramRequest},
    println, programs,
};
use alloc::{format, string::String, vec::Vec};

/// Start a process for each `run=`, `test=` and `expect-fault=` boot argument.
/// Returns how many were started; a request that cannot be started is reported
/// and, if it was a test, counted as a failure by returning it in `failed`.
pub fn launch_requested(args: &BootArgs) -> (usize, usize) {
    // The scheduler's lock is also taken by the tick interrupt: from here on,
    // interrupts stay masked in the kernel except in the idle loop (`run`).
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
