//! Time: the periodic tick and the counter.
//!
//! The tick is the 8254 PIT's channel 0 on IRQ 0, delivered by the 8259 PIC
//! (remapped to vector 0x20), every 10 ms; it drives preemption. The counter
//! (`clock`, run times, sleeps) is the TSC, whose frequency is measured
//! against the PIT at boot. (Under OVMF the legacy PIC path works after
//! ExitBootServices because the firmware leaves the local APIC in virtual-wire
//! mode, so no local APIC timer is needed.)

use crate::arch::{
    exception::IRQ_BASE,
    pic,
    timer::{self, MAX_PERIOD_US},
};
use core::sync::atomic::{AtomicU64, Ordering};

/// Tick period in milliseconds.
pub const TICK_MS: u64 = 10;
/// The PIT's line on the PIC.
pub const TIMER_IRQ: u8 = 0;

static TICKS: AtomicU64 = AtomicU64::new(0);
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// The tick period actually in use, in microseconds (`tick-us=` changes it).
static TICK_US: AtomicU64 = AtomicU64::new(TICK_MS * 1000);

/// Measure the TSC against the PIT (before ExitBootServices is fine: it polls).
pub fn calibrate() {
    TSC_HZ.store(timer::calibrate_tsc(), Ordering::Relaxed);
}

/// Counter frequency in Hz.
pub fn frequency() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Tick every `microseconds` from the next tick on (at most what the PIT's 16
/// bits allow, about 54 ms).
pub fn set_tick_period_us(microseconds: u64) {
    TICK_US.store(microseconds.clamp(1, MAX_PERIOD_US), Ordering::Relaxed);
}

/// Counter ticks per timer tick (at least one).
fn tick_interval() -> u64 {
    (frequency() * TICK_US.load(Ordering::Relaxed) / 1_000_000).max(1)
}

/// Remap the PIC, unmask the PIT's line and start the first period.
pub fn init() {
    pic::init(IRQ_BASE);
    pic::unmask(TIMER_IRQ);
    timer::arm(tick_interval(), frequency());
}

/// Is PIC line `line` the tick? Called by the interrupt dispatcher.
pub fn is_tick(line: u8) -> bool {
    line == TIMER_IRQ
}

/// Count a tick and schedule the next one.
pub fn on_tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    timer::arm(tick_interval(), frequency());
    crate::task::scheduler::on_tick();
}

/// Make the timer interrupt come by counter value `deadline` at the latest (a
/// sleeping thread's wake-up), if that is sooner than the next tick.
pub fn fire_no_later_than(deadline: u64) {
    let until_deadline = deadline.saturating_sub(counter()).max(1);
    if until_deadline < tick_interval() {
        timer::arm(until_deadline, frequency());
    }
}

/// Ticks since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// The raw counter (TSC).
pub fn counter() -> u64 {
    timer::counter()
}

/// Busy-wait `ms` milliseconds on the TSC (interrupts may be off).
pub fn delay_ms(ms: u64) {
    let end = counter() + frequency() * ms / 1000;
    while counter() < end {
        core::hint::spin_loop();
    }
}
