//! Device drivers, and what the console asks of a text device ([`TextSink`]).
//! Each driver takes its base address from the platform's description
//! ([`crate::board::Platform`]: the device tree on aarch64, the firmware on a
//! PC); none contains an address of its own. The PL011 is the `brk-devices`
//! crate's (`kernel/devices`), which the Pi 4 chain-loader builds too.

pub mod framebuffer;
#[cfg(target_arch = "aarch64")]
pub mod gicv2;
#[cfg(target_arch = "aarch64")]
pub use brk_devices::pl011;

/// A device the console writes its text to after the screen (the board's
/// `ConsoleSink`): text in, bytes out on a serial line or a firmware console;
/// and, for the shell, the bytes typed on that line.
pub trait TextSink: core::fmt::Write + Send {
    /// Wait until everything written has left the device (before power-off).
    fn flush(&mut self);

    /// Raise the console's interrupt (`Interrupt::ConsoleInput`) whenever
    /// bytes arrive from now on; `Err` says why this device cannot.
    fn listen(&mut self) -> Result<(), &'static str>;

    /// The next byte received, if one is waiting.
    fn read_byte(&mut self) -> Option<u8>;
}

#[cfg(target_arch = "aarch64")]
impl TextSink for pl011::Pl011 {
    fn flush(&mut self) {
        pl011::Pl011::flush(self);
    }

    fn listen(&mut self) -> Result<(), &'static str> {
        if !gicv2::routes_console() {
            return Err("the device tree gives the console's PL011 no interrupt");
        }
        self.enable_receive_interrupts();
        Ok(())
    }

    fn read_byte(&mut self) -> Option<u8> {
        self.try_read_byte()
    }
}

/// Bring up the interrupt controller described by the platform, with the
/// console UART's interrupt routed to the boot core (the UART itself raises
/// it only once the shell listens).
#[cfg(target_arch = "aarch64")]
pub fn interrupt_controller_init(platform: &crate::devicetree::Platform) {
    gicv2::init(platform.gic.distributor, platform.gic.cpu_interface);
    if let Some(intid) = platform.uart_irq {
        gicv2::enable_console(intid);
    }
}
