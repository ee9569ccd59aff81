//! Raspberry Pi 4 (BCM2711).

pub mod gpio;
pub mod memory;
pub mod uart;

use crate::arch::boot_map::{BootMemory, BootRegion};

/// The boot map (`arch/aarch64/boot_map.rs`): the first GiB, which is DRAM on
/// every Pi 4 (the ARM's share and the GPU's above it), and the low peripheral
/// window at 0xFC00_0000-0xFFFF_FFFF (BCM2711 ARM Peripherals, 1.2). RAM above
/// 1 GiB exists only on the larger models: it joins the map once the device tree
/// (or the board table) has said it is there (`boot_map::cover_ram`), never on a
/// guess, so nothing is ever speculatively read where no memory answers.
pub const BOOT_MAP: &[BootRegion] = &[
    BootRegion { start: 0, end: 0x4000_0000, kind: BootMemory::Ram },
    BootRegion { start: 0xFC00_0000, end: 0x1_0000_0000, kind: BootMemory::Device },
];
