//! Finding the PC's console at boot, while boot services still run: the
//! screen, a text screen (the `text-screen` crate, as on the Pi 4) on the
//! framebuffer of the firmware's Graphics Output Protocol (`screen.rs`); where
//! there is no such screen, the firmware's text output (ConOut) until
//! ExitBootServices, so a PC without a GOP still shows the boot; and a 16550
//! UART, when one answers: at the I/O port the ACPI SPCR table names for the
//! firmware's serial console, else COM1's 0x3f8. `crate::console` draws every
//! message on the screen first, then hands it to the [`ConsoleSink`]
//! (`console_sink.rs`: ConOut, then the UART), so a line seen on the serial
//! port is already on the screen.

use super::{acpi, console_sink::ConsoleSink, firmware, screen};
use crate::console;
use ::acpi::{
    address::AddressSpace,
    spcr::{Spcr, SpcrInterfaceType},
};
use alloc::{format, string::String};
use uart_16550::{BaudRate, Config, Uart16550Tty};

/// COM1's I/O port base, the PC's first serial port since the IBM PC.
const COM1_PORT: u16 = 0x3f8;

/// Find every sink the PC has, while boot services still run and before
/// anything is printed; returns the banner's `console:` line (without its
/// label). Needs `acpi::init` first (for the SPCR).
pub fn init() -> String {
    let screen = attach_screen();
    let (port, source) = serial_port();
    let uart = {
        // OVMF polls COM1 for input from its timer events while boot services
        // run; one landing in the UART's loopback self-test reads the test byte
        // first and the self-test waits for it forever. TPL_HIGH_LEVEL holds
        // every firmware event off until the guard drops.
        // SAFETY: nothing here waits on a firmware event or calls a boot
        // service that TPL_HIGH_LEVEL forbids; the guard restores the old TPL.
        let _firmware_events_held = unsafe { uefi::boot::raise_tpl(uefi::boot::Tpl::HIGH_LEVEL) };
        let config = Config { baud_rate: BaudRate::Baud115200, ..Config::DEFAULT };
        // SAFETY: `port` is the firmware's serial console (SPCR) or COM1, a
        // 16550's eight I/O ports, which nothing else in the kernel touches.
        // Until ExitBootServices the firmware's serial driver uses them too
        // (input polling, ConOut's mirror), but only in calls that return
        // before the kernel's next access on this single core, and none during
        // the loopback test (events held off above).
        unsafe { Uart16550Tty::new_port(port, config) }.ok()
    };
    let uart_line = match uart {
        Some(_) => format!("16550 UART at {:#x} ({})", port, source),
        None => format!("no 16550 answered at {:#x} ({})", port, source),
    };
    let firmware_text = screen.is_err() && firmware_has_text_output();
    console::attach_sink(ConsoleSink::new(firmware_text, uart, super::console_sink::isa_line(port)));
    match screen {
        Ok(screen_line) => format!("{}; {}", screen_line, uart_line),
        Err(why) if firmware_text => {
            format!("no screen ({}), firmware ConOut until ExitBootServices; {}", why, uart_line)
        }
        Err(why) => format!("no screen ({}), no firmware ConOut; {}", why, uart_line),
    }
}

/// Whether the system table has a ConOut (UEFI 2.10, 4.3: `ConOut` may be
/// null on a firmware without a console).
fn firmware_has_text_output() -> bool {
    uefi::table::system_table_raw().is_some_and(|table| {
        // SAFETY: the `uefi` crate's entry point set the pointer to the
        // firmware's system table, which stays valid while boot services run.
        !unsafe { table.as_ref() }.stdout.is_null()
    })
}

/// Draw on the GOP's framebuffer from now on; describe it, or say why not.
fn attach_screen() -> Result<String, String> {
    let mode = firmware::graphics_output()?;
    let framebuffer = screen::framebuffer(&mode)?;
    let (cols, rows) = console::attach_screen(framebuffer)
        .ok_or_else(|| format!("{}x{} is too small for one text cell", mode.width, mode.height))?;
    Ok(format!(
        "GOP framebuffer {}x{} {} at {:#x}, {}x{} text cells",
        mode.width, mode.height, mode.format, mode.base, cols, rows
    ))
}

/// The UART's I/O port and where it came from: the ACPI SPCR table (ACPI 6.5,
/// 5.2.6, "Serial Port Console Redirection Table", Microsoft's specification)
/// when it names a 16550 in I/O space, else COM1.
fn serial_port() -> (u16, String) {
    let Some(tables) = acpi::tables() else {
        return (COM1_PORT, String::from("COM1: no ACPI tables"));
    };
    let Ok(spcr) = tables.find_table::<Spcr>() else {
        return (COM1_PORT, String::from("COM1: no SPCR table"));
    };
    let interface = spcr.interface_type();
    let is_16550 = matches!(
        interface,
        SpcrInterfaceType::Full16550 | SpcrInterfaceType::Full16450 | SpcrInterfaceType::Generic16550
    );
    match spcr.base_address() {
        Some(Ok(address)) if is_16550 && address.address_space == AddressSpace::SystemIo => {
            match u16::try_from(address.address) {
                Ok(port) => (port, String::from("SPCR")),
                Err(_) => (COM1_PORT, format!("COM1: the SPCR's I/O port {:#x} is out of range", address.address)),
            }
        }
        Some(Ok(address)) => (
            COM1_PORT,
            format!(
                "COM1: the SPCR's console is a {:?} in {:?} at {:#x}, not a 16550 on I/O ports",
                interface, address.address_space, address.address
            ),
        ),
        Some(Err(e)) => (COM1_PORT, format!("COM1: the SPCR's address is unreadable ({:?})", e)),
        None => (COM1_PORT, String::from("COM1: the SPCR says console redirection is off")),
    }
}
