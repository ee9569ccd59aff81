//! The RIP-relative rewrite for an XOL slot: `[rip + disp32]` becomes
//! `[scratch + disp32]`, with `scratch` a register the instruction does not
//! use, so the stepped copy addresses the same memory once the kernel has
//! loaded `scratch` with the original's next-instruction address.
//!
//! In 64-bit mode ModRM `mod=00 rm=101` (no SIB) means RIP + disp32; the
//! rewrite sets `mod=10` and `rm` to the scratch register's low three bits,
//! which means base register + disp32: the same length, the displacement
//! and everything after it (immediate, 3DNow! suffix) in place. The base's
//! fourth bit comes from REX.B (or VEX's inverted B), which the original
//! ignores for RIP-relative, so the rewrite clears it: the scratch registers
//! are all among the first eight.

use super::decode::{gpr, Decoded};
use super::{Gpr, XOL_SLOT_BYTES};
use crate::insn::RejectReason;
use iced_x86::{EncodingKind, InstructionInfoFactory};

/// The scratch candidates, in order of preference: the first eight minus
/// `rsp` (`rm=100` would mean "a SIB byte follows") and `rbp` (left out,
/// as Linux does, to keep frame-pointer walks on the task's own value).
const SCRATCH_ORDER: [Gpr; 6] = [Gpr::Rax, Gpr::Rcx, Gpr::Rdx, Gpr::Rbx, Gpr::Rsi, Gpr::Rdi];

/// ModRM fields: mod in bits 7:6, reg in 5:3, rm in 2:0.
const MODRM_MOD_MASK: u8 = 0b1100_0000;
const MODRM_RM_MASK: u8 = 0b0000_0111;
/// `mod=00 rm=101`: RIP + disp32 in 64-bit mode.
const MODRM_RIP_RELATIVE: u8 = 0b0000_0101;
/// `mod=10`: base register + disp32.
const MODRM_MOD_DISP32: u8 = 0b1000_0000;
/// REX.B, the base register's fourth bit.
const REX_B: u8 = 0b0000_0001;
/// The three-byte VEX escape; its second byte holds ~R ~X ~B in bits 7:5.
const VEX3: u8 = 0xc4;
/// VEX's inverted B in the byte after the escape: set means B = 0.
const VEX_NOT_B: u8 = 0b0010_0000;
/// A RIP-relative displacement is always 4 bytes.
const DISP32_BYTES: usize = 4;

/// How to rewrite one RIP-relative instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Plan {
    pub scratch: Gpr,
    /// Index of the ModRM byte.
    modrm: usize,
    /// Index of a byte whose bits are to be set (VEX's ~B) ...
    set: Option<(usize, u8)>,
    /// ... or cleared (REX.B).
    clear: Option<(usize, u8)>,
}

impl Plan {
    /// Rewrite `bytes` (the instruction, at the start of the slot image).
    pub fn apply(&self, bytes: &mut [u8; XOL_SLOT_BYTES]) {
        let modrm = bytes[self.modrm];
        let reg = modrm & !(MODRM_MOD_MASK | MODRM_RM_MASK);
        bytes[self.modrm] = MODRM_MOD_DISP32 | reg | (self.scratch.number() & MODRM_RM_MASK);
        if let Some((at, bits)) = self.set {
            bytes[at] |= bits;
        }
        if let Some((at, bits)) = self.clear {
            bytes[at] &= !bits;
        }
    }
}

/// `Ok(None)`: no RIP-relative operand, the bytes go to the slot as they
/// are. `Ok(Some(plan))`: rewrite them. `Err`: they cannot be rewritten.
pub(super) fn plan(decoded: &Decoded) -> Result<Option<Plan>, RejectReason> {
    let instr = &decoded.instr;
    if !instr.is_ip_rel_memory_operand() {
        return Ok(None);
    }
    let opcode = decoded.prefixes.opcode;
    let (set, clear) = match instr.encoding() {
        // 3DNow! is a legacy encoding whose opcode comes after the operand.
        EncodingKind::Legacy | EncodingKind::D3NOW => (None, decoded.prefixes.rex.map(|at| (at, REX_B))),
        // The two-byte VEX (C5) has no B: it is 0 already.
        EncodingKind::VEX => {
            let set = (decoded.instr_byte(opcode) == Some(VEX3)).then_some((opcode + 1, VEX_NOT_B));
            (set, None)
        }
        EncodingKind::EVEX | EncodingKind::MVEX => {
            return Err(RejectReason::RipRelative { what: "EVEX-encoded instructions are not rewritten" })
        }
        // XOP (AMD only, gone since Zen) and any encoding added later.
        _ => return Err(RejectReason::RipRelative { what: "XOP-encoded instructions are not rewritten" }),
    };
    // No SIB in a RIP-relative form: ModRM sits right before the
    // displacement. Check that it is what the decoder says it is.
    let offsets = decoded.offsets;
    let modrm = offsets.displacement_offset().wrapping_sub(1);
    let modrm_byte = decoded.instr_byte(modrm);
    if offsets.displacement_size() != DISP32_BYTES
        || modrm_byte.map(|b| b & (MODRM_MOD_MASK | MODRM_RM_MASK)) != Some(MODRM_RIP_RELATIVE)
    {
        return Err(RejectReason::RipRelative { what: "the decoder's operand layout is not ModRM + disp32" });
    }
    // The decoder's register-use table covers implicit operands (`rax` of
    // `cmpxchg`, `rdx` of `mulx`); the explicit operands are added as well,
    // because the table leaves out the operands of the reserved-NOP
    // encodings (`0F 18`-`0F 1F`), which a newer processor may give meaning.
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(instr);
    let explicit = (0..instr.op_count()).map(|operand| instr.op_register(operand));
    let used = |candidate: Gpr| {
        info.used_registers()
            .iter()
            .map(|used| used.register())
            .chain(explicit.clone())
            .any(|register| gpr(register) == Some(candidate))
    };
    let Some(scratch) = SCRATCH_ORDER.into_iter().find(|&r| !used(r)) else {
        return Err(RejectReason::RipRelative {
            what: "it uses every scratch register (rax, rcx, rdx, rbx, rsi, rdi)",
        });
    };
    Ok(Some(Plan { scratch, modrm, set, clear }))
}
