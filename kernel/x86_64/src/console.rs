//! The kernel console: `print!`/`println!` over the PC's first serial port
//! (COM1, a 16550 UART at I/O port 0x3f8, driven by the `uart_16550` crate).
//!
//! The kernel writes to COM1 directly from its first line on, before
//! ExitBootServices too, rather than through the firmware's text console:
//! OVMF mirrors its console onto the same serial port, so going through both
//! would print every line twice.

use core::fmt::Write;
use spin::Mutex;
use uart_16550::{backend::PioBackend, BaudRate, Config, Uart16550Tty};

/// COM1's I/O port base.
pub const COM1_PORT: u16 = 0x3f8;

static CONSOLE: Mutex<Option<Uart16550Tty<PioBackend>>> = Mutex::new(None);

/// Set COM1 up (115200 baud 8N1, FIFO on). Without a working UART there is
/// no console, and the kernel runs silently.
pub fn init() {
    let config = Config { baud_rate: BaudRate::Baud115200, ..Config::DEFAULT };
    // SAFETY: COM1 is the PC's fixed serial port; after this the kernel is the
    // only code that drives it (the firmware's console output is not used).
    *CONSOLE.lock() = unsafe { Uart16550Tty::new_port(COM1_PORT, config) }.ok();
}

#[doc(hidden)]
pub fn _print(args: core::fmt::Arguments) {
    if let Some(uart) = CONSOLE.lock().as_mut() {
        let _ = uart.write_fmt(args);
    }
}

/// Print even if the lock is held: used on the way down (panic, fatal
/// exception), when the holder will never run again.
pub fn print_on_the_way_down(args: core::fmt::Arguments) {
    // SAFETY: only called when the kernel is about to power off; nobody else will
    // use the console concurrently (single core, interrupts masked on this path).
    unsafe { CONSOLE.force_unlock() };
    _print(args);
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
