//! More than one core on aarch64: the core index in `TPIDR_EL1`, and the
//! cross-core interrupt (the contract's `Cores`).

use aarch64_cpu::registers::{Readable, Writeable, TPIDR_EL1};

/// Record this core's index in `TPIDR_EL1` (EL0 cannot read or write it).
pub fn set_core_index(index: usize) {
    TPIDR_EL1.set(index as u64);
}

impl crate::arch::Cores for super::Machine {
    #[inline(always)]
    fn core_index() -> usize {
        TPIDR_EL1.get() as usize
    }

    fn interrupt_core(_index: usize) {
        // Only the boot core runs so far: nothing to interrupt.
    }

    fn flush_local_user_translations() {}

    const TLB_INVALIDATION_IS_BROADCAST: bool = true;
}
