//! The kernel console: `print!`/`println!` over the PL011.
//!
//! The console is reachable before anything else is set up (the board table gives
//! the UART address), then moved to the address the device tree names.

use crate::drivers::pl011::Pl011;
use core::fmt::Write;
use spin::Mutex;

static CONSOLE: Mutex<Option<Pl011>> = Mutex::new(None);

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
    *CONSOLE.lock() = Some(uart);
}

#[doc(hidden)]
pub fn _print(args: core::fmt::Arguments) {
    if let Some(uart) = CONSOLE.lock().as_mut() {
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
    if let Some(uart) = CONSOLE.lock().as_ref() {
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
