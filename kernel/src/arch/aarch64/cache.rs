//! AArch64 caches (serves the probe code's instruction writes): the cache
//! geometry read from CTR_EL0.
//!
//! The maintenance sequence that makes freshly written instructions visible to
//! the instruction fetcher (`DC CVAU`, `DSB ISH`, `IC IVAU`, `DSB ISH`, `ISB`)
//! also lives in this file, so that every barrier is explained in one place.

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
        /// log2 of the number of 4-byte words in the smallest instruction cache line.
        IminLine OFFSET(0) NUMBITS(4) []
    ]
}

/// The smallest D- and I-cache lines of every cache the maintenance must reach,
/// and whether the core needs the maintenance at all.
#[derive(Clone, Copy, Debug)]
pub struct CacheGeometry {
    pub dcache_line: usize,
    pub icache_line: usize,
    /// CTR_EL0.IDC: the D-side clean to the point of unification is not needed.
    pub idc: bool,
    /// CTR_EL0.DIC: the I-side invalidation to the point of unification is not needed.
    pub dic: bool,
}

impl CacheGeometry {
    pub fn read() -> Self {
        let raw: u64;
        // SAFETY: reading CTR_EL0 has no side effects and is allowed at EL1.
        unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) raw, options(nomem, nostack)) };
        Self::decode(raw)
    }

    /// Line sizes are stored as log2(words): bytes = 4 << field. Example: a
    /// Cortex-A72 has DminLine = IminLine = 4, so 4 << 4 = 64-byte lines.
    pub fn decode(raw: u64) -> Self {
        let ctr: InMemoryRegister<u64, CTR_EL0::Register> = InMemoryRegister::new(raw);
        Self {
            dcache_line: 4 << ctr.read(CTR_EL0::DminLine),
            icache_line: 4 << ctr.read(CTR_EL0::IminLine),
            idc: ctr.is_set(CTR_EL0::IDC),
            dic: ctr.is_set(CTR_EL0::DIC),
        }
    }
}

/// How many lines one [`sync_instructions`] call cleaned and invalidated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaintenanceCount {
    pub dc_cvau_lines: usize,
    pub ic_ivau_lines: usize,
}

/// Make instructions the kernel just wrote at `[addr, addr + len)` (a kernel
/// address: the writable alias) visible to instruction fetch on every core.
///
/// The Arm ARM (B2.4.4, "Concurrent modification and execution of
/// instructions") requires, for a data write that will be executed:
///
/// 1. `DC CVAU` on every data cache line written: push the new bytes from the
///    data cache out to the point of unification, where the instruction side
///    reads from. Skipped when CTR_EL0.IDC says the hardware does it.
/// 2. `DSB ISH`: the cleans must complete before the invalidation below, or
///    the instruction cache could refill from the old bytes.
/// 3. `IC IVAU` on every instruction cache line: drop stale copies of the old
///    instructions. Skipped when CTR_EL0.DIC says instruction fetch is coherent.
/// 4. `DSB ISH`: the invalidations must complete (on all cores of the inner
///    shareable domain)...
/// 5. `ISB`: ...and this core must discard instructions it already fetched.
///    The core that executes the code after an `eret` gets this for free:
///    exception return is context synchronizing.
///
/// QEMU's TCG does not model caches, so leaving out any step passes every test
/// under emulation; `probe-core`'s cache model test is what catches it.
pub fn sync_instructions(addr: usize, len: usize) -> MaintenanceCount {
    let geometry = CacheGeometry::read();
    let mut count = MaintenanceCount::default();
    if len == 0 {
        return count;
    }
    let end = addr + len;
    if !geometry.idc {
        let mut line = addr & !(geometry.dcache_line - 1);
        while line < end {
            // SAFETY: DC CVAU on a mapped kernel address only cleans a cache line.
            unsafe { core::arch::asm!("dc cvau, {}", in(reg) line, options(nostack, preserves_flags)) };
            count.dc_cvau_lines += 1;
            line += geometry.dcache_line;
        }
    }
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISH);
    if !geometry.dic {
        let mut line = addr & !(geometry.icache_line - 1);
        while line < end {
            // SAFETY: IC IVAU on a mapped kernel address only invalidates a cache line.
            unsafe { core::arch::asm!("ic ivau, {}", in(reg) line, options(nostack, preserves_flags)) };
            count.ic_ivau_lines += 1;
            line += geometry.icache_line;
        }
    }
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISH);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    count
}
