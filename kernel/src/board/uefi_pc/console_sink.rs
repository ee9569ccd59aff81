//! Where the PC's console writes each message after its screen: the
//! firmware's text output (ConOut), while boot services run and only where
//! the kernel has no screen of its own, then a 16550 UART, when one answered
//! (`console.rs` finds both).
//!
//! ConOut is left alone when the kernel has the screen: the firmware draws
//! ConOut on that same framebuffer, and OVMF also mirrors it onto COM1, where
//! every line would then appear twice.

use super::firmware;
use crate::drivers::TextSink;
use core::fmt::{self, Write};
use uart_16550::{backend::PioBackend, spec::registers::LSR, Uart16550Tty};

/// The firmware's text output and the UART, in that order.
pub struct ConsoleSink {
    /// Write through the firmware's ConOut while boot services run.
    firmware_text: bool,
    uart: Option<Uart16550Tty<PioBackend>>,
}

impl ConsoleSink {
    /// Write through ConOut (until ExitBootServices) if `firmware_text`, and
    /// to `uart` if there is one.
    pub fn new(firmware_text: bool, uart: Option<Uart16550Tty<PioBackend>>) -> ConsoleSink {
        ConsoleSink { firmware_text, uart }
    }

    /// Whether ConOut is written now.
    fn through_firmware(&self) -> bool {
        self.firmware_text && firmware::boot_services_run()
    }
}

impl Write for ConsoleSink {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.write_fmt(format_args!("{}", text))
    }

    /// The whole message to each in turn, so that ConOut's line is complete
    /// before the UART's begins.
    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> fmt::Result {
        if self.through_firmware() {
            let _ = uefi::system::with_stdout(|out| out.write_fmt(args));
        }
        if let Some(uart) = self.uart.as_mut() {
            let _ = uart.write_fmt(args);
        }
        Ok(())
    }
}

impl TextSink for ConsoleSink {
    /// Wait until the UART's transmitter is empty: its FIFO and its shift
    /// register (LSR bit 6, TEMT; ConOut returns only once it has written).
    fn flush(&mut self) {
        if let Some(uart) = self.uart.as_mut() {
            while !uart.inner_mut().lsr().contains(LSR::TRANSMITTER_EMPTY) {
                core::hint::spin_loop();
            }
        }
    }
}
