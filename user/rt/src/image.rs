//! Where this program's own image lies, from the symbols the linker script
//! (`linker/user.ld`, `linker/user-x86_64.ld`) defines: the text, and the whole
//! image (text, read-only data, data and bss). A program that needs the bounds of
//! its own text or image takes them from here, never from a guess at their size.

use core::ops::Range;

unsafe extern "C" {
    /// The first byte of the image, which is also the first byte of `.text`.
    static __user_image_start: u8;
    /// The byte after the last one of `.text`.
    static __text_end: u8;
    /// The byte after the image's last page.
    static __user_image_end: u8;
}

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    /// The global offset table (`linker/user-x86_64.ld`): the code, compiled
    /// position-independent, loads some addresses through it.
    static __got_start: u8;
    static __got_end: u8;
}

/// The program's text: mapped read + execute, never writable.
pub fn text() -> Range<u64> {
    address_of(&raw const __user_image_start)..address_of(&raw const __text_end)
}

/// The whole program image, its writable data included.
pub fn image() -> Range<u64> {
    address_of(&raw const __user_image_start)..address_of(&raw const __user_image_end)
}

/// The global offset table, in the read-only segment (empty on aarch64, whose
/// programs are compiled with absolute addresses and have none).
pub fn got() -> Range<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        address_of(&raw const __got_start)..address_of(&raw const __got_end)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0..0
    }
}

fn address_of(symbol: *const u8) -> u64 {
    symbol as u64
}
