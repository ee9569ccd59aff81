//! A process's trampoline area: where its probes' branch trampolines live
//! (`probe_core::trampoline`, docs/brk-path.md "One exception instead of
//! two").
//!
//! The loader leaves a hole next to the program: one unmapped guard page
//! after its highest segment, then [`AREA_BYTES`] for trampolines, mapped a
//! page at a time as probes need them, read + execute for user mode and
//! written only by the kernel through its own alias of the frame (as the XOL
//! page). Next to the text, every trampoline is within reach of a `b`
//! (+-128 MiB) or a `jmp rel32` (+-2 GiB) from the program's instructions,
//! and of a literal load's +-1 MiB from most of them.
//!
//! Trampolines are handed out in order and never twice in one process: a
//! thread may still be inside a retired probe's trampoline (it took the
//! branch just before the probe was removed, or was preempted in the
//! displaced instruction), so its bytes stay as they are until the process
//! ends. A process that has used up its area gets breakpoints from then on.
//!
//! The area also keeps, on the kernel's side, the probe each trampoline was
//! written for: a trampoline call finds its probe there in one load, without
//! the thread's breakpoint tree.

use crate::{memory::PAGE_SIZE, probe::thread_state::Probe};
use alloc::{boxed::Box, sync::Arc};
use core::sync::atomic::{AtomicUsize, Ordering};
use probe_core::trampoline::{PROBE_ADDRESS_OFFSET, TRAMPOLINE_BYTES};
use spin::Once;

/// The bytes of one process's trampoline area: one trampoline for each of the
/// kernel's probes twice over (`probe::PROBE_LIMIT` is 16,384), so a process
/// that registers and unregisters runs out late.
pub const AREA_BYTES: u64 = 1 << 20;
/// Pages in the area.
const AREA_PAGES: usize = AREA_BYTES as usize / PAGE_SIZE;
/// Trampolines in the area.
pub const AREA_TRAMPOLINES: usize = AREA_BYTES as usize / TRAMPOLINE_BYTES;
/// Trampolines in one page.
const PER_PAGE: usize = PAGE_SIZE / TRAMPOLINE_BYTES;

/// The probes of one page's trampolines, each set once, before its branch is
/// planted.
type PageProbes = [Once<Arc<Probe>>; PER_PAGE];

/// Where one process's trampolines are, and which are handed out.
pub struct TrampolineArea {
    /// The user address of the first trampoline (page aligned).
    base: u64,
    /// The frame behind each page of the area; 0 while it is not mapped.
    /// Written only while no other core uses the address space
    /// (`SharedSpace::get_mut`), read by the hit path.
    frames: [usize; AREA_PAGES],
    /// The probe of each trampoline of each mapped page (allocated with the
    /// page, under the same rule as `frames`).
    probes: [Option<Box<PageProbes>>; AREA_PAGES],
    /// Trampolines handed out so far: those below are claimed, in order.
    handed_out: AtomicUsize,
}

/// A trampoline just claimed: its user address, and whether its page must be
/// mapped before it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimed {
    pub address: u64,
    pub needs_page: bool,
}

impl TrampolineArea {
    /// An area at `base` (page aligned), nothing mapped yet.
    pub fn new(base: u64) -> Self {
        debug_assert!(base.is_multiple_of(PAGE_SIZE as u64));
        Self { base, frames: [0; AREA_PAGES], probes: [const { None }; AREA_PAGES], handed_out: AtomicUsize::new(0) }
    }

    /// Whether `address` is inside the area.
    #[inline]
    pub fn contains(&self, address: u64) -> bool {
        address.wrapping_sub(self.base) < AREA_BYTES
    }

    /// The trampoline [`Self::claim`] would hand out now, or `None` if every
    /// one is handed out.
    pub fn next(&self) -> Option<Claimed> {
        self.at_index(self.handed_out.load(Ordering::Relaxed))
    }

