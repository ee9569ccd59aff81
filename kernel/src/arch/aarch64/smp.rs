//! More than one core on aarch64 (the contract's `Cores`): the core index in
//! `TPIDR_EL1`, the hand-over a secondary core reads in `boot.s` before its
//! MMU is on ([`SecondaryBoot`]), the two ways of starting a core (PSCI
//! `CPU_ON` is `psci.rs`'s; the spin table is [`release_from_spin_table`]), and
//! the cross-core interrupt: GIC software-generated interrupt
//! [`CROSS_CORE_SGI`].

use super::{cache, mmu};
use crate::{
    arch::{PageLeaf, MAX_CORES},
    drivers::gicv2,
};
use aarch64_cpu::{
    asm::barrier,
    registers::{Readable, Writeable, MPIDR_EL1, TPIDR_EL1},
};
use alloc::{format, string::String};
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// The SGI one core raises on another (Linux uses 0-7 for its IPIs; any of
/// 0-15 will do: they are the kernel's own).
pub const CROSS_CORE_SGI: u32 = 1;

/// The affinity fields of MPIDR_EL1 (Aff3, Aff2, Aff1, Aff0), which name a
/// core the way the device tree's `/cpus/cpu@N` `reg` and PSCI `CPU_ON` do;
/// the other bits (U, MT, RES1) say nothing about which core it is.
pub const MPIDR_AFFINITY: u64 = (MPIDR_EL1::Aff3.mask << MPIDR_EL1::Aff3.shift)
    | (MPIDR_EL1::Aff2.mask << MPIDR_EL1::Aff2.shift)
    | (MPIDR_EL1::Aff1.mask << MPIDR_EL1::Aff1.shift)
    | (MPIDR_EL1::Aff0.mask << MPIDR_EL1::Aff0.shift);

/// This core's MPIDR_EL1 affinity.
pub fn this_core_affinity() -> u64 {
    MPIDR_EL1.get() & MPIDR_AFFINITY
}

/// Record this core's index in `TPIDR_EL1` (EL0 cannot read or write it).
pub fn set_core_index(index: usize) {
    TPIDR_EL1.set(index as u64);
}

/// What a starting core reads in `boot.s` (`secondary_entry`), with its MMU
/// and caches off: the translation registers to turn its MMU on with, and,
/// per core index, the MPIDR affinity of the core that is to have that index
/// and the top of its stack. The spin table passes a core nothing, so every
/// core, however started, finds its slot by its own MPIDR.
#[repr(C)]
pub struct SecondaryBoot {
    /// MAIR_EL1, TCR_EL1, TTBR0_EL1 and SCTLR_EL1 as the boot core runs with
    /// them (`mmu::translation_for_other_cores`).
    pub mair: u64,
    pub tcr: u64,
    pub ttbr0: u64,
    pub sctlr: u64,
    /// `[MPIDR affinity, stack top]` per core index; a stack top of 0 is a slot
    /// no core may take.
    pub slots: [[u64; 2]; MAX_CORES],
}

/// The hand-over, written only by the boot core in [`prepare_to_start`] and
/// read by `boot.s` (by this symbol name).
#[no_mangle]
static mut SECONDARY_BOOT: SecondaryBoot =
    SecondaryBoot { mair: 0, tcr: 0, ttbr0: 0, sctlr: 0, slots: [[0; 2]; MAX_CORES] };

/// The entry point of a starting core in `boot.s`: its physical address, which
/// is its link address (the kernel is identity mapped, VA = PA).
pub fn secondary_entry_address() -> usize {
    extern "C" {
        fn secondary_entry();
    }
    secondary_entry as *const () as usize
}

/// Make the hand-over ready for the core with MPIDR affinity `mpidr` to start
/// as core `index` on the stack ending at `stack_top`, and clean it to the
/// point of coherency: that core reads it with its caches off, straight from
/// memory, where a line still dirty in the boot core's cache would not be.
pub fn prepare_to_start(index: usize, mpidr: u64, stack_top: usize) {
    let [mair, tcr, ttbr0, sctlr] = mmu::translation_for_other_cores();
    let boot = &raw mut SECONDARY_BOOT;
    // SAFETY: only the boot core writes the hand-over, from the bring-up loop,
    // one core at a time; the core that reads this slot is not started yet, and
    // a core that was started earlier has read its own slot (it arrived) or was
    // given up on, and finds no slot with its MPIDR unless it is this one.
    unsafe {
        (*boot).mair = mair;
        (*boot).tcr = tcr;
        (*boot).ttbr0 = ttbr0;
        (*boot).sctlr = sctlr;
        (*boot).slots[index] = [mpidr, stack_top as u64];
    }
    let start = boot as usize;
    cache::clean_and_invalidate_dcache_to_poc(start, start + core::mem::size_of::<SecondaryBoot>());
}

/// Where `boot.s` finds the slots in [`SecondaryBoot`], and its other fields.
pub const SECONDARY_BOOT_MAIR: usize = core::mem::offset_of!(SecondaryBoot, mair);
pub const SECONDARY_BOOT_TCR: usize = core::mem::offset_of!(SecondaryBoot, tcr);
pub const SECONDARY_BOOT_TTBR0: usize = core::mem::offset_of!(SecondaryBoot, ttbr0);
pub const SECONDARY_BOOT_SCTLR: usize = core::mem::offset_of!(SecondaryBoot, sctlr);
pub const SECONDARY_BOOT_SLOTS: usize = core::mem::offset_of!(SecondaryBoot, slots);
/// Bytes per slot (`boot.s` walks them with a post-indexed `ldp`).
pub const SECONDARY_BOOT_SLOT_SIZE: usize = core::mem::size_of::<[u64; 2]>();
const _: () = assert!(SECONDARY_BOOT_SLOT_SIZE == 16);

