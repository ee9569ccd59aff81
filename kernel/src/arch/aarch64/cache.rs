//! AArch64 caches (serve the contract's `Paging::sync_instructions`, through
//! which the address space makes the code it writes visible to instruction
//! fetch): the cache geometry read from CTR_EL0, and the five instructions of
//! the maintenance sequence (`DC CVAU`, `DSB ISH`, `IC IVAU`, `DSB ISH`, `ISB`)
//! that `probe_core::cache::sync_instructions` puts in order. The order and the
//! reason for every barrier are explained there, where a host test checks them
//! against a model of a non-coherent instruction cache.

use aarch64_cpu::asm::barrier;
use probe_core::cache::CacheMaintenance;
pub use probe_core::cache::{CacheGeometry, MaintenanceCount};
use tock_registers::{interfaces::Readable, register_bitfields, registers::InMemoryRegister};

register_bitfields! {
    u64,
    /// Cache Type Register (Arm ARM D19.2.34). `aarch64-cpu` has no definition.
    pub CTR_EL0 [
        /// Instruction cache invalidation to the point of unification is not
        /// required for data-to-instruction coherence: `IC IVAU` may be skipped.
        DIC OFFSET(29) NUMBITS(1) [],
        /// Data cache clean to the point of unification is not required for
        /// instruction-to-data coherence: `DC CVAU` may be skipped.
        IDC OFFSET(28) NUMBITS(1) [],
        /// log2 of the number of 4-byte words in the smallest data cache line.
        DminLine OFFSET(16) NUMBITS(4) [],
        /// Level 1 instruction cache policy: 0b11 PIPT, 0b10 VIPT, 0b01 AIVIVT,
        /// 0b00 VPIPT (`probe_core::cache::l1ip_name`).
        L1Ip OFFSET(14) NUMBITS(2) [],
        /// log2 of the number of 4-byte words in the smallest instruction cache line.
        IminLine OFFSET(0) NUMBITS(4) []
    ]
}

/// This CPU's cache geometry, read from CTR_EL0. Line sizes are stored as
/// log2(words): bytes = 4 << field, so a Cortex-A72's DminLine = IminLine = 4
/// means 64-byte lines.
pub fn geometry() -> CacheGeometry {
    let raw: u64;
    // SAFETY: reading CTR_EL0 has no side effects and is allowed at EL1.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) raw, options(nomem, nostack)) };
    let ctr: InMemoryRegister<u64, CTR_EL0::Register> = InMemoryRegister::new(raw);
    CacheGeometry {
        dcache_line: 4 << ctr.read(CTR_EL0::DminLine),
        icache_line: 4 << ctr.read(CTR_EL0::IminLine),
        idc: ctr.is_set(CTR_EL0::IDC),
        dic: ctr.is_set(CTR_EL0::DIC),
        icache_aliasing: !matches!(
            ctr.read(CTR_EL0::L1Ip),
            probe_core::cache::L1IP_PIPT | probe_core::cache::L1IP_VPIPT
        ),
    }
}

/// `CTR_EL0.L1Ip`, the level 1 instruction cache's indexing, by name (banner).
pub fn icache_policy() -> &'static str {
    let raw: u64;
    // SAFETY: as in `geometry`.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) raw, options(nomem, nostack)) };
    let ctr: InMemoryRegister<u64, CTR_EL0::Register> = InMemoryRegister::new(raw);
    probe_core::cache::l1ip_name(ctr.read(CTR_EL0::L1Ip))
}

/// The hardware's cache-maintenance instructions, for `probe_core::cache`'s
/// sequence (which explains why each step and barrier is there).
struct Aarch64CacheMaintenance;

