//! The UEFI phase: everything the kernel asks the firmware before it takes the
//! machine over with ExitBootServices. This is the x86_64 port's counterpart
//! of the aarch64 kernel's device tree: a `Platform` with the boot arguments,
//! the RAM, the kernel image's place and sections, and what the banner says.
//!
//! Boot arguments come from the image's load options when they hold text
//! (`bcfg boot add ... -opt`, or the UEFI shell's command line, whose first
//! word, the program's own name, is dropped), else from the file
//! `\bootargs.txt` at the root of the volume the kernel was loaded from (the
//! ESP), else there are none.
//!
//! After ExitBootServices one firmware service is still used: ResetSystem, to
//! power the PC off ([`shut_down`]), once the kernel's map covers the
//! firmware's runtime code.

use crate::memory::region::PAGE_SIZE;
use alloc::{
    format,
    string::{String, ToString},
    vec::Vec,
};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use uefi::{
    boot::{self, MemoryType},
    fs::FileSystem,
    mem::memory_map::MemoryMap,
    proto::{
        console::gop::{GraphicsOutput, PixelFormat},
        loaded_image::LoadedImage,
    },
    system,
};

pub use crate::memory::region::MemoryRegion;

/// What the kernel's image looks like in memory: one entry per PE section.
#[derive(Clone, Debug)]
pub struct ImageSection {
    pub name: String,
    pub start: usize,
    pub end: usize,
    pub executable: bool,
    pub writable: bool,
}

/// Everything the kernel learnt from the firmware.
pub struct Platform {
    pub bootargs: String,
    /// Where `bootargs` came from, for the banner.
    pub bootargs_source: &'static str,
    pub firmware_vendor: String,
    pub firmware_revision: u32,
    pub uefi_revision: String,
    /// Conventional RAM: free from ExitBootServices on, filled in by
    /// `exit_boot_services`.
    pub ram: Vec<MemoryRegion>,
    /// Boot-services code and data: free once the firmware's page tables,
    /// which live there, are no longer the ones in CR3 (`memory::paging_init`).
    pub boot_services: Vec<MemoryRegion>,
    /// The firmware's runtime-services code, from its memory attributes table:
    /// mapped read-only and executable so that ResetSystem stays callable
    /// (`power.rs`); or why it cannot be.
    pub runtime_code: Result<Vec<MemoryRegion>, String>,
    /// RAM the frame allocator must not hand out (the first MiB: real-mode
    /// leftovers that some firmware still reads).
    pub reserved: Vec<MemoryRegion>,
    /// The end of the highest range in the memory map that is not MMIO.
    pub highest_address: usize,
    pub image: MemoryRegion,
    pub sections: Vec<ImageSection>,
    /// The pages below 1 MiB the application processors start in
    /// (`arch::x86_64::smp`), or why the firmware gave none.
    pub ap_trampoline: Result<usize, String>,
}

/// Memory types that are free for the kernel once boot services are gone.
fn is_usable(ty: MemoryType) -> bool {
    ty == MemoryType::CONVENTIONAL || is_boot_services(ty)
}

/// Boot-services memory: free after ExitBootServices, but the firmware's page
/// tables (still in CR3 until the kernel's own are loaded) live there.
fn is_boot_services(ty: MemoryType) -> bool {
    matches!(ty, MemoryType::BOOT_SERVICES_CODE | MemoryType::BOOT_SERVICES_DATA)
}

/// The first MiB stays out of the frame allocator.
const LOW_MEMORY_END: usize = 0x10_0000;

/// Ask the firmware everything; boot services are still up.
pub fn discover() -> Platform {
    let (bootargs, bootargs_source) = read_bootargs();
    let (image_base, image_size) = {
        let image = boot::open_protocol_exclusive::<LoadedImage>(boot::image_handle()).expect("LoadedImage protocol");
        let (base, size) = image.info();
        (base as usize, size as usize)
    };
    let image = MemoryRegion { base: image_base, size: image_size.next_multiple_of(PAGE_SIZE) };
    Platform {
        bootargs,
        bootargs_source,
        firmware_vendor: system::firmware_vendor().to_string(),
        firmware_revision: system::firmware_revision(),
        uefi_revision: format!("{}", system::uefi_revision()),
        ram: Vec::new(),
        boot_services: Vec::new(),
        runtime_code: runtime_code(),
        reserved: alloc::vec![MemoryRegion { base: 0, size: LOW_MEMORY_END }],
        highest_address: 0,
        sections: image_sections(image),
        image,
        ap_trampoline: low_pages_for_the_ap_trampoline(),
    }
}

