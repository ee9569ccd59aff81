//! The drivers two programs share: the kernel and the Pi 4 UART chain-loader
//! (`boot/chainloader`), which both talk through a PL011 that the BCM2711's GPIO
//! block must first route to the header pins.
//!
//! - [`pl011`]: the Arm PL011 UART (the kernel's console, the loader's line).
//! - [`rpi4::gpio`]: the BCM2711 pin multiplexer that puts UART0 on GPIO 14/15.
//! - [`rpi4::memory`]: the Pi 4's address table, the fallback where no device tree
//!   says otherwise (the kernel's `board::memory` on a Pi 4; the loader has no tree).
//!
//! Every driver takes its base address from its caller; none contains one. `no_std`
//! and no `cfg(target_arch)`: the register layouts are plain `tock-registers`
//! structures, and the hardware arithmetic is tested on the host (`cargo test -p
//! brk-devices`).

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod pl011;
pub mod rpi4;