/// Release a core waiting on a spin table: write `entry` (a physical address)
/// to its 64-bit `release_address`, clean that line to the point of coherency
/// (the core polls with its caches off), then `SEV` to end its `WFE`. The
/// protocol is Linux's Documentation/arch/arm64/booting.rst ("spin-table":
/// the core polls `cpu-release-addr` in a `wfe` loop and jumps to the single
/// 64-bit little-endian value that appears there), and this is its
/// `smp_spin_table_cpu_prepare` (arch/arm64/kernel/smp_spin_table.c):
/// `writeq_relaxed`, `dcache_clean_inval_poc`, `sev`.
pub fn release_from_spin_table(release_address: usize, entry: usize) -> Result<(), String> {
    if !release_address.is_multiple_of(8) {
        return Err(format!("its cpu-release-addr {:#x} is not 8-byte aligned", release_address));
    }
    let writable = mmu::kernel_table_leaf(release_address).is_some_and(|leaf| leaf.writable());
    if !writable {
        return Err(format!("its cpu-release-addr {:#x} is not RAM the kernel maps", release_address));
    }
    // SAFETY: the address is 8-byte aligned and mapped writable in the kernel's
    // map; the device tree (or the board table) names it as this core's release
    // word, which the firmware keeps out of the allocator (/memreserve/).
    unsafe { core::ptr::write_volatile(release_address as *mut u64, entry as u64) };
    // `DC CIVAC` then `DSB SY` (the helper's own barrier): the word is in memory
    // before the event that makes the core read it.
    cache::clean_and_invalidate_dcache_to_poc(release_address, release_address + 8);
    aarch64_cpu::asm::sev();
    Ok(())
}

/// Each core's CPU interface as a GIC target-list bit, by core index (each
/// core reads its own in [`init_this_core_interrupts`]).
static GIC_TARGET: [AtomicU8; MAX_CORES] = [const { AtomicU8::new(0) }; MAX_CORES];

/// This core's share of the interrupt set-up: its GIC CPU interface (the
/// boot core's is `gicv2::init`'s), its target bit for the cross-core SGI,
/// and that SGI enabled with its priority (both banked per core; on a GICv2
/// SGIs may be always enabled, GICD_ISENABLER0 bits 0-15 then ignore the
/// write, 4.3.5).
pub fn init_this_core_interrupts(index: usize) {
    gicv2::init_this_core();
    GIC_TARGET[index].store(gicv2::this_core_interface(), Ordering::Release);
    gicv2::enable(CROSS_CORE_SGI);
}

/// How many cross-core interrupts have arrived, on any core (the
/// `cross-core-sgi` self-test watches it).
static CROSS_CORE_ARRIVALS: AtomicU64 = AtomicU64::new(0);

/// Count one arrival of [`CROSS_CORE_SGI`] (`exception.rs` decodes it).
pub fn note_cross_core_arrival() {
    CROSS_CORE_ARRIVALS.fetch_add(1, Ordering::Relaxed);
}

/// How many cross-core interrupts have arrived so far.
pub fn cross_core_arrivals() -> u64 {
    CROSS_CORE_ARRIVALS.load(Ordering::Relaxed)
}

impl crate::arch::Cores for super::Machine {
    #[inline(always)]
    fn core_index() -> usize {
        TPIDR_EL1.get() as usize
    }

    /// GICD_SGIR with the target core's interface bit. `DSB ISHST` first: the
    /// SGIR write is to Device memory, which a `DMB` would not order after
    /// the caller's stores to Normal memory as the target observes them
    /// (Linux `gic_ipi_send_mask`: "ensure that stores to Normal memory are
    /// visible to the other CPUs before they observe us issuing the IPI").
    /// A core interrupting itself needs no bit (a GIC with one CPU interface
    /// has none): it uses the "this core" filter.
    fn interrupt_core(index: usize) {
        let target = match GIC_TARGET[index].load(Ordering::Acquire) {
            0 if index == Self::core_index() => gicv2::SgiTarget::ThisCore,
            0 => return, // not up: nobody to interrupt
            bit => gicv2::SgiTarget::Listed(bit),
        };
        barrier::dsb(barrier::ISHST);
        gicv2::send_sgi(CROSS_CORE_SGI, target);
    }

    /// `TLBI VMALLE1` (this core only: not the `IS` form), `DSB NSH`, `ISB`.
    fn flush_local_user_translations() {
        // SAFETY: TLBI VMALLE1 only drops this core's cached EL1&0 translations.
        unsafe { core::arch::asm!("tlbi vmalle1", options(nostack)) };
        barrier::dsb(barrier::NSH);
        barrier::isb(barrier::SY);
    }

    /// The kernel's invalidations are the inner-shareable forms (`TLBI
    /// ASIDE1IS` then `DSB ISH` in `mmu.rs`), which the hardware broadcasts to
    /// every core of the inner-shareable domain (Arm ARM D8.13, "TLB
    /// maintenance instructions": the `IS` forms apply to all PEs in the same
    /// Inner Shareable domain).
    const TLB_INVALIDATION_IS_BROADCAST: bool = true;
}
