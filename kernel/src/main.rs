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
mod console;
mod cores;
#[cfg(target_arch = "aarch64")]
mod devicetree;
mod drivers;
mod exception;
mod memory;
mod panic;
mod power;
mod probe;
mod programs;
mod run;
mod selftest;
mod shell;
mod start;
mod syscall;
mod task;
mod time;