    /// Hand out the next trampoline, or `None` if every one is handed out.
    pub fn claim(&self) -> Option<Claimed> {
        let index = self
            .handed_out
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < AREA_TRAMPOLINES).then_some(n + 1))
            .ok()?;
        self.at_index(index)
    }

    fn at_index(&self, index: usize) -> Option<Claimed> {
        (index < AREA_TRAMPOLINES).then(|| {
            let address = self.base + (index * TRAMPOLINE_BYTES) as u64;
            Claimed { address, needs_page: self.frames[self.page_of(address)] == 0 }
        })
    }

    fn page_of(&self, address: u64) -> usize {
        ((address - self.base) / PAGE_SIZE as u64) as usize
    }

    /// Note that the page holding `address` is now backed by `frame`. Called
    /// only through `SharedSpace::get_mut` (no other core reads the area).
    pub fn set_frame(&mut self, address: u64, frame: usize) {
        let page = self.page_of(address);
        self.frames[page] = frame;
        self.probes[page] = Some(Box::new([const { Once::new() }; PER_PAGE]));
    }

    /// Record `probe` as the trampoline at `start`'s (handed out, its page
    /// mapped): once, before its branch is planted.
    pub fn set_probe(&self, start: u64, probe: Arc<Probe>) {
        let offset = (start - self.base) as usize;
        if let Some(page) = &self.probes[offset / PAGE_SIZE] {
            page[offset % PAGE_SIZE / TRAMPOLINE_BYTES].call_once(|| probe);
        }
    }

    /// The probe the trampoline at `start` was written for, if `start` is the
    /// start of a trampoline handed out whose probe is recorded.
    #[inline]
    pub fn probe_at(&self, start: u64) -> Option<&Arc<Probe>> {
        let offset = start.wrapping_sub(self.base) as usize;
        let handed_out = self.handed_out.load(Ordering::Relaxed) * TRAMPOLINE_BYTES;
        if offset >= handed_out || !offset.is_multiple_of(TRAMPOLINE_BYTES) {
            return None;
        }
        self.probes[offset / PAGE_SIZE].as_ref()?[offset % PAGE_SIZE / TRAMPOLINE_BYTES].get()
    }

    /// The kernel's address of the trampoline at user address `start`, if
    /// it is one handed out and its page is mapped.
    #[inline]
    pub fn kernel_address(&self, start: u64) -> Option<usize> {
        let offset = start.wrapping_sub(self.base) as usize;
        let handed_out = self.handed_out.load(Ordering::Relaxed) * TRAMPOLINE_BYTES;
        if offset >= handed_out || !offset.is_multiple_of(TRAMPOLINE_BYTES) {
            return None;
        }
        let frame = self.frames[offset / PAGE_SIZE];
        (frame != 0).then_some(frame + offset % PAGE_SIZE)
    }

    /// The start of the trampoline holding user address `address`, if that is
    /// inside one handed out.
    pub fn trampoline_holding(&self, address: u64) -> Option<u64> {
        let start = address.wrapping_sub(address.wrapping_sub(self.base) % TRAMPOLINE_BYTES as u64);
        self.contains(address).then_some(start).filter(|&start| self.kernel_address(start).is_some())
    }

    /// The probed address the trampoline at `start` records, if `start` is a
    /// trampoline handed out (written before its probe's branch was planted).
    #[inline]
    pub fn probe_address(&self, start: u64) -> Option<u64> {
        let alias = self.kernel_address(start)?;
        // SAFETY: `alias` is the identity-mapped kernel view of a frame of this
        // address space, and a trampoline lies wholly inside its page
        // (TRAMPOLINE_BYTES divides the page size) at a multiple of
        // TRAMPOLINE_BYTES, so the word at PROBE_ADDRESS_OFFSET is 8-byte
        // aligned. The kernel writes a trampoline only before its branch is
        // planted, so no hit reads it while it changes.
        let word = unsafe { core::ptr::read((alias + PROBE_ADDRESS_OFFSET) as *const u64) };
        Some(u64::from_le(word))
    }
}
