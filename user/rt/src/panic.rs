//! The panic handler: one line on the console, then the whole process ends.

use core::{
    panic::PanicInfo,
    sync::atomic::{AtomicU64, Ordering},
};

use crate::{println, sys};

/// The status a panicking process exits with (as Rust's `std` does on Linux).
pub const PANIC_EXIT_STATUS: i32 = 101;

/// The thread id of the first thread to panic, or [`NOBODY`].
static PANICKING_THREAD: AtomicU64 = AtomicU64::new(NOBODY);
const NOBODY: u64 = u64::MAX;

/// Prints `panic: <message> at <file>:<line>` and exits the process with
/// [`PANIC_EXIT_STATUS`], whichever thread panicked.
#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    let me = sys::gettid().unwrap_or(NOBODY - 1);
    if let Err(first) = PANICKING_THREAD.compare_exchange(NOBODY, me, Ordering::SeqCst, Ordering::SeqCst) {
        if first == me {
            // A panic while reporting a panic (a `Display` impl that panics): do not
            // recurse, just end.
            sys::exit(PANIC_EXIT_STATUS);
        }
        // Another thread is reporting its panic and will end the process; exiting
        // now could cut its message off. Wait for it.
        loop {
            let _ = sys::yield_now();
        }
    }
    match info.location() {
        Some(location) => {
            println!("panic: {} at {}:{}", info.message(), location.file(), location.line())
        }
        None => println!("panic: {} at <unknown>:0", info.message()),
    }
    sys::exit(PANIC_EXIT_STATUS)
}
