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

// The first instructions: Image header, EL drop, stack, BSS (see boot.s), and
// the secondary cores' entry. `early_uart`: where boot.s reports a wrong load
// address before any Rust runs; the rest: the hand-over a secondary core reads
// (`smp::SecondaryBoot`), named once, in Rust.
core::arch::global_asm!(
    include_str!("boot.s"),
    early_uart = const crate::board::memory::UART_BASE,
    mpidr_affinity = const smp::MPIDR_AFFINITY,
    max_cores = const crate::arch::MAX_CORES,
    boot_mair = const smp::SECONDARY_BOOT_MAIR,
    boot_tcr = const smp::SECONDARY_BOOT_TCR,
    boot_ttbr0 = const smp::SECONDARY_BOOT_TTBR0,
    boot_sctlr = const smp::SECONDARY_BOOT_SCTLR,
    boot_slots = const smp::SECONDARY_BOOT_SLOTS,
    boot_slot_size = const smp::SECONDARY_BOOT_SLOT_SIZE,
);

/// This architecture as generic code sees it: the type that implements every
/// trait of the contract (`crate::arch::contract`).
pub struct Machine;
