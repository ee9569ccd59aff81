//! Physical memory and the kernel's own map: the heap, the page-frame
//! allocator, the kernel stacks, and the identity map built at boot.
//!
//! - The heap (`linked_list_allocator`, the aarch64 kernel's `heap.rs`) lives
//!   in a fixed region of the image's BSS, so it works from the first line of
//!   the UEFI entry point, before and after ExitBootServices alike.
//! - Page frames (`buddy_system_allocator`, the aarch64 kernel's `frames.rs`)
//!   come from the RAM the final UEFI memory map calls conventional, minus the
//!   first MiB, and, once CR3 holds the kernel's own tables, from boot-services
//!   memory, where the firmware's page tables lived until then.
//! - The kernel map identity-maps physical memory for ring 0 with the image's
//!   sections mapped by their PE flags (`paging_init`). Thread kernel stacks
//!   are frames of that map (the shared scheduler allocates them); the boot
//!   stack and the double-fault stack have unmapped guard pages.

pub mod frames;
pub mod heap;
pub mod region;

use crate::{
    arch::mmu::{self, Access, TranslationTable, IDENTITY_LIMIT, LARGE_PAGE},
    devicetree::Platform,
    println,
};
use alloc::format;

pub use region::PAGE_SIZE;

/// Where the kernel image lies, and the guard pages of its static stacks.
pub mod layout {
    use super::PAGE_SIZE;
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
}

/// Hand the platform's conventional RAM to the frame allocator. Boot-services
/// memory waits for `paging_init`: until CR3 points at the kernel's tables, the
/// firmware's tables there are the ones the processor walks.
pub fn init(platform: &Platform) {
    frames::init(&platform.ram, &with_the_kernel_image(&platform.reserved));
}

/// `reserved` and the kernel image: what the frame allocator must never hand out.
fn with_the_kernel_image(reserved: &[region::MemoryRegion]) -> alloc::vec::Vec<region::MemoryRegion> {
    let kernel =
        region::MemoryRegion { base: layout::kernel_start(), size: layout::kernel_end() - layout::kernel_start() };
    reserved.iter().copied().chain(core::iter::once(kernel)).collect()
}

/// What the frame allocator had been given when CR3 switched to the kernel's
/// tables (the `boot-services` self-test proves none of it is boot-services memory).
static GIVEN_BEFORE_THE_SWITCH: spin::Once<alloc::vec::Vec<crate::devicetree::MemoryRegion>> = spin::Once::new();

/// The ranges the frame allocator could hand out before the switch to the
/// kernel's tables: every frame allocated until then came from them.
pub fn given_before_the_switch() -> &'static [crate::devicetree::MemoryRegion] {
    GIVEN_BEFORE_THE_SWITCH.get().map(|given| given.as_slice()).unwrap_or(&[])
}

/// Whether `page` holds the firmware's runtime code (mapped so that
/// ResetSystem stays callable: read-only and executable).
fn is_runtime_code(page: usize, platform: &Platform) -> bool {
    platform.runtime_code.as_ref().is_ok_and(|code| code.iter().any(|r| r.base <= page && page < r.end()))
}

/// How the kernel map treats one 4 KiB page that shares a 2 MiB region with
/// the image, a guard page or page 0: `None` leaves it unmapped.
fn small_page_access(page: usize, platform: &Platform) -> Option<Access> {
    let guards = [0, layout::stack_guard(), layout::double_fault_stack_guard()];
    if guards.contains(&page) {
        return None;
    }
    if is_runtime_code(page, platform) {
        return Some(Access::KernelText);
    }
    if !(platform.image.base..platform.image.end()).contains(&page) {
        return Some(Access::KernelReadWrite);
    }
    // Pages of the image outside every section are its headers: read-only.
    let section = platform.sections.iter().find(|s| s.start <= page && page < s.end.next_multiple_of(PAGE_SIZE));
    Some(match section {
        Some(s) if s.executable => Access::KernelText,
        Some(s) if s.writable => Access::KernelReadWrite,
        _ => Access::KernelReadOnly,
    })
}

/// Build the kernel's table and switch to it: physical memory from 0 to the
/// end of RAM (at least 4 GiB, which holds the PC's MMIO: local APIC, I/O APIC,
/// the firmware flash) identity mapped for ring 0, read/write and never
/// executable, except the kernel image, whose sections get their own
/// permissions, and the guard pages, which stay unmapped.
pub fn paging_init(platform: &Platform) {
    for section in &platform.sections {
        assert!(section.start.is_multiple_of(PAGE_SIZE), "kernel image section {} is not page aligned", section.name);
        assert!(
            !(section.executable && section.writable),
            "kernel image section {} is writable and executable (refused: W^X)",
            section.name
        );
    }
    const FOUR_GIB: usize = 4 << 30;
    let top = platform.highest_address.max(FOUR_GIB).next_multiple_of(LARGE_PAGE);
    assert!(
        top <= IDENTITY_LIMIT,
        "physical memory ends at {:#x}, beyond the identity map's {:#x}",
        top,
        IDENTITY_LIMIT
    );
    let mut table = TranslationTable::new().expect("a frame for the kernel's PML4");
    let special = |region: usize| {
        let region_end = region + LARGE_PAGE;
        let overlaps = |start: usize, end: usize| start < region_end && region < end;
        overlaps(platform.image.base, platform.image.end())
            || [0, layout::stack_guard(), layout::double_fault_stack_guard()]
                .iter()
                .any(|&g| overlaps(g, g + PAGE_SIZE))
            || platform.runtime_code.as_ref().is_ok_and(|code| code.iter().any(|r| overlaps(r.base, r.end())))
    };
    for region in (0..top).step_by(LARGE_PAGE) {
        let result = if special(region) {
            (region..region + LARGE_PAGE).step_by(PAGE_SIZE).try_for_each(|page| {
                match small_page_access(page, platform) {
                    Some(access) => table.map(page, page, PAGE_SIZE, access),
                    None => Ok(()),
                }
            })
        } else {
            table.map(region, region, LARGE_PAGE, Access::KernelReadWrite)
        };
        result.unwrap_or_else(|e| panic!("kernel map at {:#x}: {:?}", region, e));
    }
    mmu::install_kernel_table(table);
    // The firmware's tables are retired: their memory may now be handed out.
    GIVEN_BEFORE_THE_SWITCH.call_once(frames::given);
    frames::init(&platform.boot_services, &with_the_kernel_image(&platform.reserved));
    let boot_services_bytes: usize = platform.boot_services.iter().map(|r| r.size).sum();
    println!(
        "memory:  {} MiB of boot-services memory handed to the frame allocator after the switch to the kernel's tables",
        boot_services_bytes >> 20
    );
    crate::board::uefi_pc::firmware::set_runtime_services_callable(platform.runtime_code.is_ok());
    let runtime = match &platform.runtime_code {
        Ok(code) => format!("the firmware's runtime code read-only and executable ({} regions)", code.len()),
        Err(why) => format!("the firmware's runtime code not executable ({})", why),
    };
    println!(
        "paging:  identity map 0..{:#x} (ring 0, never executable outside the image), image {:#x}..{:#x} mapped by its {} PE sections; {}",
        top,
        platform.image.base,
        platform.image.end(),
        platform.sections.len(),
        runtime
    );
}
