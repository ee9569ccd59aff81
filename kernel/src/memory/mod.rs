//! Physical memory: the kernel heap and the page-frame allocator.
//!
//! - The heap (`linked_list_allocator`) lives in a fixed region of the image's
//!   BSS, so it works from the kernel's first line, before the platform's
//!   description of memory has been read, and its size is the same on every
//!   machine (a registration flood exhausts it deterministically, never the
//!   frames).
//! - Page frames (`buddy_system_allocator`) come from the RAM the platform
//!   reports (the device tree, the UEFI memory map), minus the kernel image and
//!   what the platform reserves.

pub mod frames;
pub mod heap;
pub mod region;

use alloc::vec::Vec;
use region::MemoryRegion;

pub use region::PAGE_SIZE;

/// Hand `ram` to the frame allocator, less every `reserved` range and the
/// kernel image `kernel`. The kernel's map must already reach all of it: the
/// frames the page-table set-up takes may lie anywhere in it. Called again for
/// RAM that becomes free later (a UEFI PC's boot-services memory).
pub fn init(ram: &[MemoryRegion], reserved: impl IntoIterator<Item = MemoryRegion>, kernel: MemoryRegion) {
    let reserved: Vec<MemoryRegion> = reserved.into_iter().chain(core::iter::once(kernel)).collect();
    frames::init(ram, &reserved);
}
