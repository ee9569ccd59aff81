//! A process's address space: its translation table, its ASID, the frames it
//! owns, and checked access to its memory from the kernel.
//!
//! User memory is untrusted. The kernel reaches it only through a
//! `UserRange` (`user_access.rs`, shared by both kernels),
//! which exists only after every page of the range was found mapped in *this*
//! address space with the access EL0 itself would need. The bytes are then
//! copied through the kernel's identity map of the frames, so a check and the
//! access it guards can never disagree about which memory is meant.

use crate::{
    arch::mmu::{self, Access, TranslationTable},
    memory::{frames, PAGE_SIZE},
};
use alloc::vec::Vec;
use brk_abi::{layout, Error};
use spin::Mutex;

#[path = "user_access.rs"]
mod user_access;

pub use user_access::UserAccess;

/// Bytes per XOL slot: one A64 instruction.
pub const XOL_SLOT_BYTES: usize = 4;

/// ASIDs in use (8-bit ASIDs: TCR_EL1.AS = 0; ASID 0 is the kernel's own table).
static ASIDS: Mutex<[bool; 256]> = Mutex::new([false; 256]);

fn allocate_asid() -> Option<u16> {
    let mut used = ASIDS.lock();
    let free = (1..used.len()).find(|&asid| !used[asid])?;
    used[free] = true;
    Some(free as u16)
}

pub struct AddressSpace {
    table: TranslationTable,
    asid: u16,
    /// Every frame mapped for EL0; freed with the address space.
    frames: Vec<usize>,
    /// The frame behind the XOL page: EL0 sees it read + execute at
    /// `layout::XOL_PAGE`; the kernel writes it here, through its own alias.
    xol_frame: usize,
}

impl AddressSpace {
    /// An empty address space with its XOL page mapped (zeroed, the return
    /// trampoline in slot 0).
    pub fn new() -> Result<Self, Error> {
        let asid = allocate_asid().ok_or(Error::OutOfMemory)?;
        let table = match TranslationTable::new_user() {
            Ok(table) => table,
            Err(_) => {
                ASIDS.lock()[asid as usize] = false;
                return Err(Error::OutOfMemory);
            }
        };
        let mut space = Self { table, asid, frames: Vec::new(), xol_frame: 0 };
        // From here on, dropping `space` on an error frees what was taken.
        let xol = space.map_zeroed(layout::XOL_PAGE as usize, PAGE_SIZE, Access::UserText)?;
        space.xol_frame = xol[0];
        let trampoline = crate::arch::debug::brk_instruction(crate::arch::debug::TRAMPOLINE_BRK_IMMEDIATE);
        space.write_xol_slot(0, &trampoline.to_le_bytes());
        Ok(space)
    }

    /// The kernel's address of XOL slot `slot` (4-byte slots).
    pub fn xol_slot_kernel_address(&self, slot: usize) -> usize {
        self.xol_frame + slot * XOL_SLOT_BYTES
    }

    /// Whether XOL slot `slot` begins with `bytes` now (read through the
    /// kernel alias: what the page really holds).
    #[inline]
    pub fn xol_slot_holds(&self, slot: usize, bytes: &[u8]) -> bool {
        debug_assert!(bytes.len() <= XOL_SLOT_BYTES && (slot + 1) * XOL_SLOT_BYTES <= PAGE_SIZE);
        // SAFETY: the XOL frame is owned by this address space and identity mapped;
        // the slot lies inside the page, and only the kernel writes it, never
        // while this reads.
        let held = unsafe { core::slice::from_raw_parts(self.xol_slot_kernel_address(slot) as *const u8, bytes.len()) };
        held == bytes
    }

    /// Write `bytes` (at most one slot) into XOL slot `slot` through the kernel
    /// alias and make them visible to instruction fetch; returns the cache
    /// lines maintained.
    #[inline]
    pub fn write_xol_slot(&self, slot: usize, bytes: &[u8]) -> crate::arch::cache::MaintenanceCount {
        debug_assert!(bytes.len() <= XOL_SLOT_BYTES && (slot + 1) * XOL_SLOT_BYTES <= PAGE_SIZE);
        let address = self.xol_slot_kernel_address(slot);
        // SAFETY: as in `xol_slot_holds`; EL0's mapping of the page is read-only,
        // so only the kernel writes here, and no thread executes this slot right
        // now (the caller holds it).
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), address as *mut u8, bytes.len()) };
        crate::arch::cache::sync_instructions(address, bytes.len())
    }

    pub fn asid(&self) -> u16 {
        self.asid
    }

    pub fn table(&self) -> &TranslationTable {
        &self.table
    }

    /// Copy into user memory at `addr` through the kernel's alias, regardless of
    /// EL0's permissions there (loading a program, planting and removing probes).
    /// The pages must be mapped. Bytes written to text are also made visible to
    /// instruction fetch (the frames may have held another program's code a
    /// moment ago).
    pub fn write_as_kernel(&self, addr: u64, bytes: &[u8]) -> Result<(), Error> {
        let range = self.check(addr, bytes.len() as u64, UserAccess::Read)?;
        self.write(range, bytes);
        if self.check(addr, bytes.len() as u64, UserAccess::Execute).is_ok() {
            self.for_each_chunk(range, |target, len| {
                crate::arch::cache::sync_instructions(target as usize, len);
            });
        }
        Ok(())
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        mmu::flush_asid(self.asid);
        for &frame in &self.frames {
            frames::free(frame);
        }
        let table = core::mem::replace(&mut self.table, mmu::kernel_table());
        table.free_user();
        ASIDS.lock()[self.asid as usize] = false;
    }
}
