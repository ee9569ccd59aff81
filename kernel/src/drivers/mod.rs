//! Device drivers. Each takes its base address from the device tree (through
//! [`crate::devicetree::Platform`]); none contains an address of its own.
//! The PL011 is the `brk-devices` crate's (`kernel/devices`), which the Pi 4
//! chain-loader builds too.

pub mod framebuffer;
pub mod gicv2;
pub use brk_devices::pl011;

use crate::devicetree::Platform;

/// Bring up the interrupt controller described by the platform.
pub fn interrupt_controller_init(platform: &Platform) {
    gicv2::init(platform.gic.distributor, platform.gic.cpu_interface);
}
