//! The brk-path kernel: a tiny kernel that shows how an operating system
//! handles user-space software breakpoints, on aarch64 boards (an EL1 kernel
//! with EL0 tasks) and on x86_64 PCs (a UEFI application that takes the
//! machine over, with ring-3 tasks).
//!
//! Layout: generic subsystems live at `src/<subsystem>.rs`, architecture code
//! at `src/arch/<arch>/`, board code at `src/board/<name>/`, and each
//! architecture's boot order at `src/start/<arch>.rs`.

#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod board;
mod bootargs;
#[cfg_attr(target_arch = "x86_64", path = "console_x86_64.rs")]
mod console;
#[cfg(target_arch = "aarch64")]
mod devicetree;
mod drivers;
#[cfg_attr(target_arch = "x86_64", path = "exception_x86_64.rs")]
mod exception;
mod memory;
mod panic;
#[cfg_attr(target_arch = "x86_64", path = "power_x86_64.rs")]
mod power;
#[cfg_attr(target_arch = "x86_64", path = "probe/mod_x86_64.rs")]
mod probe;
mod programs;
mod run;
#[cfg_attr(target_arch = "x86_64", path = "selftest_x86_64.rs")]
mod selftest;
mod start;
mod syscall;
mod task;
#[cfg_attr(target_arch = "x86_64", path = "time_x86_64.rs")]
mod time;

/// On x86_64 the firmware describes the platform (the shared files call that
/// description `devicetree`, as on aarch64, where the device tree does).
#[cfg(target_arch = "x86_64")]
use board::uefi_pc::firmware as devicetree;
