//! Mapping user memory, the checked path to it, and the W^X audit. Fresh
//! zeroed pages are mapped with [`AddressSpace::map_zeroed`]; a user range is
//! checked page by page against the task's own table with the access user
//! mode would need ([`AddressSpace::check`]), and only a checked [`UserRange`]
//! is read or written, through the kernel's identity map of the frames behind
//! it; [`AddressSpace::audit`] counts writable+executable mappings. The
//! tables are the machine's (the contract's `PageTable`), whose leaves answer
//! `user_readable`, `user_writable`, `user_executable`, `writable`,
//! `executable` and `translate` (`PageLeaf`); these calls are static and
//! inlined, so a check costs one table walk per page and nothing more.

use super::AddressSpace;
use crate::{
    arch::{Access, Machine, MapError, PageLeaf, PageTable, Paging},
    memory::{frames, PAGE_SIZE},
};
use alloc::vec::Vec;
use brk_abi::{layout, Error};

/// What the kernel wants to do with a user range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAccess {
    Read,
    Write,
    Execute,
}

/// A user address range that was checked against the owning address space.
#[derive(Clone, Copy, Debug)]
pub struct UserRange {
    start: usize,
    len: usize,
}

impl AddressSpace {
    /// Map fresh zeroed frames at `[va, va + len)` (page aligned) with `access`;
    /// returns the frames in address order.
    pub fn map_zeroed(&mut self, va: usize, len: usize, access: Access) -> Result<Vec<usize>, Error> {
        let in_user_range = va >= layout::USER_BASE as usize
            && va.is_multiple_of(PAGE_SIZE)
            && va.checked_add(len).is_some_and(|end| end <= layout::USER_END as usize);
        if !in_user_range {
            return Err(Error::InvalidArgument);
        }
        let mut mapped = Vec::new();
        for page in (va..va + len).step_by(PAGE_SIZE) {
            let frame = frames::alloc_zeroed().ok_or(Error::OutOfMemory)?;
            self.frames.push(frame);
            self.table.map(page, frame, PAGE_SIZE, access).map_err(|error| match error {
                MapError::OutOfFrames => Error::OutOfMemory,
                MapError::AlreadyMapped(_) | MapError::BadAddress(_) => Error::InvalidArgument,
            })?;
            mapped.push(frame);
        }
        Machine::publish_new_mappings();
        Ok(mapped)
    }

    /// Check that user mode could perform `access` on every byte of `[addr, addr + len)`.
    pub fn check(&self, addr: u64, len: u64, access: UserAccess) -> Result<UserRange, Error> {
        let end = addr.checked_add(len).ok_or(Error::BadAddress)?;
        if addr < layout::USER_BASE || end > layout::USER_END {
            return Err(Error::BadAddress);
        }
        let (start, end) = (addr as usize, end as usize);
        let mut page = start & !(PAGE_SIZE - 1);
        while page < end {
            let leaf = self.table.lookup(page).ok_or(Error::BadAddress)?;
            let allowed = match access {
                UserAccess::Read => leaf.user_readable(),
                UserAccess::Write => leaf.user_writable(),
                UserAccess::Execute => leaf.user_executable(),
            };
            if !allowed {
                return Err(Error::BadAddress);
            }
            page += PAGE_SIZE;
        }
        Ok(UserRange { start, len: end - start })
    }

    /// The kernel's pointer to `[addr, addr + len)`, if that range lies in
    /// one page and user mode could make `access` on it: the check and the
    /// translation in one table walk, for the hit path's small reads and
    /// writes. `None` if it is empty, crosses a page or is not allowed; the
    /// callers ([`Self::read_checked`], [`Self::write_checked`]) then take
    /// the page-by-page path of [`Self::check`], which decides.
    #[inline]
    fn in_one_page(&self, addr: u64, len: u64, access: UserAccess) -> Option<*mut u8> {
        let last = addr.checked_add(len.checked_sub(1)?)?;
        if addr < layout::USER_BASE
            || last >= layout::USER_END
            || addr as usize / PAGE_SIZE != last as usize / PAGE_SIZE
        {
            return None;
        }
        let leaf = self.table.lookup(addr as usize)?;
        let allowed = match access {
            UserAccess::Read => leaf.user_readable(),
            UserAccess::Write => leaf.user_writable(),
            UserAccess::Execute => leaf.user_executable(),
        };
        allowed.then(|| leaf.translate(addr as usize) as *mut u8)
    }

