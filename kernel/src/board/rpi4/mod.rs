//! Raspberry Pi 4 (BCM2711). The address table and the GPIO pin mux are the
//! `brk-devices` crate's (`kernel/devices/src/rpi4`), shared with the chain-loader.

mod mailbox;
mod screen;
pub mod uart;

pub use brk_devices::rpi4::memory;

use super::{BootMemory, BootRegion};

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

/// The console's hardware, in the order a learner with only a screen or only a
/// serial cable needs it: the UART (GPIO 14/15, the baud divisor), then the
/// HDMI screen, each reported on one line that both show.
pub fn init_console_hardware(platform: &mut crate::devicetree::Platform) {
    let setup = uart::init(platform);
    let screen = screen::init(platform);
    let gpio = match setup.gpio_base {
        Some(base) => alloc::format!("GPIO 14/15 ALT0 (GPIO block {:#010x})", base),
        None => alloc::string::String::from("GPIO left as the firmware set it (no GPIO block in the device tree)"),
    };
    crate::println!(
        "uart:    PL011 at {:#010x}, {} baud 8N1 from a {} Hz clock ({}), {}{}",
        setup.uart_base,
        uart::CONSOLE_BAUD,
        setup.clock_hz,
        setup.clock_source.describe("device tree clock-frequency"),
        gpio,
        if setup.programmed { "" } else { ": divisor out of range, left as the firmware set it" },
    );
    crate::println!("{}", screen);
}
