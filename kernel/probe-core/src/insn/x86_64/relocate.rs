//! x86_64 trampolines: the probed instruction relocated into a 32-byte
//! trampoline, so that a hit costs one exception (the `int 0x82` at the
//! trampoline's start) whatever the instruction (see [`crate::trampoline`]).
//!
//! ```text
//!  offset
//!   0x00   CD 82             int 0x82: the kernel counts the hit, returns to 0x02
//!   0x02   displaced         the probed instruction, relocated (at most 15 bytes)
//!    ..    E9 rel32          jmp probe+len, unless it never falls through
//!    ..    CC ...            int3 padding up to 0x18, never executed
//!   0x18   probed address    8 bytes, data (PROBE_ADDRESS_OFFSET)
//! ```
//!
//! 2 + 15 + 5 = 22 bytes: the longest instruction and the jump back always
//! fit before the probed address.
//!
//! What is relocated, by the classification under
//! [`SimulatePolicy::Branches`]:
//!
//! | probed | in the trampoline |
//! | --- | --- |
//! | position-independent (stepped), no RIP-relative operand | the same bytes; `jmp back` |
//! | with a `[rip + disp32]` operand | the same bytes with the disp32 for its new place (+-2 GiB); `jmp back` |
//! | `jmp rel8`/`rel32` | `jmp rel32` to the same target |
//! | `jcc rel8`/`rel32` | `jcc rel32` to the same target; `jmp back` |
//! | `ret` | the same bytes |
//!
//! The branches are encoded by `iced-x86`'s block encoder (the `encoder`
//! and `block_encoder` features, which build `no_std`), which computes the
//! rel32 for the new address. It runs with `DONT_FIX_BRANCHES` on branches
//! already widened to their rel32 forms, so it never turns a far target
//! into its own longer sequence: a target beyond +-2 GiB is an error here,
//! [`NotRelocatable::TargetOutOfRange`]. A RIP-relative operand is not
//! re-encoded: its disp32 is rewritten in place (the decoder says where it
//! is), so every other byte stays as the program had it. A re-encoding
//! would normalise the prefixes, and not always harmlessly: it drops a
//! REX.W the processor ignores today on a reserved-NOP opcode that a newer
//! processor may define. With a 0x67 prefix the operand is EIP-relative and
//! its address 32 bits (Intel SDM vol. 2, 2.2.1.6, "RIP-Relative
//! Addressing"): any disp32 reaches it, modulo 2^32.
//!
//! Refused: `call rel32` (it pushes its own end as the return address: in a
//! trampoline that is the trampoline's; a `push`/`jmp` pair would push the
//! right one, but would unbalance the return-stack predictor and a CET
//! shadow stack, whose `ret` then faults), and whatever the classifier
//! refuses (the kernel cannot register a probe on those at all; that
//! includes indirect jumps and calls, `loop` and `jrcxz`).
//!
//! Unlike A64, the branch written at the probe (`jmp rel32`, 5 bytes) may
//! be shorter than nothing but the instruction it replaces: a jump elsewhere
//! in the function into the replaced bytes would land in the middle of the
//! `jmp`. [`check_function`] refuses a function where that could happen, as
//! Linux's x86 optprobes do (arch/x86/kernel/kprobes/opt.c: `can_optimize`,
//! `insn_is_indirect_jump`, `insn_jump_into_range`).

use super::{classify_with, Insn, Simulation, INT3, X86_64};
use crate::insn::{Classification, SimulatePolicy};
use crate::trampoline::{
    BranchPatch, NotRelocatable, TrampolineImage, Trampolines, PROBE_ADDRESS_OFFSET, TRAMPOLINE_BYTES,
};
use iced_x86::{
    BlockEncoder, BlockEncoderOptions, Code, Decoder, DecoderOptions, FlowControl, Instruction, InstructionBlock,
    Mnemonic, OpKind, Register,
};

/// The vector of the `int` that opens every trampoline: the kernel takes
/// `int 0x82` as a trampoline call only when the trap's resume address is a
/// trampoline's third byte.
pub const TRAMPOLINE_VECTOR: u8 = 0x82;

/// `int imm8` (Intel SDM vol. 2, INT n/INTO/INT3/INT1: `CD ib`).
const INT_IMM8: u8 = 0xcd;
/// Bytes of `int 0x82`.
const ENTRY_BYTES: usize = 2;
/// Bytes of `jmp rel32` (`E9 cd`, Intel SDM vol. 2, JMP).
const JMP_REL32_BYTES: usize = 5;
/// `jmp rel32`'s opcode.
const JMP_REL32: u8 = 0xe9;
/// The decoder and encoder run in 64-bit mode.
const BITNESS: u32 = 64;
/// A rel32 or disp32's reach.
const REACH: &str = "+-2 GiB";

