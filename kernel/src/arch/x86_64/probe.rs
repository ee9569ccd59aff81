//! The machine half of probes on x86_64 (serves `crate::probe` through the
//! contract's `Probes`). What differs from aarch64, step by step:
//!
//! | step | aarch64 | x86_64 (this file) |
//! | --- | --- | --- |
//! | plant | `brk #0x5` over the 4-byte instruction, cache maintenance | `int3` (0xCC) over the first byte; no maintenance (x86 keeps instruction fetch coherent) |
//! | trap | EC 0x3C, ELR = the `brk` | #BP (vector 3), RIP = the byte *after* the `int3` |
//! | which breakpoint | the `brk` immediate | the address: RIP - 1 (slot 0 of the XOL page is the trampoline) |
//! | step | MDSCR_EL1.SS + SPSR_EL1.SS, EC 0x32 | RFLAGS.TF in the saved frame, #DB (vector 1) |
//! | out of line | 4-byte slots, the instruction as is | 16-byte slots; RIP-relative operands rewritten to a scratch register |
//! | return probe | replace x30 | replace the return address at \[RSP\] |
//!
//! The saved ring-3 trap frame is the x86_64 simulator's register file here
//! too.

use super::{debug, disassembly::Disassembly, exception::ExceptionFrame, Machine};
use crate::arch::{BreakpointTrap, Probes, ReturnSite};
use ::x86_64::registers::rflags::RFlags;
use alloc::{collections::BTreeMap, format, string::String};
use brk_abi::layout;
use core::fmt::Display;
use probe_core::{
    cache::MaintenanceCount,
    insn::x86_64::{self as isa, Gpr, Insn, Registers, StepFixup, XolImage, INT3, MAX_INSN_LEN},
    xol::SlotContent,
    Arch, Probe, ProbeId, UserMemory, X86_64,
};

/// `int 3` in its two-byte form (`CD 03`): the benchmarks' *null breakpoint*,
/// a #BP the kernel returns from at once, to measure the bare trap round trip
/// (aarch64's `brk #0x7`). A probe's `int3` is the one-byte `CC`.
const NULL_BREAKPOINT: [u8; 2] = [0xcd, 0x03];
/// Bytes in a page, for "do these bytes share a page".
const PAGE_BYTES: u64 = 4096;
/// The length of `int 0x80`, to run a system call again.
const SYSCALL_INSN_LEN: u64 = 2;
/// Bytes of a return address on the stack.
const RETURN_ADDRESS_BYTES: u64 = 8;

/// A step in flight: what the #DB needs besides the slot and the breakpoint.
pub struct StepState {
    /// Length of the instruction (the same in the slot as at the breakpoint).
    len: u64,
    fixup: StepFixup,
    /// The task's own value of the scratch register a RIP-relative fixup borrowed.
    saved_scratch: u64,
}

impl Probes for Machine {
    type Isa = X86_64;
    type SlotImage = XolImage;
    /// The slot image of every stepped probe a thread has hit: decoding the
    /// instruction again for its register use on every hit would cost more
    /// than the rest of the hit. A probe's image never changes (nor does its
    /// id get reused), so an entry is never stale.
    type SlotImages = BTreeMap<ProbeId, XolImage>;
    type StepState = StepState;

    const BREAKPOINT_NAME: &'static str = "int3";
    const PROBE_BREAKPOINT: &'static [u8] = &[INT3];
    const XOL_TRAMPOLINE: &'static [u8] = &[INT3];
    const TRAMPOLINE_ENTRY_NAME: &'static str = "int 0x82";
    const TRAMPOLINE_CHECKS_FUNCTION: bool = true;
    const LONGEST_INSTRUCTION: usize = MAX_INSN_LEN;
    const RETURN_ADDRESS_NAME: &'static str = "[RSP]";
    const STEP_LEFT_SLOT: &'static str = "not past the instruction";
    const SLOT_UNCHANGED: &'static str = "no write";

    /// x86 instructions have no alignment, so nothing here can tell the start
    /// of an instruction from a byte in its middle: a probe in the middle of
    /// an instruction decodes as whatever those bytes happen to be, and
    /// corrupts the instruction it sits in (Linux has the same limit). Probes
    /// by symbol name start at a function's first instruction.
    fn decode_instruction(text: &[u8]) -> Result<Insn, impl Display> {
        Insn::decode(text)
    }

    fn instruction_text(insn: &Insn) -> impl Display {
        Disassembly(insn.bytes())
    }

    fn covered_bytes(original: &Insn) -> impl AsRef<[u8]> {
        [original.bytes()[0]]
    }

    fn instruction_bytes(insn: &Insn) -> impl AsRef<[u8]> {
        insn.bytes()
    }

