//! Raspberry Pi 4 (BCM2711): the pieces of the board both the kernel and the
//! chain-loader need before their first character, the GPIO pin mux and the
//! address table. The rest of the board (the UART set-up from the device tree,
//! the VideoCore mailbox, the HDMI screen) is the kernel's `board/rpi4`.

pub mod gpio;
pub mod memory;
