//! AArch64 generic timer (serves `crate::time`): the EL1 virtual timer.
//!
//! The virtual counter equals the physical one here (boot code sets
//! CNTVOFF_EL2 = 0 when it enters at EL2), and the virtual timer is the one a
//! kernel may use without EL2 configuring access for it.

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTVCT_EL0, CNTV_CTL_EL0, CNTV_TVAL_EL0};
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

/// Fire the timer interrupt `ticks` counter ticks from now.
pub fn arm(ticks: u64) {
    CNTV_TVAL_EL0.set(ticks);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
}

/// The counter and the tick, as the contract's `Timer` describes them.
impl crate::arch::Timer for super::Machine {}
