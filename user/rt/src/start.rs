//! The start of a process in Rust: what `_start` (in [`crate::arch`], where the
//! kernel's first return to user mode lands) calls.
//!
//! The kernel passes the address and length of the argument string (UTF-8, not
//! NUL-terminated, at most `ARGS_MAX` bytes) in the first two argument registers
//! (`x0`/`x1`, `rdi`/`rsi`), the stack pointer at the top of the main thread's
//! stack, and `.bss` already zeroed. Nothing else needs setting up: there is no
//! TLS; the aarch64 kernel enables FP/SIMD for EL0, and the x86_64 target is
//! soft-float, so its code never needs the SSE the kernel leaves off.

use crate::sys;

unsafe extern "Rust" {
    /// Defined by the program through [`crate::entry!`].
    safe fn __user_rt_main(args: &str) -> i32;
}

/// Builds the `&str` of arguments, runs the program's `main`, exits with its status.
pub(crate) extern "C" fn start_rust(args_address: usize, args_length: usize) -> ! {
    let args = if args_length == 0 {
        // The address may be anything (even 0) when there are no arguments.
        ""
    } else {
        // SAFETY: the ABI of `_start` (brk_abi::layout::ARGS_MAX): the kernel
        // passes `args_length` readable bytes at `args_address`, outside the stack
        // that grows down from SP, and nothing writes them while the process runs.
        // Clamping to ARGS_MAX keeps a kernel bug from becoming a read far past
        // the string.
        let bytes =
            unsafe { core::slice::from_raw_parts(args_address as *const u8, args_length.min(crate::layout::ARGS_MAX)) };
        match core::str::from_utf8(bytes) {
            Ok(args) => args,
            Err(error) => panic!("the argument string is not UTF-8: {error}"),
        }
    };
    sys::exit(__user_rt_main(args))
}
