//! The kernel heap: a `linked_list_allocator` over a fixed BSS region.

use linked_list_allocator::LockedHeap;

/// 16 MiB: room for the device tree's strings, task structures and the probe
/// tables of the registry's limit (`probe::PROBE_LIMIT` probes).
pub const HEAP_SIZE: usize = 16 * 1024 * 1024;

#[repr(C, align(4096))]
struct HeapArea([u8; HEAP_SIZE]);

static mut HEAP_AREA: HeapArea = HeapArea([0; HEAP_SIZE]);

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Give the allocator its region. Called once, first thing in `kernel_main`.
pub fn init() {
    // SAFETY: called once at boot on one core before any allocation; HEAP_AREA is
    // used by nothing else, so handing the allocator exclusive ownership is sound.
    unsafe {
        let start = core::ptr::addr_of_mut!(HEAP_AREA) as *mut u8;
        ALLOCATOR.lock().init(start, HEAP_SIZE);
    }
}

/// Bytes in use and bytes free, for reports and the self-test.
pub fn usage() -> (usize, usize) {
    let heap = ALLOCATOR.lock();
    (heap.used(), heap.free())
}