/// Ask the firmware for the application processors' trampoline: pages whose
/// last byte lies below `AP_TRAMPOLINE_BELOW` (AllocatePages with
/// AllocateMaxAddress, UEFI 2.10, 7.2.1), as LOADER_DATA, which stays the
/// kernel's after ExitBootServices and never reaches the frame allocator
/// (neither does anything in the first MiB).
fn low_pages_for_the_ap_trampoline() -> Result<usize, String> {
    use crate::arch::x86_64::memory_layout::{AP_TRAMPOLINE_BELOW, AP_TRAMPOLINE_PAGES};
    let highest = (AP_TRAMPOLINE_BELOW - 1) as u64;
    boot::allocate_pages(boot::AllocateType::MaxAddress(highest), MemoryType::LOADER_DATA, AP_TRAMPOLINE_PAGES)
        .map(|pages| pages.as_ptr() as usize)
        .map_err(|e| {
            format!(
                "the firmware gave no {} pages below {:#x} ({:?})",
                AP_TRAMPOLINE_PAGES,
                AP_TRAMPOLINE_BELOW,
                e.status()
            )
        })
}

/// Usable RAM in MiB according to the memory map right now (for the banner).
pub fn usable_ram_mib() -> usize {
    let map = boot::memory_map(MemoryType::LOADER_DATA).expect("memory map");
    let pages: u64 = map.entries().filter(|d| is_usable(d.ty) || is_loaded(d.ty)).map(|d| d.page_count).sum();
    (pages as usize * PAGE_SIZE) >> 20
}

/// Memory holding the loaded kernel and its data (usable RAM, but in use).
fn is_loaded(ty: MemoryType) -> bool {
    matches!(ty, MemoryType::LOADER_CODE | MemoryType::LOADER_DATA)
}

/// Whether the firmware's boot services still run (until [`exit_boot_services`]).
static BOOT_SERVICES_RUN: AtomicBool = AtomicBool::new(true);

/// Whether the firmware's boot services, and with them its text output
/// (ConOut), may still be called.
pub fn boot_services_run() -> bool {
    BOOT_SERVICES_RUN.load(Ordering::SeqCst)
}

/// Leave the firmware for good; record the final memory map in `platform`.
pub fn exit_boot_services(platform: &mut Platform) {
    // From here on the firmware's code is no longer the firmware's to run:
    // the console stops writing through ConOut before the call.
    BOOT_SERVICES_RUN.store(false, Ordering::SeqCst);
    // SAFETY: nothing of the firmware is used afterwards: no protocol is open
    // (the scopes above have ended), the heap is the kernel's own (BSS), the
    // console is COM1 driven directly, and the memory map is copied out below.
    let map = unsafe { boot::exit_boot_services(Some(MemoryType::LOADER_DATA)) };
    for descriptor in map.entries() {
        let region =
            MemoryRegion { base: descriptor.phys_start as usize, size: descriptor.page_count as usize * PAGE_SIZE };
        if descriptor.ty != MemoryType::MMIO && descriptor.ty != MemoryType::MMIO_PORT_SPACE {
            platform.highest_address = platform.highest_address.max(region.end());
        }
        if is_boot_services(descriptor.ty) {
            platform.boot_services.push(region);
        } else if descriptor.ty == MemoryType::CONVENTIONAL {
            platform.ram.push(region);
        }
    }
    // The map's own buffer (LOADER_DATA) is not usable RAM, so it may stay.
    core::mem::forget(map);
}

/// EFI_MEMORY_ATTRIBUTES_TABLE (UEFI 2.10, 4.6.4): a header of four `u32`s
/// (version, number of entries, descriptor size, reserved), then memory
/// descriptors (`EFI_MEMORY_DESCRIPTOR`) for the runtime regions, where code
/// pages say EFI_MEMORY_RO and data pages EFI_MEMORY_XP.
mod memory_attributes {
    pub const HEADER_BYTES: usize = 16;
    pub const NUMBER_OF_ENTRIES: usize = 4;
    pub const DESCRIPTOR_SIZE: usize = 8;
}

