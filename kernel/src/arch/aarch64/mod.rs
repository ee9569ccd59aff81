//! AArch64: boot glue, exception vectors, MMU, caches, timer, semihosting.

pub mod cache;
pub mod cpu;
pub mod debug;
pub mod exception;
pub mod fpsimd;
pub mod mmu;
pub mod psci;
pub mod semihosting;
pub mod timer;

// The first instructions: Image header, EL drop, stack, BSS (see boot/boot.s).
core::arch::global_asm!(include_str!("../../../../boot/boot.s"));
