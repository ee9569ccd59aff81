//! The PC's screen: the framebuffer of the mode the firmware's Graphics Output
//! Protocol set up (`firmware::graphics_output`), drawn on by the console's
//! text screen through the kernel's shared framebuffer driver
//! (`kernel/src/drivers/framebuffer.rs`).
//!
//! The buffer stays where it is after ExitBootServices (UEFI 2.10, 12.9: the
//! framebuffer is the graphics device's memory, not boot-services memory), so
//! the kernel keeps drawing on it; the kernel's map identity-maps the first
//! 4 GiB (`memory::paging_init`), and a buffer outside them is refused here.
//!
//! Nothing has to be pushed out of a cache: firmware maps a linear framebuffer
//! write-combining or uncached through the MTRRs and the PAT (Intel SDM Vol. 3A,
//! 12.3 "Methods of Caching Available": WC and UC stores are not kept in the
//! caches, and WC buffers are drained by the next serializing event or when they
//! fill), and a PCI BAR is never write-back memory. So the display sees every
//! store without the kernel doing anything, and the framebuffer's
//! `make_visible` is empty.

use crate::{
    board::uefi_pc::firmware::GraphicsMode,
    drivers::framebuffer::{Framebuffer, BYTES_PER_PIXEL},
};
use alloc::{format, string::String};

/// The kernel's map always covers physical memory up to here (`memory::paging_init`).
const IDENTITY_MAPPED_AT_LEAST: usize = 4 << 30;

/// A framebuffer for the firmware's graphics mode, or why it cannot be drawn on.
pub fn framebuffer(mode: &GraphicsMode) -> Result<Framebuffer, String> {
    let stride = mode.pixels_per_scan_line * BYTES_PER_PIXEL;
    if mode.pixels_per_scan_line < mode.width || stride * mode.height > mode.size {
        return Err(format!(
            "the GOP framebuffer ({} B, {} pixels per scan line) does not hold {}x{} pixels of 32 bits",
            mode.size, mode.pixels_per_scan_line, mode.width, mode.height
        ));
    }
    let framebuffer =
        Framebuffer { base: mode.base, width: mode.width, height: mode.height, stride, make_visible: nothing_to_do };
    if framebuffer.region().end() > IDENTITY_MAPPED_AT_LEAST {
        return Err(format!(
            "the GOP framebuffer at {:#x} reaches past 4 GiB, which the kernel's map does not always cover",
            mode.base
        ));
    }
    Ok(framebuffer)
}

/// The PC's `make_visible`: stores to a WC or UC framebuffer reach the display
/// by themselves (see the module's doc).
fn nothing_to_do(_start: usize, _end: usize) {}
