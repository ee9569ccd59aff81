//! The kernel console: `print!`/`println!` to the PL011 and, where the board has
//! a display, to a text screen on its framebuffer (the Pi 4's HDMI output).
//!
//! The console is reachable before anything else is set up (the board table gives
//! the UART address), then moved to the address the device tree names; the
//! screen joins once the board has a framebuffer ([`attach_screen`]). Every
//! message is drawn on the screen before it goes out of the UART, so a line seen
//! on the serial port is already on the screen.

use crate::drivers::{framebuffer::Framebuffer, pl011::Pl011};
use core::fmt::Write;
use spin::Mutex;
use text_screen::TextScreen;

/// Where the console's text goes.
struct Console {
    uart: Option<Pl011>,
    screen: Option<TextScreen<Framebuffer>>,
}

static CONSOLE: Mutex<Console> = Mutex::new(Console { uart: None, screen: None });

/// Use the board table's UART so that early panics can be printed.
pub fn init_early(uart_base: usize) {
    init(uart_base);
}

/// Use the UART at `uart_base` from now on.
pub fn init(uart_base: usize) {
    // SAFETY: `uart_base` comes from the board table or the device tree, is a PL011,
    // and is identity-mapped as device memory by the boot map and the MMU set-up;
    // the old driver value is dropped under the lock, so only one exists.
    let mut uart = unsafe { Pl011::new(uart_base) };
    uart.enable_if_off();
    CONSOLE.lock().uart = Some(uart);
}

/// Draw the console on `framebuffer` from now on, besides the UART. Returns the
/// screen's size in text cells (columns, rows), or `None` if it cannot hold one.
#[cfg_attr(not(feature = "board-rpi4"), allow(dead_code))] // QEMU virt has no display
pub fn attach_screen(framebuffer: Framebuffer) -> Option<(usize, usize)> {
    let screen = TextScreen::new(framebuffer, framebuffer.width, framebuffer.height)?;
    let cells = (screen.cols(), screen.rows());
    CONSOLE.lock().screen = Some(screen);
    Some(cells)
}

#[doc(hidden)]
pub fn _print(args: core::fmt::Arguments) {
    let mut console = CONSOLE.lock();
    if let Some(screen) = console.screen.as_mut() {
        let _ = screen.write_fmt(args);
        screen.publish();
    }
    if let Some(uart) = console.uart.as_mut() {
        let _ = uart.write_fmt(args);
    }
}

/// Print even if the lock is held: used on the way down (panic, fatal exception),
/// when the holder will never run again.
pub fn print_on_the_way_down(args: core::fmt::Arguments) {
    // SAFETY: only called when the kernel is about to power off; nobody else will use
    // the console concurrently (single core, interrupts masked on this path).
    unsafe { CONSOLE.force_unlock() };
    _print(args);
}

/// Wait for the last byte to leave the UART (before powering off).
pub fn flush() {
    if let Some(uart) = CONSOLE.lock().uart.as_ref() {
        uart.flush();
    }
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::_print(format_args!($($arg)*)));
}

#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::console::_print(format_args!("{}\n", format_args!($($arg)*))));
}
