//! The entry point: `_start`, where the kernel's first `eret` into a process lands.
//!
//! The kernel enters with `x0` = address and `x1` = length of the argument string
//! (UTF-8, not NUL-terminated, at most `ARGS_MAX` bytes), SP = the top of the main
//! thread's stack (16-byte aligned), and `.bss` already zeroed. Nothing else needs
//! setting up: FP/SIMD is enabled for EL0 by the kernel, and there is no TLS.

use crate::sys;

unsafe extern "Rust" {
    /// Defined by the program through [`crate::entry!`].
    safe fn __user_rt_main(args: &str) -> i32;
}

/// The ELF entry point (`ENTRY(_start)` in `linker/user.ld`).
///
/// Written as a naked function so the frame chain starts clean: `x29` = 0 and
/// `x30` = 0 mark the outermost frame for a debugger or a kernel unwinding the
/// user stack. `x0`/`x1` pass straight through to [`start_rust`].
#[unsafe(naked)]
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text._start")]
pub extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "mov x29, xzr",
        "mov x30, xzr",
        "bl {start_rust}",
        // start_rust never returns; should it, fault here rather than run on
        // into whatever follows.
        "udf #0",
        start_rust = sym start_rust,
    )
}

/// Builds the `&str` of arguments, runs the program's `main`, exits with its status.
extern "C" fn start_rust(args_address: usize, args_length: usize) -> ! {
    let args = if args_length == 0 {
        // The address may be anything (even 0) when there are no arguments.
        ""
    } else {
        // SAFETY: the ABI of `_start` (brk_abi::layout::ARGS_MAX): the kernel
        // passes `args_length` readable bytes at `args_address`, outside the stack
        // that grows down from SP, and nothing writes them while the process runs.
        // Clamping to ARGS_MAX keeps a kernel bug from becoming a read far past
        // the string.
        let bytes = unsafe {
            core::slice::from_raw_parts(
                args_address as *const u8,
                args_length.min(crate::layout::ARGS_MAX),
            )
        };
        match core::str::from_utf8(bytes) {
            Ok(args) => args,
            Err(error) => panic!("the argument string is not UTF-8: {error}"),
        }
    };
    sys::exit(__user_rt_main(args))
}
