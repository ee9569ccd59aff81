//! The boot map: the MMU and the caches on before any Rust code that can take a
//! lock. `boot.s` calls [`boot_map_enable`] right after zeroing BSS; from
//! then on RAM is Normal write-back inner-shareable memory and the board's
//! peripheral window Device-nGnRE, identity mapped in 1 GiB and 2 MiB blocks,
//! until `mmu::enable` replaces the map with the kernel's own, page by page.
//!
//! Why so early: with SCTLR_EL1.M = 0 every data access is Device-nGnRnE, and the
//! exclusive pair (`ldaxr`/`stxr`) behind every lock and atomic read-modify-write
//! is only guaranteed to work on Normal memory (Arm ARM B2.17.4, "Load-Exclusive
//! and Store-Exclusive instruction usage restrictions"). QEMU lets it succeed; on
//! a BCM2711 the store-exclusive never does, so a Pi 4 would spin on the
//! console's lock before printing anything. (Circle keeps its spin locks inert
//! until the MMU is on for the same reason.) `tests/tests/boot_order.rs` stops at
//! every exclusive load in the image under gdb and fails if one runs earlier.
//!
//! The order is Linux's (`arch/arm64/kernel/head.S`, `__primary_switch`):
//! 1. invalidate BSS and the boot stack to the point of coherency: they were
//!    written with the caches off, straight to memory, and a line left in the
//!    cache from before (the firmware ran with caches on) would hide that;
//! 2. write the tables (still with the caches off, so they are in memory for
//!    the walker);
//! 3. MAIR_EL1, TCR_EL1, TTBR0_EL1, `TLBI VMALLE1`, `DSB`, `ISB`;
//! 4. SCTLR_EL1.{M, C, I}, `ISB`, and `IC IALLU` for anything fetched before.
//!
//! Until step 4 this runs with the MMU off: no atomics, no locks, no heap, only
//! aligned 64-bit stores.

use super::{
    memory_layout as layout,
    mmu::{self, DESCRIPTOR, MAIR_DEVICE, MAIR_NORMAL},
};
use crate::board::{self, BootMemory, BootRegion};
use tock_registers::fields::FieldValue;

const GIB: usize = 1 << 30;
const BLOCK_2M: usize = 1 << 21;
const ENTRIES: usize = 512;
/// Level-2 tables for the GiBs that are not one kind throughout (a Pi 4's fourth
/// GiB is RAM and then the peripherals; a RAM bank may end inside a GiB).
const L2_TABLES: usize = 4;

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

// Written only with the MMU off by `boot_map_enable`, and later by `cover` with
// interrupts masked on the only running core, before `mmu::enable` retires them.
static mut L1: Table = Table([0; ENTRIES]);
static mut L2: [Table; L2_TABLES] = [const { Table([0; ENTRIES]) }; L2_TABLES];
/// How many of `L2` are in use (a plain word: no atomics before the MMU is on).
static mut L2_USED: usize = 0;

/// Why part of a region could not be put in the boot map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoverError {
    /// More GiBs of mixed kinds than there are level-2 tables.
    OutOfTables,
    /// Beyond the 256 GiB the kernel's half of TTBR0 translates.
    OutOfRange,
}

/// Called once by `boot.s` on the boot core at EL1, with the MMU and caches
/// off, after BSS is zeroed and before `kernel_main`.
#[no_mangle]
pub extern "C" fn boot_map_enable() {
    // BSS and the boot stack: what boot.s wrote with the caches off. The rest of
    // the image the loader cleaned to the point of coherency before entering us
    // (Documentation/arch/arm64/booting.rst).
    super::cache::invalidate_dcache_to_poc(layout::bss_start(), layout::kernel_end());
    for region in board::BOOT_MAP {
        // The board's own table: a failure here is a bug in it, caught by the
        // boot-order test (the kernel would fault on its first access).
        let _ = map(region);
    }
    // SAFETY: L1 is a 4 KiB aligned table whose entries were just written; it
    // stays the translation until `mmu::enable` installs the kernel's own.
    unsafe { mmu::enable_boot_map(&raw const L1 as usize) };
}

