//! The page-frame allocator: 4 KiB physical frames from a buddy allocator.

use super::region::{MemoryRegion, PAGE_SIZE};
use buddy_system_allocator::FrameAllocator;
use spin::Mutex;

static FRAMES: Mutex<FrameAllocator<32>> = Mutex::new(FrameAllocator::new());
/// Frames handed out and not yet given back, as the buddy allocator counts
/// them (a request rounded up to a power of two), for [`usage`].
static IN_USE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// A physical frame number's address.
fn frame_to_addr(frame: usize) -> usize {
    frame * PAGE_SIZE
}

/// The ranges handed to the allocator, for the self-test that proves none of
/// them overlaps a reserved range.
static GIVEN: Mutex<alloc::vec::Vec<MemoryRegion>> = Mutex::new(alloc::vec::Vec::new());

/// Hand `ram` to the allocator, less every `reserved` range (the caller's list
/// includes the kernel image).
pub fn init(ram: &[MemoryRegion], reserved: &[MemoryRegion]) {
    let mut allocator = FRAMES.lock();
    let mut given = GIVEN.lock();
    for bank in ram {
        for piece in pages_without(*bank, reserved) {
            allocator.add_frame(piece.base / PAGE_SIZE, piece.end() / PAGE_SIZE);
            given.push(piece);
        }
    }
}

/// What the allocator was given (`init`).
pub fn given() -> alloc::vec::Vec<MemoryRegion> {
    GIVEN.lock().clone()
}

/// Frames in use and frames the allocator was given in all (the shell's `mem`).
pub fn usage() -> (usize, usize) {
    let total = GIVEN.lock().iter().map(|piece| piece.size / PAGE_SIZE).sum();
    (IN_USE.load(core::sync::atomic::Ordering::Relaxed), total)
}

/// The whole pages of `bank` that no range of `holes` touches, in address order.
pub fn pages_without(bank: MemoryRegion, holes: &[MemoryRegion]) -> alloc::vec::Vec<MemoryRegion> {
    let mut holes: alloc::vec::Vec<MemoryRegion> =
        holes.iter().copied().filter(|hole| hole.base < bank.end() && hole.end() > bank.base).collect();
    holes.sort_by_key(|hole| hole.base);
    let mut pieces = alloc::vec::Vec::new();
    let mut cursor = bank.base;
    for hole in holes.iter().chain(core::iter::once(&MemoryRegion { base: bank.end(), size: 0 })) {
        let start = cursor.next_multiple_of(PAGE_SIZE);
        let end = hole.base.min(bank.end()) & !(PAGE_SIZE - 1);
        if end > start {
            pieces.push(MemoryRegion { base: start, size: end - start });
        }
        cursor = cursor.max(hole.end());
    }
    pieces
}

/// A zeroed physical frame, or `None` when memory is exhausted.
pub fn alloc_zeroed() -> Option<usize> {
    alloc_zeroed_contiguous(1)
}

/// `count` physically contiguous zeroed frames (aligned to `count`, a power of two).
pub fn alloc_zeroed_contiguous(count: usize) -> Option<usize> {
    let frame = FRAMES.lock().alloc(count)?;
    IN_USE.fetch_add(count.next_power_of_two(), core::sync::atomic::Ordering::Relaxed);
    let addr = frame_to_addr(frame);
    // SAFETY: the allocator just gave us exclusive ownership of these frames,
    // which lie in RAM that the kernel identity maps read/write for itself.
    unsafe { core::ptr::write_bytes(addr as *mut u8, 0, count * PAGE_SIZE) };
    Some(addr)
}

/// Return a frame from `alloc_zeroed`.
pub fn free(addr: usize) {
    free_contiguous(addr, 1);
}

/// Return frames from `alloc_zeroed_contiguous(count)`.
pub fn free_contiguous(addr: usize, count: usize) {
    FRAMES.lock().dealloc(addr / PAGE_SIZE, count);
    IN_USE.fetch_sub(count.next_power_of_two(), core::sync::atomic::Ordering::Relaxed);
}