impl CacheMaintenance for Aarch64CacheMaintenance {
    fn clean_dcache_line_to_pou(&mut self, addr: usize) {
        // SAFETY: DC CVAU on a mapped kernel address only cleans a cache line.
        unsafe { core::arch::asm!("dc cvau, {}", in(reg) addr, options(nostack, preserves_flags)) };
    }
    fn data_synchronization_barrier(&mut self) {
        barrier::dsb(barrier::ISH);
    }
    fn invalidate_icache_line_to_pou(&mut self, addr: usize) {
        // SAFETY: IC IVAU on a mapped kernel address only invalidates a cache line.
        unsafe { core::arch::asm!("ic ivau, {}", in(reg) addr, options(nostack, preserves_flags)) };
    }
    fn invalidate_icache_all_to_pou(&mut self) {
        // SAFETY: IC IALLUIS only invalidates instruction cache lines.
        unsafe { core::arch::asm!("ic ialluis", options(nostack, preserves_flags)) };
    }
    fn instruction_synchronization_barrier(&mut self) {
        barrier::isb(barrier::SY);
    }
}

/// Make instructions the kernel just wrote at `[addr, addr + len)` (a kernel
/// address: the writable alias) visible to instruction fetch on every core:
/// `DC CVAU` per D-line, `DSB ISH`, `IC IVAU` per I-line, `DSB ISH`, `ISB`, with
/// the line sizes and the IDC/DIC shortcuts of this CPU's CTR_EL0.
///
/// QEMU's TCG does not model caches, so leaving out any step passes every test
/// under emulation; `probe_core::cache`'s model of a non-coherent machine is the
/// test that catches it.
pub fn sync_instructions(addr: usize, len: usize) -> MaintenanceCount {
    probe_core::cache::sync_instructions(&mut Aarch64CacheMaintenance, geometry(), addr, len)
}

/// Invalidate the data cache lines of `[start, end)` to the point of coherency
/// (`DC IVAC`), then `DSB SY`: for memory written with the caches off, so that no
/// line cached before (the firmware ran with caches on) can hide what is in
/// memory once they are on (`boot_map.rs`). Runs with the MMU off: register
/// reads and maintenance instructions only.
pub fn invalidate_dcache_to_poc(start: usize, end: usize) {
    by_dcache_line(start, end, |at| {
        // SAFETY: `DC IVAC` discards cached copies of one line; memory holds the
        // only copy that matters for every line of the range (see above).
        unsafe { core::arch::asm!("dc ivac, {}", in(reg) at, options(nostack, preserves_flags)) };
    });
}

/// Clean the data cache lines of `[start, end)` to the point of coherency
/// (`DC CVAC`), then `DSB SY`: what the CPU wrote through a cacheable mapping
/// reaches memory, where a bus master that does not look into the CPU's
/// caches (the Pi 4's display controller scanning out the framebuffer) reads
/// it. The lines stay valid for the CPU's own later reads.
#[cfg_attr(not(feature = "board-rpi4"), allow(dead_code))] // only the Pi 4 has a display
pub fn clean_dcache_to_poc(start: usize, end: usize) {
    by_dcache_line(start, end, |at| {
        // SAFETY: `DC CVAC` writes one dirty line back to memory; it changes no value.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) at, options(nostack, preserves_flags)) };
    });
}

/// Clean and invalidate the data cache lines of `[start, end)` to the point of
/// coherency (`DC CIVAC`), then `DSB SY`: for a buffer shared with a bus master
/// in both directions (the VideoCore mailbox's property buffer). Before the
/// master reads, memory holds what the CPU wrote; after it wrote, no stale line
/// hides its answer; and for what a core reads with its caches off (the
/// hand-over to a starting core, a spin table's release word: `smp.rs`).
/// Whole lines are affected: the buffer must own its lines.
pub fn clean_and_invalidate_dcache_to_poc(start: usize, end: usize) {
    by_dcache_line(start, end, |at| {
        // SAFETY: `DC CIVAC` writes one line back and drops it; it changes no value.
        unsafe { core::arch::asm!("dc civac, {}", in(reg) at, options(nostack, preserves_flags)) };
    });
}

/// Run `maintain` on the address of every D-cache line that `[start, end)`
/// touches, then `DSB SY` so it has completed for every observer.
fn by_dcache_line(start: usize, end: usize, mut maintain: impl FnMut(usize)) {
    let line = geometry().dcache_line;
    let mut at = start & !(line - 1);
    while at < end {
        maintain(at);
        at += line;
    }
    barrier::dsb(barrier::SY);
}
