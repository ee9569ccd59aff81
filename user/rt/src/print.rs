//! Console output: [`print!`](crate::print!) and [`println!`](crate::println!).
//!
//! Each call formats into a buffer on the caller's stack and hands it to the
//! kernel in one `write(1, ...)`, so a line printed by one thread never has
//! another thread's output in the middle of it. Only text longer than the buffer
//! ([`LINE_BUFFER_SIZE`]) is split over several writes.

use core::fmt::{self, Write};

use crate::sys;

/// The file descriptor of the console.
pub const CONSOLE: u64 = 1;

/// Bytes formatted before a write is forced. Small enough for any thread's
/// 64 KiB stack, long enough for every line the programs here print.
pub const LINE_BUFFER_SIZE: usize = 256;

/// Formatted text waiting for one `write`.
struct LineBuffer {
    bytes: [u8; LINE_BUFFER_SIZE],
    length: usize,
}

impl LineBuffer {
    const fn new() -> Self {
        Self { bytes: [0; LINE_BUFFER_SIZE], length: 0 }
    }

    /// Writes out what is buffered and empties the buffer.
    fn flush(&mut self) {
        write_all(&self.bytes[..self.length]);
        self.length = 0;
    }
}

impl Write for LineBuffer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text.as_bytes();
        while !rest.is_empty() {
            if self.length == LINE_BUFFER_SIZE {
                self.flush();
            }
            let room = LINE_BUFFER_SIZE - self.length;
            let take = room.min(rest.len());
            self.bytes[self.length..self.length + take].copy_from_slice(&rest[..take]);
            self.length += take;
            rest = &rest[take..];
        }
        Ok(())
    }
}

/// Writes all of `bytes` to the console, retrying after a short write.
///
/// Errors are dropped: there is nowhere left to report a console that does not
/// take output, and a program should not die of it.
fn write_all(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match sys::write(CONSOLE, bytes) {
            Ok(written) if written > 0 => bytes = &bytes[(written as usize).min(bytes.len())..],
            // Zero bytes written would loop forever; an error will not go away.
            Ok(_) | Err(_) => return,
        }
    }
}

/// Formats `args`, and a newline if `newline`, and writes it in one `write`.
#[doc(hidden)]
pub fn _print(args: fmt::Arguments, newline: bool) {
    let mut buffer = LineBuffer::new();
    // LineBuffer never fails; an error here can only come from a `Display` impl,
    // and then what was formatted so far is still worth printing.
    let _ = buffer.write_fmt(args);
    if newline {
        let _ = buffer.write_str("\n");
    }
    buffer.flush();
}

/// Prints to the console, in one `write` (see the module documentation).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::print::_print(::core::format_args!($($arg)*), false)
    };
}

/// Prints to the console with a newline, in one `write`, so lines from different
/// threads never interleave.
#[macro_export]
macro_rules! println {
    () => {
        $crate::print::_print(::core::format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::print::_print(::core::format_args!($($arg)*), true)
    };
}