/// The runtime-services code regions, from the memory attributes table: each
/// read-only (code) or never executable (data), never both writable and
/// executable. Without the table, or with a region that is neither, the
/// kernel cannot map the firmware's runtime code without breaking W^X.
fn runtime_code() -> Result<Vec<MemoryRegion>, String> {
    let table = system::with_config_table(|entries| {
        entries
            .iter()
            .find(|e| e.guid == uefi::table::cfg::ConfigTableEntry::MEMORY_ATTRIBUTES_GUID)
            .map(|e| e.address as usize)
    })
    .ok_or_else(|| String::from("the firmware publishes no memory attributes table"))?;
    let u32_at = |at: usize| {
        // SAFETY: the firmware's table lies at `table`, identity mapped, and the
        // offsets read stay inside its header and the entries it counts.
        unsafe { core::ptr::read_unaligned((table + at) as *const u32) as usize }
    };
    let (count, size) = (u32_at(memory_attributes::NUMBER_OF_ENTRIES), u32_at(memory_attributes::DESCRIPTOR_SIZE));
    if size < core::mem::size_of::<uefi::mem::memory_map::MemoryDescriptor>() {
        return Err(format!("the memory attributes table's descriptors are {} bytes, too small", size));
    }
    let mut code = Vec::new();
    for i in 0..count {
        // SAFETY: as above: entry `i` of `count`, each `size` bytes.
        let descriptor: uefi::mem::memory_map::MemoryDescriptor =
            unsafe { core::ptr::read_unaligned((table + memory_attributes::HEADER_BYTES + i * size) as *const _) };
        let read_only = descriptor.att.contains(uefi::mem::memory_map::MemoryAttribute::READ_ONLY);
        let never_executed = descriptor.att.contains(uefi::mem::memory_map::MemoryAttribute::EXECUTE_PROTECT);
        let region =
            MemoryRegion { base: descriptor.phys_start as usize, size: descriptor.page_count as usize * PAGE_SIZE };
        match (read_only, never_executed) {
            (true, false) => code.push(region),
            (_, true) => {}
            (false, false) => {
                return Err(format!(
                    "the runtime region {:#x}-{:#x} is neither read-only nor never executed",
                    region.base,
                    region.end()
                ))
            }
        }
    }
    Ok(code)
}

/// Whether the firmware's runtime code is mapped so that ResetSystem can run:
/// 0 not yet known (before paging), 1 yes, 2 no.
static RUNTIME_CALLABLE: AtomicU8 = AtomicU8::new(0);

/// Record whether `memory::paging_init` mapped the firmware's runtime code.
pub fn set_runtime_services_callable(callable: bool) {
    RUNTIME_CALLABLE.store(if callable { 1 } else { 2 }, Ordering::SeqCst);
}

/// Whether ResetSystem can be called: `None` before paging has decided.
pub fn runtime_services_callable() -> Option<bool> {
    match RUNTIME_CALLABLE.load(Ordering::SeqCst) {
        0 => None,
        state => Some(state == 1),
    }
}

/// Power the PC off through the firmware's ResetSystem(EfiResetShutdown)
/// (UEFI 2.10, 8.5.1). Only once [`runtime_services_callable`] says so, with
/// interrupts off and the SSE the firmware's code may use switched on.
pub fn shut_down() -> ! {
    uefi::runtime::reset(uefi::runtime::ResetType::SHUTDOWN, uefi::Status::SUCCESS, None)
}

/// The graphics mode the firmware set up, as the Graphics Output Protocol
/// describes it (UEFI 2.10, 12.9 "Graphics Output Protocol",
/// `EFI_GRAPHICS_OUTPUT_PROTOCOL_MODE` and `EFI_GRAPHICS_OUTPUT_MODE_INFORMATION`).
#[derive(Clone, Copy, Debug)]
pub struct GraphicsMode {
    /// `FrameBufferBase`: the physical address of the first pixel.
    pub base: usize,
    /// `FrameBufferSize` in bytes.
    pub size: usize,
    /// `HorizontalResolution` x `VerticalResolution` in pixels.
    pub width: usize,
    pub height: usize,
    /// `PixelsPerScanLine`: pixels from one row to the next (at least `width`).
    pub pixels_per_scan_line: usize,
    /// `PixelBlueGreenRedReserved8BitPerColor` (`"BGR"`) or
    /// `PixelRedGreenBlueReserved8BitPerColor` (`"RGB"`): 32-bit pixels, the
    /// only kinds with a framebuffer this console can draw on.
    pub format: &'static str,
}

/// Ask the firmware for its Graphics Output Protocol and the current mode's
/// framebuffer, or say why there is none to draw on. Boot services must run.
///
/// The protocol is opened exclusively, which disconnects the firmware's own
/// graphics text console from it (UEFI 2.10, 7.3 `OpenProtocol`,
/// `EXCLUSIVE`): from here on only the kernel draws there.
pub fn graphics_output() -> Result<GraphicsMode, String> {
    let handle = boot::get_handle_for_protocol::<GraphicsOutput>()
        .map_err(|_| String::from("the firmware offers no Graphics Output Protocol"))?;
    let mut gop = boot::open_protocol_exclusive::<GraphicsOutput>(handle)
        .map_err(|e| format!("the Graphics Output Protocol would not open: {:?}", e.status()))?;
    let mode = gop.current_mode_info();
    let format = match mode.pixel_format() {
        PixelFormat::Bgr => "BGR",
        PixelFormat::Rgb => "RGB",
        PixelFormat::Bitmask => {
            return Err(format!(
                "the GOP's pixels are laid out by a bit mask ({:?}), not 32-bit RGB or BGR",
                mode.pixel_bitmask()
            ))
        }
        PixelFormat::BltOnly => return Err(String::from("the GOP mode is Blt-only: it has no framebuffer to draw on")),
    };
    let (width, height) = mode.resolution();
    let mut framebuffer = gop.frame_buffer();
    Ok(GraphicsMode {
        base: framebuffer.as_mut_ptr() as usize,
        size: framebuffer.size(),
        width,
        height,
        pixels_per_scan_line: mode.stride(),
        format,
    })
}

