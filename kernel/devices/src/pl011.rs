//! Arm PL011 UART: the console.
//!
//! Datasheet: Arm PrimeCell UART (PL011) Technical Reference Manual, r1p5,
//! section 3.3 "Register descriptions". The kernel transmits, and receives
//! what is typed for its shell by interrupt ([`Pl011::enable_receive_interrupts`]);
//! the chain-loader (`boot/chainloader`) receives by polling. QEMU needs no initialisation; a
//! real board's UART is set up by [`Pl011::init_hardware`] (the pin mux and the UART
//! clock belong to the board: [`crate::rpi4`] and the kernel's `board/rpi4`).

use tock_registers::{
    interfaces::{ReadWriteable, Readable, Writeable},
    register_bitfields, register_structs,
    registers::{ReadOnly, ReadWrite, WriteOnly},
};

register_bitfields! {
    u32,
    /// Flag register (TRM 3.3.3).
    FR [
        /// Receive FIFO empty: nothing to read.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// Transmit FIFO full: wait before writing DR.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// UART busy transmitting: wait for it before powering off.
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// Line control register (TRM 3.3.7).
    LCR_H [
        /// Word length: 0b11 = 8 bits.
        WLEN OFFSET(5) NUMBITS(2) [EightBits = 0b11],
        /// FIFOs enabled; clearing it flushes the transmit FIFO.
        FEN OFFSET(4) NUMBITS(1) []
    ],
    /// Control register (TRM 3.3.8).
    CR [
        RXE OFFSET(9) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        UARTEN OFFSET(0) NUMBITS(1) []
    ]
}

/// Every interrupt bit of IMSC/ICR (TRM 3.3.10, 3.3.13).
const ALL_INTERRUPTS: u32 = 0x7ff;
/// IMSC's receive (RXIM, bit 4) and receive timeout (RTIM, bit 6) bits: a
/// byte arrived, or bytes wait in the FIFO below its trigger level and the
/// line has been quiet for 32 bit periods. Both clear as the FIFO is read.
const RECEIVE_INTERRUPTS: u32 = (1 << 4) | (1 << 6);

/// IBRD/FBRD for `baud` from a `clock_hz` UART clock, as (integer, fraction).
///
/// TRM 3.3.6: the baud rate divisor is `clock / (16 * baud)`, a 16.6 fixed-point
/// number: IBRD holds the integer part and FBRD the fraction in 64ths. In integers,
/// `64 * clock / (16 * baud) = 4 * clock / baud`; adding `baud / 2` first rounds it
/// to the nearest 64th. For the Pi 4's 48 MHz UART clock at 115200 baud:
/// `(4 * 48_000_000 + 57_600) / 115_200 = 1667`, so IBRD = 1667 / 64 = 26 and
/// FBRD = 1667 % 64 = 3: a divisor of 26.047 for an exact 26.042, 0.02 % fast, far
/// inside the few percent a UART tolerates. Returns `None` when the result does not
/// fit the registers (IBRD is 16 bits and may not be 0).
pub const fn baud_divisor(clock_hz: u32, baud: u32) -> Option<(u32, u32)> {
    if baud == 0 {
        return None;
    }
    let sixty_fourths = (4 * clock_hz as u64 + baud as u64 / 2) / baud as u64;
    let integer = sixty_fourths >> 6;
    if integer == 0 || integer > 0xffff {
        return None;
    }
    Some((integer as u32, (sixty_fourths & 0x3f) as u32))
}

register_structs! {
    #[allow(non_snake_case)]
    pub Pl011Registers {
        (0x00 => DR: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => FR: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x24 => IBRD: ReadWrite<u32>),
        (0x28 => FBRD: ReadWrite<u32>),
        (0x2c => LCR_H: ReadWrite<u32, LCR_H::Register>),
        (0x30 => CR: ReadWrite<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x38 => IMSC: ReadWrite<u32>),
        (0x3c => _reserved3),
        (0x44 => ICR: WriteOnly<u32>),
        (0x48 => @END),
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

    /// Program the UART for 8N1 at `baud` from its `clock_hz` input clock, with
    /// FIFOs on and interrupts masked, in the order TRM 3.3.8 asks: disable, let the
    /// last byte go, flush the FIFO, write the divisor, then LCR_H (a write to LCR_H
    /// is what latches IBRD/FBRD), then enable. Returns `false`, leaving the UART as
    /// it was, when the divisor does not fit (see [`baud_divisor`]).
    pub fn init_hardware(&mut self, clock_hz: u32, baud: u32) -> bool {
        let Some((integer, fraction)) = baud_divisor(clock_hz, baud) else {
            return false;
        };
        self.registers.CR.set(0);
        self.flush();
        self.registers.LCR_H.modify(LCR_H::FEN::CLEAR);
        self.registers.ICR.set(ALL_INTERRUPTS);
        self.registers.IMSC.set(0);
        self.registers.IBRD.set(integer);
        self.registers.FBRD.set(fraction);
        self.registers.LCR_H.write(LCR_H::WLEN::EightBits + LCR_H::FEN::SET);
        self.registers.CR.write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
        true
    }

    /// Turn the transmitter and receiver on if the loader left them off, keeping
    /// the line settings and the baud divisor it chose. QEMU `virt` resets its
    /// PL011 with UARTEN clear and prints what is written anyway (logging "PL011
    /// data written to disabled UART"); a board's PL011 would print nothing. One
    /// already on is left exactly as it is. (The chain-loader sets its UART up
    /// with [`Pl011::init_hardware`] instead.)
    pub fn enable_if_off(&mut self) {
        let on = CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET;
        if self.registers.CR.get() & on.value != on.value {
            self.registers.CR.modify(on);
        }
    }

    /// Raise the UART's interrupt when bytes arrive (the kernel's shell);
    /// reading them with [`Pl011::try_read_byte`] until it says `None` lowers it.
    pub fn enable_receive_interrupts(&mut self) {
        self.registers.IMSC.set(self.registers.IMSC.get() | RECEIVE_INTERRUPTS);
    }

    /// The next received byte, if one is waiting.
    pub fn try_read_byte(&mut self) -> Option<u8> {
        if self.registers.FR.is_set(FR::RXFE) {
            None
        } else {
            Some(self.registers.DR.get() as u8)
        }
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

#[cfg(test)]
mod tests {
    use super::baud_divisor;

    #[test]
    fn pi4_console_divisor_is_the_worked_example() {
        // The doc comment's arithmetic: 48 MHz, 115200 baud -> 1667/64 = 26 + 3/64.
        assert_eq!(baud_divisor(48_000_000, 115_200), Some((26, 3)));
    }

    #[test]
    fn divisor_rounds_to_the_nearest_sixty_fourth() {
        // 3 MHz at 115200: 64 * 3e6 / (16 * 115200) = 104.17 sixty-fourths -> 104 = 1 + 40/64.
        assert_eq!(baud_divisor(3_000_000, 115_200), Some((1, 40)));
        // 48 MHz at 9600: exactly 312.5 -> IBRD 312, FBRD 32 (0.5 in 64ths).
        assert_eq!(baud_divisor(48_000_000, 9_600), Some((312, 32)));
        // Every result is within half a 64th of the exact divisor.
        for (clock, baud) in
            [(48_000_000u32, 115_200u32), (48_000_000, 921_600), (24_000_000, 38_400), (3_000_000, 300)]
        {
            let (integer, fraction) = baud_divisor(clock, baud).expect("fits");
            let chosen = integer as f64 + fraction as f64 / 64.0;
            let exact = clock as f64 / (16.0 * baud as f64);
            assert!((chosen - exact).abs() <= 0.5 / 64.0, "{clock} Hz at {baud}: {chosen} for {exact}");
        }
    }

    #[test]
    fn divisors_the_registers_cannot_hold_are_refused() {
        assert_eq!(baud_divisor(48_000_000, 0), None, "no baud rate");
        // The clock below 16 x baud: IBRD would be 0, which TRM 3.3.6 forbids.
        assert_eq!(baud_divisor(1_000_000, 115_200), None);
        // IBRD is 16 bits: 48 MHz at 45 baud needs 66666.
        assert_eq!(baud_divisor(48_000_000, 45), None);
        assert_eq!(baud_divisor(48_000_000, 46), Some((65217, 25)));
    }
}
