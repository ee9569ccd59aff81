//! The HPET's main counter (serves `timer`, which measures the TSC against
//! it). IA-PC HPET (High Precision Event Timers) Specification 1.0a,
//! section 2.3 "Register Definitions"; where it is comes from the ACPI HPET
//! table (same specification, 3.2.4).
//!
//! Only the main counter is used: no comparator, no interrupt.

use super::tsc::ReferenceClock;
use alloc::{format, string::String};
use core::ptr;

/// Register offsets (2.3.1, table 3 "Memory-Mapped Register Space").
const GENERAL_CAPABILITIES_AND_ID: u64 = 0x000;
const GENERAL_CONFIGURATION: u64 = 0x010;
const MAIN_COUNTER_VALUE: u64 = 0x0f0;
/// General capabilities (2.3.4): COUNTER_CLK_PERIOD in bits \[63:32\], the
/// main counter's period in femtoseconds; COUNT_SIZE_CAP in bit 13, set when
/// the main counter has 64 bits.
const COUNTER_CLK_PERIOD_SHIFT: u32 = 32;
const COUNT_SIZE_CAP_64_BITS: u64 = 1 << 13;
/// The period may not exceed 100 ns (0x05F5E100 fs), nor be 0 (2.3.4).
const MAX_PERIOD_FS: u64 = 0x05f5_e100;
/// General configuration (2.3.5): ENABLE_CNF in bit 0 lets the main counter
/// run.
const ENABLE_CNF: u64 = 1 << 0;
const FEMTOSECONDS_PER_SECOND: u64 = 1_000_000_000_000_000;

/// An HPET block's main counter, running.
pub struct Hpet {
    base: u64,
    period_fs: u64,
    counter_mask: u64,
}

fn read(base: u64, offset: u64) -> u64 {
    // SAFETY: `base` is the HPET block the ACPI table names, in the identity
    // map; the offsets are 64-bit registers of 2.3.1, which allows 64-bit
    // reads.
    unsafe { ptr::read_volatile((base + offset) as *const u64) }
}

impl Hpet {
    /// The HPET at `base`, its main counter started if the firmware left it
    /// halted (it stays running: nothing else uses the HPET).
    pub fn start(base: u64) -> Result<Self, String> {
        let capabilities = read(base, GENERAL_CAPABILITIES_AND_ID);
        let period_fs = capabilities >> COUNTER_CLK_PERIOD_SHIFT;
        if period_fs == 0 || period_fs > MAX_PERIOD_FS {
            return Err(format!(
                "the HPET at {:#x} reports a counter period of {} fs, outside 1..=100 ns",
                base, period_fs
            ));
        }
        let configuration = read(base, GENERAL_CONFIGURATION);
        if configuration & ENABLE_CNF == 0 {
            // SAFETY: as in `read`; setting ENABLE_CNF only starts the main
            // counter (no comparator is armed by this kernel).
            unsafe { ptr::write_volatile((base + GENERAL_CONFIGURATION) as *mut u64, configuration | ENABLE_CNF) };
        }
        let counter_mask = if capabilities & COUNT_SIZE_CAP_64_BITS != 0 { u64::MAX } else { u64::from(u32::MAX) };
        Ok(Self { base, period_fs, counter_mask })
    }
}

impl ReferenceClock for Hpet {
    fn name(&self) -> String {
        format!("the HPET at {:#x}", self.base)
    }
    fn hz(&self) -> u64 {
        FEMTOSECONDS_PER_SECOND / self.period_fs
    }
    fn mask(&self) -> u64 {
        self.counter_mask
    }
    fn read(&self) -> u64 {
        read(self.base, MAIN_COUNTER_VALUE) & self.counter_mask
    }
}
