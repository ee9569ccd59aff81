//! AArch64 generic timer: the EL1 virtual timer and the virtual counter, the
//! contract's `Timer` for this architecture.
//!
//! The virtual counter equals the physical one here (boot code sets
//! CNTVOFF_EL2 = 0 when it enters at EL2), and the virtual timer is the one a
//! kernel may use without EL2 configuring access for it. Its interrupt is a PPI
//! whose INTID the device tree gives (`timer_irq` of the platform), enabled at
//! the GIC (which remembers it as the tick's) when the tick starts.

use crate::{board::Platform, drivers::gicv2};
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTVCT_EL0, CNTV_CTL_EL0, CNTV_TVAL_EL0};
use alloc::{string::String, vec::Vec};
use tock_registers::interfaces::{Readable, Writeable};

/// Counter ticks per second, as firmware/QEMU programmed CNTFRQ_EL0 (62.5 MHz on
/// QEMU's Cortex-A72, 54 MHz on a Pi 4, 1 GHz on `-cpu max`): never assumed.
pub fn frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// The current counter value.
pub fn counter() -> u64 {
    CNTVCT_EL0.get()
}

/// Let the tick's PPI through to this core, a secondary one (PPI enables and
/// priorities are banked per core: the boot core's `start_tick` enabled only
/// its own).
pub fn start_tick_on_this_core() {
    gicv2::enable_tick_on_this_core();
}

/// The counter and the tick, as the contract's `Timer` describes them.
impl crate::arch::Timer for super::Machine {
    const COUNTER_NAME: &'static str = "CNTVCT";

    fn counter() -> u64 {
        counter()
    }

    fn counter_frequency() -> u64 {
        frequency()
    }

    fn start_tick(platform: &Platform) -> Vec<String> {
        // The GIC driver remembers the tick's INTID, so that the interrupt
        // decoding (`exception.rs`) can tell the tick from the rest.
        gicv2::enable_tick(platform.timer_irq);
        Vec::new()
    }

    fn tick_failure() -> Option<&'static str> {
        None
    }

    /// CNTV_TVAL_EL0 counts down from `counter_ticks` and the timer fires
    /// when it passes zero (Arm ARM, CNTV_TVAL_EL0: TimerValue, bits \[31:0\],
    /// signed); a period of at most a second (`crate::time`) fits those bits
    /// at any CNTFRQ_EL0 up to 2 GHz.
    fn arm_tick(counter_ticks: u64) {
        CNTV_TVAL_EL0.set(counter_ticks);
        CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    }
}
