//! The contract's `Probes` trait: the machine half of probes: the breakpoint
//! and single-step mechanism and the instruction set the probe core decodes.
//!
//! The generic probe code (`crate::probe`) runs one hit path for every
//! architecture: the registry, the thread's breakpoint tree, the choice
//! between simulating and stepping, the XOL slot claim and reuse, return
//! probes. What it cannot know is here: what a breakpoint looks like in the
//! trap frame and in the text, how the saved registers become the probe
//! core's register file, what an XOL slot holds for a stepped instruction and
//! how it is made executable, and how one instruction is stepped. Every item
//! is a static function or constant of [`crate::arch::Machine`], so the hit
//! path stays monomorphic: no indirect call, no allocation, no lock is added
//! by going through this trait.
//!
//! The words the `--trace` lines use for the machine's side of a hit come
//! from here too (`brk #0x5 ... EC 0x3C` with the ESR's fields decoded on
//! aarch64, `#BP (vector 3)` on x86_64, and every instruction disassembled):
//! the generic code evaluates them only when tracing.

use super::Frame;
use alloc::string::String;
use core::fmt::Display;
use probe_core::{cache::MaintenanceCount, trampoline::Trampolines, xol::SlotContent, Arch, Probe, UserMemory};

/// What a breakpoint trap from user mode is, as the machine tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakpointTrap {
    /// The breakpoint a probe plants, at `address`: a probe's, unless the
    /// program put the same instruction there itself.
    Planted { address: u64 },
    /// The return trampoline's breakpoint in XOL slot 0: a probed function returned.
    Trampoline,
    /// The benchmarks' null breakpoint: resume at `resume` at once.
    Null { resume: u64 },
}

/// Where a function whose first instruction holds a return probe returns to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReturnSite {
    /// The return address the caller left (in a register or on the stack).
    pub address: u64,
    /// The stack pointer the caller sees once the function has returned: the
    /// return stack tells a live frame from an abandoned one by it.
    pub stack_pointer: u64,
}

/// The machine half of probes: the breakpoint and single-step mechanism and
/// the instruction set the probe core decodes.
pub trait Probes {
    /// The instruction set as the probe core knows it (`probe_core::Aarch64`,
    /// `probe_core::X86_64`): the registry, tree, slots and return stack of
    /// this machine are instantiated with it, and it relocates instructions
    /// into branch trampolines.
    type Isa: Trampolines;
    /// What an XOL slot holds for one stepped instruction (the instruction
    /// word's bytes on aarch64; on x86_64 the bytes with a RIP-relative
    /// operand rewritten, and what to do around the step).
    type SlotImage: Copy;
    /// A thread's cache of the slot images of the probes it has stepped (where
    /// making an image costs more than the rest of a hit; empty elsewhere).
    type SlotImages: Default;
    /// What a step in flight needs, besides its slot and breakpoint, to be
    /// finished when its trap comes.
    type StepState;

    /// The breakpoint instruction, as traces name it (`brk`, `int3`).
    const BREAKPOINT_NAME: &'static str;
    /// The bytes a probe writes over the start of the probed instruction.
    const PROBE_BREAKPOINT: &'static [u8];
    /// What XOL slot 0 holds, in memory order: the breakpoint a probed
    /// function's return lands on (the return-probe trampoline).
    const XOL_TRAMPOLINE: &'static [u8];
    /// A trampoline's entry instruction, as traces name it (`svc #0xb7e`).
    const TRAMPOLINE_ENTRY_NAME: &'static str;
    /// Whether a branch to a trampoline may be planted only after the
    /// function holding the probe was checked for jumps into the replaced
    /// bytes (`Trampolines::check_function`): x86_64, whose branch may cover
    /// more than the probed instruction's first bytes; not A64, where it
    /// replaces exactly one instruction.
    const TRAMPOLINE_CHECKS_FUNCTION: bool;
    /// The most bytes one instruction has.
    const LONGEST_INSTRUCTION: usize;
    /// Where a return address is, as traces name it (`x30`, `[RSP]`).
    const RETURN_ADDRESS_NAME: &'static str;
    /// How a step that did not end right after the stepped instruction is
    /// described, after "ended at ADDRESS, ".
    const STEP_LEFT_SLOT: &'static str;
    /// What a hit that finds its slot already holding the image does, as
    /// traces say it after "already holds IMAGE: ".
    const SLOT_UNCHANGED: &'static str;

    // ---- instructions ----

    /// The instruction at the start of `text` (the readable executable bytes
    /// at a probe's address, at most [`Self::LONGEST_INSTRUCTION`]), or why
    /// there is none.
    fn decode_instruction(text: &[u8]) -> Result<<Self::Isa as Arch>::Insn, impl Display>;
    /// An instruction as traces show it: its encoding, then its disassembly
    /// (`0x91002400 add x0, x0, #0x9`, `48 8b 05 c9 5e 00 00 mov rax, qword
    /// [rip + 0x5ec9]`). Decoded when displayed, not when called.
    fn instruction_text(insn: &<Self::Isa as Arch>::Insn) -> impl Display;
    /// The bytes of `original` that [`Self::PROBE_BREAKPOINT`] covers: what
    /// unregistering writes back.
    fn covered_bytes(original: &<Self::Isa as Arch>::Insn) -> impl AsRef<[u8]>;
    /// All the bytes of `insn`, as the text holds them (what removing a
    /// branch to a trampoline writes back).
    fn instruction_bytes(insn: &<Self::Isa as Arch>::Insn) -> impl AsRef<[u8]>;

