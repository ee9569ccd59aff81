//! Time: the periodic tick and the counter.
//!
//! The tick drives preemption and proves that interrupts work: the machine's
//! tick timer (`Timer`: the generic timer's PPI through the GIC on aarch64,
//! the local APIC timer on x86_64) interrupts, this module counts the tick and
//! re-arms the timer one shot at a time, so that a sleeping thread's wake-up
//! can shorten a period. The counter (`clock`, run times, sleeps) is the
//! machine's too. The interrupt dispatcher (`exception.rs`) then tells the
//! scheduler; this module calls nothing above it.

use crate::{
    arch::{Machine, Timer},
    board::Platform,
    println,
};
use core::sync::atomic::{AtomicU64, Ordering};

/// Tick period in milliseconds.
pub const TICK_MS: u64 = 10;
/// The longest period `tick-us=` may ask for: one second (which also keeps a
/// period inside a 32-bit timer count at counters up to 2 GHz).
const MAX_PERIOD_US: u64 = 1_000_000;

static TICKS: AtomicU64 = AtomicU64::new(0);
/// The tick period actually in use, in microseconds (`tick-us=` changes it).
static TICK_US: AtomicU64 = AtomicU64::new(TICK_MS * 1000);

/// Counter frequency in Hz.
pub fn frequency() -> u64 {
    Machine::counter_frequency()
}

/// The raw counter (CNTVCT, the TSC: [`Timer::COUNTER_NAME`]).
pub fn counter() -> u64 {
    Machine::counter()
}

/// Tick every `microseconds` from the next tick on (tests force very short
/// ticks so that interrupts land inside probe steps); at most a second.
pub fn set_tick_period_us(microseconds: u64) {
    TICK_US.store(microseconds.clamp(1, MAX_PERIOD_US), Ordering::Relaxed);
}

/// Counter ticks per timer tick (at least one).
fn tick_interval() -> u64 {
    (frequency() * TICK_US.load(Ordering::Relaxed) / 1_000_000).max(1)
}

/// Start the tick (interrupts are off): the machine routes its interrupt and
/// chooses what drives it, saying what it found, then the first tick is
/// armed. If nothing can drive it, the `timer-tick` self-test says why.
pub fn init(platform: &Platform) {
    for line in Machine::start_tick(platform) {
        println!("timer:   {}", line);
    }
    Machine::arm_tick(tick_interval());
}

/// Start the tick on a core other than the boot core, once [`init`] has run
/// on the boot core (interrupts are off): the first tick is armed with the
/// period in use. What routes the interrupt to this core is the machine's
/// own per-core set-up, done before.
pub fn start_on_this_core() {
    Machine::arm_tick(tick_interval());
}

/// Why nothing ticks, if nothing does (the timer-tick self-test reports it).
pub fn tick_failure() -> Option<&'static str> {
    Machine::tick_failure()
}

/// Count a tick and schedule the next one.
pub fn on_tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    Machine::arm_tick(tick_interval());
}

/// Make the timer interrupt come by counter value `deadline` at the latest (a
/// sleeping thread's wake-up), if that is sooner than the next tick.
pub fn fire_no_later_than(deadline: u64) {
    let until_deadline = deadline.saturating_sub(counter()).max(1);
    if until_deadline < tick_interval() {
        Machine::arm_tick(until_deadline);
    }
}

/// Ticks since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}
