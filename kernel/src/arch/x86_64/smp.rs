//! More than one core on x86_64: the core index behind the GS base, and the
//! cross-core interrupt (the contract's `Cores`).

impl crate::arch::Cores for super::Machine {
    #[inline(always)]
    fn core_index() -> usize {
        0
    }

    fn interrupt_core(_index: usize) {
        // Only the boot core runs so far: nothing to interrupt.
    }

    fn flush_local_user_translations() {}

    const TLB_INVALIDATION_IS_BROADCAST: bool = false;
}
