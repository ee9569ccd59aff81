//! The contract's `Timer` trait: the counter and the tick timer.

use crate::board::Platform;
use alloc::{string::String, vec::Vec};

/// The counter (a free-running count that generic code measures time with)
/// and the tick timer (an interrupt at a chosen counter distance, re-armed
/// one shot at a time by `crate::time`).
pub trait Timer {
    /// The counter's name, for the lines generic code prints (`CNTVCT`, `TSC`).
    const COUNTER_NAME: &'static str;

    /// The counter's current value.
    fn counter() -> u64;

    /// How many times a second the counter counts; never 0 once the boot
    /// order has prepared the timer (before [`Timer::start_tick`]).
    fn counter_frequency() -> u64;

    /// Route the tick's interrupt to this core and choose what drives it,
    /// with interrupts off; the first tick is armed afterwards with
    /// [`Timer::arm_tick`]. Returns the lines to report what was found (each
    /// without the `timer:` label), empty when there is nothing to say. If no
    /// tick source works, [`Timer::tick_failure`] says why from then on.
    fn start_tick(platform: &Platform) -> Vec<String>;

    /// Why no tick will come, if [`Timer::start_tick`] found nothing to
    /// drive it (the `timer-tick` self-test reports it).
    fn tick_failure() -> Option<&'static str>;

    /// Raise the tick's interrupt once, `counter_ticks` counter ticks from
    /// now (at least one), replacing any earlier arming.
    fn arm_tick(counter_ticks: u64);
}