    /// RIP is the byte after the `int3`. `int3` has no immediate to tell the
    /// kinds of breakpoint apart: slot 0 of the XOL page is the trampoline,
    /// and the null breakpoint is told by the text before RIP. That read is on
    /// every #BP's path; both bytes lie in the page of `RIP - 1`, or the
    /// answer is no.
    #[inline]
    fn breakpoint_trap(
        frame: &ExceptionFrame,
        read_text: impl FnOnce(u64, &mut [u8]) -> bool,
    ) -> Option<BreakpointTrap> {
        let address = frame.rip.wrapping_sub(1);
        if address == layout::XOL_PAGE {
            return Some(BreakpointTrap::Trampoline);
        }
        // The null breakpoint's `03` byte cannot be a probe's `int3` (that
        // would be a `CC`), so nothing else needs looking at.
        let start = frame.rip.wrapping_sub(NULL_BREAKPOINT.len() as u64);
        let mut bytes = [0; NULL_BREAKPOINT.len()];
        if start / PAGE_BYTES == address / PAGE_BYTES && read_text(start, &mut bytes) && bytes == NULL_BREAKPOINT {
            return Some(BreakpointTrap::Null { resume: frame.rip });
        }
        Some(BreakpointTrap::Planted { address })
    }

    fn breakpoint_trace(frame: &ExceptionFrame, address: u64, location: impl Display) -> impl Display {
        format!("#BP (vector 3) with RIP {:#x}: int3 at {:#x} ({})", frame.rip, address, location)
    }

    #[inline]
    fn resume_address(frame: &ExceptionFrame) -> u64 {
        frame.rip
    }

    #[inline]
    fn set_resume_address(frame: &mut ExceptionFrame, address: u64) {
        frame.rip = address;
    }

    #[inline]
    fn stack_pointer(frame: &ExceptionFrame) -> u64 {
        frame.rsp
    }

    /// RIP is past the `int 0x80`.
    fn restart_system_call(frame: &mut ExceptionFrame) {
        frame.rip -= SYSCALL_INSN_LEN;
    }

    #[inline]
    fn registers(frame: &mut ExceptionFrame) -> &mut <X86_64 as Arch>::Registers {
        frame
    }

    /// The return address is at \[RSP\] (the probe is on the function's first
    /// instruction); the caller's SP after the return, RSP + 8, is the SP at
    /// the trampoline's #BP.
    fn return_site(frame: &ExceptionFrame, memory: &mut impl UserMemory) -> Result<ReturnSite, String> {
        let address = memory
            .read_u64(frame.rsp)
            .map_err(|fault| format!("return probe: reading the return address at RSP {:#x}: {}", frame.rsp, fault))?;
        Ok(ReturnSite { address, stack_pointer: frame.rsp + RETURN_ADDRESS_BYTES })
    }

    fn set_return_address(
        frame: &mut ExceptionFrame,
        memory: &mut impl UserMemory,
        address: u64,
    ) -> Result<(), String> {
        memory
            .write_u64(frame.rsp, address)
            .map_err(|fault| format!("return probe: writing the trampoline address at RSP {:#x}: {}", frame.rsp, fault))
    }

    #[inline]
    fn slot_image(images: &mut BTreeMap<ProbeId, XolImage>, probe: &Probe<X86_64>) -> XolImage {
        *images.entry(probe.id).or_insert_with(|| isa::xol_image(&probe.original))
    }

    #[inline]
    fn slot_content(image: &XolImage) -> SlotContent {
        SlotContent::from_bytes(image.bytes())
    }

    fn image_text(image: &XolImage) -> impl Display {
        Disassembly(image.bytes())
    }

    fn image_note(image: &XolImage) -> impl Display {
        match (image.fixup.rip_relative_scratch, image.fixup.pushes_flags) {
            (Some(scratch), _) => {
                format!(" once its RIP-relative operand is rewritten to [{} + disp32]", scratch.name())
            }
            (None, true) => String::from(" (pushf: TF is cleared in the pushed copy afterwards)"),
            (None, false) => String::new(),
        }
    }

    #[inline]
    fn image_bytes(image: &XolImage) -> &[u8] {
        image.bytes()
    }

    /// x86 snoops stores into code, and the `iretq` back to ring 3 is
    /// serializing, so the next fetch sees the new bytes.
    fn slot_write_trace(_alias: usize, _lines: MaintenanceCount) -> impl Display {
        "no cache maintenance (x86 keeps instruction fetch coherent; iretq serializes)"
    }

    /// A RIP-relative operand reads the scratch register in the slot: it gets
    /// the RIP the original would have seen, the task's value is kept for
    /// after the step.
    fn arm_step(frame: &mut ExceptionFrame, image: &XolImage, breakpoint: u64, slot: u64) -> StepState {
        let len = image.len() as u64;
        let mut saved_scratch = 0;
        if let Some(scratch) = image.fixup.rip_relative_scratch {
            saved_scratch = frame.gpr(scratch);
            frame.set_gpr(scratch, breakpoint + len);
        }
        frame.rip = slot;
        frame.rflags |= RFlags::TRAP_FLAG.bits();
        StepState { len, fixup: image.fixup, saved_scratch }
    }

