//! The UART chain-loader: a `kernel8.img` for the Raspberry Pi 4 that receives the
//! real kernel over the serial line from `cargo xtask chainboot --serial DEV`, checks
//! it, copies it to 0x80000 and jumps to it as if the firmware had loaded it. A new
//! kernel then costs a reset instead of an SD card swap.
//!
//! The protocol (version 1; `xtask/src/chainboot.rs` is the other side, docs/rpi4.md
//! describes it) is plain text one way and a small binary header the other, so a
//! terminal on the line shows what happens:
//!
//! 1. Loader: `chainload: ready v1 max <bytes>` about once a second until a header arrives.
//! 2. Host: 16 bytes, little-endian: magic `BRKL`, version `u16` (1), reserved `u16`
//!    (0), length `u32`, CRC-32 (IEEE 802.3, as zlib) of the payload `u32`.
//! 3. Loader: `chainload: ack header <length>` or `chainload: nak <reason>` (then 1).
//! 4. Host: the payload. A gap of more than [`BYTE_TIMEOUT_MS`] aborts it (then 1).
//! 5. Loader: `chainload: ack crc 0x<crc>` and `chainload: jumping to 0x00080000`, or
//!    `chainload: nak crc ...` (then 1).
//!
//! Bytes before the magic (a terminal's keystrokes, line noise while a cable is
//! plugged in) are skipped, so the host and the board can start in either order.

#![no_std]
#![no_main]

use aarch64_cpu::registers::{Readable, CNTFRQ_EL0, CNTPCT_EL0};
// The kernel's own drivers and Pi 4 address table (`kernel/devices`).
use brk_devices::{
    pl011,
    rpi4::{gpio, memory as board},
};
use core::fmt::Write;

core::arch::global_asm!(include_str!("entry.s"));

extern "C" {
    static __kernel_load_addr: u8;
    static __kernel_max_size: u8;
    fn jump_to_kernel(entry: usize, dtb: usize) -> !;
}

/// The protocol version this loader speaks (step 1's `v1`).
const PROTOCOL_VERSION: u16 = 1;
const MAGIC: [u8; 4] = *b"BRKL";
const HEADER_LEN: usize = 16;
/// The longest gap allowed between two payload bytes.
const BYTE_TIMEOUT_MS: u64 = 2000;
/// How often the loader says it is ready while nobody answers.
const ANNOUNCE_EVERY_MS: u64 = 1000;
const BAUD: u32 = 115_200;

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, initial and final value
/// 0xFFFFFFFF): the check value of "123456789" is 0xCBF43926.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc32_update(crc: u32, byte: u8) -> u32 {
    CRC_TABLE[((crc ^ byte as u32) & 0xff) as usize] ^ (crc >> 8)
}

/// Milliseconds from the generic timer (the firmware sets CNTFRQ_EL0).
fn now_ms() -> u64 {
    let frequency = CNTFRQ_EL0.get().max(1);
    CNTPCT_EL0.get() / (frequency / 1000).max(1)
}

#[no_mangle]
extern "C" fn loader_main(dtb: usize) -> ! {
    // SAFETY: the board table's GPIO block; the MMU is off and nothing else runs.
    let gpio = unsafe { gpio::Gpio::new(board::GPIO_BASE) };
    gpio.route_uart0_to_header();
    // SAFETY: the board table's PL011, the only driver of it in this program.
    let mut uart = unsafe { pl011::Pl011::new(board::UART_BASE) };
    uart.init_hardware(board::UART_CLOCK_HZ, BAUD);

    let load_address = core::ptr::addr_of!(__kernel_load_addr) as usize;
    let max_size = core::ptr::addr_of!(__kernel_max_size) as usize;
    let _ = writeln!(uart, "chainload: brk-path chain-loader, protocol v{PROTOCOL_VERSION}, 115200 8N1; send a kernel with `cargo xtask chainboot --serial DEV`");
    loop {
        let header = match receive_header(&mut uart, max_size) {
            Ok(header) => header,
            Err(reason) => {
                let _ = writeln!(uart, "chainload: nak {reason}");
                continue;
            }
        };
        let _ = writeln!(uart, "chainload: ack header {header}");
        match receive_payload(&mut uart, load_address, header.0) {
            Ok(crc) if crc == header.1 => {
                let _ = writeln!(uart, "chainload: ack crc {crc:#010x}");
                let _ = writeln!(uart, "chainload: jumping to {load_address:#010x} with the device tree at {dtb:#x}");
                uart.flush();
                make_visible_to_instruction_fetch(load_address, header.0);
                // SAFETY: a complete image whose CRC matched is at `load_address`, and
                // its caches are maintained; the loader's own memory is never used again.
                unsafe { jump_to_kernel(load_address, dtb) }
            }
            Ok(crc) => {
                let _ = writeln!(uart, "chainload: nak crc {crc:#010x}, header said {:#010x}", header.1);
            }
            Err(received) => {
                let _ = writeln!(uart, "chainload: nak timeout after {received} of {} bytes", header.0);
            }
        }
    }
}