/// Add RAM the device tree reports to the live boot map, in whole 2 MiB blocks
/// (a partial block at either end is left out), so frames allocated before
/// `mmu::enable` are reachable wherever the allocator takes them from.
pub fn cover_ram(base: usize, size: usize) -> Result<(), CoverError> {
    let start = base.next_multiple_of(BLOCK_2M);
    let end = (base + size) & !(BLOCK_2M - 1);
    if end <= start {
        return Ok(());
    }
    let result = map(&BootRegion { start, end, kind: BootMemory::Ram });
    // New valid entries where there were none: no TLB entry to remove, only
    // the walker to order after the writes.
    mmu::publish_new_mappings();
    result
}

/// Write the block descriptors for `region`, leaving entries that are already
/// valid as they are (the board's map comes first and wins).
fn map(region: &BootRegion) -> Result<(), CoverError> {
    if region.end > mmu::KERNEL_VA_LIMIT {
        return Err(CoverError::OutOfRange);
    }
    let mut at = region.start;
    while at < region.end {
        let gib = at / GIB;
        let gib_end = (gib + 1) * GIB;
        // SAFETY: one core, interrupts masked, nothing else touches the boot
        // tables (see the statics); indices are below ENTRIES (at < 256 GiB).
        unsafe {
            let l1 = &raw mut L1.0[gib];
            let whole_gib = at.is_multiple_of(GIB) && region.end >= gib_end;
            if (whole_gib && *l1 == 0) || is_block(*l1) {
                // A free GiB taken whole, or one a block already covers.
                if *l1 == 0 {
                    *l1 = block(at, region.kind);
                }
                at = gib_end;
                continue;
            }
            let l2 = l2_table_for(l1)?;
            while at < region.end.min(gib_end) {
                let entry = l2.add((at % GIB) / BLOCK_2M);
                if *entry == 0 {
                    *entry = block(at, region.kind);
                }
                at += BLOCK_2M;
            }
        }
    }
    Ok(())
}

/// The level-2 table under L1 entry `l1` (empty or a table), taken from `L2` if
/// the entry is empty; `OutOfTables` if none is left.
///
/// # Safety
/// As for `map`: the caller is the only one touching the boot tables.
unsafe fn l2_table_for(l1: *mut u64) -> Result<*mut u64, CoverError> {
    // SAFETY: the caller's exclusive access to L1, L2 and L2_USED.
    unsafe {
        if *l1 != 0 {
            // A table (`map` handles blocks before asking).
            return Ok(((*l1 & address_mask()) as usize) as *mut u64);
        }
        if L2_USED == L2_TABLES {
            return Err(CoverError::OutOfTables);
        }
        let table = &raw mut L2[L2_USED].0 as *mut u64;
        L2_USED += 1;
        *l1 =
            (DESCRIPTOR::VALID::SET + DESCRIPTOR::TYPE::TableOrPage + DESCRIPTOR::OUTPUT_ADDR.val(table as u64 >> 12))
                .value;
        Ok(table)
    }
}

/// A valid L1 entry that is a block, not a table.
fn is_block(entry: u64) -> bool {
    entry & DESCRIPTOR::VALID::SET.value != 0 && entry & DESCRIPTOR::TYPE::TableOrPage.value == 0
}

fn address_mask() -> u64 {
    DESCRIPTOR::OUTPUT_ADDR.mask << DESCRIPTOR::OUTPUT_ADDR.shift
}

/// A 1 GiB (L1) or 2 MiB (L2) block descriptor for `address`.
fn block(address: usize, kind: BootMemory) -> u64 {
    use DESCRIPTOR::*;
    let common =
        VALID::SET + TYPE::Block + AF::SET + AP::El1ReadWrite + UXN::SET + OUTPUT_ADDR.val(address as u64 >> 12);
    let attributes: FieldValue<u64, Register> = match kind {
        BootMemory::Ram => ATTR_INDEX.val(MAIR_NORMAL) + SH::InnerShareable,
        BootMemory::Device => ATTR_INDEX.val(MAIR_DEVICE) + PXN::SET,
    };
    (common + attributes).value
}
