//! The Pi 4's HDMI console: a framebuffer from the firmware, through the
//! VideoCore mailbox (`mailbox.rs`), that the console draws its text on
//! (`console::attach_screen`), from the same moment the UART starts printing.
//!
//! The request follows the firmware's "Mailbox property interface" (the
//! raspberrypi/firmware wiki), in the order Circle's `CBcmFrameBuffer` uses:
//! ask for the display's size, then in one message set the physical and
//! virtual size to it, 32 bits per pixel, RGB order and a zero virtual offset,
//! allocate the buffer and read back its pitch.
//! The firmware may give something other than what was asked for: what it
//! answers is what is used, and a depth this console cannot draw is reported.

use super::mailbox::{self, Mailbox, Tag};
use super::memory as board;
use crate::devicetree::{self, MemoryRegion, Platform, Reservation, Source};
use crate::drivers::framebuffer::{Framebuffer, BYTES_PER_PIXEL};
use alloc::{format, string::String};

const TAG_GET_PHYSICAL_SIZE: u32 = 0x0004_0003;
const TAG_SET_PHYSICAL_SIZE: u32 = 0x0004_8003;
const TAG_SET_VIRTUAL_SIZE: u32 = 0x0004_8004;
const TAG_SET_DEPTH: u32 = 0x0004_8005;
const TAG_SET_PIXEL_ORDER: u32 = 0x0004_8006;
const TAG_SET_VIRTUAL_OFFSET: u32 = 0x0004_8009;
const TAG_ALLOCATE_BUFFER: u32 = 0x0004_0001;
const TAG_GET_PITCH: u32 = 0x0004_0008;
/// Pixel order value of TAG_SET_PIXEL_ORDER: 1 = RGB (0 = BGR).
const PIXEL_ORDER_RGB: u32 = 1;
/// Alignment asked of the buffer: a page, so that it maps page by page.
const BUFFER_ALIGNMENT: u32 = 4096;
/// The size used when the firmware reports no display (0 x 0): VGA, which
/// every HDMI display accepts.
const NO_DISPLAY_SIZE: (u32, u32) = (640, 480);

/// Find the mailbox, get a framebuffer and attach the console's screen to it;
/// the line that says what happened, for the caller to print. The
/// framebuffer's memory goes into `platform` (mapped by `mmu::enable`, never
/// handed out by the frame allocator).
pub fn init(platform: &mut Platform) -> String {
    let Some((base, source)) = mailbox_base(platform) else {
        return String::from(
            "screen:  none: the device tree describes no VideoCore mailbox (compatible \"brcm,bcm2835-mbox\"), so there is no framebuffer to ask for",
        );
    };
    let via = format!("VideoCore mailbox {:#010x}, {}", base, source.describe("device tree"));
    // SAFETY: the address is the BCM2711 mailbox (device tree or board table),
    // inside the boot map's device window; only this function uses it, once.
    let mailbox = unsafe { Mailbox::new(base) };
    let framebuffer = match allocate(&mailbox) {
        Ok(framebuffer) => framebuffer,
        Err(why) => return format!("screen:  none: {} ({})", why, via),
    };
    let region = framebuffer.region();
    let Some((cols, rows)) = crate::console::attach_screen(framebuffer) else {
        return format!(
            "screen:  none: {}x{} is too small for one text cell ({})",
            framebuffer.width, framebuffer.height, via
        );
    };
    platform.framebuffer = Some(region);
    platform.reserved.push(Reservation {
        region,
        what: String::from("the HDMI framebuffer the firmware allocated"),
        no_map: false,
    });
    format!(
        "screen:  HDMI {}x{}, 32 bpp, pitch {} B, framebuffer {:#010x}-{:#010x}, {}x{} text cells of {}x{} px ({})",
        framebuffer.width,
        framebuffer.height,
        framebuffer.stride,
        region.base,
        region.end(),
        cols,
        rows,
        text_screen::GLYPH_WIDTH,
        text_screen::GLYPH_HEIGHT,
        via
    )
}

/// The mailbox the device tree names, or the board table's without a tree.
fn mailbox_base(platform: &Platform) -> Option<(usize, Source)> {
    match platform.tree.and_then(devicetree::open) {
        Some(fdt) => devicetree::first_reg(&fdt, &["brcm,bcm2835-mbox"], 0).map(|base| (base, Source::DeviceTree)),
        None => Some((board::MAILBOX_BASE, Source::BoardTable)),
    }
}

/// Ask the firmware for a framebuffer the size of the display.
fn allocate(mailbox: &Mailbox) -> Result<Framebuffer, String> {
    let display = mailbox
        .call(&[Tag { id: TAG_GET_PHYSICAL_SIZE, values: &[], answer_words: 2 }])
        .map_err(|e| format!("asking the display's size: {}", e))?;
    let (width, height) = match (display[0][0], display[0][1]) {
        (0, _) | (_, 0) => NO_DISPLAY_SIZE,
        size => size,
    };
    let answers = mailbox
        .call(&[
            Tag { id: TAG_SET_PHYSICAL_SIZE, values: &[width, height], answer_words: 2 },
            Tag { id: TAG_SET_VIRTUAL_SIZE, values: &[width, height], answer_words: 2 },
            Tag { id: TAG_SET_DEPTH, values: &[32], answer_words: 1 },
            Tag { id: TAG_SET_PIXEL_ORDER, values: &[PIXEL_ORDER_RGB], answer_words: 1 },
            Tag { id: TAG_SET_VIRTUAL_OFFSET, values: &[0, 0], answer_words: 2 },
            Tag { id: TAG_ALLOCATE_BUFFER, values: &[BUFFER_ALIGNMENT], answer_words: 2 },
            Tag { id: TAG_GET_PITCH, values: &[], answer_words: 1 },
        ])
        .map_err(|e| format!("allocating a {}x{} framebuffer: {}", width, height, e))?;
    let (width, height) = (answers[0][0] as usize, answers[0][1] as usize);
    let depth = answers[2][0];
    let (bus_address, size) = (answers[5][0], answers[5][1] as usize);
    let pitch = answers[6][0] as usize;
    if depth != 32 {
        return Err(format!("the firmware gave {} bits per pixel; this console draws 32", depth));
    }
    if bus_address == 0 || size == 0 {
        return Err(format!("the firmware allocated no buffer for {}x{} at 32 bpp", width, height));
    }
    if pitch < width * BYTES_PER_PIXEL || pitch * height > size {
        return Err(format!(
            "the firmware's buffer ({} B, pitch {} B) does not hold {}x{} pixels of 32 bits",
            size, pitch, width, height
        ));
    }
    let base = mailbox::physical(bus_address);
    // The buffer is mapped write-back (see `drivers/framebuffer.rs`): the
    // display reads memory, so every change is cleaned out of the caches.
    let make_visible = crate::arch::aarch64::cache::clean_dcache_to_poc;
    let framebuffer = Framebuffer { base, width, height, stride: pitch, make_visible };
    check_inside_the_first_gib(framebuffer.region())?;
    Ok(framebuffer)
}

/// The VideoCore addresses only the first GiB, which the boot map covers as
/// RAM; a buffer reaching past it would be a firmware answer not to trust.
fn check_inside_the_first_gib(region: MemoryRegion) -> Result<(), String> {
    if region.end() > 1 << 30 {
        return Err(format!("the firmware's buffer {:#x}-{:#x} reaches past the first GiB", region.base, region.end()));
    }
    Ok(())
}
