//! The page-frame allocator: 4 KiB physical frames from a buddy allocator.

use super::{layout, PAGE_SIZE};
use crate::devicetree::{MemoryRegion, Platform};
use buddy_system_allocator::FrameAllocator;
use spin::Mutex;

static FRAMES: Mutex<FrameAllocator<32>> = Mutex::new(FrameAllocator::new());

/// A physical frame number's address.
fn frame_to_addr(frame: usize) -> usize {
    frame * PAGE_SIZE
}

pub fn init(platform: &Platform) {
    let kernel = MemoryRegion {
        base: layout::kernel_start(),
        size: layout::kernel_end() - layout::kernel_start(),
    };
    let mut allocator = FRAMES.lock();
    for ram in &platform.ram {
        // Walk the bank, cutting out every reserved range that overlaps it.
        let mut cursor = ram.base;
        let mut holes: alloc::vec::Vec<MemoryRegion> = platform
            .reserved
            .iter()
            .copied()
            .chain(core::iter::once(kernel))
            .filter(|hole| hole.base < ram.end() && hole.end() > ram.base)
            .collect();
        holes.sort_by_key(|hole| hole.base);
        for hole in holes.iter().chain(core::iter::once(&MemoryRegion { base: ram.end(), size: 0 })) {
            let free_start = cursor.div_ceil(PAGE_SIZE);
            let free_end = hole.base.min(ram.end()) / PAGE_SIZE;
            if free_end > free_start {
                allocator.add_frame(free_start, free_end);
            }
            cursor = cursor.max(hole.end());
        }
    }
}

/// A zeroed physical frame, or `None` when memory is exhausted.
pub fn alloc_zeroed() -> Option<usize> {
    alloc_zeroed_contiguous(1)
}

/// `count` physically contiguous zeroed frames (aligned to `count`, a power of two).
pub fn alloc_zeroed_contiguous(count: usize) -> Option<usize> {
    let frame = FRAMES.lock().alloc(count)?;
    let addr = frame_to_addr(frame);
    // SAFETY: the allocator just gave us exclusive ownership of these frames,
    // which lie in RAM that is identity mapped read/write for EL1.
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
}