/// `instr` (decoded at its own address) encoded to run at `at`, with its
/// branch target or RIP-relative operand pointing where it did.
fn encode_at(instr: &Instruction, at: u64, mnemonic: &'static str) -> Result<alloc::vec::Vec<u8>, NotRelocatable> {
    // The block encoder takes a branch to an instruction's own IP for a
    // branch to that instruction in the block, wherever it lands: give the
    // instruction its new IP, so that `jmp $` at the probe, whose target is
    // the probe, is not turned into `jmp $` in the trampoline. The targets
    // (branch, RIP-relative operand) are absolute already.
    let mut moved = *instr;
    moved.set_ip(at);
    let instructions = [moved];
    BlockEncoder::encode(BITNESS, InstructionBlock::new(&instructions, at), BlockEncoderOptions::DONT_FIX_BRANCHES)
        .map(|result| result.code_buffer)
        .map_err(|_| NotRelocatable::TargetOutOfRange { mnemonic, reach: REACH })
}

/// `original`'s bytes with the disp32 at `disp_at` changed so that, run at
/// `at` instead of `probe_vaddr`, its RIP-relative (or EIP-relative)
/// operand addresses the same byte: the displacement grows by what the
/// instruction moved down, `probe_vaddr - at`.
fn rip_relative_moved(
    original: &Insn,
    instr: &Instruction,
    disp_at: usize,
    probe_vaddr: u64,
    at: u64,
) -> Result<alloc::vec::Vec<u8>, NotRelocatable> {
    let mut bytes = original.bytes().to_vec();
    let field = bytes.get_mut(disp_at..disp_at + 4).expect("a RIP-relative operand has a disp32");
    let disp = i32::from_le_bytes([field[0], field[1], field[2], field[3]]);
    let moved_by = probe_vaddr.wrapping_sub(at) as i64;
    let new = if instr.memory_base() == Register::EIP {
        disp.wrapping_add(moved_by as i32)
    } else {
        i32::try_from(i64::from(disp) + moved_by)
            .map_err(|_| NotRelocatable::TargetOutOfRange { mnemonic: "a RIP-relative operand", reach: REACH })?
    };
    field.copy_from_slice(&new.to_le_bytes());
    Ok(bytes)
}

/// The trampoline for `original` at `probe_vaddr`, placed at `trampoline`.
pub fn trampoline_image(original: &Insn, probe_vaddr: u64, trampoline: u64) -> Result<TrampolineImage, NotRelocatable> {
    let displaced_at = trampoline.wrapping_add(ENTRY_BYTES as u64);
    let back = probe_vaddr.wrapping_add(original.len() as u64);
    let mut decoder = Decoder::with_ip(BITNESS, original.bytes(), probe_vaddr, DecoderOptions::NONE);
    let mut instr = decoder.decode();
    let (displaced, falls_through) = match classify_with(original, SimulatePolicy::Branches) {
        Classification::Reject(_) => return Err(NotRelocatable::Unsupported { mnemonic: "a refused instruction" }),
        Classification::Step if instr.is_ip_rel_memory_operand() => {
            let offsets = decoder.get_constant_offsets(&instr);
            (rip_relative_moved(original, &instr, offsets.displacement_offset(), probe_vaddr, displaced_at)?, true)
        }
        Classification::Step => (original.bytes().to_vec(), true),
        Classification::Simulate(simulation) => match simulation {
            Simulation::Ret => (original.bytes().to_vec(), false),
            Simulation::Nop { .. } | Simulation::Push { .. } => (original.bytes().to_vec(), true),
            Simulation::Call { .. } => return Err(NotRelocatable::Unsupported { mnemonic: "call rel32" }),
            Simulation::Jmp { .. } | Simulation::Jcc { .. } => {
                // The rel32 form, to the same target (decoded at the probe,
                // the instruction's branch target is absolute).
                instr.set_code(instr.code().as_near_branch());
                let falls_through = matches!(simulation, Simulation::Jcc { .. });
                (encode_at(&instr, displaced_at, simulation.mnemonic())?, falls_through)
            }
        },
    };
    let mut image = [INT3; TRAMPOLINE_BYTES];
    image[..ENTRY_BYTES].copy_from_slice(&[INT_IMM8, TRAMPOLINE_VECTOR]);
    let mut end = ENTRY_BYTES + displaced.len();
    if end > PROBE_ADDRESS_OFFSET - if falls_through { JMP_REL32_BYTES } else { 0 } {
        return Err(NotRelocatable::Unsupported { mnemonic: "an instruction whose re-encoding is too long" });
    }
    image[ENTRY_BYTES..end].copy_from_slice(&displaced);
    if falls_through {
        let jump = Instruction::with_branch(Code::Jmp_rel32_64, back).expect("jmp rel32 is a branch");
        let bytes = encode_at(&jump, trampoline.wrapping_add(end as u64), "the jump back")?;
        image[end..end + bytes.len()].copy_from_slice(&bytes);
        end += bytes.len();
    }
    debug_assert!(end <= PROBE_ADDRESS_OFFSET);
    image[PROBE_ADDRESS_OFFSET..].copy_from_slice(&probe_vaddr.to_le_bytes());
    Ok(image)
}

