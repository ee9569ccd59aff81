//! Time: the periodic tick and the counter.
//!
//! The tick drives preemption and proves that interrupts work: the GIC
//! delivers the timer's PPI, the handler counts it and re-arms the timer. The
//! interrupt dispatcher (`exception.rs`) then tells the scheduler; this module
//! calls nothing above it.

use crate::{arch::timer, devicetree::Platform, drivers::gicv2};
use core::sync::atomic::{AtomicU64, Ordering};

/// Tick period in milliseconds.
pub const TICK_MS: u64 = 10;

static TICKS: AtomicU64 = AtomicU64::new(0);

/// Counter frequency in Hz.
pub fn frequency() -> u64 {
    timer::frequency()
}

/// The tick period actually in use, in microseconds (`tick-us=` changes it).
static TICK_US: AtomicU64 = AtomicU64::new(TICK_MS * 1000);

/// Tick every `microseconds` from the next tick on (tests force very short
/// ticks so that interrupts land inside probe steps).
pub fn set_tick_period_us(microseconds: u64) {
    TICK_US.store(microseconds.max(1), Ordering::Relaxed);
}

/// Counter ticks per timer tick (at least one).
fn tick_interval() -> u64 {
    (frequency() * TICK_US.load(Ordering::Relaxed) / 1_000_000).max(1)
}

pub fn init(platform: &Platform) {
    gicv2::enable_tick(platform.timer_irq);
    timer::arm(tick_interval());
}

/// Count a tick and schedule the next one.
pub fn on_tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    timer::arm(tick_interval());
}

/// Make the timer interrupt come by counter value `deadline` at the latest (a
/// sleeping thread's wake-up), if that is sooner than the next tick.
pub fn fire_no_later_than(deadline: u64) {
    let now = counter();
    let until_deadline = deadline.saturating_sub(now).max(1);
    if until_deadline < tick_interval() {
        timer::arm(until_deadline);
    }
}

/// Ticks since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// The raw counter (CNTVCT).
pub fn counter() -> u64 {
    timer::counter()
}
