//! Kernel self-tests: each checks one piece of the bring-up on the real (or
//! emulated) machine and prints exactly one line, `selftest NAME: ok` or
//! `selftest NAME: FAILED (why)`, then a `selftests: N ok, M failed` summary.
//!
//! This module is the runner, the `ensure!` its tests fail with, and the
//! tests every architecture runs ([`TIMER_TICK`]). Which tests run, and in
//! which order, is each architecture's boot order's to say (`start/<arch>/`,
//! where the tests of what only that architecture sets up live too).

use crate::{
    arch::{Machine, PageLeaf, PageTable, Paging},
    board::Platform,
    println, time,
};
use alloc::{format, string::String};

/// What a self-test found: `Err` says why it failed.
pub type Outcome = Result<(), String>;

/// One self-test: its name in the `selftest NAME:` line, and the check.
pub struct SelfTest {
    pub name: &'static str,
    pub run: fn(&Platform) -> Outcome,
}

/// Run `tests` in order; returns how many failed.
pub fn run_all(tests: &[SelfTest], platform: &Platform) -> usize {
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

/// `ensure!(condition, "why {}", x)`: fail the self-test with that reason
/// unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(alloc::format!($($why)*));
        }
    };
}

/// What every architecture's `mmu-wx` self-test checks first, in the
/// kernel's own table as the architecture walks it: it maps something, and no
/// leaf is both writable and executable. (Each test then asks its MMU about
/// the kernel's text, data and guard pages.)
pub fn kernel_table_has_no_writable_executable_leaf() -> Outcome {
    let mut leaves = 0;
    let mut offender = None;
    <Machine as Paging>::kernel_table().for_each_leaf(|leaf| {
        leaves += 1;
        if leaf.writable() && leaf.executable() && offender.is_none() {
            offender = Some(leaf.va());
        }
    });
    ensure!(offender.is_none(), "mapping at {:#x} is writable and executable", offender.unwrap_or(0));
    ensure!(leaves > 0, "the kernel table has no mappings");
    Ok(())
}

/// The tick arrives: five ticks are counted.
pub const TIMER_TICK: SelfTest = SelfTest { name: "timer-tick", run: timer_ticks_arrive };

/// How many times the timer-tick test polls for ticks before it calls the
/// timer dead. A bound on the guest's own work, not on time: a host that
/// stops the emulator for a while (a loaded machine) stops this loop too, so
/// only a tick that never comes exhausts it. Billions of polls take seconds
/// on any core, against the few tick periods that are waited for.
const TICK_POLL_BUDGET: u64 = 1 << 31;

fn timer_ticks_arrive(_: &Platform) -> Outcome {
    const TICKS: u64 = 5;
    if let Some(why) = time::tick_failure() {
        return Err(format!("no tick source: {}", why));
    }
    // Ticks are counted, never timed: how fast they come depends on the host's
    // load under an emulator. The wait is bounded by the guest's own polls
    // (polling, not waiting for an interrupt, so a broken interrupt path fails
    // instead of hanging the machine).
    let start = time::ticks();
    let arrived = (0..TICK_POLL_BUDGET).any(|_| {
        core::hint::spin_loop();
        time::ticks() >= start + TICKS
    });
    ensure!(arrived, "{} of {} ticks after {} polls", time::ticks() - start, TICKS, TICK_POLL_BUDGET);
    Ok(())
}
