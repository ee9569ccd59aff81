//! System calls: `svc #0` from EL0, decoded per the table in `brk_abi` (the
//! one documented list of calls, arguments and errors).
//!
//! Every pointer argument is checked against the caller's address space before
//! the kernel reads it ([`crate::task::address_space::AddressSpace::check`]); a
//! bad one returns `BadAddress` and the caller goes on.

use crate::{
    arch::{Frame, SavedRegisters},
    probe,
    task::{
        address_space::UserAccess,
        on_core::{Here, Running},
        process::{ProcessEntry, Thread},
        scheduler,
    },
    time,
};
use alloc::vec::Vec;
use brk_abi::{Error, Syscall, TaskInfo};

/// At most this many bytes per `write`; the return value says how many were taken.
const WRITE_MAX: u64 = 64 * 1024;
const STDOUT: u64 = 1;
const STDERR: u64 = 2;

/// What a call does to the caller.
enum Outcome {
    /// Return this in x0.
    Return(Result<u64, Error>),
    /// The caller waits; its x0 is filled in when it is woken (join), or it
    /// never returns (exit).
    NoReturnYet,
}

/// Decode and carry out the system call in `frame`, taken on core `here`.
/// Its callers are the exception dispatcher's: inlined there, a call costs no
/// extra frame (the benchmarks' null `svc` floor).
#[inline(always)]
pub fn handle(here: Here, frame: &mut Frame) {
    // Read from the frame where a call needs them, not all up front: the
    // calls without arguments (`getpid`, the null `svc`) read none.
    let arg = |i: usize| frame.syscall_arg(i);
    let outcome = match Syscall::from_number(frame.syscall_number()) {
        None => Outcome::Return(Err(Error::NoSuchCall)),
        Some(Syscall::Write) => Outcome::Return(write(arg(0), arg(1), arg(2))),
        Some(Syscall::Exit) => {
            scheduler::with(|s| s.exit_process(arg(0) as i64));
            Outcome::NoReturnYet
        }
        Some(Syscall::ThreadExit) => {
            scheduler::with(|s| s.exit_thread(arg(0)));
            Outcome::NoReturnYet
        }
        Some(Syscall::Yield) => {
            scheduler::with(|s| s.yield_now());
            Outcome::Return(Ok(0))
        }
        Some(Syscall::Sleep) => {
            let duration = arg(0);
            frame.set_syscall_result(0);
            scheduler::with(|s| s.sleep(duration));
            Outcome::NoReturnYet
        }
        Some(Syscall::GetPid) => Outcome::Return(running(here, |running| running.process.pid as u64)),
        Some(Syscall::GetTid) => Outcome::Return(running(here, |running| running.tid as u64)),
        Some(Syscall::SpawnThread) => Outcome::Return(scheduler::with(|s| s.spawn_thread(arg(0), [arg(1), arg(2)]))),
        Some(Syscall::Join) => match scheduler::with(|s| s.join(arg(0))) {
            Ok(Some(value)) => {
                frame.set_syscall_second_result(value);
                Outcome::Return(Ok(0))
            }
            Ok(None) => Outcome::NoReturnYet,
            Err(error) => Outcome::Return(Err(error)),
        },
        Some(Syscall::TaskInfo) => Outcome::Return(task_info(arg(0), arg(1))),
        Some(Syscall::ProbeRegister) => Outcome::Return(probe::sys_register(arg(0), arg(1))),
        Some(Syscall::ProbeUnregister) => {
            let id = arg(0);
            match probe::sys_unregister(frame, id) {
                Some(result) => Outcome::Return(result),
                None => Outcome::NoReturnYet,
            }
        }
        Some(Syscall::ProbeStats) => Outcome::Return(copy_out(arg(1), arg(2), |_| {
            probe::sys_stats(arg(0)).map(|stats| stats.to_bytes().to_vec())
        })),
        Some(Syscall::MemoryInfo) => Outcome::Return(copy_out(arg(0), arg(1), |_| {
            let (heap_used, heap_free) = crate::memory::heap::usage();
            Ok(brk_abi::MemoryInfo { heap_used: heap_used as u64, heap_free: heap_free as u64 }.to_bytes().to_vec())
        })),
        Some(Syscall::ProbeCounters) => {
            Outcome::Return(copy_out(arg(0), arg(1), |_| Ok(probe::counters().to_bytes().to_vec())))
        }
        Some(Syscall::PinToCore) => Outcome::Return(scheduler::with(|s| s.pin_current(arg(0)))),
        Some(Syscall::CoreIndex) => Outcome::Return(Ok(crate::cores::this() as u64)),
        Some(Syscall::Clock) => {
            frame.set_syscall_second_result(time::frequency());
            Outcome::Return(Ok(time::counter()))
        }
    };
    if let Outcome::Return(result) = outcome {
        frame.set_syscall_result(match result {
            Ok(value) => value,
            Err(error) => error.to_return_value(),
        });
    }
}

fn write(fd: u64, buffer: u64, len: u64) -> Result<u64, Error> {
    if fd != STDOUT && fd != STDERR {
        return Err(Error::InvalidArgument);
    }
    let len = len.min(WRITE_MAX);
    let mut bytes = Vec::new();
    caller(|_, process| -> Result<(), Error> {
        let range = process.space.check(buffer, len, UserAccess::Read)?;
        process.space.read(range, &mut bytes);
        Ok(())
    })??;
    crate::print!("{}", alloc::string::String::from_utf8_lossy(&bytes));
    Ok(len)
}

fn task_info(buffer: u64, len: u64) -> Result<u64, Error> {
    copy_out(buffer, len, |caller| Ok(caller.to_bytes().to_vec()))
}

/// Copy what `make` returns into the caller's buffer `[buffer, buffer + len)`,
/// which must be at least that long and writable by the caller. `make` gets the
/// caller's [`TaskInfo`].
fn copy_out(buffer: u64, len: u64, make: impl FnOnce(TaskInfo) -> Result<Vec<u8>, Error>) -> Result<u64, Error> {
    let who = caller(|thread, process| TaskInfo {
        pid: process.pid as u64,
        tid: thread.tid as u64,
        live_threads: process.live_threads as u64,
        run_time: process.run_time,
        counter_frequency: time::frequency(),
        ticks: process.ticks,
        preemptions: process.preemptions,
    })?;
    let bytes = make(who)?;
    if len < bytes.len() as u64 {
        return Err(Error::InvalidArgument);
    }
    caller(|_, process| {
        let range = process.space.check(buffer, bytes.len() as u64, UserAccess::Write)?;
        process.space.write(range, &bytes);
        Ok(bytes.len() as u64)
    })?
}

/// `f` with the calling thread as core `here` runs it (`task::on_core`),
/// without the scheduler's lock: for the calls that only read what never
/// changes while the thread lives (its id, its process's). If another core
/// ended the process meanwhile, the answer goes nowhere, as with [`caller`]:
/// the return passes through the scheduler, which never runs the thread again.
#[inline(always)]
fn running<R>(here: Here, f: impl FnOnce(&Running) -> R) -> Result<R, Error> {
    here.with_mine(|running| running.map(f)).ok_or(Error::NoSuchThread)
}

/// `f` with the calling thread and its process, under the scheduler's lock;
/// `NoSuchThread` if another core ended the process since the call was made
/// (the answer then goes nowhere: the thread never runs again).
fn caller<R>(f: impl FnOnce(&mut Thread, &mut ProcessEntry) -> R) -> Result<R, Error> {
    scheduler::with(|s| s.current().map(|(thread, process)| f(thread, process))).ok_or(Error::NoSuchThread)
}
