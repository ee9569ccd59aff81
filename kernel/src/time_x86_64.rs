//! Time: the periodic tick and the counter.
//!
//! The tick is the local APIC timer on vector 0x30, every 10 ms, re-armed one
//! shot at a time; it drives preemption. The counter (`clock`, run times,
//! sleeps) is the TSC. Which timers do the work on this PC, and where the
//! TSC's frequency came from, is `arch::timer`'s choice; this module keeps
//! the result and the tick's arithmetic. The trap dispatcher (`exception.rs`)
//! tells the scheduler about a tick; this module calls nothing above it.

use crate::{
    arch::{
        exception::LOCAL_APIC_TIMER_VECTOR,
        timer::{self, TickSource, TscCalibration},
    },
    println,
};
use alloc::{string::String, vec::Vec};
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;

/// Tick period in milliseconds.
pub const TICK_MS: u64 = 10;
/// The longest period `tick-us=` may ask for: one second.
const MAX_PERIOD_US: u64 = 1_000_000;

static TICKS: AtomicU64 = AtomicU64::new(0);
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// The tick period actually in use, in microseconds (`tick-us=` changes it).
static TICK_US: AtomicU64 = AtomicU64::new(TICK_MS * 1000);
static CALIBRATION: Once<TscCalibration> = Once::new();
/// What drives the tick, or why nothing does (after [`init`]).
static TICK_SOURCE: Once<Result<TickSource, String>> = Once::new();

/// Find the TSC's frequency (before ExitBootServices: it reads the ACPI
/// tables, and only polls).
pub fn calibrate() {
    let calibration = CALIBRATION.call_once(timer::calibrate_tsc);
    TSC_HZ.store(calibration.hz, Ordering::Relaxed);
}

/// The banner's `timer:` lines: what will drive the tick and where the TSC
/// frequency came from, then one line per clock that was tried and failed.
pub fn banner_lines() -> Vec<String> {
    let tsc = alloc::format!(
        "TSC {} Hz (from {})",
        frequency(),
        CALIBRATION.get().map_or("nothing: not calibrated", |c| c.source.as_str())
    );
    let mut lines = Vec::new();
    lines.push(match timer::local_apic_address() {
        Some(address) => alloc::format!(
            "local APIC timer ({}) at {:#x}, tick every {} ms on vector {:#x}; {}",
            timer::planned_mode(),
            address,
            TICK_MS,
            LOCAL_APIC_TIMER_VECTOR,
            tsc
        ),
        None => alloc::format!("no local APIC (CPUID.01H:EDX[9] is clear), so no tick; {}", tsc),
    });
    lines.extend(CALIBRATION.get().into_iter().flat_map(|c| c.notes.iter().cloned()));
    lines
}

/// Counter frequency in Hz.
pub fn frequency() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Tick every `microseconds` from the next tick on (at most a second).
pub fn set_tick_period_us(microseconds: u64) {
    TICK_US.store(microseconds.clamp(1, MAX_PERIOD_US), Ordering::Relaxed);
}

/// Counter ticks per timer tick (at least one).
fn tick_interval() -> u64 {
    (frequency() * TICK_US.load(Ordering::Relaxed) / 1_000_000).max(1)
}

/// Mask the 8259s, start the local APIC and its timer, and arm the first
/// tick (interrupts are off). Prints what was found on the way; if no tick
/// source works, says so and leaves the timer-tick self-test to fail.
pub fn init() {
    let mut notes = Vec::new();
    let source = TICK_SOURCE.call_once(|| timer::init(frequency(), &mut notes));
    for note in notes {
        println!("timer:   {}", note);
    }
    match source {
        Ok(TickSource::OneShot { apic_hz }) => {
            println!("timer:   local APIC timer counts at {} Hz (measured against the TSC), one shot per tick", apic_hz)
        }
        Ok(TickSource::TscDeadline) => {}
        Err(why) => println!("timer:   no tick source: {}", why),
    }
    arm(tick_interval());
}

/// Why nothing ticks, if nothing does (the timer-tick self-test reports it).
pub fn tick_failure() -> Option<&'static str> {
    TICK_SOURCE.get().and_then(|source| source.as_ref().err()).map(String::as_str)
}

fn arm(ticks: u64) {
    if let Some(Ok(source)) = TICK_SOURCE.get() {
        timer::arm(*source, ticks, frequency());
    }
}

/// Count a tick and schedule the next one.
pub fn on_tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    arm(tick_interval());
}

/// Make the timer interrupt come by counter value `deadline` at the latest (a
/// sleeping thread's wake-up), if that is sooner than the next tick.
pub fn fire_no_later_than(deadline: u64) {
    let until_deadline = deadline.saturating_sub(counter()).max(1);
    if until_deadline < tick_interval() {
        arm(until_deadline);
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
