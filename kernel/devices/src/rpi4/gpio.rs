//! BCM2711 GPIO: the pin multiplexer that puts the PL011 UART0 on GPIO 14/15.
//!
//! Datasheet: BCM2711 ARM Peripherals (2020), chapter 5 "General Purpose I/O":
//! 5.2 register view (GPFSEL0-5, GPIO_PUP_PDN_CNTRL_REG0-3) and 5.3 "Alternative
//! Function Assignments" (GPIO 14 = TXD0 and GPIO 15 = RXD0 in ALT0; GPIO 32/33 =
//! TXD0/RXD0 in ALT3, the lines the Pi's Bluetooth module uses).
//!
//! The firmware leaves GPIO 14/15 on the mini UART (ALT5) or as inputs, so a kernel
//! that talks through the PL011 must move them itself. QEMU models none of this
//! (its UART is wired to `-serial` whatever the pins say), so only a real board can
//! show a mistake here.

use tock_registers::{
    interfaces::{Readable, Writeable},
    register_structs,
    registers::ReadWrite,
};

register_structs! {
    #[allow(non_snake_case)]
    pub GpioRegisters {
        /// Function select: 3 bits per pin, 10 pins per register (section 5.2).
        (0x00 => GPFSEL: [ReadWrite<u32>; 6]),
        (0x18 => _reserved0),
        /// Pull-up/down control: 2 bits per pin, 16 pins per register (BCM2711 only;
        /// the BCM2835's GPPUD/GPPUDCLK clocking dance is gone).
        (0xe4 => GPIO_PUP_PDN_CNTRL: [ReadWrite<u32>; 4]),
        (0xf4 => @END),
    }
}

/// A pin's function (the 3-bit FSEL codes of section 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Function {
    Input = 0b000,
    Output = 0b001,
    Alt0 = 0b100,
    Alt3 = 0b111,
    Alt5 = 0b010,
}

/// A pin's resistor (the 2-bit codes of GPIO_PUP_PDN_CNTRL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Pull {
    None = 0b00,
    Up = 0b01,
    Down = 0b10,
}

/// PL011 UART0 transmit and receive pins on the 40-pin header (pins 8 and 10).
pub const UART0_TXD_PIN: u32 = 14;
pub const UART0_RXD_PIN: u32 = 15;
/// UART0's other pair, used for Bluetooth on a Pi 4. Left in ALT3 it would be a
/// second input driving RXD0.
const UART0_BLUETOOTH_PINS: [u32; 2] = [32, 33];

pub struct Gpio {
    registers: &'static GpioRegisters,
}

impl Gpio {
    /// # Safety
    /// - `base` must be the BCM2711 GPIO register block, reachable as device memory
    ///   (or with the MMU off) while the returned value is used.
    /// - Nothing else may change the pin functions at the same time.
    pub unsafe fn new(base: usize) -> Self {
        // SAFETY: the caller guarantees `base` is the live GPIO register block.
        Self { registers: unsafe { &*(base as *const GpioRegisters) } }
    }

    /// Pin `pin`'s function field is bits `3*(pin % 10) + 2 ..= 3*(pin % 10)` of
    /// GPFSEL`pin / 10`: GPIO 14 is GPFSEL1 bits 14:12, GPIO 15 is GPFSEL1 bits 17:15.
    pub fn function(&self, pin: u32) -> u32 {
        let register = &self.registers.GPFSEL[(pin / 10) as usize];
        (register.get() >> (3 * (pin % 10))) & 0b111
    }

    pub fn set_function(&self, pin: u32, function: Function) {
        let register = &self.registers.GPFSEL[(pin / 10) as usize];
        let shift = 3 * (pin % 10);
        let value = (register.get() & !(0b111 << shift)) | ((function as u32) << shift);
        register.set(value);
    }

    /// Pin `pin`'s resistor field is bits `2*(pin % 16) + 1 ..= 2*(pin % 16)` of
    /// GPIO_PUP_PDN_CNTRL_REG`pin / 16`: GPIO 14 is bits 29:28, GPIO 15 bits 31:30.
    pub fn set_pull(&self, pin: u32, pull: Pull) {
        let register = &self.registers.GPIO_PUP_PDN_CNTRL[(pin / 16) as usize];
        let shift = 2 * (pin % 16);
        let value = (register.get() & !(0b11 << shift)) | ((pull as u32) << shift);
        register.set(value);
    }

    /// Route PL011 UART0 to GPIO 14 (TXD0) and 15 (RXD0). TX drives the line, so it
    /// needs no resistor; RX gets a pull-up so an unconnected or unpowered adapter
    /// reads as the idle (high) line instead of a stream of noise and break
    /// conditions (which the chain-loader would otherwise try to parse).
    pub fn route_uart0_to_header(&self) {
        for pin in UART0_BLUETOOTH_PINS {
            if self.function(pin) == Function::Alt3 as u32 {
                self.set_function(pin, Function::Input);
            }
        }
        self.set_pull(UART0_TXD_PIN, Pull::None);
        self.set_pull(UART0_RXD_PIN, Pull::Up);
        self.set_function(UART0_TXD_PIN, Function::Alt0);
        self.set_function(UART0_RXD_PIN, Function::Alt0);
    }
}
