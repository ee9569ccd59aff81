//! The UEFI PC's memory after ExitBootServices: the kernel's own map, built
//! from what the firmware described (the image's PE sections, its runtime
//! code, the end of physical memory), and the boot-services memory handed to
//! the frame allocator once CR3 no longer points at the firmware's tables,
//! which live there.
//!
//! The kernel map identity-maps physical memory for ring 0 with the image's
//! sections mapped by their PE flags. Thread kernel stacks are frames of that
//! map (the scheduler allocates them); the boot stack and the double-fault
//! stack have unmapped guard pages (`arch::memory_layout`).

use super::firmware::Platform;
use crate::{
    arch::{
        x86_64::{
            memory_layout as layout,
            mmu::{self, TranslationTable, IDENTITY_LIMIT, LARGE_PAGE},
        },
        Access, PageTable,
    },
    memory::{self, frames, region::MemoryRegion, PAGE_SIZE},
    println,
};
use alloc::{format, vec::Vec};

/// What the frame allocator had been given when CR3 switched to the kernel's
/// tables (the `boot-services` self-test proves none of it is boot-services memory).
static GIVEN_BEFORE_THE_SWITCH: spin::Once<Vec<MemoryRegion>> = spin::Once::new();

/// The ranges the frame allocator could hand out before the switch to the
/// kernel's tables: every frame allocated until then came from them.
pub fn given_before_the_switch() -> &'static [MemoryRegion] {
    GIVEN_BEFORE_THE_SWITCH.get().map(|given| given.as_slice()).unwrap_or(&[])
}

/// Whether `page` holds the firmware's runtime code (mapped so that
/// ResetSystem stays callable: read-only and executable).
fn is_runtime_code(page: usize, platform: &Platform) -> bool {
    platform.runtime_code.as_ref().is_ok_and(|code| code.iter().any(|r| r.base <= page && page < r.end()))
}

/// Whether `page` is the application processors' start code (the first page
/// of the trampoline: read-only and executable; its parameter and PML4 pages
/// stay read/write and never executable like the rest of low memory).
fn is_ap_start_code(page: usize, platform: &Platform) -> bool {
    platform.ap_trampoline.as_ref().is_ok_and(|&code| code == page)
}

/// How the kernel map treats one 4 KiB page that shares a 2 MiB region with
/// the image, a guard page or page 0: `None` leaves it unmapped.
fn small_page_access(page: usize, platform: &Platform) -> Option<Access> {
    let guards = [0, layout::stack_guard(), layout::double_fault_stack_guard()];
    if guards.contains(&page) {
        return None;
    }
    if is_runtime_code(page, platform) || is_ap_start_code(page, platform) {
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
/// permissions, the firmware's runtime code and the application processors'
/// start code (read-only and executable), and the guard pages, which stay
/// unmapped. Then hand the
/// boot-services memory to the frame allocator.
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
            || platform.ap_trampoline.as_ref().is_ok_and(|&code| overlaps(code, code + PAGE_SIZE))
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
    memory::init(&platform.boot_services, platform.reserved.iter().copied(), layout::kernel_image());
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
        "paging:  identity map 0..{:#x} (ring 0, never executable outside the image and the AP start page), image {:#x}..{:#x} mapped by its {} PE sections; {}",
        top,
        platform.image.base,
        platform.image.end(),
        platform.sections.len(),
        runtime
    );
}
