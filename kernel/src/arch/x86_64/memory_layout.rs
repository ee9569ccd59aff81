//! Where the kernel image lies (the firmware loads it where it likes), the
//! kernel's two static stacks with the unmapped guard page below each: the
//! boot stack (later the idle loop's) and the double-fault stack (IST1), and
//! where the application processors' trampoline must lie (`smp.rs`).

use crate::memory::region::{MemoryRegion, PAGE_SIZE};
use core::sync::atomic::{AtomicUsize, Ordering};

static KERNEL_START: AtomicUsize = AtomicUsize::new(0);
static KERNEL_END: AtomicUsize = AtomicUsize::new(0);

/// Remember where the firmware loaded the image (LoadedImage protocol).
pub fn set_kernel_image(start: usize, end: usize) {
    KERNEL_START.store(start, Ordering::Relaxed);
    KERNEL_END.store(end, Ordering::Relaxed);
}
pub fn kernel_start() -> usize {
    KERNEL_START.load(Ordering::Relaxed)
}
pub fn kernel_end() -> usize {
    KERNEL_END.load(Ordering::Relaxed)
}
/// The whole image, which the frame allocator must never hand out.
pub fn kernel_image() -> MemoryRegion {
    MemoryRegion { base: kernel_start(), size: kernel_end() - kernel_start() }
}

/// A stack in the image's BSS whose first page stays unmapped: running
/// off its bottom faults instead of overwriting whatever lies below.
#[repr(C, align(4096))]
pub struct GuardedStack<const BYTES: usize> {
    guard: [u8; PAGE_SIZE],
    stack: [u8; BYTES],
}

impl<const BYTES: usize> GuardedStack<BYTES> {
    pub const fn new() -> Self {
        Self { guard: [0; PAGE_SIZE], stack: [0; BYTES] }
    }
}

/// The boot stack (later the idle loop's) and the double-fault stack (IST1).
pub const BOOT_STACK_BYTES: usize = 64 * 1024;
pub const DOUBLE_FAULT_STACK_BYTES: usize = 16 * 1024;
static mut BOOT_STACK: GuardedStack<BOOT_STACK_BYTES> = GuardedStack::new();
static mut DOUBLE_FAULT_STACK: GuardedStack<DOUBLE_FAULT_STACK_BYTES> = GuardedStack::new();

fn guard_of<const BYTES: usize>(stack: *const GuardedStack<BYTES>) -> usize {
    stack as usize
}

/// The unmapped page below the boot stack.
pub fn stack_guard() -> usize {
    guard_of(core::ptr::addr_of!(BOOT_STACK))
}
pub fn boot_stack_top() -> usize {
    stack_guard() + PAGE_SIZE + BOOT_STACK_BYTES
}
pub fn double_fault_stack_guard() -> usize {
    guard_of(core::ptr::addr_of!(DOUBLE_FAULT_STACK))
}
pub fn double_fault_stack_top() -> usize {
    double_fault_stack_guard() + PAGE_SIZE + DOUBLE_FAULT_STACK_BYTES
}

/// The application processors' trampoline: code, parameters, PML4 (`smp.rs`).
pub const AP_TRAMPOLINE_PAGES: usize = 3;
/// A STARTUP IPI's vector is the page number of the start address, 8 bits:
/// the trampoline must lie below 1 MiB. The firmware is asked for pages below
/// 0xa0000, where the legacy video memory and option ROMs begin.
pub const AP_TRAMPOLINE_BELOW: usize = 0xa_0000;
