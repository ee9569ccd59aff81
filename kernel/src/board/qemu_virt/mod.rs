//! QEMU `virt`: the default board.

pub mod memory;
