//! The timers of a PC and which of them the kernel uses, the contract's
//! `Timer` for this architecture: the counter is the TSC, the tick the local
//! APIC timer on vector 0x30. This module finds where the TSC's frequency
//! comes from and what drives the tick, and keeps both.
//!
//! The TSC frequency, first source that works: CPUID leaf 0x15/0x16 (the
//! processor states it), the HPET (ACPI HPET table), the ACPI PM timer (FADT),
//! PIT channel 2. Each measured source is polled with a bounded number of
//! reads, and one that does not move is named in a note, then the next one is
//! tried.
//!
//! The tick is the local APIC timer of each core, one shot at a time so that a sleeping
//! thread's wake-up can shorten a period (as the aarch64 kernel re-arms its
//! generic timer): in TSC-deadline mode where CPUID offers it, else counting
//! down at the local APIC's clock, whose rate is measured against the TSC.
//! Either is checked to raise its interrupt before it is used. The 8259 PICs
//! are remapped and fully masked: nothing depends on the PIT or on the
//! firmware leaving the local APIC in virtual-wire mode.

use super::{
    exception::{LOCAL_APIC_SPURIOUS_VECTOR, LOCAL_APIC_TIMER_VECTOR, PIC_BASE},
    hpet::Hpet,
    lapic, pic, pit,
    pm_timer::PmTimer,
    tsc::{self, ReferenceClock},
};
use crate::board::Platform;
use alloc::{boxed::Box, format, string::String, vec::Vec};
use spin::Once;

/// How the TSC's frequency was found ([`calibrate`]).
static CALIBRATION: Once<TscCalibration> = Once::new();
/// What drives the tick, or why nothing does (after `start_tick`).
static TICK_SOURCE: Once<Result<TickSource, String>> = Once::new();

/// How the TSC frequency was found.
struct TscCalibration {
    hz: u64,
    /// `CPUID leaf 0x15: ...`, `the HPET at 0xfed00000`, ...
    source: String,
    /// One line for each source that was tried and did not work.
    notes: Vec<String>,
}

/// Find the TSC's frequency, once (before ExitBootServices: it reads the ACPI
/// tables, and only polls).
pub fn calibrate() {
    CALIBRATION.call_once(calibrate_tsc);
}

/// The TSC's frequency in Hz; 0 before [`calibrate`].
fn tsc_hz() -> u64 {
    CALIBRATION.get().map_or(0, |calibration| calibration.hz)
}

/// The banner's `timer:` lines (without the label): what will drive the tick,
/// every `tick_ms`, and where the TSC frequency came from, then one line per
/// clock that was tried and failed.
pub fn banner_lines(tick_ms: u64) -> Vec<String> {
    let tsc = format!(
        "TSC {} Hz (from {})",
        tsc_hz(),
        CALIBRATION.get().map_or("nothing: not calibrated", |c| c.source.as_str())
    );
    let mut lines = Vec::new();
    lines.push(match local_apic_address() {
        Some(address) => format!(
            "local APIC timer ({}) at {:#x}, tick every {} ms on vector {:#x}; {}",
            planned_mode(),
            address,
            tick_ms,
            LOCAL_APIC_TIMER_VECTOR,
            tsc
        ),
        None => format!("no local APIC (CPUID.01H:EDX[9] is clear), so no tick; {}", tsc),
    });
    lines.extend(CALIBRATION.get().into_iter().flat_map(|c| c.notes.iter().cloned()));
    lines
}

/// Busy-wait `ms` milliseconds on the TSC (interrupts may be off).
pub fn delay_ms(ms: u64) {
    let end = tsc::counter() + tsc_hz() * ms / 1000;
    while tsc::counter() < end {
        core::hint::spin_loop();
    }
}

