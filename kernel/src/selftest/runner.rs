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

/// `ensure!(condition, "why {}", x)`: fail the test with that reason unless
/// the condition holds.
macro_rules! ensure {
    ($cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(alloc::format!($($why)*));
        }
    };
}
