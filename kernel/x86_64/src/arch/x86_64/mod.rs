//! x86_64: descriptor tables, trap stubs, paging, the 8259 PIC, the 8254 PIT
//! and the TSC, and QEMU's isa-debug-exit port.

pub mod cpu;
pub mod debug;
pub mod exception;
pub mod fpsimd;
pub mod gdt;
pub mod mmu;
pub mod pic;
pub mod poweroff;
pub mod timer;

/// What this architecture calls user mode and its counter, for the lines the
/// shared code prints (`boot: first ring-3 instruction at TSC=...`).
pub const USER_MODE: &str = "ring-3";
pub const COUNTER_NAME: &str = "TSC";
