//! The EL0 runtime: what a user program needs between the kernel's `eret` and its
//! own `main`, and the system calls it makes afterwards.
//!
//! A program is a `no_std`, `no_main` binary for `aarch64-unknown-none` or
//! `x86_64-unknown-none`:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//!
//! use user_rt::println;
//!
//! user_rt::entry!(main);
//!
//! fn main(args: &str) -> i32 {
//!     println!("args were '{args}'");
//!     0
//! }
//! ```
//!
//! - [`entry!`] names the program's `main`; `_start` calls it with the argument
//!   string and passes its return value to [`sys::exit`].
//! - [`sys`] has one wrapper per system call of [`brk_abi`] (plus the raw
//!   [`sys::syscall6`]).
//! - [`print!`]/[`println!`] write to the console, one `write` per call.
//! - A panic prints `panic: <message> at <file>:<line>` and ends the process with
//!   status [`PANIC_EXIT_STATUS`].
//! - [`thread`] spawns, joins and yields threads of the same process.
//!
//! Each program also needs `build = "../build.rs"` in its Cargo.toml, which links
//! it with `linker/user.ld` or `linker/user-x86_64.ld` (see
//! `user/template/README.md`).
//!
//! The instruction-set specific parts (`_start`, the system call instruction,
//! thread entry) are in one private `arch` module per architecture; everything
//! else here is the same on both.

#![no_std]

mod arch;
pub mod args;
pub mod image;
mod panic;
pub mod print;
mod start;
pub mod sys;
pub mod thread;

pub use brk_abi::{layout, Error, ProbeCounters, ProbeKind, ProbeStats, TaskInfo};
pub use panic::PANIC_EXIT_STATUS;

/// Names the program's entry function, `fn main(args: &str) -> i32`.
///
/// `_start` calls it with the argument string the kernel passed and ends the
/// process with the returned status. Use it exactly once per program, at the
/// crate's top level; a program without it fails to link with an undefined
/// `__user_rt_main`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// The runtime's call into the program (see `user_rt::entry!`).
        #[unsafe(export_name = "__user_rt_main")]
        fn __user_rt_main(args: &str) -> i32 {
            // The type annotation makes a `main` with the wrong signature a
            // compile error here instead of a mismatch at link time.
            let main: fn(&str) -> i32 = $main;
            main(args)
        }
    };
}

/// The assembly text of one global function for `global_asm!`: its symbol,
/// `%function` type, 8-byte alignment, the given lines, and its size, so the
/// kernel's symbol table names it and a probe can be put on it by name
/// (`asm_function!("step_alu", "add x0, x0, x0, lsl #3", "ret")`).
///
/// The directives are valid on both architectures and in both x86 syntaxes;
/// the lines are in whatever syntax the `global_asm!` call uses. On x86_64 that
/// is Rust's default, Intel without `%` prefixes
/// (`asm_function!("step_lea", "lea rax, [rdi + 8*rdi]", "ret")`); add
/// `options(att_syntax)` to the `global_asm!` call to write AT&T instead.
#[macro_export]
macro_rules! asm_function {
    ($name:literal, $($line:literal),* $(,)?) => {
        concat!(
            ".globl ", $name, "\n.type ", $name, ", %function\n.p2align 3\n", $name, ":\n",
            $($line, "\n",)*
            ".size ", $name, ", . - ", $name, "\n"
        )
    };
}
