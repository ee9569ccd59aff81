//! Board code: what differs between machines that share the architecture.
//!
//! Each aarch64 board has one table of addresses (`board/<name>/memory.rs`; the Pi
//! 4's is `kernel/devices/src/rpi4/memory.rs`, which the chain-loader reads too). The
//! device tree overrides every entry; the table is the fallback when a loader passes
//! none. The x86_64 board is a UEFI PC, described by its firmware.
//!
//! Every board names, for the generic kernel, its description of the machine
//! ([`Platform`]: the device tree's on aarch64, the firmware's on a PC) and
//! where the console writes after its screen ([`ConsoleSink`]: the PL011 on
//! aarch64, the firmware's text output and a 16550 on a PC).

#[cfg(all(target_arch = "aarch64", feature = "board-virt", not(feature = "board-rpi4")))]
#[path = "qemu_virt/mod.rs"]
mod selected;

#[cfg(all(target_arch = "aarch64", feature = "board-rpi4"))]
#[path = "rpi4/mod.rs"]
mod selected;

#[cfg(all(target_arch = "aarch64", not(any(feature = "board-virt", feature = "board-rpi4"))))]
compile_error!("select a board: --features board-virt or --features board-rpi4");

#[cfg(target_arch = "aarch64")]
pub use selected::{memory, BOOT_MAP};

/// The one x86_64 board: a PC with UEFI firmware and ACPI tables.
#[cfg(target_arch = "x86_64")]
pub mod uefi_pc;

/// The machine as the device tree (or, without one, the board table) describes it.
#[cfg(target_arch = "aarch64")]
pub use crate::devicetree::Platform;
/// The machine as the firmware describes it.
#[cfg(target_arch = "x86_64")]
pub use uefi_pc::firmware::Platform;

/// The console's UART on both aarch64 boards.
#[cfg(target_arch = "aarch64")]
pub use crate::drivers::pl011::Pl011 as ConsoleSink;
/// The firmware's text output and a 16550 UART.
#[cfg(target_arch = "x86_64")]
pub use uefi_pc::console_sink::ConsoleSink;

/// The console's UART at `base` (the board table's or the device tree's), switched
/// on if the loader left it off.
#[cfg(target_arch = "aarch64")]
pub fn console_uart(base: usize) -> ConsoleSink {
    // SAFETY: `base` comes from the board table or the device tree, is a PL011,
    // and is identity-mapped as device memory by the boot map and the MMU set-up;
    // the console drops its old driver value when it takes this one, so only one
    // drives the UART.
    let mut uart = unsafe { ConsoleSink::new(base) };
    uart.enable_if_off();
    uart
}

/// What a stretch of a board's boot map is (`arch/aarch64/boot_map.rs` maps it).
#[cfg(target_arch = "aarch64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootMemory {
    /// RAM: Normal write-back, inner-shareable; EL1 may execute from it.
    Ram,
    /// Peripherals: Device-nGnRE, never executable.
    Device,
}

/// One stretch of a board's boot map, 2 MiB aligned at both ends. Defined with
/// the boards, which describe their memory in it, so that the boot map reads the
/// boards and not the other way round.
#[cfg(target_arch = "aarch64")]
#[derive(Clone, Copy, Debug)]
pub struct BootRegion {
    pub start: usize,
    pub end: usize,
    pub kind: BootMemory,
}

/// Bring the console's hardware up where the loader leaves it off: on a Pi 4,
/// GPIO 14/15 to UART0 and the 115200 baud divisor (see `rpi4/uart.rs`), then
/// the HDMI screen (`rpi4/screen.rs`), with one line each saying what was used.
/// QEMU `virt`'s UART works as it is and it has no screen: nothing to do.
/// Runs once, on the boot core, once the console points at `platform`'s UART.
#[cfg(target_arch = "aarch64")]
pub fn init_console_hardware(platform: &mut Platform) {
    #[cfg(feature = "board-rpi4")]
    selected::init_console_hardware(platform);
    #[cfg(not(feature = "board-rpi4"))]
    let _ = platform;
}