fn calibrate_tsc() -> TscCalibration {
    if let Some((hz, source)) = tsc::frequency_from_cpuid() {
        return TscCalibration { hz, source, notes: Vec::new() };
    }
    let mut notes = Vec::new();
    let tables = crate::board::uefi_pc::acpi::tables();
    let hpet = match &tables {
        None => Err(String::from("no HPET: no ACPI tables")),
        Some(tables) => acpi::HpetInfo::new(tables)
            .map_err(|e| format!("no HPET: the ACPI HPET table is missing or unreadable ({:?})", e))
            .and_then(|info| Hpet::start(info.base_address as u64)),
    };
    let pm_timer = match &tables {
        None => Err(String::from("no ACPI PM timer: no ACPI tables")),
        Some(tables) => tables
            .find_table::<acpi::fadt::Fadt>()
            .map_err(|e| format!("no ACPI PM timer: the FADT is missing or unreadable ({:?})", e))
            .and_then(|fadt| PmTimer::from_fadt(&fadt)),
    };
    for clock in [hpet.map(into_box), pm_timer.map(into_box), Ok(into_box(pit::Channel2::start()))] {
        match clock.and_then(|clock| tsc::measure_against(clock.as_ref()).map(|hz| (hz, clock.name()))) {
            Ok((hz, name)) => return TscCalibration { hz, source: name, notes },
            Err(why) => notes.push(why),
        }
    }
    // Nothing counts: keep a frequency that no division trips over, and say so.
    notes.push(String::from("no clock to measure the TSC against: its frequency is a guess"));
    TscCalibration { hz: GUESSED_TSC_HZ, source: String::from("guessed: nothing to measure it against"), notes }
}

/// What a TSC frequency is taken to be when nothing can measure it (1 GHz).
const GUESSED_TSC_HZ: u64 = 1_000_000_000;

fn into_box(clock: impl ReferenceClock + 'static) -> Box<dyn ReferenceClock> {
    Box::new(clock)
}

/// What drives the tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TickSource {
    /// The local APIC timer firing at a TSC value.
    TscDeadline,
    /// The local APIC timer counting down at `apic_hz`.
    OneShot { apic_hz: u64 },
}

/// The mode the banner announces before ExitBootServices (the one-shot rate
/// is measured after it, the local APIC being the firmware's until then).
fn planned_mode() -> &'static str {
    if lapic::has_tsc_deadline() {
        "TSC-deadline"
    } else {
        "one-shot, its rate measured against the TSC"
    }
}

/// The xAPIC's address, for the banner; `None` without a local APIC (whose
/// IA32_APIC_BASE MSR would not exist either).
fn local_apic_address() -> Option<u64> {
    lapic::present().then(lapic::base_address)
}

/// How long the local APIC's counting rate is measured, in TSC time.
const APIC_MEASURE_MS: u64 = 10;
/// How many times the check before use polls for the armed timer's request
/// before it calls the mode dead. A bound on the processor's own work, not on
/// time: under an emulator on a loaded host the timer's interrupt can come
/// late in TSC time, while billions of polls take seconds on any core against
/// the 1 ms the timer is armed for.
const REQUEST_POLL_BUDGET: u64 = 1 << 31;
const REQUEST_ARMED_MS: u64 = 1;

/// Mask the 8259s, enable the local APIC and choose the tick: TSC-deadline
/// mode if CPUID offers it and it works, else one-shot mode if the counter
/// moves and works. Interrupts are off. `notes` receives one line for each
/// mode that was tried and failed.
fn choose_tick_source(tsc_hz: u64, notes: &mut Vec<String>) -> Result<TickSource, String> {
    pic::init_masked(PIC_BASE);
    lapic::init(LOCAL_APIC_SPURIOUS_VECTOR).map_err(String::from)?;
    if lapic::has_tsc_deadline() {
        lapic::start_tsc_deadline(LOCAL_APIC_TIMER_VECTOR);
        match requests_its_interrupt(TickSource::TscDeadline, tsc_hz) {
            Ok(()) => return Ok(TickSource::TscDeadline),
            Err(why) => notes.push(format!("local APIC timer (TSC-deadline): {}; trying one-shot mode", why)),
        }
        lapic::arm_deadline(0);
    }
    let apic_hz = measure_apic_timer(tsc_hz)?;
    lapic::start_one_shot(LOCAL_APIC_TIMER_VECTOR);
    let source = TickSource::OneShot { apic_hz };
    requests_its_interrupt(source, tsc_hz)
        .map_err(|why| format!("local APIC timer (one-shot at {} Hz): {}", apic_hz, why))?;
    Ok(source)
}

/// The local APIC timer's rate: its countdown over 10 ms of TSC time.
fn measure_apic_timer(tsc_hz: u64) -> Result<u64, String> {
    const START: u32 = u32::MAX;
    lapic::count_down_masked(START);
    let tsc_start = tsc::counter();
    let tsc_end = tsc_start + tsc_hz * APIC_MEASURE_MS / 1000;
    while tsc::counter() < tsc_end {
        core::hint::spin_loop();
    }
    let counted = u64::from(START - lapic::current_count());
    let tsc_elapsed = tsc::counter() - tsc_start;
    lapic::count_down_masked(0);
    if counted == 0 {
        return Err(format!("local APIC timer: its count never moved in {} ms of TSC time", APIC_MEASURE_MS));
    }
    Ok((u128::from(counted) * u128::from(tsc_hz) / u128::from(tsc_elapsed)) as u64)
}

