//! Arm PL011 UART: the console.
//!
//! Datasheet: Arm PrimeCell UART (PL011) Technical Reference Manual, r1p5,
//! section 3.3 "Register descriptions". Only transmit is used. QEMU needs no
//! initialisation; a real board's UART is set up by `init_hardware` (pin mux and
//! baud divisor belong to the board, see `board/rpi4`).

use tock_registers::{
    interfaces::{Readable, Writeable},
    register_bitfields, register_structs,
    registers::{ReadOnly, ReadWrite},
};

register_bitfields! {
    u32,
    /// Flag register (TRM 3.3.3).
    FR [
        /// Transmit FIFO full: wait before writing DR.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// UART busy transmitting: wait for it before powering off.
        BUSY OFFSET(3) NUMBITS(1) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    pub Pl011Registers {
        (0x00 => DR: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => FR: ReadOnly<u32, FR::Register>),
        (0x1c => @END),
    }
}

/// A PL011 at a fixed MMIO address.
pub struct Pl011 {
    registers: &'static Pl011Registers,
}

// SAFETY: the driver only holds the address of MMIO registers; moving it to another
// context is fine because every use goes through the console's lock.
unsafe impl Send for Pl011 {}

impl Pl011 {
    /// # Safety
    /// - `base` must be the address of a PL011's register block, mapped as device
    ///   memory (or the MMU off), for the rest of the kernel's life.
    /// - Only one `Pl011` may exist per device.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: the caller guarantees `base` is a live, exclusive PL011 register block.
        Self { registers: unsafe { &*(base as *const Pl011Registers) } }
    }

    /// Send one byte, waiting while the transmit FIFO is full.
    pub fn write_byte(&mut self, byte: u8) {
        while self.registers.FR.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.registers.DR.set(byte as u32);
    }

    /// Wait until every byte has left the shift register.
    pub fn flush(&self) {
        while self.registers.FR.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }
}

impl core::fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                // Terminals want CR LF; a bare LF leaves the cursor in its column.
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
        Ok(())
    }
}