    fn step_fixup_trace(step: &StepState, breakpoint: u64) -> Option<impl Display> {
        step.fixup.rip_relative_scratch.map(|scratch| RipRelativeTrace { scratch, next_rip: breakpoint + step.len })
    }

    fn step_armed_trace(slot: u64) -> impl Display {
        format!("iretq to slot {:#x} with RFLAGS.TF=1: one instruction, then #DB", slot)
    }

    /// A `rep` string instruction traps after every iteration with RIP still
    /// on itself: keep stepping until it is done.
    #[inline]
    fn step_repeats(frame: &ExceptionFrame, slot: u64) -> bool {
        frame.rip == slot
    }

    fn disarm_step(frame: &mut ExceptionFrame, step: &StepState) {
        frame.rflags &= !RFlags::TRAP_FLAG.bits();
        if let Some(scratch) = step.fixup.rip_relative_scratch {
            frame.set_gpr(scratch, step.saved_scratch);
        }
    }

    #[inline]
    fn step_length(step: &StepState) -> u64 {
        step.len
    }

    /// After a stepped `pushf`: the copy of RFLAGS it stored at RSP has the
    /// step's own TF in it; clear it. TF is bit 8, bit 0 of the byte at
    /// RSP + 1 for both the 8-byte `pushfq` and the 2-byte `66 9C`.
    fn finish_step(
        frame: &ExceptionFrame,
        step: &StepState,
        clear_user_bits: impl FnOnce(u64, u8) -> bool,
    ) -> Result<(), String> {
        const TF_IN_SECOND_BYTE: u8 = (RFlags::TRAP_FLAG.bits() >> 8) as u8;
        if step.fixup.pushes_flags && !clear_user_bits(frame.rsp + 1, TF_IN_SECOND_BYTE) {
            return Err(format!("pushf fixup: the flags pushed at {:#x} are not writable", frame.rsp));
        }
        Ok(())
    }

    fn step_done_trace(_frame: &ExceptionFrame, step: &StepState, stepped_to: u64, breakpoint: u64) -> impl Display {
        format!(
            "#DB (vector 1, single step) at {:#x}: RIP = {:#x} + {}, TF cleared{}",
            stepped_to,
            breakpoint,
            step.len,
            step.fixup.rip_relative_scratch.map_or(String::new(), |r| format!(", {} restored", r.name()))
        )
    }

    /// Nothing about stepping belongs to the core on x86_64 (`debug.rs`).
    #[inline]
    fn set_core_single_step(stepping: bool) {
        debug::set_core_single_step(stepping);
    }
}

/// The trace of a RIP-relative fixup armed for a step; formatted only when
/// traced, so the hit path does not format it.
struct RipRelativeTrace {
    scratch: Gpr,
    /// What the scratch register holds for the step.
    next_rip: u64,
}

impl Display for RipRelativeTrace {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "RIP-relative operand: {} = {:#x} (the original next RIP) for the step",
            self.scratch.name(),
            self.next_rip
        )
    }
}

/// The saved ring-3 trap frame as the x86_64 simulator's register file.
impl Registers for ExceptionFrame {
    fn gpr(&self, reg: Gpr) -> u64 {
        match reg {
            Gpr::Rax => self.rax,
            Gpr::Rcx => self.rcx,
            Gpr::Rdx => self.rdx,
            Gpr::Rbx => self.rbx,
            Gpr::Rsp => self.rsp,
            Gpr::Rbp => self.rbp,
            Gpr::Rsi => self.rsi,
            Gpr::Rdi => self.rdi,
            Gpr::R8 => self.r8,
            Gpr::R9 => self.r9,
            Gpr::R10 => self.r10,
            Gpr::R11 => self.r11,
            Gpr::R12 => self.r12,
            Gpr::R13 => self.r13,
            Gpr::R14 => self.r14,
            Gpr::R15 => self.r15,
        }
    }
    fn set_gpr(&mut self, reg: Gpr, value: u64) {
        let slot = match reg {
            Gpr::Rax => &mut self.rax,
            Gpr::Rcx => &mut self.rcx,
            Gpr::Rdx => &mut self.rdx,
            Gpr::Rbx => &mut self.rbx,
            Gpr::Rsp => &mut self.rsp,
            Gpr::Rbp => &mut self.rbp,
            Gpr::Rsi => &mut self.rsi,
            Gpr::Rdi => &mut self.rdi,
            Gpr::R8 => &mut self.r8,
            Gpr::R9 => &mut self.r9,
            Gpr::R10 => &mut self.r10,
            Gpr::R11 => &mut self.r11,
            Gpr::R12 => &mut self.r12,
            Gpr::R13 => &mut self.r13,
            Gpr::R14 => &mut self.r14,
            Gpr::R15 => &mut self.r15,
        };
        *slot = value;
    }
    fn rip(&self) -> u64 {
        self.rip
    }
    fn set_rip(&mut self, value: u64) {
        self.rip = value;
    }
    fn rflags(&self) -> u64 {
        self.rflags
    }
}
