//! A process's address space: its translation table (the machine's, through
//! the contract's `Paging`), the frames it owns, the XOL page, and checked
//! access to its memory from the kernel.
//!
//! User memory is untrusted. The kernel reaches it only through a
//! `UserRange` (`user_access.rs`), which exists only after every page of the
//! range was found mapped in *this* address space with the access user mode
//! itself would need. The bytes are then copied through the kernel's identity
//! map of the frames, so a check and the access it guards can never disagree
//! about which memory is meant, and the kernel never dereferences a user
//! address.
//!
//! Text and the XOL page are mapped for user mode read + execute and never
//! writable; the kernel writes program text, probe instructions and XOL slots
//! through its own alias of the physical frame, then has the machine make
//! them visible to instruction fetch ([`Paging::sync_instructions`]).

use super::trampoline_area::TrampolineArea;
use crate::{
    arch::{Access, Machine, PageLeaf, PageTable, Paging, Probes},
    memory::{frames, PAGE_SIZE},
};
use alloc::{boxed::Box, vec::Vec};
use brk_abi::{layout, Error};
use probe_core::{cache::MaintenanceCount, trampoline::TrampolineImage, xol::SlotIndex, Arch};

#[path = "user_access.rs"]
mod user_access;

pub use user_access::UserAccess;

/// Bytes per XOL slot: room for the longest instruction a slot is given.
pub const XOL_SLOT_BYTES: usize = <<Machine as Probes>::Isa as Arch>::XOL_SLOT_BYTES;

/// This machine's translation tables.
type Table = <Machine as Paging>::Table;

pub struct AddressSpace {
    table: Table,
    /// Every frame mapped for user mode; freed with the address space.
    frames: Vec<usize>,
    /// The frame behind the XOL page: user mode sees it read + execute at
    /// `layout::XOL_PAGE`; the kernel writes it here, through its own alias.
    xol_frame: usize,
    /// Where the probes' branch trampolines go (`super::trampoline_area`):
    /// reserved by the loader next to the program, `None` if there was no room.
    trampolines: Option<Box<TrampolineArea>>,
}

/// The effective permissions of a user page, as `translate` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFlags {
    pub user: bool,
    pub writable: bool,
    pub executable: bool,
}

/// Make the kernel's own table the live one (before a process's table is freed).
pub fn activate_kernel() {
    Machine::kernel_table().activate();
}

impl AddressSpace {
    /// An empty address space with its XOL page mapped (zeroed, the return
    /// trampoline in slot 0).
    pub fn new() -> Result<Self, Error> {
        let table = Table::new_user().map_err(|_| Error::OutOfMemory)?;
        let mut space = Self { table, frames: Vec::new(), xol_frame: 0, trampolines: None };
        // From here on, dropping `space` on an error frees what was taken.
        let xol = space.map_zeroed(layout::XOL_PAGE as usize, PAGE_SIZE, Access::UserText)?;
        space.xol_frame = xol[0];
        space.write_xol_slot(SlotIndex::TRAMPOLINE.index(), Machine::XOL_TRAMPOLINE);
        Ok(space)
    }

    /// The kernel's address of XOL slot `slot`.
    #[inline]
    pub fn xol_slot_kernel_address(&self, slot: usize) -> usize {
        self.xol_frame + slot * XOL_SLOT_BYTES
    }

    /// Whether XOL slot `slot` begins with `bytes` now (read through the
    /// kernel alias: what the page really holds). The slot is one the
    /// process's XOL slots handed out, which all lie inside the page.
    #[inline]
    pub fn xol_slot_holds(&self, slot: usize, bytes: &[u8]) -> bool {
        debug_assert!(bytes.len() <= XOL_SLOT_BYTES && (slot + 1) * XOL_SLOT_BYTES <= PAGE_SIZE);
        // SAFETY: the XOL frame is owned by this address space and identity
        // mapped; the slot lies inside the page, and only the kernel writes it
        // (user mode's mapping is read-only), never while this reads.
        let held = unsafe { core::slice::from_raw_parts(self.xol_slot_kernel_address(slot) as *const u8, bytes.len()) };
        held == bytes
    }

