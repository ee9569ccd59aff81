//! The instruction-visibility sequence: what the kernel must do after writing
//! instructions (a `brk` over the text, a slot of the XOL page) before any
//! core may execute them. Arch-neutral in shape: the five operations are a
//! trait the kernel implements with `asm!` (`kernel/src/arch/aarch64/cache.rs`)
//! and the tests implement with a model of a non-coherent machine.
//!
//! Why any of this is needed: on Arm the data side (where the kernel's store
//! lands) and the instruction side (where the fetcher reads) are separate
//! caches that the hardware does not keep coherent. The store sits dirty in
//! the D-cache; the I-cache may hold the old instruction; the core's pipeline
//! may already have fetched it. The Arm ARM (B2.4.4, "Concurrent modification
//! and execution of instructions", and D7.5.9 "Data and instruction cache
//! maintenance") gives the sequence [`sync_instructions`] follows.

/// The five operations of the sequence, as the hardware offers them.
///
/// The addresses are the ones the kernel wrote through (its writable alias):
/// the caches are physically tagged at the point of unification, so
/// maintaining the alias maintains the user mapping of the same page.
pub trait CacheMaintenance {
    /// `DC CVAU, addr`: write the data cache line holding `addr` back to the
    /// point of unification, where the instruction side reads from.
    fn clean_dcache_line_to_pou(&mut self, addr: usize);
    /// `DSB ISH`: wait until every earlier cache maintenance and memory access
    /// has completed for every core in the inner shareable domain.
    fn data_synchronization_barrier(&mut self);
    /// `IC IVAU, addr`: drop the instruction cache line holding `addr`, on
    /// every core of the inner shareable domain.
    fn invalidate_icache_line_to_pou(&mut self, addr: usize);
    /// `IC IALLUIS`: drop every instruction cache line, whatever virtual address
    /// indexed it, on every core of the inner shareable domain.
    fn invalidate_icache_all_to_pou(&mut self);
    /// `ISB`: throw away the instructions this core has already fetched, so
    /// the next one is fetched after everything before it.
    fn instruction_synchronization_barrier(&mut self);
}

/// The cache facts the sequence depends on, as `CTR_EL0` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheGeometry {
    /// Bytes in the smallest data cache line of any cache the clean must
    /// reach (`4 << CTR_EL0.DminLine`). A power of two.
    pub dcache_line: usize,
    /// Bytes in the smallest instruction cache line (`4 << CTR_EL0.IminLine`).
    /// A power of two.
    pub icache_line: usize,
    /// `CTR_EL0.IDC`: the hardware already makes data writes visible to the
    /// instruction side at the point of unification: skip the `DC CVAU`s.
    pub idc: bool,
    /// `CTR_EL0.DIC`: instruction fetch is coherent with the data side: skip
    /// the `IC IVAU`s.
    pub dic: bool,
    /// The level 1 instruction cache may hold one physical line under several
    /// virtual indexes (`CTR_EL0.L1Ip` is VIPT or AIVIVT, not PIPT): `IC IVAU`
    /// by one virtual address (the kernel's alias of a user page) need not
    /// drop the line fetched through another (the user's). Linux assumes it
    /// may on every such core (`icache_is_aliasing`, arch/arm64/kernel/cpuinfo.c)
    /// and then invalidates the whole I-cache instead.
    pub icache_aliasing: bool,
}

/// `CTR_EL0.L1Ip`, bits [15:14]: the level 1 instruction cache's indexing.
pub const L1IP_SHIFT: u32 = 14;
/// `CTR_EL0.L1Ip` = PIPT: physically indexed, no aliases.
pub const L1IP_PIPT: u64 = 0b11;
/// `CTR_EL0.L1Ip` = VPIPT: physically indexed per VMID, no aliases at EL1&0.
pub const L1IP_VPIPT: u64 = 0b00;

/// The name of a `CTR_EL0.L1Ip` value, for the banner.
pub fn l1ip_name(l1ip: u64) -> &'static str {
    match l1ip & 0b11 {
        0b00 => "VPIPT",
        0b01 => "AIVIVT",
        0b10 => "VIPT",
        _ => "PIPT",
    }
}