/// Header fields: (length, crc).
struct Header(usize, u32);

impl core::fmt::Display for Header {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} bytes crc {:#010x}", self.0, self.1)
    }
}

/// Waits for the magic (saying `ready` every second meanwhile) and reads the rest
/// of the header with the payload's timeout per byte.
fn receive_header(uart: &mut pl011::Pl011, max_size: usize) -> Result<Header, &'static str> {
    let mut header = [0u8; HEADER_LEN];
    let mut matched = 0;
    let mut last_announce = None;
    while matched < MAGIC.len() {
        let now = now_ms();
        if last_announce.is_none_or(|t| now.wrapping_sub(t) >= ANNOUNCE_EVERY_MS) {
            let _ = writeln!(uart, "chainload: ready v{PROTOCOL_VERSION} max {max_size}");
            last_announce = Some(now);
        }
        if let Some(byte) = uart.try_read_byte() {
            // Restart the match on a wrong byte; a `B` may itself begin the magic.
            matched = if byte == MAGIC[matched] { matched + 1 } else { (byte == MAGIC[0]) as usize };
        }
    }
    header[..4].copy_from_slice(&MAGIC);
    for slot in header[4..].iter_mut() {
        *slot = read_byte_within(uart, BYTE_TIMEOUT_MS).ok_or("timeout in the header")?;
    }
    let field = |at: usize| u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let version = u16::from_le_bytes([header[4], header[5]]);
    if version != PROTOCOL_VERSION {
        return Err("version: this loader speaks v1 only");
    }
    let length = field(8) as usize;
    if length == 0 || length > max_size {
        return Err("length: zero or larger than the room below the loader");
    }
    Ok(Header(length, field(12)))
}

fn read_byte_within(uart: &mut pl011::Pl011, timeout_ms: u64) -> Option<u8> {
    let start = now_ms();
    loop {
        if let Some(byte) = uart.try_read_byte() {
            return Some(byte);
        }
        if now_ms().wrapping_sub(start) > timeout_ms {
            return None;
        }
    }
}

/// Receives `length` bytes to `load_address`; the CRC, or how many bytes came
/// before a gap longer than the timeout.
fn receive_payload(uart: &mut pl011::Pl011, load_address: usize, length: usize) -> Result<u32, usize> {
    let mut crc = 0xFFFF_FFFF;
    for offset in 0..length {
        let byte = read_byte_within(uart, BYTE_TIMEOUT_MS).ok_or(offset)?;
        // SAFETY: `offset < length <= max_size`, so the write stays in the RAM between
        // the load address and the loader, which nothing else uses.
        unsafe { core::ptr::write_volatile((load_address + offset) as *mut u8, byte) };
        crc = crc32_update(crc, byte);
    }
    Ok(!crc)
}

/// Clean the new image to the point of coherency and invalidate the instruction
/// cache before running it. The bytes were written as data, and the I-cache may
/// still hold this loader's own instructions for the same addresses (it ran from
/// 0x80000 before relocating). Loaders run with caches off, where this changes
/// nothing, but that is the firmware's choice, not ours to assume.
fn make_visible_to_instruction_fetch(start: usize, length: usize) {
    // CTR_EL0.DminLine (bits 19:16) is log2 of the smallest D-line in 4-byte words.
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr) };
    let line = 4usize << ((ctr >> 16) & 0xf);
    let mut address = start & !(line - 1);
    while address < start + length {
        // SAFETY: `dc cvac` on RAM we own writes dirty lines back; it changes no data.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) address) };
        address += line;
    }
    // SAFETY: barriers and a whole I-cache invalidate have no effect on data: the
    // DSB makes the cleans complete before the invalidate, the second DSB makes the
    // invalidate complete, and the ISB refetches what follows.
    unsafe { core::arch::asm!("dsb sy", "ic iallu", "dsb sy", "isb") };
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {
        aarch64_cpu::asm::wfe();
    }
}
