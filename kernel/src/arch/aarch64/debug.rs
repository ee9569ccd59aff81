//! AArch64 self-hosted debug (serves `crate::probe` through `probe.rs`, and
//! `task`): the `brk` instructions the probes plant and hardware single-step
//! of one EL0 instruction.
//!
//! Single-step needs two bits (Arm ARM D2.12, "Software Step exceptions"):
//! MDSCR_EL1.SS enables stepping for the core, and SPSR_EL1.SS in the frame we
//! `eret` with says "active-not-pending": execute one instruction, then take the
//! step exception (ESR_EL1.EC = 0x32). With only MDSCR_EL1.SS set the exception
//! is taken at once, before the instruction runs. MDSCR_EL1.SS belongs to the
//! core, not the thread, so the scheduler sets it on every switch to match the
//! thread it resumes, and the step handler clears it: left set, the next `eret`
//! to any thread would step again.

use super::exception::ExceptionFrame;
use aarch64_cpu::registers::{MDSCR_EL1, SPSR_EL1};
use tock_registers::interfaces::ReadWriteable;

/// The immediate of the `brk` a uprobe plants (Linux's arm64 uprobes use 0x005 too).
pub const PROBE_BRK_IMMEDIATE: u16 = 0x005;
/// The immediate of the return trampoline's `brk` in XOL slot 0.
pub const TRAMPOLINE_BRK_IMMEDIATE: u16 = 0x006;
/// The null breakpoint (`brk_abi::layout::NULL_BRK_IMMEDIATE`): only stepped over.
pub const NULL_BRK_IMMEDIATE: u16 = brk_abi::layout::NULL_BRK_IMMEDIATE;

/// The encoding of `brk #imm` (Arm ARM C6.2.38: 0xd4200000 | imm16 << 5).
pub const fn brk_instruction(immediate: u16) -> u32 {
    const BRK_OPCODE: u32 = 0xd420_0000;
    const IMM16_SHIFT: u32 = 5;
    BRK_OPCODE | (immediate as u32) << IMM16_SHIFT
}

/// Make the `eret` with `frame` execute exactly one EL0 instruction, then trap.
pub fn arm_single_step(frame: &mut ExceptionFrame) {
    frame.spsr.modify(SPSR_EL1::SS::SET);
    set_core_single_step(true);
}

/// Set MDSCR_EL1.SS for the thread about to run on this core.
pub fn set_core_single_step(enabled: bool) {
    MDSCR_EL1.modify(if enabled { MDSCR_EL1::SS::SET } else { MDSCR_EL1::SS::CLEAR });
}
