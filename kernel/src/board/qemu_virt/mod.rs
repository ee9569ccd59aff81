//! QEMU `virt`: the default board.

pub mod memory;

use super::{BootMemory, BootRegion};
use memory::RAM_BASE;

/// The boot map (`arch/aarch64/boot_map.rs`): the devices below 1 GiB, and RAM from
/// 1 GiB up to the end of the kernel's half of the address space (`virt` puts up
/// to 255 GiB of RAM there; where there is none, QEMU answers nothing, but
/// nothing is accessed there either).
pub const BOOT_MAP: &[BootRegion] = &[
    BootRegion { start: 0, end: RAM_BASE, kind: BootMemory::Device },
    BootRegion { start: RAM_BASE, end: 0x40_0000_0000, kind: BootMemory::Ram },
];
