//! The self-test runner both kernels use (the x86_64 one through `#[path]`):
//! each test checks one piece of the bring-up on the real (or emulated)
//! machine and prints exactly one line, `selftest NAME: ok` or
//! `selftest NAME: FAILED (why)`, then a `selftests: N ok, M failed` summary.

use crate::{devicetree::Platform, println};
use alloc::string::String;

pub type Outcome = Result<(), String>;

pub struct SelfTest {
    pub name: &'static str,
    pub run: fn(&Platform) -> Outcome,
}

/// Run `tests` in order; returns how many failed.
pub fn run(tests: &[SelfTest], platform: &Platform) -> usize {
    let mut failed = 0;
    for test in tests {
        match (test.run)(platform) {
            Ok(()) => println!("selftest {}: ok", test.name),
            Err(why) => {
                failed += 1;
                println!("selftest {}: FAILED ({})", test.name, why);
            }
        }
    }
    println!("selftests: {} ok, {} failed", tests.len() - failed, failed);
    failed
}

/// How many times a self-test polls for ticks before it calls the timer dead.
/// A bound on the guest's own work, not on time: a host that stops the
/// emulator for a while (a loaded machine) stops this loop too, so only a tick
/// that never comes exhausts it. Billions of polls take seconds on any core,
/// against the few tick periods that are waited for.
pub const TICK_POLL_BUDGET: u64 = 1 << 31;

/// Polls `done` until it holds, at most [`TICK_POLL_BUDGET`] times (polling,
/// not `wfi`, so a broken interrupt path fails instead of hanging the
/// machine); how many polls it took.
pub fn poll_until(mut done: impl FnMut() -> bool) -> Option<u64> {
    (0..TICK_POLL_BUDGET).find(|_| {
        core::hint::spin_loop();
        done()
    })
}

/// `ensure!(condition, "why {}", x)`: fail the test with that reason unless
/// the condition holds.
macro_rules! ensure {
    ($cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(alloc::format!($($why)*));
        }
    };
}
