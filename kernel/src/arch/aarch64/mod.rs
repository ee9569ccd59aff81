//! AArch64: boot glue, exception vectors, MMU, caches, timer, semihosting.

pub mod boot_map;
pub mod cache;
pub mod cpu;
pub mod debug;
pub mod exception;
pub mod fpsimd;
pub mod memory_layout;
pub mod mmu;
pub mod power;
pub mod psci;
pub mod semihosting;
pub mod timer;

/// What this architecture calls user mode and its counter, for the lines the
/// shared code prints (`boot: first EL0 instruction at CNTVCT=...`).
pub const USER_MODE: &str = "EL0";
pub const COUNTER_NAME: &str = "CNTVCT";

// The first instructions: Image header, EL drop, stack, BSS (see boot.s).
// `early_uart`: where boot.s reports a wrong load address before any Rust runs.
core::arch::global_asm!(include_str!("boot.s"), early_uart = const crate::board::memory::UART_BASE);

/// This architecture as generic code sees it: the type that implements every
/// trait of the contract (`crate::arch::contract`).
pub struct Machine;
