//! The kernel shell's host-tested half, with no machine in it: the
//! [`editor`] turns the bytes typed on the serial console into lines (echo,
//! backspace, a bounded line, a history on the arrow keys), and [`command`]
//! turns each line into one [`Command`] or one error line. The kernel
//! (`kernel/src/shell`) feeds the first and carries out the second; this
//! crate is `no_std` and tested on the host, fuzzing included
//! (`tests/fuzz.rs`: 100,000 random lines, each answered exactly once).
//!
//! | module | owns |
//! | --- | --- |
//! | [`editor`] | bytes in, echo out, an edited line (or "too long") out |
//! | [`command`] | a line in, a [`Command`] or a one-line error out; every command's `help` |
//! | [`probe_spec`] | `PROGRAM:SYMBOL[+OFFSET]` / `PROGRAM:0xADDRESS`, shared with the boot arguments |

#![no_std]

extern crate alloc;

pub mod command;
pub mod editor;
pub mod probe_spec;

pub use command::{parse, Command, Help, Parsed, COMMANDS};
pub use editor::{Entered, LineEditor, HISTORY_LINES, MAX_LINE};
pub use probe_spec::{parse_number, ProbeLocation, ProbeTarget};