fn read_bootargs() -> (String, &'static str) {
    if let Some(text) = load_options() {
        return (text, "image load options");
    }
    let mut fs = match boot::get_image_file_system(boot::image_handle()) {
        Ok(protocol) => FileSystem::new(protocol),
        Err(_) => return (String::new(), "none: no boot volume"),
    };
    match fs.read_to_string(uefi::cstr16!("\\bootargs.txt")) {
        Ok(text) => (text.split_whitespace().collect::<Vec<_>>().join(" "), "\\bootargs.txt on the boot volume"),
        Err(_) => (String::new(), "none"),
    }
}

/// The load options, if they are printable text. Boot entries that the
/// firmware made up by itself carry binary data there (EDK II puts a GUID), so
/// anything that is not a NUL-terminated UCS-2 string of printable ASCII is
/// ignored.
fn load_options() -> Option<String> {
    let image = boot::open_protocol_exclusive::<LoadedImage>(boot::image_handle()).ok()?;
    let text = image.load_options_as_cstr16().ok()?.to_string();
    if !text.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return None;
    }
    // The UEFI shell passes the whole command line, program name first.
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if words.first().is_some_and(|first| first.to_ascii_lowercase().ends_with(".efi")) {
        words.remove(0);
    }
    (!words.is_empty()).then(|| words.join(" "))
}

/// PE/COFF layout (Microsoft PE format specification): the DOS header's
/// `e_lfanew` at 0x3c points to "PE\0\0", followed by the 20-byte COFF header
/// (NumberOfSections at +2, SizeOfOptionalHeader at +16), the optional header,
/// then 40-byte section headers (Name +0, VirtualSize +8, VirtualAddress +12,
/// Characteristics +36).
mod pe {
    pub const E_LFANEW: usize = 0x3c;
    pub const SIGNATURE: &[u8; 4] = b"PE\0\0";
    pub const COFF_HEADER_SIZE: usize = 20;
    pub const NUMBER_OF_SECTIONS: usize = 2;
    pub const SIZE_OF_OPTIONAL_HEADER: usize = 16;
    pub const SECTION_HEADER_SIZE: usize = 40;
    pub const SECTION_VIRTUAL_SIZE: usize = 8;
    pub const SECTION_VIRTUAL_ADDRESS: usize = 12;
    pub const SECTION_CHARACTERISTICS: usize = 36;
    pub const SCN_MEM_EXECUTE: u32 = 0x2000_0000;
    pub const SCN_MEM_WRITE: u32 = 0x8000_0000;
}

/// Read the section table of the loaded image (it stays in memory, headers
/// included, where the firmware put it).
fn image_sections(image: MemoryRegion) -> Vec<ImageSection> {
    // SAFETY: the firmware loaded the whole image, headers included, at
    // `image.base` and keeps it there; the reads below stay inside its size.
    let bytes = unsafe { core::slice::from_raw_parts(image.base as *const u8, image.size) };
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let pe_header = u32_at(pe::E_LFANEW) as usize;
    assert!(&bytes[pe_header..pe_header + 4] == pe::SIGNATURE, "kernel image: no PE signature");
    let coff = pe_header + 4;
    let count = u16_at(coff + pe::NUMBER_OF_SECTIONS);
    let first = coff + pe::COFF_HEADER_SIZE + u16_at(coff + pe::SIZE_OF_OPTIONAL_HEADER);
    (0..count)
        .map(|i| {
            let header = first + i * pe::SECTION_HEADER_SIZE;
            let name = String::from_utf8_lossy(&bytes[header..header + 8]).trim_end_matches('\0').to_string();
            let start = image.base + u32_at(header + pe::SECTION_VIRTUAL_ADDRESS) as usize;
            let size = u32_at(header + pe::SECTION_VIRTUAL_SIZE) as usize;
            let characteristics = u32_at(header + pe::SECTION_CHARACTERISTICS);
            ImageSection {
                name,
                start,
                end: start + size,
                executable: characteristics & pe::SCN_MEM_EXECUTE != 0,
                writable: characteristics & pe::SCN_MEM_WRITE != 0,
            }
        })
        .collect()
}
