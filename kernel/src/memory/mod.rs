//! Physical memory: the kernel heap and the page-frame allocator.
//!
//! - The heap (`linked_list_allocator`) lives in a fixed region of BSS, so it
//!   works before the device tree has been read and its size is the same on every
//!   board (a registration flood exhausts it deterministically, never the frames).
//! - Page frames (`buddy_system_allocator`) come from the RAM the device tree
//!   reports, minus the kernel image, the device tree blob and `/memreserve/`s.

pub mod frames;
pub mod heap;
pub mod region;

use crate::devicetree::Platform;

pub use region::PAGE_SIZE;

/// The kernel image's bounds, from the linker script.
pub mod layout {
    extern "C" {
        static __kernel_start: u8;
        static __text_end: u8;
        static __rodata_end: u8;
        static __bss_start: u8;
        static __boot_stack_guard: u8;
        static __boot_stack_bottom: u8;
        static __kernel_end: u8;
    }

    /// The address of a linker symbol (never dereferenced, so no `unsafe`).
    macro_rules! symbol_address {
        ($sym:ident) => {
            core::ptr::addr_of!($sym) as usize
        };
    }

    pub fn kernel_start() -> usize {
        symbol_address!(__kernel_start)
    }
    /// End of text = start of rodata.
    pub fn text_end() -> usize {
        symbol_address!(__text_end)
    }
    /// End of rodata = start of data, bss and stack.
    pub fn rodata_end() -> usize {
        symbol_address!(__rodata_end)
    }
    /// Start of BSS, the first memory the kernel writes itself (then the boot stack).
    pub fn bss_start() -> usize {
        symbol_address!(__bss_start)
    }
    /// The unmapped page below the boot stack.
    pub fn stack_guard() -> usize {
        symbol_address!(__boot_stack_guard)
    }
    pub fn stack_bottom() -> usize {
        symbol_address!(__boot_stack_bottom)
    }
    pub fn kernel_end() -> usize {
        symbol_address!(__kernel_end)
    }
}

/// Hand the platform's free RAM to the frame allocator. The boot map must
/// already reach all of it (`main.rs` has `arch::boot_map::cover_ram` add it
/// first): the frames the MMU set-up takes may lie anywhere in it.
pub fn init(platform: &Platform) {
    let kernel =
        region::MemoryRegion { base: layout::kernel_start(), size: layout::kernel_end() - layout::kernel_start() };
    let reserved: alloc::vec::Vec<_> =
        platform.reserved.iter().map(|r| r.region).chain(core::iter::once(kernel)).collect();
    frames::init(&platform.ram, &reserved);
}