    /// Write `bytes` (at most one slot) into XOL slot `slot` through the kernel
    /// alias and make them visible to instruction fetch; returns the cache
    /// lines maintained. The slot is one the process's XOL slots handed out.
    #[inline]
    pub fn write_xol_slot(&self, slot: usize, bytes: &[u8]) -> MaintenanceCount {
        debug_assert!(bytes.len() <= XOL_SLOT_BYTES && (slot + 1) * XOL_SLOT_BYTES <= PAGE_SIZE);
        let address = self.xol_slot_kernel_address(slot);
        // SAFETY: as in `xol_slot_holds`; no thread executes this slot right
        // now (the caller holds it).
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), address as *mut u8, bytes.len()) };
        Machine::sync_instructions(address, bytes.len())
    }

    /// Reserve the trampoline area at `base` (page aligned, unmapped: the
    /// loader, once the segments are in).
    pub fn reserve_trampoline_area(&mut self, base: u64) {
        self.trampolines = Some(Box::new(TrampolineArea::new(base)));
    }

    /// The trampoline area, if the loader found room for one.
    #[inline]
    pub fn trampolines(&self) -> Option<&TrampolineArea> {
        self.trampolines.as_deref()
    }

    /// Map the page that will hold the trampoline at `address` (one the area
    /// handed out): fresh, zeroed, read + execute for user mode.
    pub fn map_trampoline_page(&mut self, address: u64) -> Result<(), Error> {
        let page = address & !(PAGE_SIZE as u64 - 1);
        let frame = self.map_zeroed(page as usize, PAGE_SIZE, Access::UserText)?[0];
        self.trampolines.as_mut().ok_or(Error::InvalidArgument)?.set_frame(address, frame);
        Ok(())
    }

    /// Write the trampoline `image` at `address` (handed out, its page
    /// mapped) through the kernel alias and make it visible to instruction
    /// fetch; returns the cache lines maintained. No thread can be executing
    /// it: its probe's branch is planted only after this.
    pub fn write_trampoline(&self, address: u64, image: &TrampolineImage) -> Result<MaintenanceCount, Error> {
        let alias = self.trampolines().and_then(|area| area.kernel_address(address)).ok_or(Error::InvalidArgument)?;
        // SAFETY: `alias` is the kernel view of a trampoline of this address
        // space inside one mapped frame; no thread executes it yet.
        unsafe { core::ptr::copy_nonoverlapping(image.as_ptr(), alias as *mut u8, image.len()) };
        Ok(Machine::sync_instructions(alias, image.len()))
    }

    /// Make this address space the live one (a process switch).
    pub fn activate(&self) {
        self.table.activate();
    }

    /// The physical address and effective permissions of user address `vaddr`,
    /// if user mode can reach it at all.
    pub fn translate(&self, vaddr: u64) -> Option<(usize, PageFlags)> {
        if !(layout::USER_BASE..layout::USER_END).contains(&vaddr) {
            return None;
        }
        let leaf = self.table.lookup(vaddr as usize).filter(|leaf| leaf.user_readable())?;
        let flags = PageFlags { user: true, writable: leaf.user_writable(), executable: leaf.user_executable() };
        Some((leaf.translate(vaddr as usize), flags))
    }

    /// The kernel's writable pointer to the byte behind user address `vaddr`
    /// (any mapped user page, text and XOL included). Valid up to the end of
    /// that page.
    pub fn kernel_alias(&self, vaddr: u64) -> Option<*mut u8> {
        self.translate(vaddr).map(|(pa, _)| pa as *mut u8)
    }

    /// Copy into user memory at `addr` through the kernel's alias, regardless of
    /// user mode's permissions there (loading a program, planting and removing
    /// probes). The pages must be mapped for user mode. Bytes written to text
    /// are made visible to instruction fetch (the frames may have held another
    /// program's code a moment ago).
    pub fn write_as_kernel(&self, addr: u64, bytes: &[u8]) -> Result<(), Error> {
        self.check(addr, bytes.len() as u64, UserAccess::Read)?;
        let is_code = self.check(addr, bytes.len() as u64, UserAccess::Execute).is_ok();
        let mut done = 0;
        while done < bytes.len() {
            let at = addr + done as u64;
            let len = (PAGE_SIZE - at as usize % PAGE_SIZE).min(bytes.len() - done);
            let alias = self.kernel_alias(at).ok_or(Error::BadAddress)?;
            // SAFETY: `alias` is the identity-mapped kernel view of a frame this
            // address space owns (checked above), and `len` stays within its page.
            unsafe { core::ptr::copy_nonoverlapping(bytes[done..].as_ptr(), alias, len) };
            if is_code {
                Machine::sync_instructions(alias as usize, len);
            }
            done += len;
        }
        Ok(())
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        // The scheduler has left this table (`activate_kernel`) before the
        // process is dropped; freeing it drops whatever the TLB holds of it.
        let table = core::mem::replace(&mut self.table, Machine::kernel_table());
        table.free_user();
        for &frame in &self.frames {
            frames::free(frame);
        }
    }
}