    /// Copy `out.len()` bytes of user memory at `addr` into `out`, if user
    /// mode could read them: [`Self::check`] and [`Self::read_exact`] in one,
    /// with one table walk when the bytes lie in one page.
    #[inline]
    pub fn read_checked(&self, addr: u64, out: &mut [u8]) -> Result<(), Error> {
        match self.in_one_page(addr, out.len() as u64, UserAccess::Read) {
            Some(source) => {
                // SAFETY: `source` is the identity-mapped kernel view of a
                // frame this address space owns, readable by user mode, and
                // the `out.len()` bytes from it stay within its page.
                unsafe { core::ptr::copy_nonoverlapping(source, out.as_mut_ptr(), out.len()) };
                Ok(())
            }
            None => {
                let range = self.check(addr, out.len() as u64, UserAccess::Read)?;
                self.read_exact(range, out);
                Ok(())
            }
        }
    }

    /// Copy `bytes` into user memory at `addr`, if user mode could write
    /// there: [`Self::check`] and [`Self::write`] in one, with one table
    /// walk when the bytes lie in one page.
    #[inline]
    pub fn write_checked(&self, addr: u64, bytes: &[u8]) -> Result<(), Error> {
        match self.in_one_page(addr, bytes.len() as u64, UserAccess::Write) {
            Some(target) => {
                // SAFETY: as in `read_checked`; user mode may write the page.
                unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), target, bytes.len()) };
                Ok(())
            }
            None => {
                let range = self.check(addr, bytes.len() as u64, UserAccess::Write)?;
                self.write(range, bytes);
                Ok(())
            }
        }
    }

    /// Call `chunk` with each physically contiguous piece of a checked range, as
    /// (kernel pointer, length).
    pub(super) fn for_each_chunk(&self, range: UserRange, mut chunk: impl FnMut(*mut u8, usize)) {
        let mut va = range.start;
        let end = range.start + range.len;
        while va < end {
            let leaf = self.table.lookup(va).expect("checked range lost a mapping");
            let page_end = (va & !(PAGE_SIZE - 1)) + PAGE_SIZE;
            let len = page_end.min(end) - va;
            chunk(leaf.translate(va) as *mut u8, len);
            va += len;
        }
    }

    /// Copy a checked range out of user memory into `out`, which is exactly
    /// as long as the range (no allocation: the hit path reads this way).
    pub fn read_exact(&self, range: UserRange, out: &mut [u8]) {
        assert_eq!(range.len, out.len());
        let mut done = 0;
        self.for_each_chunk(range, |source, len| {
            // SAFETY: `source` is the identity-mapped kernel view of a frame this
            // address space owns, and `len` stays within that page.
            out[done..done + len].copy_from_slice(unsafe { core::slice::from_raw_parts(source, len) });
            done += len;
        });
    }

    /// Copy a checked range out of user memory.
    pub fn read(&self, range: UserRange, out: &mut Vec<u8>) {
        self.for_each_chunk(range, |source, len| {
            // SAFETY: `source` is the identity-mapped kernel view of a frame this
            // address space owns, and `len` stays within that page.
            out.extend_from_slice(unsafe { core::slice::from_raw_parts(source, len) });
        });
    }

    /// Copy `bytes` into a checked range (`bytes.len()` == the range's length).
    pub fn write(&self, range: UserRange, bytes: &[u8]) {
        assert_eq!(range.len, bytes.len());
        let mut done = 0;
        self.for_each_chunk(range, |target, len| {
            // SAFETY: as in `read`; the kernel alias is writable even where user
            // mode's mapping is read-only, which is how text and the XOL page get
            // written.
            unsafe { core::ptr::copy_nonoverlapping(bytes[done..].as_ptr(), target, len) };
            done += len;
        });
    }

    /// Walk the whole table (the shared kernel half too): how many user pages,
    /// and how many mappings of any kind are writable and executable at once.
    pub fn audit(&self) -> (usize, usize) {
        let (mut user_pages, mut writable_and_executable) = (0, 0);
        self.table.for_each_leaf(|leaf| {
            if leaf.va() >= layout::USER_BASE as usize {
                user_pages += 1;
            }
            if leaf.writable() && leaf.executable() {
                writable_and_executable += 1;
            }
        });
        (user_pages, writable_and_executable)
    }
}
