//! The time stamp counter (serves `crate::time` through `timer`): reading it,
//! its frequency from CPUID where the processor states it, and its frequency
//! measured against another clock where it does not.
//!
//! The TSC counts at a fixed rate on every processor the kernel cares about
//! (and under QEMU) and reads in one instruction, so it is the kernel's clock.

use alloc::{format, string::String};
use core::arch::x86_64::{__cpuid, _rdtsc};

/// CPUID leaf 0: the highest basic leaf in EAX.
const LEAF_MAX_BASIC: u32 = 0;
/// CPUID leaf 0x15 "Time Stamp Counter and Nominal Core Crystal Clock": TSC =
/// crystal Hz (ECX) x EBX / EAX; EBX = 0 means the ratio is not enumerated,
/// ECX = 0 that the crystal frequency is not (SDM vol. 2A, CPUID, leaf 15H).
const LEAF_TSC_CRYSTAL: u32 = 0x15;
/// CPUID leaf 0x16 "Processor Frequency Information": base frequency in MHz
/// in EAX\[15:0\]. When leaf 0x15 has a ratio but no crystal, the TSC runs at
/// this base frequency (SDM vol. 2A, CPUID, leaf 15H note 2).
const LEAF_FREQUENCY: u32 = 0x16;
const LEAF_16_EAX_BASE_MHZ_MASK: u32 = 0xffff;
const HZ_PER_MHZ: u64 = 1_000_000;

/// How often a clock that ought to run is read before it is declared
/// stopped: at the slowest rate here (the PIT's 1.19 MHz) and the fastest
/// port read (about 1 us on a PC, less under an emulator), a running clock
/// changes many times within that many reads.
const READS_TO_SEE_A_CLOCK_MOVE: u32 = 1_000_000;
/// The measurement window: 1/20 s of the reference clock.
const WINDOWS_PER_SECOND: u64 = 20;
/// Reads allowed for the window: 50 ms at 1 ns a read, far more than any
/// clock needs, so a clock that stops mid-window still ends the wait.
const READS_IN_A_WINDOW: u64 = 50_000_000;

/// The counter.
pub fn counter() -> u64 {
    // SAFETY: RDTSC has no side effects (CR4.TSD is clear, and we are ring 0).
    unsafe { _rdtsc() }
}

/// A clock of known rate the TSC can be measured against.
pub trait ReferenceClock {
    /// What the banner calls it (`the HPET at 0xfed00000`).
    fn name(&self) -> String;
    fn hz(&self) -> u64;
    /// Its width: the bits [`ReferenceClock::read`] returns.
    fn mask(&self) -> u64;
    /// Its value, counting up and wrapping at `mask`.
    fn read(&self) -> u64;
}

/// The TSC frequency CPUID states (leaf 0x15, or 0x16 where 0x15 has no
/// crystal frequency), and how it was found; `None` if it states none.
pub fn frequency_from_cpuid() -> Option<(u64, String)> {
    let max_leaf = __cpuid(LEAF_MAX_BASIC).eax;
    if max_leaf < LEAF_TSC_CRYSTAL {
        return None;
    }
    let leaf = __cpuid(LEAF_TSC_CRYSTAL);
    let (denominator, numerator, crystal_hz) = (u64::from(leaf.eax), u64::from(leaf.ebx), u64::from(leaf.ecx));
    if denominator == 0 || numerator == 0 {
        return None;
    }
    if crystal_hz != 0 {
        let hz = crystal_hz * numerator / denominator;
        return Some((hz, format!("CPUID leaf 0x15: crystal {} Hz x {}/{}", crystal_hz, numerator, denominator)));
    }
    if max_leaf < LEAF_FREQUENCY {
        return None;
    }
    let base_mhz = u64::from(__cpuid(LEAF_FREQUENCY).eax & LEAF_16_EAX_BASE_MHZ_MASK);
    (base_mhz != 0).then(|| (base_mhz * HZ_PER_MHZ, format!("CPUID leaf 0x16: base frequency {} MHz", base_mhz)))
}

/// Measure the TSC's frequency over 50 ms of `clock`, with every wait
/// bounded: a clock that never moves, or stops, is an error naming it.
pub fn measure_against(clock: &dyn ReferenceClock) -> Result<u64, String> {
    let first = clock.read();
    if !(0..READS_TO_SEE_A_CLOCK_MOVE).any(|_| clock.read() != first) {
        return Err(format!("{} never moved ({} reads gave {:#x})", clock.name(), READS_TO_SEE_A_CLOCK_MOVE, first));
    }
    let window = clock.hz() / WINDOWS_PER_SECOND;
    let (clock_start, tsc_start) = (clock.read(), counter());
    let mut reads = 0;
    let (clock_elapsed, tsc_end) = loop {
        let (now, tsc) = (clock.read(), counter());
        let elapsed = now.wrapping_sub(clock_start) & clock.mask();
        if elapsed >= window {
            break (elapsed, tsc);
        }
        reads += 1;
        if reads == READS_IN_A_WINDOW {
            return Err(format!("{} stopped after {} of its {} counts", clock.name(), elapsed, window));
        }
    };
    let tsc_elapsed = tsc_end.wrapping_sub(tsc_start);
    if tsc_elapsed == 0 {
        return Err(format!("the TSC did not move while {} counted {}", clock.name(), clock_elapsed));
    }
    Ok((u128::from(tsc_elapsed) * u128::from(clock.hz()) / u128::from(clock_elapsed)) as u64)
}
