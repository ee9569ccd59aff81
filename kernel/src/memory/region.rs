//! The two facts about physical memory that every other module agrees on: a
//! range of it, and the size of a page. A leaf: the device tree or the UEFI
//! phase describes RAM in these terms, the frame allocator hands them out, the
//! MMU maps them, and none of them has to reach into another to say so.

/// The page size of the 4 KiB translation granule used everywhere.
pub const PAGE_SIZE: usize = 4096;

/// A range of physical memory.
#[derive(Clone, Copy, Debug)]
pub struct MemoryRegion {
    pub base: usize,
    pub size: usize,
}

impl MemoryRegion {
    pub fn end(&self) -> usize {
        self.base + self.size
    }
}