    // ---- the trap ----

    /// Decode a breakpoint trap from user mode; `None` if it is a breakpoint
    /// no probe plants (the program's own). Where the frame cannot tell the
    /// kinds apart, the machine reads user text before the resume address
    /// through `read_text(address, buffer)`, which fills `buffer` and returns
    /// true if the thread could read those bytes.
    fn breakpoint_trap(frame: &Frame, read_text: impl FnOnce(u64, &mut [u8]) -> bool) -> Option<BreakpointTrap>;
    /// The trace of a planted breakpoint's trap at `address`, with `location`
    /// (the symbol there) where the machine's words put it.
    fn breakpoint_trace(frame: &Frame, address: u64, location: impl Display) -> impl Display;
    /// Where the thread resumes (ELR, RIP).
    fn resume_address(frame: &Frame) -> u64;
    /// Make the thread resume at `address`.
    fn set_resume_address(frame: &mut Frame, address: u64);
    /// The user stack pointer.
    fn stack_pointer(frame: &Frame) -> u64;
    /// Make the thread execute the system call it trapped with again.
    fn restart_system_call(frame: &mut Frame);
    /// The saved user registers as the probe core's simulators read and write them.
    fn registers(frame: &mut Frame) -> &mut <Self::Isa as Arch>::Registers;

    // ---- return probes ----

    /// At a hit on a function's first instruction: where it will return to.
    /// Reads the stack through `memory` where the return address is there;
    /// the error says what could not be read.
    fn return_site(frame: &Frame, memory: &mut impl UserMemory) -> Result<ReturnSite, String>;
    /// Make the function return to `address` instead (the trampoline).
    fn set_return_address(frame: &mut Frame, memory: &mut impl UserMemory, address: u64) -> Result<(), String>;

    // ---- XOL slots ----

    /// The slot image for stepping `probe`, from the thread's cache `images`.
    fn slot_image(images: &mut Self::SlotImages, probe: &Probe<Self::Isa>) -> Self::SlotImage;
    /// The record of a slot holding `image` (`probe_core::XolSlots`).
    fn slot_content(image: &Self::SlotImage) -> SlotContent;
    /// A slot image as traces show it, as [`Self::instruction_text`] shows
    /// an instruction (the rewritten operand included).
    fn image_text(image: &Self::SlotImage) -> impl Display;
    /// What the step of `image` changes around the instruction, as traces
    /// say it after "runs the same anywhere" (often nothing).
    fn image_note(image: &Self::SlotImage) -> impl Display;
    /// The bytes of `image`, as the slot holds them from its start.
    fn image_bytes(image: &Self::SlotImage) -> &[u8];
    /// The trace of a slot write, after "written IMAGE through the kernel
    /// alias ALIAS; ": the cache maintenance `lines` it took (as
    /// `AddressSpace::write_xol_slot` counted them).
    fn slot_write_trace(alias: usize, lines: MaintenanceCount) -> impl Display;

    // ---- stepping ----

    /// Make the return to user mode with `frame` execute the instruction
    /// `image` at `slot` (its XOL slot's user address) and trap right after
    /// it; the instruction is a probe's at `breakpoint`.
    fn arm_step(frame: &mut Frame, image: &Self::SlotImage, breakpoint: u64, slot: u64) -> Self::StepState;
    /// The trace of what arming the step of the probe at `breakpoint` did to
    /// the registers beyond the PC and the step bits, if anything.
    fn step_fixup_trace(step: &Self::StepState, breakpoint: u64) -> Option<impl Display>;
    /// The trace of the armed step, about to return to `slot`.
    fn step_armed_trace(slot: u64) -> impl Display;
    /// At a step trap: the instruction at `slot` has not finished (x86's
    /// `rep` string instructions trap after every iteration); step it again.
    fn step_repeats(frame: &Frame, slot: u64) -> bool;
    /// Undo what [`Self::arm_step`] did, but the PC.
    fn disarm_step(frame: &mut Frame, step: &Self::StepState);
    /// Bytes from the start of the stepped instruction to the next one.
    fn step_length(step: &Self::StepState) -> u64;
    /// What the stepped instruction left in user memory that the step itself
    /// caused, undone through `clear_user_bits(address, bits)` (clear `bits`
    /// in the byte at `address`; false if the thread could not write it).
    /// The error says what could not be undone.
    fn finish_step(
        frame: &Frame,
        step: &Self::StepState,
        clear_user_bits: impl FnOnce(u64, u8) -> bool,
    ) -> Result<(), String>;
    /// The trace of a finished step, taken at `stepped_to`, of the probe at
    /// `breakpoint` (followed by ", slot N released").
    fn step_done_trace(frame: &Frame, step: &Self::StepState, stepped_to: u64, breakpoint: u64) -> impl Display;
    /// Match the core's single-step state to the thread about to run (the
    /// scheduler, on every switch), or turn it off after a step.
    fn set_core_single_step(stepping: bool);
}
