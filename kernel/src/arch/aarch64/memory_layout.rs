//! The kernel image's layout, from the linker script (`linker/kernel-common.ld`):
//! where its sections begin and end, and the boot stack with the unmapped guard
//! page below it. The MMU maps the image section by section from these bounds.

use crate::memory::region::MemoryRegion;

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
/// The whole image, which the frame allocator must never hand out.
pub fn kernel_image() -> MemoryRegion {
    MemoryRegion { base: kernel_start(), size: kernel_end() - kernel_start() }
}
