//! Raspberry Pi 4 (BCM2711).

pub mod gpio;
pub mod memory;
pub mod uart;
