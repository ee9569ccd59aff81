//! Everything in the runtime that depends on the instruction set, behind one
//! interface: the entry point `_start`, the raw system call instructions and the
//! way a new thread enters Rust. The rest of `user-rt` is the same on every
//! architecture (the directives of [`crate::asm_function!`] included: LLVM
//! takes `.type name, %function` on both).
//!
//! Each architecture module provides:
//!
//! - `_start`, the ELF entry, which calls [`crate::start::start_rust`];
//! - `syscall0`..`syscall3`, `syscall0_pair`, `syscall1_pair`, `syscall6` and
//!   `syscall1_noreturn`: the trap into the kernel with the call number and
//!   arguments in the registers brk_abi names for the architecture;
//! - `ThreadEntry` and `thread_entry()`, the code a thread made by
//!   [`crate::thread::spawn`] starts at.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

#[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
compile_error!("user-rt supports aarch64 (aarch64-unknown-none) and x86_64 (x86_64-unknown-none) only");
