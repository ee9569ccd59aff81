//! The kernel console: `print!`/`println!` to a text screen on a framebuffer,
//! where the board has a display (the Pi 4's HDMI output, a PC's GOP
//! framebuffer), and to the board's [`ConsoleSink`] (a PL011 on aarch64; on a
//! PC the firmware's text output until ExitBootServices, then a 16550 UART).
//!
//! The boot order finds the devices: the sink as early as it can (on aarch64
//! the board table's UART, moved to the device tree's once it is read), the
//! screen once the board has a framebuffer ([`attach_screen`]). Every message
//! is drawn on the screen before it goes to the sink, so a line seen on the
//! serial port is already on the screen.
//!
//! Input, for the shell: [`listen`] has the sink raise its interrupt when
//! bytes arrive, and the exception dispatcher, on that interrupt, takes them
//! with [`take_received`]. The console's lock is then free: the receive
//! interrupt is switched on only once the tasks run, and from then on the
//! kernel takes interrupts only in user mode and in the idle loop, where it
//! holds no lock (`task::launch_requested` masks them everywhere else).

use crate::{board::ConsoleSink, drivers::framebuffer::Framebuffer, drivers::TextSink};
use core::fmt::Write;
use spin::Mutex;
use text_screen::TextScreen;

/// Where the console's text goes.
struct Console {
    screen: Option<TextScreen<Framebuffer>>,
    sink: Option<ConsoleSink>,
}

static CONSOLE: Mutex<Console> = Mutex::new(Console { screen: None, sink: None });

/// Write to `sink` from now on (instead of the one before, if any).
pub fn attach_sink(sink: ConsoleSink) {
    CONSOLE.lock().sink = Some(sink);
}

/// Draw the console on `framebuffer` from now on, besides the sink. Returns the
/// screen's size in text cells (columns, rows), or `None` if it cannot hold one.
#[cfg_attr(all(target_arch = "aarch64", not(feature = "board-rpi4")), allow(dead_code))] // QEMU virt has no display
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
    if let Some(sink) = console.sink.as_mut() {
        let _ = sink.write_fmt(args);
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

/// Have the sink raise the console's interrupt whenever bytes arrive from
/// now on; `Err` says why it cannot (no sink, or one that cannot receive).
pub fn listen() -> Result<(), &'static str> {
    match CONSOLE.lock().sink.as_mut() {
        Some(sink) => sink.listen(),
        None => Err("the console has no serial line"),
    }
}

/// Every byte received since the last call, oldest first (the console's
/// interrupt; see the module's doc for why the lock is free then).
pub fn take_received() -> alloc::vec::Vec<u8> {
    let mut console = CONSOLE.lock();
    let mut received = alloc::vec::Vec::new();
    if let Some(sink) = console.sink.as_mut() {
        while let Some(byte) = sink.read_byte() {
            received.push(byte);
        }
    }
    received
}

/// Wait for the last byte to leave the sink (before powering off).
pub fn flush() {
    if let Some(sink) = CONSOLE.lock().sink.as_mut() {
        sink.flush();
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
