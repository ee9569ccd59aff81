//! Bringing up the Pi 4's console UART before the first character: GPIO 14/15 to
//! PL011 UART0, then 115200 baud 8N1 from the UART clock.
//!
//! Everything is looked up in the device tree the firmware passes and falls back to
//! the board table (`memory.rs`) when there is none or it is silent: the GPIO block
//! (`brcm,bcm2711-gpio`), the UART (`arm,pl011`) and its clock, which is the
//! `clock-frequency` of the UART node or of the first node its `clocks` names. On a
//! Pi 4 that first clock is the firmware's (`raspberrypi,firmware-clocks`), which
//! has no fixed rate in the tree, so the board table's 48 MHz applies; the
//! `config.txt` that `cargo xtask rpi4` writes pins the clock there with
//! `init_uart_clock=48000000` so the two agree.

use super::{gpio::Gpio, memory as board};
use crate::{devicetree::Source, drivers::pl011::Pl011};
use fdt_parser::base::Fdt;

/// The console's line speed: what docs/rpi4.md tells you to set on the host.
pub const CONSOLE_BAUD: u32 = 115_200;

/// What [`init`] did, for the line it prints once the console works.
pub struct UartSetup {
    pub uart_base: usize,
    pub gpio_base: usize,
    pub clock_hz: u32,
    pub clock_source: Source,
    pub programmed: bool,
}

/// Device tree header magic (Devicetree Specification v0.4, 5.2), big-endian.
const FDT_MAGIC: u32 = 0xd00d_feed;

/// Mux the pins and program the divisor. Runs with the MMU off, before the console
/// is used: every register access is Device-nGnRnE.
pub fn init(dtb_addr: usize) -> UartSetup {
    let fdt = open(dtb_addr);
    let gpio_base = fdt
        .as_ref()
        .and_then(|fdt| first_reg(fdt, &["brcm,bcm2711-gpio", "brcm,bcm2835-gpio"]))
        .unwrap_or(board::GPIO_BASE);
    let uart_base =
        fdt.as_ref().and_then(|fdt| first_reg(fdt, &["arm,pl011"])).unwrap_or(board::UART_BASE);
    let (clock_hz, clock_source) = match fdt.as_ref().and_then(uart_clock_hz) {
        Some(hz) => (hz, Source::DeviceTree),
        None => (board::UART_CLOCK_HZ, Source::BoardTable),
    };

    // SAFETY: the base comes from the device tree or the board table, both name the
    // BCM2711 GPIO block; the MMU is off, and nothing else runs yet.
    let gpio = unsafe { Gpio::new(gpio_base) };
    gpio.route_uart0_to_header();
    // SAFETY: as above, for the PL011; this value is dropped before the console
    // creates its own, so only one drives the UART at a time.
    let mut uart = unsafe { Pl011::new(uart_base) };
    let programmed = uart.init_hardware(clock_hz, CONSOLE_BAUD);
    UartSetup { uart_base, gpio_base, clock_hz, clock_source, programmed }
}

fn open(dtb_addr: usize) -> Option<Fdt<'static>> {
    if dtb_addr == 0 || !dtb_addr.is_multiple_of(8) {
        return None;
    }
    // SAFETY: the loader's x0, 8-byte aligned, in RAM (raspi4b without a tree passes
    // 0x100); with the MMU off it is readable, and the magic check rejects anything
    // that is not a tree before it is trusted.
    let magic = u32::from_be(unsafe { core::ptr::read_volatile(dtb_addr as *const u32) });
    if magic != FDT_MAGIC {
        return None;
    }
    // SAFETY: a device tree blob the loader placed for us; it is never overwritten
    // (devicetree::discover reserves it from the frame allocator).
    unsafe { Fdt::from_ptr(dtb_addr as *mut u8) }.ok()
}

fn first_reg(fdt: &Fdt<'static>, compatible: &[&str]) -> Option<usize> {
    fdt.find_compatible(compatible)
        .filter_map(Result::ok)
        .find(|node| !matches!(node.status(), Ok(fdt_parser::Status::Disabled)))
        .and_then(|node| node.reg().ok()?.next())
        .map(|reg| reg.address as usize)
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
