//! The contract's `Cores` trait: more than one core. Which core is this one,
//! and how to interrupt another.
//!
//! Bringing the other cores up is each architecture's boot order
//! (`start/<arch>.rs`: PSCI `CPU_ON` or the spin table on aarch64,
//! INIT-SIPI-SIPI on x86_64); each core, once its own exception entry,
//! interrupt controller and tick are set up, reports to the generic
//! [`crate::cores`] module and joins the scheduler. What generic code needs
//! from the machine after that is this trait.

/// The most cores the kernel runs on: core indices are `0..MAX_CORES`
/// ([`crate::cores`] and each architecture's per-core tables are this long).
pub const MAX_CORES: usize = 8;

/// Which core is running, and how to interrupt another one.
pub trait Cores {
    /// This core's index among the cores the kernel runs on: 0 for the boot
    /// core, then 1, 2, ... in the order the boot order started them (not the
    /// hardware's MPIDR or APIC id, which [`crate::cores`] keeps for
    /// reports). Read from a register only the kernel can write (aarch64
    /// `TPIDR_EL1`; x86_64 the kernel's GS base, swapped in on every entry
    /// from user mode), in a few instructions: the probe hit path reads it.
    fn core_index() -> usize;
    /// Raise the cross-core interrupt on core `index` (aarch64: a GIC
    /// software-generated interrupt; x86_64: a fixed local APIC IPI). It
    /// arrives there as [`crate::arch::Interrupt::CrossCore`], once per
    /// call at least (several calls may merge into one arrival); what it asks
    /// is in memory the generic code shares ([`crate::cores`]). Ordering: the
    /// caller's earlier stores are visible to the target before it takes the
    /// interrupt (the architecture puts the barrier its manual asks for
    /// between them: `DSB ISHST` before the SGI's write, the `x2APIC`/xAPIC
    /// ICR write is serialising or preceded by `MFENCE`).
    fn interrupt_core(index: usize);
    /// Invalidate every user (non-global) translation this core may have
    /// cached, for any address space: the receiving end of a TLB shootdown
    /// on an architecture whose TLB invalidation is local (x86_64); on
    /// aarch64, where the kernel's `TLBI ...IS` is broadcast to the
    /// inner-shareable domain by the hardware itself, a local `TLBI VMALLE1`.
    fn flush_local_user_translations();
    /// Whether invalidating a translation on one core (the `Paging`
    /// contract's own invalidations) reaches every core by itself (aarch64's
    /// inner-shareable `TLBI`), so no shootdown interrupt is needed.
    const TLB_INVALIDATION_IS_BROADCAST: bool;
}
