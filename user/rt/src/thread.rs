//! Threads of one process: they share the address space (statics, atomics), each
//! has its own 64 KiB stack with an unmapped guard page below it.
//!
//! A thread runs a plain `fn(usize) -> usize` (no closures: there is no heap to
//! put their captures in); the `usize` it returns is what [`join`] gives back.
//! A panic in any thread ends the whole process.

use core::fmt;

use brk_abi::Error;

use crate::sys;

/// A thread id, as `gettid` and `spawn_thread` return it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tid(pub u64);

impl fmt::Display for Tid {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Starts a thread that runs `f(arg)` and then ends with its result.
///
/// The result reaches [`join`] intact only if it is below 2^63 (see [`join`]).
pub fn spawn(f: fn(usize) -> usize, arg: usize) -> Result<Tid, Error> {
    sys::spawn_thread(crate::arch::thread_entry(), f as usize as u64, arg as u64).map(Tid)
}

/// Where every spawned thread enters Rust: first argument = the function, second
/// = its argument (as [`spawn`] passed them to `spawn_thread`). The kernel starts
/// the thread at `crate::arch::thread_entry()`, which is this function itself on
/// aarch64 and a trampoline that calls it on x86_64.
pub(crate) extern "C" fn thread_start(f: u64, arg: u64) -> ! {
    // SAFETY: the only caller is the kernel starting a thread made by `spawn`
    // (directly or through the arch trampoline), which passed a
    // `fn(usize) -> usize` cast to an integer as the first argument; a function pointer
    // survives the round trip through an integer of the same width unchanged.
    let f = unsafe { core::mem::transmute::<usize, fn(usize) -> usize>(f as usize) };
    let result = f(arg as usize);
    sys::thread_exit(result as u64)
}

/// Waits for thread `tid` to end and returns its result.
///
/// The exit value travels through a 64-bit register where, as in every result,
/// a negative value means an error, so a result of 2^63 or more comes back as an
/// `Err`.
pub fn join(tid: Tid) -> Result<usize, Error> {
    sys::join(tid.0).map(|value| value as usize)
}

/// The calling thread's id.
pub fn current() -> Result<Tid, Error> {
    sys::gettid().map(Tid)
}

/// Lets another runnable thread run first.
pub fn yield_now() {
    // `yield` always returns 0 (the ABI); there is nothing to report.
    let _ = sys::yield_now();
}

/// Blocks the calling thread for at least `nanoseconds`.
pub fn sleep(nanoseconds: u64) {
    // `sleep` always returns 0 (the ABI); there is nothing to report.
    let _ = sys::sleep(nanoseconds);
}
