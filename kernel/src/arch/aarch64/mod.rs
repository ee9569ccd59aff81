//! AArch64: boot glue, exception vectors, MMU, caches, timer, semihosting.

pub mod boot_map;
pub mod cache;
pub mod cpu;
pub mod debug;
mod disassembly;
pub mod exception;
pub mod expected_traps;
pub mod fpsimd;
pub mod memory_layout;
pub mod mmu;
pub mod power;
mod probe;
pub mod psci;
pub mod semihosting;
pub mod smp;
mod syndrome;
pub mod timer;

// The first instructions: Image header, EL drop, stack, BSS (see boot.s).
// `early_uart`: where boot.s reports a wrong load address before any Rust runs.
core::arch::global_asm!(include_str!("boot.s"), early_uart = const crate::board::memory::UART_BASE);

/// This architecture as generic code sees it: the type that implements every
/// trait of the contract (`crate::arch::contract`).
pub struct Machine;
