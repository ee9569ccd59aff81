//! The machine half of probes on AArch64 (serves `crate::probe` through the
//! contract's `Probes`): a probe is `brk #0x5` over the 4-byte instruction,
//! its trap is EC 0x3C with ELR at the `brk` and the immediate in the ISS;
//! the instruction is stepped as it is in a 4-byte XOL slot, under
//! MDSCR_EL1.SS and SPSR_EL1.SS (`debug.rs`), and every write of code is
//! followed by the `DC CVAU` / `IC IVAU` sequence (`cache.rs`). The saved
//! frame is the A64 simulator's register file here too.

use super::{
    cache,
    debug::{self, brk_instruction, NULL_BRK_IMMEDIATE, PROBE_BRK_IMMEDIATE, TRAMPOLINE_BRK_IMMEDIATE},
    disassembly::Disassembly,
    exception::ExceptionFrame,
    fpsimd::FpState,
    syndrome::{BrkSyndrome, StepSyndrome},
    Machine,
};
use crate::arch::{BreakpointTrap, Probes, ReturnSite};
use aarch64_cpu::registers::SPSR_EL1;
use alloc::{format, string::String};
use brk_abi::layout;
use core::fmt::Display;
use probe_core::{
    cache::MaintenanceCount, insn::aarch64::Registers, xol::SlotContent, Aarch64, Arch, Probe, UserMemory,
};
use tock_registers::interfaces::Readable;

/// Bytes in one A64 instruction.
const INSTRUCTION_BYTES: usize = 4;
/// The `brk` a uprobe plants, as the text holds it.
const PROBE_BRK: [u8; INSTRUCTION_BYTES] = brk_instruction(PROBE_BRK_IMMEDIATE).to_le_bytes();
/// A branch trampoline's entry, as traces name it.
const TRAMPOLINE_SVC_NAME: &str = "svc #0xb7e";
const _: () = assert!(probe_core::insn::aarch64::TRAMPOLINE_SVC_IMMEDIATE == 0xb7e, "the name says the immediate");
/// The link register, where `bl` leaves the return address.
const LINK_REGISTER: usize = 30;

impl Probes for Machine {
    type Isa = Aarch64;
    /// The instruction word itself, as memory holds it: A64 instructions run
    /// the same anywhere.
    type SlotImage = [u8; INSTRUCTION_BYTES];
    /// Nothing to cache: the image is the probe's instruction.
    type SlotImages = ();
    /// Nothing beyond the slot: the step bits are the frame's and the core's.
    type StepState = ();

    const BREAKPOINT_NAME: &'static str = "brk";
    const PROBE_BREAKPOINT: &'static [u8] = &PROBE_BRK;
    const XOL_TRAMPOLINE: &'static [u8] = &debug::brk_instruction(debug::TRAMPOLINE_BRK_IMMEDIATE).to_le_bytes();
    const TRAMPOLINE_ENTRY_NAME: &'static str = TRAMPOLINE_SVC_NAME;
    const TRAMPOLINE_CHECKS_FUNCTION: bool = false;
    const LONGEST_INSTRUCTION: usize = INSTRUCTION_BYTES;
    const RETURN_ADDRESS_NAME: &'static str = "x30";
    const STEP_LEFT_SLOT: &'static str = "not the next slot address";
    const SLOT_UNCHANGED: &'static str = "no write, no cache maintenance";

    fn decode_instruction(text: &[u8]) -> Result<u32, impl Display> {
        match text.get(..INSTRUCTION_BYTES) {
            Some(word) => Ok(u32::from_le_bytes(word.try_into().expect("4 bytes"))),
            None => Err("fewer than 4 bytes of text"),
        }
    }

    fn instruction_text(insn: &u32) -> impl Display {
        Disassembly(*insn)
    }

    fn instruction_bytes(insn: &u32) -> impl AsRef<[u8]> {
        insn.to_le_bytes()
    }

    fn covered_bytes(original: &u32) -> impl AsRef<[u8]> {
        original.to_le_bytes()
    }

