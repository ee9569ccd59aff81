//! Bringing up the Pi 4's console UART before the first character: GPIO 14/15 to
//! PL011 UART0, then 115200 baud 8N1 from the UART clock.
//!
//! The drivers (`gpio`, `pl011`) and the board table are `brk-devices`'. The UART
//! is the console `devicetree::discover` chose. The GPIO block
//! (`brcm,bcm2711-gpio`) and the UART's clock come from the device tree the firmware
//! passes, or from the board table (`rpi4::memory`) when there is none (a tree without a
//! GPIO block leaves the pins as the firmware set them: no guessed address). The clock is the
//! `clock-frequency` of the UART node or of the first node its `clocks` names. On a
//! Pi 4 that first clock is the firmware's (`raspberrypi,firmware-clocks`), which
//! has no fixed rate in the tree, so the board table's 48 MHz applies; the
//! `config.txt` that `cargo xtask rpi4` writes pins the clock there with
//! `init_uart_clock=48000000` so the two agree.

use crate::{devicetree::Source, drivers::pl011::Pl011};
use brk_devices::rpi4::{gpio::Gpio, memory as board};
use fdt_parser::base::Fdt;

/// The console's line speed: what docs/rpi4.md tells you to set on the host.
pub const CONSOLE_BAUD: u32 = 115_200;

/// What [`init`] did, for the line it prints once the console works.
pub struct UartSetup {
    pub uart_base: usize,
    /// The GPIO block whose pins were muxed; `None` if the tree has none.
    pub gpio_base: Option<usize>,
    pub clock_hz: u32,
    pub clock_source: Source,
    pub programmed: bool,
}

/// Mux the pins and program the divisor of `platform`'s console UART, before
/// the console prints its first line.
pub fn init(platform: &crate::devicetree::Platform) -> UartSetup {
    let fdt = open(platform);
    let gpio_base = match fdt.as_ref() {
        Some(fdt) => crate::devicetree::first_reg(fdt, &["brcm,bcm2711-gpio", "brcm,bcm2835-gpio"], 0),
        None => Some(board::GPIO_BASE),
    };
    let uart_base = platform.uart_base;
    let (clock_hz, clock_source) = match fdt.as_ref().and_then(uart_clock_hz) {
        Some(hz) => (hz, Source::DeviceTree),
        None => (board::UART_CLOCK_HZ, Source::BoardTable),
    };
    if let Some(base) = gpio_base {
        // SAFETY: the base comes from the device tree or (without one) the board
        // table, both naming the BCM2711 GPIO block, inside the boot map's device
        // window; nothing else touches it yet.
        let gpio = unsafe { Gpio::new(base) };
        gpio.route_uart0_to_header();
    }
    // SAFETY: as above, for the PL011; this value is dropped before the console
    // uses the UART again, so only one drives it at a time.
    let mut uart = unsafe { Pl011::new(uart_base) };
    let programmed = uart.init_hardware(clock_hz, CONSOLE_BAUD);
    UartSetup { uart_base, gpio_base, clock_hz, clock_source, programmed }
}

/// The device tree `platform` was read from, if there was one.
fn open(platform: &crate::devicetree::Platform) -> Option<Fdt<'static>> {
    platform.tree.and_then(crate::devicetree::open)
}

/// The PL011's `clock-frequency`, or that of the first clock in its `clocks`.
fn uart_clock_hz(fdt: &Fdt<'static>) -> Option<u32> {
    let uart = fdt
        .find_compatible(&["arm,pl011"])
        .filter_map(Result::ok)
        .find(|node| !matches!(node.status(), Ok(fdt_parser::Status::Disabled)))?;
    if let Ok(hz) = uart.clock_frequency() {
        return Some(hz).filter(|&hz| hz > 0);
    }
    // `clocks = <&provider specifier...>, ...`: the first cell is the provider's phandle.
    let provider = uart.find_property("clocks").ok()?.u32_list().next()?;
    let clock = fdt.get_node_by_phandle(provider.into()).ok()?;
    clock.clock_frequency().ok().filter(|&hz| hz > 0)
}
