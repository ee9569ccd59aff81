//! Raspberry Pi 4 (BCM2711).

pub mod memory;