    /// The immediate tells: 0x5 a probe's `brk` at ELR, 0x6 the trampoline
    /// (in slot 0 only), the null breakpoint's; any other is the program's.
    #[inline]
    fn breakpoint_trap(
        frame: &ExceptionFrame,
        _read_text: impl FnOnce(u64, &mut [u8]) -> bool,
    ) -> Option<BreakpointTrap> {
        match frame.brk_immediate() {
            PROBE_BRK_IMMEDIATE => Some(BreakpointTrap::Planted { address: frame.elr }),
            TRAMPOLINE_BRK_IMMEDIATE if frame.elr == layout::XOL_PAGE => Some(BreakpointTrap::Trampoline),
            NULL_BRK_IMMEDIATE => Some(BreakpointTrap::Null { resume: frame.elr + INSTRUCTION_BYTES as u64 }),
            _ => None,
        }
    }

    fn breakpoint_trace(frame: &ExceptionFrame, address: u64, location: impl Display) -> impl Display {
        format!("brk #{:#x} at {:#x} ({}): {}", frame.brk_immediate(), address, location, BrkSyndrome(frame.esr.get()))
    }

    #[inline]
    fn resume_address(frame: &ExceptionFrame) -> u64 {
        frame.elr
    }

    #[inline]
    fn set_resume_address(frame: &mut ExceptionFrame, address: u64) {
        frame.elr = address;
    }

    #[inline]
    fn stack_pointer(frame: &ExceptionFrame) -> u64 {
        frame.sp_el0
    }

    /// The `svc` is the 4 bytes before ELR.
    fn restart_system_call(frame: &mut ExceptionFrame) {
        frame.elr -= INSTRUCTION_BYTES as u64;
    }

    #[inline]
    fn registers(frame: &mut ExceptionFrame) -> &mut <Aarch64 as Arch>::Registers {
        frame
    }

    /// `bl` left the return address in x30; SP is the caller's already.
    #[inline]
    fn return_site(frame: &ExceptionFrame, _memory: &mut impl UserMemory) -> Result<ReturnSite, String> {
        Ok(ReturnSite { address: frame.x[LINK_REGISTER], stack_pointer: frame.sp_el0 })
    }

    #[inline]
    fn set_return_address(
        frame: &mut ExceptionFrame,
        _memory: &mut impl UserMemory,
        address: u64,
    ) -> Result<(), String> {
        frame.x[LINK_REGISTER] = address;
        Ok(())
    }

    #[inline]
    fn slot_image(_images: &mut (), probe: &Probe<Aarch64>) -> [u8; INSTRUCTION_BYTES] {
        probe.original.to_le_bytes()
    }

    #[inline]
    fn slot_content(image: &[u8; INSTRUCTION_BYTES]) -> SlotContent {
        SlotContent::from(u32::from_le_bytes(*image))
    }

    fn image_text(image: &[u8; INSTRUCTION_BYTES]) -> impl Display {
        Disassembly(u32::from_le_bytes(*image))
    }

    fn image_note(_image: &[u8; INSTRUCTION_BYTES]) -> impl Display {
        ""
    }

    #[inline]
    fn image_bytes(image: &[u8; INSTRUCTION_BYTES]) -> &[u8] {
        image
    }

    fn slot_write_trace(alias: usize, lines: MaintenanceCount) -> impl Display {
        let geometry = cache::geometry();
        let dcache_line = alias & !(geometry.dcache_line - 1);
        if lines.ic_iallu > 0 {
            format!(
                "DC CVAU {} line(s) at {:#x}, DSB ISH, IC IALLUIS (the I-cache may alias: the user's line is not indexed by the kernel's address), DSB ISH, ISB; inner shareable: every core's caches",
                lines.dc_cvau_lines, dcache_line
            )
        } else {
            format!(
                "DC CVAU {} line(s) at {:#x}, DSB ISH, IC IVAU {} line(s) at {:#x}, DSB ISH, ISB; inner shareable: every core's caches",
                lines.dc_cvau_lines,
                dcache_line,
                lines.ic_ivau_lines,
                alias & !(geometry.icache_line - 1)
            )
        }
    }

