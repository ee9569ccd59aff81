//! Device drivers. Each takes its base address from the device tree (through
//! [`crate::devicetree::Platform`]); none contains an address of its own.
//! The PL011 is the `brk-devices` crate's (`kernel/devices`), which the Pi 4
//! chain-loader builds too.

pub mod framebuffer;
#[cfg(target_arch = "aarch64")]
pub mod gicv2;
#[cfg(target_arch = "aarch64")]
pub use brk_devices::pl011;

/// Bring up the interrupt controller described by the platform.
#[cfg(target_arch = "aarch64")]
pub fn interrupt_controller_init(platform: &crate::devicetree::Platform) {
    gicv2::init(platform.gic.distributor, platform.gic.cpu_interface);
}
