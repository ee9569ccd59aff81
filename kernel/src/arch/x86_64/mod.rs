//! x86_64: descriptor tables, trap stubs, paging, the local APIC and its
//! timer, the TSC and the clocks it is measured against (HPET, ACPI PM timer,
//! 8254 PIT), the 8259 PICs (masked), and QEMU's isa-debug-exit port.

pub mod cpu;
pub mod debug;
mod disassembly;
pub mod exception;
pub mod fpsimd;
pub mod gdt;
pub mod hpet;
pub mod lapic;
pub mod memory_layout;
pub mod mmu;
pub mod pic;
pub mod pit;
pub mod pm_timer;
pub mod poweroff;
mod probe;
pub mod smp;
pub mod timer;
pub mod tsc;

pub mod expected_traps;

/// This architecture as generic code sees it: the type that implements every
/// trait of the contract (`crate::arch::contract`).
pub struct Machine;
