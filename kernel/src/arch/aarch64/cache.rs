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
