//! Where the PC's console writes each message after its screen: the
//! firmware's text output (ConOut), while boot services run and only where
//! the kernel has no screen of its own, then a 16550 UART, when one answered
//! (`console.rs` finds both).
//!
//! ConOut is left alone when the kernel has the screen: the firmware draws
//! ConOut on that same framebuffer, and OVMF also mirrors it onto COM1, where
//! every line would then appear twice.
//!
//! Input, for the shell: the UART's data-ready interrupt, on its ISA line
//! (COM1: IRQ 4, COM2: IRQ 3) through the 8259, which the local APIC takes as
//! an external interrupt on LINT0 (the PC's "virtual wire" mode; Intel SDM
//! vol. 3A, 11.5.1). The 8259's other lines stay masked.

use super::firmware;
use crate::{
    arch::x86_64::{lapic, pic},
    drivers::TextSink,
};
use core::fmt::{self, Write};
use uart_16550::{
    backend::PioBackend,
    spec::registers::{IER, LSR},
    Uart16550Tty,
};

/// The firmware's text output and the UART, in that order.
pub struct ConsoleSink {
    /// Write through the firmware's ConOut while boot services run.
    firmware_text: bool,
    uart: Option<Uart16550Tty<PioBackend>>,
    /// The UART's ISA interrupt line (the 8259's), if its port is one whose
    /// line every PC wires the same way.
    uart_line: Option<u8>,
}

/// The ISA interrupt line of the 16550 at `port`: IRQ 4 for COM1, IRQ 3 for
/// COM2, as on every PC since the IBM PC/AT; `None` for another port.
pub fn isa_line(port: u16) -> Option<u8> {
    match port {
        0x3f8 => Some(4),
        0x2f8 => Some(3),
        _ => None,
    }
}

impl ConsoleSink {
    /// Write through ConOut (until ExitBootServices) if `firmware_text`, and
    /// to `uart` if there is one; `uart_line` is its ISA interrupt line.
    pub fn new(firmware_text: bool, uart: Option<Uart16550Tty<PioBackend>>, uart_line: Option<u8>) -> ConsoleSink {
        ConsoleSink { firmware_text, uart, uart_line }
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

    /// The UART's data-ready interrupt (IER bit 0; its OUT2 gate to the
    /// interrupt line was opened by the driver's set-up), its 8259 line
    /// unmasked, and LINT0 taking the 8259's interrupts.
    fn listen(&mut self) -> Result<(), &'static str> {
        let uart = self.uart.as_mut().ok_or("no 16550 UART answered")?;
        let line = self.uart_line.ok_or("the serial console is on a port whose interrupt line is unknown")?;
        uart.inner_mut().enable_interrupts(IER::DATA_READY);
        pic::route_console(line);
        lapic::accept_8259_interrupts();
        Ok(())
    }

    fn read_byte(&mut self) -> Option<u8> {
        self.uart.as_mut()?.inner_mut().try_receive_byte().ok()
    }
}