impl CacheGeometry {
    /// Decode `CTR_EL0`. The line fields hold log2 of the line size in 4-byte
    /// words, so bytes = 4 << field: a Cortex-A72 has DminLine = IminLine = 4,
    /// 4 << 4 = 64-byte lines.
    pub fn from_ctr_el0(ctr: u64) -> Self {
        let field = |shift: u32| ((ctr >> shift) & 0xf) as u32;
        Self {
            dcache_line: 4 << field(16),
            icache_line: 4 << field(0),
            idc: ctr & (1 << 28) != 0,
            dic: ctr & (1 << 29) != 0,
            icache_aliasing: !matches!((ctr >> L1IP_SHIFT) & 0b11, L1IP_PIPT | L1IP_VPIPT),
        }
    }
}

/// How many lines one [`sync_instructions`] call cleaned and invalidated
/// (the `dc_cvau_lines`, `ic_ivau_lines` and `ic_iallu` counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaintenanceCount {
    pub dc_cvau_lines: usize,
    pub ic_ivau_lines: usize,
    /// Whole instruction-cache invalidations (`IC IALLUIS`), used instead of
    /// `IC IVAU` where the I-cache may alias.
    pub ic_iallu: usize,
}

/// The start of every `line`-byte line that `[addr, addr + len)` touches.
/// `line` is a power of two; `len` is not zero.
fn lines_touched(addr: usize, len: usize, line: usize) -> impl Iterator<Item = usize> {
    debug_assert!(line.is_power_of_two());
    let first = addr & !(line - 1);
    // The last byte, not the end: `addr + len` may be one past `usize::MAX`.
    // (A range that wraps is nonsense; it is clipped, never an overflow.)
    let last = addr.saturating_add(len - 1);
    let count = (last - first) / line + 1;
    (0..count).map(move |index| first + index * line)
}

/// Make the instructions just written at `[addr, addr + len)` visible to
/// instruction fetch on every core, and say how many lines it took.
///
/// An empty range needs nothing: no line changed, so no barrier is issued.
pub fn sync_instructions(
    ops: &mut impl CacheMaintenance,
    geometry: CacheGeometry,
    addr: usize,
    len: usize,
) -> MaintenanceCount {
    let mut count = MaintenanceCount::default();
    if len == 0 {
        return count;
    }

    // 1. DC CVAU on every data line touched: the new bytes are dirty in the
    //    D-cache, and the I-cache refills from the point of unification, not
    //    from the D-cache. Without the clean, a refill reads the old bytes.
    //    With IDC the hardware already writes through to that point.
    if !geometry.idc {
        for line in lines_touched(addr, len, geometry.dcache_line) {
            ops.clean_dcache_line_to_pou(line);
            count.dc_cvau_lines += 1;
        }
    }

    // 2. DSB ISH: the cleans must have *completed* before the invalidations
    //    start. Otherwise an I-line dropped in step 3 can be refilled (by a
    //    prefetch, on any core) from the point of unification while it still
    //    holds the old bytes, and that stale line then stays.
    // EXERCISE BREAKAGE (docs/exercises.md, exercise 1): the feature leaves this DSB out.
    #[cfg(not(feature = "exercise-skip-dsb-between-clean-and-invalidate"))]
    ops.data_synchronization_barrier();

    // 3. IC IVAU on every instruction line touched: drop any copy of the old
    //    instructions from every core's I-cache. With DIC the fetcher snoops
    //    the data side and there are no stale copies to drop. Where the
    //    I-cache may alias, `addr` (the kernel's alias) need not index the
    //    line the user's fetch filled: drop the whole I-cache instead.
    if !geometry.dic {
        if geometry.icache_aliasing {
            ops.invalidate_icache_all_to_pou();
            count.ic_iallu += 1;
        } else {
            for line in lines_touched(addr, len, geometry.icache_line) {
                // EXERCISE BREAKAGE (docs/exercises.md, exercise 2): the feature leaves the IC IVAU out.
                #[cfg(not(feature = "exercise-skip-ic-ivau"))]
                ops.invalidate_icache_line_to_pou(line);
                count.ic_ivau_lines += 1;
            }
        }
    }

    // 4. DSB ISH: wait for the invalidations to complete on every core. An
    //    ISB alone does not wait for them: this core could fetch from a line
    //    that is still queued for invalidation.
    ops.data_synchronization_barrier();

    // 5. ISB: this core may already hold the old instructions in its
    //    pipeline, fetched before any of the above. A context synchronization
    //    event discards them. (Another core gets its own on its next exception
    //    return: an `eret` is context synchronizing.)
    ops.instruction_synchronization_barrier();

    count
}

#[cfg(test)]
mod tests;