/// Arm the timer 1 ms ahead and wait, interrupts off, for the local APIC to
/// request the tick's vector (IRR). The request stays pending and is taken,
/// as a first tick, once interrupts are on.
fn requests_its_interrupt(source: TickSource, tsc_hz: u64) -> Result<(), String> {
    arm(source, tsc_hz * REQUEST_ARMED_MS / 1000, tsc_hz);
    let requested = (0..REQUEST_POLL_BUDGET).any(|_| {
        core::hint::spin_loop();
        lapic::requested(LOCAL_APIC_TIMER_VECTOR)
    });
    if !requested {
        return Err(format!(
            "armed for {} ms, no interrupt requested after {} polls",
            REQUEST_ARMED_MS, REQUEST_POLL_BUDGET
        ));
    }
    Ok(())
}

/// Interrupt after `ticks` TSC ticks (at least 1 local APIC clock later).
fn arm(source: TickSource, ticks: u64, tsc_hz: u64) {
    match source {
        TickSource::TscDeadline => lapic::arm_deadline(tsc::counter().saturating_add(ticks.max(1))),
        TickSource::OneShot { apic_hz } => {
            let count = u128::from(ticks) * u128::from(apic_hz) / u128::from(tsc_hz.max(1));
            lapic::arm_one_shot(count.clamp(1, u128::from(u32::MAX)) as u32);
        }
    }
}

/// Put this core's local APIC timer (its local APIC enabled) into the mode
/// the boot core chose, on the tick's vector, with the rate the boot core
/// measured: the local APICs of a PC count at one bus clock, and its
/// processors' TSCs at one rate (true of every multi-core PC the kernel
/// supports and of QEMU; a machine where they differ would tick at another
/// period on the other cores). Then
/// `time::start_on_this_core` arms the first tick. Nothing happens if the
/// boot core found no tick source.
pub fn start_tick_on_this_core() {
    match TICK_SOURCE.get() {
        Some(Ok(TickSource::TscDeadline)) => lapic::start_tsc_deadline(LOCAL_APIC_TIMER_VECTOR),
        Some(Ok(TickSource::OneShot { .. })) => lapic::start_one_shot(LOCAL_APIC_TIMER_VECTOR),
        _ => {}
    }
}

/// Whether this core's first tick, armed by `time::start_on_this_core`, has
/// made its local APIC request the tick's vector (interrupts are off, so the
/// request stays pending and becomes the core's first tick once they are
/// on), within the polls the boot core's check allows. `Ok` if no tick
/// source works anywhere: the boot core's self-test reports that.
pub fn first_tick_requested_on_this_core() -> Result<(), String> {
    if !matches!(TICK_SOURCE.get(), Some(Ok(_))) {
        return Ok(());
    }
    if (0..REQUEST_POLL_BUDGET).any(|_| {
        core::hint::spin_loop();
        lapic::requested(LOCAL_APIC_TIMER_VECTOR)
    }) {
        Ok(())
    } else {
        Err(format!("its local APIC timer requested no interrupt after {} polls", REQUEST_POLL_BUDGET))
    }
}

/// The counter and the tick, as the contract's `Timer` describes them.
impl crate::arch::Timer for super::Machine {
    const COUNTER_NAME: &'static str = "TSC";

    fn counter() -> u64 {
        tsc::counter()
    }

    fn counter_frequency() -> u64 {
        tsc_hz()
    }

    /// Mask the 8259s, start the local APIC and choose its timer mode; says
    /// what was found on the way, and, if no tick source works, why.
    fn start_tick(_: &Platform) -> Vec<String> {
        let mut lines = Vec::new();
        let source = TICK_SOURCE.call_once(|| choose_tick_source(tsc_hz(), &mut lines));
        match source {
            Ok(TickSource::OneShot { apic_hz }) => lines.push(format!(
                "local APIC timer counts at {} Hz (measured against the TSC), one shot per tick",
                apic_hz
            )),
            Ok(TickSource::TscDeadline) => {}
            Err(why) => lines.push(format!("no tick source: {}", why)),
        }
        lines
    }

    fn tick_failure() -> Option<&'static str> {
        TICK_SOURCE.get().and_then(|source| source.as_ref().err()).map(String::as_str)
    }

    fn arm_tick(counter_ticks: u64) {
        if let Some(Ok(source)) = TICK_SOURCE.get() {
            arm(*source, counter_ticks, tsc_hz());
        }
    }
}
