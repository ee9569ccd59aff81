//! A linear framebuffer of 32-bit pixels that a display controller scans out:
//! the [`text_screen::Pixels`] the console's screen draws on, on the Pi 4 and
//! on a PC. What differs is how written pixels reach the display, which the
//! board that found the buffer says in [`Framebuffer::make_visible`]:
//!
//! - On the Pi 4 the buffer is mapped like RAM (Normal, write-back: the boot
//!   map's first GiB and then the kernel's map, `arch/aarch64/mmu.rs`), so
//!   drawing and scrolling run at cache speed. The display does not look into
//!   the CPU's caches, so every batch of changes is cleaned to the point of
//!   coherency before the console lock is let go
//!   ([`text_screen::TextScreen::publish`]).
//! - On a PC the firmware's memory type for the buffer (MTRRs and PAT: uncached
//!   or write-combining) already sends every store towards the display, so
//!   there is nothing to do (`board/uefi_pc/screen.rs`).

use crate::memory::region::MemoryRegion;

/// Where the pixels are and how they are laid out. Pixels are `0x00RRGGBB` words
/// (text is grey, so the display's byte order does not matter).
#[derive(Clone, Copy, Debug)]
pub struct Framebuffer {
    /// Physical (and, identity mapped, virtual) address of the first pixel.
    pub base: usize,
    pub width: usize,
    pub height: usize,
    /// Bytes from one pixel row to the next (the firmware's "pitch").
    pub stride: usize,
    /// Make the bytes `[start, end)`, just written, visible to the display
    /// controller: a cache clean to the point of coherency on aarch64, nothing
    /// on x86.
    pub make_visible: fn(start: usize, end: usize),
}

/// Bytes per pixel: this console draws only 32-bit pixels.
pub const BYTES_PER_PIXEL: usize = 4;

impl Framebuffer {
    /// The memory the pixels occupy.
    #[allow(dead_code)] // the Pi 4 and the PC map it; QEMU virt has no display
    pub fn region(&self) -> MemoryRegion {
        MemoryRegion { base: self.base, size: self.stride * self.height }
    }

    fn row_address(&self, y: usize) -> usize {
        self.base + y * self.stride
    }
}

impl text_screen::Pixels for Framebuffer {
    fn put(&mut self, x: usize, y: usize, pixel: u32) {
        debug_assert!(x < self.width && y < self.height);
        // SAFETY: (x, y) is inside width x height (TextScreen draws only inside
        // its cells), so the word is inside `region()`, which the firmware handed
        // to this kernel alone and which is mapped read/write.
        unsafe { core::ptr::write_volatile((self.row_address(y) + x * BYTES_PER_PIXEL) as *mut u32, pixel) };
    }

    fn move_rows(&mut self, from: usize, to: usize, count: usize) {
        debug_assert!(to < from && from + count <= self.height);
        // SAFETY: both row ranges are inside `region()` (see `put`); `copy`
        // allows them to overlap.
        unsafe {
            core::ptr::copy(self.row_address(from) as *const u8, self.row_address(to) as *mut u8, count * self.stride)
        };
    }

    fn clear_rows(&mut self, y: usize, count: usize) {
        debug_assert!(y + count <= self.height);
        // SAFETY: the rows are inside `region()` (see `put`).
        unsafe { core::ptr::write_bytes(self.row_address(y) as *mut u8, 0, count * self.stride) };
    }

    fn publish(&mut self, y: usize, count: usize) {
        (self.make_visible)(self.row_address(y), self.row_address(y + count));
    }
}
