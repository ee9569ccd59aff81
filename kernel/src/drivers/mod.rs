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
/// `ConsoleSink`): text in, bytes out on a serial line or a firmware console.
pub trait TextSink: core::fmt::Write + Send {
    /// Wait until everything written has left the device (before power-off).
    fn flush(&mut self);
}

#[cfg(target_arch = "aarch64")]
impl TextSink for pl011::Pl011 {
    fn flush(&mut self) {
        pl011::Pl011::flush(self);
    }
}

/// Bring up the interrupt controller described by the platform.
#[cfg(target_arch = "aarch64")]
pub fn interrupt_controller_init(platform: &crate::devicetree::Platform) {
    gicv2::init(platform.gic.distributor, platform.gic.cpu_interface);
}