/// `jmp rel32` from `probe_vaddr` to `trampoline`, then `int3` up to the
/// instruction's length (never executed: the `jmp` leaves first, and no
/// jump of the function lands there, [`check_function`]).
pub fn branch_to_trampoline(original: &Insn, probe_vaddr: u64, trampoline: u64) -> Result<BranchPatch, NotRelocatable> {
    if original.len() < JMP_REL32_BYTES {
        return Err(NotRelocatable::TooShort { len: original.len() });
    }
    let rel32 = trampoline.wrapping_sub(probe_vaddr.wrapping_add(JMP_REL32_BYTES as u64)) as i64;
    let rel32 = i32::try_from(rel32).map_err(|_| NotRelocatable::OutOfBranchRange { reach: REACH })?;
    let mut bytes = [INT3; super::MAX_INSN_LEN];
    bytes[0] = JMP_REL32;
    bytes[1..JMP_REL32_BYTES].copy_from_slice(&rel32.to_le_bytes());
    Ok(BranchPatch::new(&bytes[..original.len()]))
}

/// Whether the `jmp rel32` may replace `original` at `probe_vaddr`, given
/// the bytes of the function that holds it: decoded from its first byte to
/// its last, every instruction must decode (and the probe must be one of
/// them), no `jmp` may be indirect (`FF /4`, `FF /5`: a jump table could
/// land anywhere), and no direct `jmp`, `jcc`, `call`, `loop` or `jrcxz`
/// may land strictly inside the replaced bytes. Linux checks the same
/// before it optimizes a kprobe (arch/x86/kernel/kprobes/opt.c,
/// `can_optimize`, `insn_is_indirect_jump`, `insn_jump_into_range`).
pub fn check_function(
    original: &Insn,
    probe_vaddr: u64,
    function: &[u8],
    function_start: u64,
) -> Result<(), NotRelocatable> {
    let inside = probe_vaddr.wrapping_add(1)..probe_vaddr.wrapping_add(original.len() as u64);
    let mut decoder = Decoder::with_ip(BITNESS, function, function_start, DecoderOptions::NONE);
    let mut probe_seen = false;
    while decoder.can_decode() {
        let at = decoder.ip();
        let instr = decoder.decode();
        // An invalid instruction, or one cut off by the function's end.
        if instr.is_invalid() {
            return Err(NotRelocatable::UndecodableFunction { at });
        }
        probe_seen |= at == probe_vaddr;
        if instr.mnemonic() == Mnemonic::Jmp && instr.flow_control() == FlowControl::IndirectBranch {
            return Err(NotRelocatable::IndirectJump { at });
        }
        let direct = matches!(
            instr.flow_control(),
            FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch | FlowControl::Call
        );
        if direct
            && matches!(instr.op0_kind(), OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64)
            && inside.contains(&instr.near_branch_target())
        {
            return Err(NotRelocatable::JumpTargetInside { target: instr.near_branch_target() });
        }
    }
    if !probe_seen {
        // The probe is not on an instruction boundary of the linear decode.
        return Err(NotRelocatable::UndecodableFunction { at: probe_vaddr });
    }
    Ok(())
}

impl Trampolines for X86_64 {
    const ENTRY_BYTES: u64 = ENTRY_BYTES as u64;
    /// Everything before the probed address: the entry, the displaced
    /// instruction, the jump back, `int3` padding.
    const CODE_BYTES: usize = crate::trampoline::PROBE_ADDRESS_OFFSET;

    fn trampoline_image(original: Insn, probe_vaddr: u64, trampoline: u64) -> Result<TrampolineImage, NotRelocatable> {
        trampoline_image(&original, probe_vaddr, trampoline)
    }

    fn branch_to_trampoline(original: Insn, probe_vaddr: u64, trampoline: u64) -> Result<BranchPatch, NotRelocatable> {
        branch_to_trampoline(&original, probe_vaddr, trampoline)
    }

    fn check_function(
        original: Insn,
        probe_vaddr: u64,
        function: &[u8],
        function_start: u64,
    ) -> Result<(), NotRelocatable> {
        check_function(&original, probe_vaddr, function, function_start)
    }
}

#[cfg(test)]
mod tests;