    #[inline]
    fn arm_step(frame: &mut ExceptionFrame, _image: &[u8; INSTRUCTION_BYTES], _breakpoint: u64, slot: u64) {
        frame.elr = slot;
        debug::arm_single_step(frame);
    }

    fn step_fixup_trace(_step: &(), _breakpoint: u64) -> Option<impl Display> {
        None::<&str>
    }

    fn step_armed_trace(slot: u64) -> impl Display {
        format!(
            "eret to slot {:#x} with MDSCR_EL1.SS=1 and SPSR_EL1.SS=1: one instruction, then a step exception",
            slot
        )
    }

    /// A software step exception comes after the one instruction, never in it.
    #[inline]
    fn step_repeats(_frame: &ExceptionFrame, _slot: u64) -> bool {
        false
    }

    /// MDSCR_EL1.SS off, or the next `eret` to any thread would step again.
    /// (SPSR_EL1.SS was cleared by taking the step exception.)
    #[inline]
    fn disarm_step(_frame: &mut ExceptionFrame, _step: &()) {
        // EXERCISE BREAKAGE (docs/exercises.md, exercise 4): the feature leaves MDSCR_EL1.SS set.
        #[cfg(not(feature = "exercise-keep-mdscr-ss-after-step"))]
        debug::set_core_single_step(false);
    }

    #[inline]
    fn step_length(_step: &()) -> u64 {
        INSTRUCTION_BYTES as u64
    }

    #[inline]
    fn finish_step(
        _frame: &ExceptionFrame,
        _step: &(),
        _clear_user_bits: impl FnOnce(u64, u8) -> bool,
    ) -> Result<(), String> {
        Ok(())
    }

    fn step_done_trace(frame: &ExceptionFrame, _step: &(), stepped_to: u64, breakpoint: u64) -> impl Display {
        format!(
            "step exception at {:#x}: {}; PC = {:#x} + 4, MDSCR_EL1.SS cleared",
            stepped_to,
            StepSyndrome(frame.esr.get()),
            breakpoint
        )
    }

    #[inline]
    fn set_core_single_step(stepping: bool) {
        debug::set_core_single_step(stepping);
    }
}

/// The saved EL0 frame as the A64 simulator's register file.
impl Registers for ExceptionFrame {
    fn x(&self, index: u8) -> u64 {
        self.x[index as usize]
    }
    fn set_x(&mut self, index: u8, value: u64) {
        self.x[index as usize] = value;
    }
    fn sp(&self) -> u64 {
        self.sp_el0
    }
    fn set_sp(&mut self, value: u64) {
        self.sp_el0 = value;
    }
    fn pc(&self) -> u64 {
        self.elr
    }
    fn set_pc(&mut self, value: u64) {
        self.elr = value;
    }
    fn nzcv(&self) -> u32 {
        /// N, Z, C, V where SPSR_EL1 (and the simulator) keep them, bits 31..28.
        const NZCV_MASK: u64 =
            SPSR_EL1::N::SET.mask() | SPSR_EL1::Z::SET.mask() | SPSR_EL1::C::SET.mask() | SPSR_EL1::V::SET.mask();
        (self.spsr.get() & NZCV_MASK) as u32
    }
    /// A simulated SIMD&FP literal load's result. The V registers are not in
    /// the saved frame: the kernel is soft-float and never touches them, and
    /// the scheduler saves them only when it switches a thread out
    /// (`fpsimd.rs`, `fp_owner`). So while this core handles the thread's
    /// trap, the thread's v0-v31 are live in the core's own registers, and
    /// that is where the value goes. Rather than 32 hand-written moves (an
    /// `asm!` operand cannot name a register by a run-time index), this saves
    /// all of them with the scheduler's own `FpState::save`, changes the one
    /// register in the copy, and loads them all back: about 1 KiB of loads and
    /// stores on a path that has just taken an exception, with only the code
    /// the context switch already relies on. FPCR and FPSR go round unchanged.
    /// CPACR_EL1.FPEN = 0b11 (boot.s, every core) lets EL1 execute these.
    fn set_v(&mut self, index: u8, value: u128) {
        let mut live = FpState::new();
        live.save();
        live.set_v(index, value);
        live.restore();
    }
}
