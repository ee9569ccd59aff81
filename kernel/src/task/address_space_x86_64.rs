//! A process's address space: its page tables, the frames it owns, the XOL
//! page, and checked access to its memory from the kernel.
//!
//! User memory is untrusted. The kernel reaches it only through a
//! `UserRange` (`user_access.rs`, shared by both kernels),
//! which exists only after every page of the range was found mapped in *this*
//! address space with the access ring 3 itself would need (U/S at every
//! level, R/W for writes, no NX for execution). The bytes are then copied
//! through the kernel's identity map of the frames, so a check and the access
//! it guards can never disagree about which memory is meant, and the kernel
//! never dereferences a user address (SMAP would stop it if it tried).
//!
//! Text and the XOL page are mapped for ring 3 read + execute and never
//! writable; the kernel writes probe bytes and XOL slots through its own
//! identity alias of the physical frame ([`AddressSpace::kernel_alias`]).
//! x86 keeps instruction fetch coherent with such writes, even through another
//! linear address, and the `iretq` back to ring 3 is serializing, so no cache
//! maintenance follows a write (aarch64 needs `DC CVAU`/`IC IVAU` here).

use crate::{
    arch::mmu::{Access, Leaf, TranslationTable},
    memory::{frames, PAGE_SIZE},
};
use alloc::vec::Vec;
use brk_abi::{layout, Error};
use core::sync::atomic::{AtomicU16, Ordering};

#[path = "user_access.rs"]
mod user_access;

pub use user_access::UserAccess;

/// Bytes per XOL slot: the longest x86 instruction is 15 bytes.
pub const XOL_SLOT_BYTES: usize = 16;
/// Slot 0 holds the return-probe trampoline: a single `int3`.
pub const TRAMPOLINE_SLOT: usize = 0;
/// The `int3` opcode.
pub const INT3: u8 = 0xcc;

/// Address-space numbers, for reports and the scheduler's "is this table
/// live" test (x86 does not tag TLB entries with them: PCIDs stay off).
static NEXT_ASID: AtomicU16 = AtomicU16::new(1);

pub struct AddressSpace {
    table: TranslationTable,
    asid: u16,
    /// Every frame mapped for ring 3; freed with the address space.
    frames: Vec<usize>,
    /// The frame behind the XOL page: ring 3 sees it read + execute at
    /// `layout::XOL_PAGE`; the kernel writes it here, through its own alias.
    xol_frame: usize,
}

/// The effective permissions of a user page, as `translate` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFlags {
    pub user: bool,
    pub writable: bool,
    pub executable: bool,
}

impl AddressSpace {
    /// An empty address space with its XOL page mapped (zeroed, the return
    /// trampoline's `int3` in slot 0).
    pub fn new() -> Result<Self, Error> {
        let table = TranslationTable::new_user().map_err(|_| Error::OutOfMemory)?;
        let asid = NEXT_ASID.fetch_add(1, Ordering::Relaxed);
        let mut space = Self { table, asid, frames: Vec::new(), xol_frame: 0 };
        // From here on, dropping `space` on an error frees what was taken.
        let xol = space.map_zeroed(layout::XOL_PAGE as usize, PAGE_SIZE, Access::UserText)?;
        space.xol_frame = xol[0];
        space.write_xol_slot(TRAMPOLINE_SLOT, &[INT3]);
        Ok(space)
    }

    /// The kernel's writable alias of the XOL page (its identity-mapped frame).
    pub fn xol_kernel_alias(&self) -> *mut u8 {
        self.xol_frame as *mut u8
    }

    /// The kernel's address of XOL slot `slot`.
    pub fn xol_slot_kernel_address(&self, slot: usize) -> usize {
        self.xol_frame + slot * XOL_SLOT_BYTES
    }

    /// Whether XOL slot `slot` begins with `bytes` now (read through the
    /// kernel alias: what the page really holds).
    #[inline]
    pub fn xol_slot_holds(&self, slot: usize, bytes: &[u8]) -> bool {
        debug_assert!(bytes.len() <= XOL_SLOT_BYTES && (slot + 1) * XOL_SLOT_BYTES <= PAGE_SIZE);
        // SAFETY: the XOL frame is owned by this address space and identity
        // mapped; the slot lies inside the page, and only the kernel writes it,
        // never while this reads.
        let held = unsafe { core::slice::from_raw_parts(self.xol_slot_kernel_address(slot) as *const u8, bytes.len()) };
        held == bytes
    }

    /// Write `bytes` (at most one slot) into XOL slot `slot` through the kernel
    /// alias. No cache maintenance (none counted): see the module comment.
    pub fn write_xol_slot(&self, slot: usize, bytes: &[u8]) -> probe_core::cache::MaintenanceCount {
        assert!(bytes.len() <= XOL_SLOT_BYTES && (slot + 1) * XOL_SLOT_BYTES <= PAGE_SIZE);
        // SAFETY: the XOL frame is owned by this address space and identity
        // mapped; the slot lies inside the page. Ring 3's mapping is read-only,
        // so only the kernel writes here, and no thread executes this slot now
        // (the caller holds it).
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.xol_slot_kernel_address(slot) as *mut u8, bytes.len())
        };
        probe_core::cache::MaintenanceCount::default()
    }

    pub fn asid(&self) -> u16 {
        self.asid
    }

    pub fn table(&self) -> &TranslationTable {
        &self.table
    }

    fn user_leaf(&self, va: usize) -> Option<Leaf> {
        if !(layout::USER_BASE..layout::USER_END).contains(&(va as u64)) {
            return None;
        }
        self.table.lookup(va).filter(|leaf| leaf.user_readable())
    }

    /// The physical address and effective permissions of user address `vaddr`,
    /// if ring 3 can reach it at all.
    pub fn translate(&self, vaddr: u64) -> Option<(usize, PageFlags)> {
        let leaf = self.user_leaf(vaddr as usize)?;
        let flags = PageFlags { user: true, writable: leaf.user_writable(), executable: leaf.user_executable() };
        Some((leaf.translate(vaddr as usize), flags))
    }

    /// The kernel's writable pointer to the byte behind user address `vaddr`
    /// (any mapped user page, text and XOL included): how probes are written.
    /// Valid up to the end of that page.
    pub fn kernel_alias(&self, vaddr: u64) -> Option<*mut u8> {
        self.translate(vaddr).map(|(pa, _)| pa as *mut u8)
    }

    /// Copy into user memory at `addr` through the kernel's alias, regardless of
    /// ring 3's permissions there (loading text and rodata). The pages must be
    /// mapped.
    pub fn write_as_kernel(&self, addr: u64, bytes: &[u8]) -> Result<(), Error> {
        let range = self.check(addr, bytes.len() as u64, UserAccess::Read)?;
        self.write(range, bytes);
        Ok(())
    }
}

impl Drop for AddressSpace {
    /// The scheduler leaves this table (back to the kernel's) before a process
    /// is dropped, so its non-global TLB entries are already gone.
    fn drop(&mut self) {
        for &frame in &self.frames {
            frames::free(frame);
        }
        let table = core::mem::replace(&mut self.table, crate::arch::mmu::kernel_table());
        table.free_user();
    }
}
