//! The x86_64 classifier's decoding half: the glue to the `iced-x86` decoder
//! (length, operands, register use, flow control), the legacy-prefix scan
//! the decoder does not expose, and the verdict for each instruction class.

use super::{riprel, Classification, Condition, DecodeError, Gpr, Insn, Simulation, MAX_INSN_LEN};
use crate::insn::{RejectReason, SimulatePolicy};
use iced_x86::{
    Code, ConditionCode, ConstantOffsets, Decoder, DecoderError, DecoderOptions, FlowControl, Instruction, Mnemonic,
    Register,
};

/// The decoder runs in 64-bit mode: user programs are 64-bit only.
const BITNESS: u32 = 64;

/// The legacy prefixes (Intel SDM vol. 2, 2.1.1): lock, the two repeats,
/// the six segment overrides (also branch hints), operand and address size.
const LOCK: u8 = 0xf0;
const REPNE: u8 = 0xf2;
const REP: u8 = 0xf3;
const SEGMENT_OVERRIDES: [u8; 6] = [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65];
const OPERAND_SIZE: u8 = 0x66;
const ADDRESS_SIZE: u8 = 0x67;
/// REX is 0100WRXB; it counts only right before the opcode.
const REX_FIRST: u8 = 0x40;
const REX_LAST: u8 = 0x4f;

/// An instruction the decoder accepted, with what the classifier and the XOL
/// rewrite ask of it.
pub(super) struct Decoded {
    pub instr: Instruction,
    /// Where the displacement and immediate sit in the bytes.
    pub offsets: ConstantOffsets,
    pub prefixes: Prefixes,
    /// The instruction's bytes (the first `instr.len()`).
    bytes: [u8; MAX_INSN_LEN],
}

impl Decoded {
    /// Byte `index` of the instruction, if it has one there.
    pub fn instr_byte(&self, index: usize) -> Option<u8> {
        self.bytes[..self.instr.len()].get(index).copied()
    }
}

/// What the legacy and REX prefixes in front of the opcode are.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Prefixes {
    pub operand_size: bool,
    pub address_size: bool,
    /// Index of the REX byte, if one sits right before the opcode (a REX
    /// followed by a legacy prefix is ignored by the processor).
    pub rex: Option<usize>,
    /// Index of the first opcode byte (or of the VEX/EVEX/XOP escape).
    pub opcode: usize,
}

fn is_legacy_prefix(byte: u8) -> bool {
    matches!(byte, LOCK | REPNE | REP | OPERAND_SIZE | ADDRESS_SIZE) || SEGMENT_OVERRIDES.contains(&byte)
}

/// Scan the prefixes of a decoded instruction (`bytes` is exactly it, so
/// the scan stops at the opcode before it runs out).
fn scan_prefixes(bytes: &[u8]) -> Prefixes {
    let mut prefixes = Prefixes::default();
    let mut rex = None;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if is_legacy_prefix(byte) {
            prefixes.operand_size |= byte == OPERAND_SIZE;
            prefixes.address_size |= byte == ADDRESS_SIZE;
            rex = None;
        } else if (REX_FIRST..=REX_LAST).contains(&byte) {
            rex = Some(i);
        } else {
            break;
        }
        i += 1;
    }
    prefixes.rex = rex;
    prefixes.opcode = i;
    prefixes
}

/// Decode the instruction at the start of `bytes` (at most the first 15).
pub(super) fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let available = bytes.len().min(MAX_INSN_LEN);
    let bytes = &bytes[..available];
    if bytes.is_empty() {
        return Err(DecodeError::Truncated { available });
    }
    let mut decoder = Decoder::new(BITNESS, bytes, DecoderOptions::NONE);
    let instr = decoder.decode();
    match decoder.last_error() {
        DecoderError::None => {}
        // With all 15 bytes there, running out means the instruction would
        // be longer than any valid one.
        DecoderError::NoMoreBytes if available < MAX_INSN_LEN => return Err(DecodeError::Truncated { available }),
        _ => return Err(DecodeError::Invalid),
    }
    let mut copy = [0; MAX_INSN_LEN];
    copy[..instr.len()].copy_from_slice(&bytes[..instr.len()]);
    Ok(Decoded {
        bytes: copy,
        offsets: decoder.get_constant_offsets(&instr),
        prefixes: scan_prefixes(&bytes[..instr.len()]),
        instr,
    })
}

/// `pushf` (`9C`; `66 9C` pushes the low 16 bits of RFLAGS).
pub(super) fn pushes_flags(decoded: &Decoded) -> bool {
    matches!(decoded.instr.code(), Code::Pushfq | Code::Pushfw)
}

/// The classifier.
pub(super) fn classify(insn: &Insn, policy: SimulatePolicy) -> Classification {
    let Ok(decoded) = decode(insn.bytes()) else {
        return Classification::Reject(RejectReason::Unallocated);
    };
    let instr = &decoded.instr;
    let mnemonic = instr.mnemonic();
    if let Some(name) = enters_kernel(mnemonic) {
        return Classification::Reject(RejectReason::EntersKernel { mnemonic: name });
    }
    if matches!(mnemonic, Mnemonic::Ud0 | Mnemonic::Ud1 | Mnemonic::Ud2) {
        // Permanently undefined: they exist to raise #UD.
        return Classification::Reject(RejectReason::Unallocated);
    }
    // The decoder gives only `xbegin` its own flow control; `xabort` and
    // `xend` look like ordinary instructions.
    if matches!(mnemonic, Mnemonic::Xbegin | Mnemonic::Xabort | Mnemonic::Xend)
        || instr.flow_control() == FlowControl::XbeginXabortXend
    {
        return Classification::Reject(RejectReason::Transactional { mnemonic: name_of(mnemonic) });
    }
    if instr.flow_control() != FlowControl::Next {
        // Every other flow change is a branch of some kind.
        return branch(&decoded);
    }
    if instr.is_privileged() {
        return Classification::Reject(RejectReason::Privileged { mnemonic: privileged_name(instr) });
    }
    if mnemonic == Mnemonic::Enclu {
        // ENCLU[EENTER/ERESUME/EEXIT] moves RIP into or out of an SGX
        // enclave: a branch in effect, which the simulator does not do.
        return Classification::Reject(RejectReason::UnsimulatedBranch { mnemonic: "enclu" });
    }
    if mnemonic == Mnemonic::Mov && instr.op0_register() == Register::SS {
        return Classification::Reject(RejectReason::DelaysSingleStep { mnemonic: "mov ss" });
    }
    if let Some(simulation) = simple(&decoded) {
        if policy == SimulatePolicy::All {
            return Classification::Simulate(simulation);
        }
    }
    step(&decoded)
}

/// Step, unless a RIP-relative operand cannot be rewritten for the slot.
fn step(decoded: &Decoded) -> Classification {
    match riprel::plan(decoded) {
        Ok(_) => Classification::Step,
        Err(reason) => Classification::Reject(reason),
    }
}

/// `nop` and `push r64`: position-independent, simulated only for speed.
fn simple(decoded: &Decoded) -> Option<Simulation> {
    let instr = &decoded.instr;
    let len = instr.len() as u8;
    match instr.code() {
        // `90` (not with REX.B: `41 90` is `xchg r8d, eax`, which the
        // decoder calls Xchg), `66 90`, `48 90`, and the multi-byte
        // `0F 1F /0` with whatever operand: NOP never touches its operand.
        Code::Nopd | Code::Nopw | Code::Nopq | Code::Nop_rm16 | Code::Nop_rm32 | Code::Nop_rm64 => {
            Some(Simulation::Nop { len })
        }
        // `66 50+r` is `push r16` (Code::Push_r16, stepped). With REX.W as
        // well the 66 is overridden, but such an odd encoding is stepped all
        // the same: the processor knows best.
        Code::Push_r64 if !decoded.prefixes.operand_size => {
            Some(Simulation::Push { reg: gpr(instr.op0_register())?, len })
        }
        _ => None,
    }
}

/// An instruction that changes the flow of control: simulated if it is one
/// of the simulator's forms, else rejected (a branch cannot be stepped).
fn branch(decoded: &Decoded) -> Classification {
    let instr = &decoded.instr;
    let code = instr.code();
    let len = instr.len() as u8;
    // Decoded at address 0, the target is the offset from the instruction's
    // start (len + rel), wrapping as RIP does.
    let offset = instr.near_branch64() as i64;
    let simulation = match code {
        Code::Retnq => Simulation::Ret,
        Code::Call_rel32_64 => Simulation::Call { offset, len },
        Code::Jmp_rel8_64 | Code::Jmp_rel32_64 => Simulation::Jmp { offset },
        _ if instr.is_jcc_short_or_near() => match condition(instr.condition_code()) {
            Some(condition) => Simulation::Jcc { condition, offset, len },
            None => return unsimulated(instr),
        },
        _ => return unsimulated(instr),
    };
    let prefixes = decoded.prefixes;
    if prefixes.operand_size || prefixes.address_size {
        return Classification::Reject(RejectReason::BranchSizePrefix { mnemonic: simulation.mnemonic() });
    }
    Classification::Simulate(simulation)
}

fn unsimulated(instr: &Instruction) -> Classification {
    Classification::Reject(RejectReason::UnsimulatedBranch { mnemonic: branch_name(instr) })
}

/// The decoder's condition code in encoding order.
fn condition(code: ConditionCode) -> Option<Condition> {
    use ConditionCode as C;
    let bits = match code {
        C::o => 0,
        C::no => 1,
        C::b => 2,
        C::ae => 3,
        C::e => 4,
        C::ne => 5,
        C::be => 6,
        C::a => 7,
        C::s => 8,
        C::ns => 9,
        C::p => 10,
        C::np => 11,
        C::l => 12,
        C::ge => 13,
        C::le => 14,
        C::g => 15,
        C::None => return None,
    };
    Some(Condition::from_bits(bits))
}

/// The general register a decoder register names in full (`eax` -> `rax`).
pub(super) fn gpr(register: Register) -> Option<Gpr> {
    use Register as R;
    Some(match register.full_register() {
        R::RAX => Gpr::Rax,
        R::RCX => Gpr::Rcx,
        R::RDX => Gpr::Rdx,
        R::RBX => Gpr::Rbx,
        R::RSP => Gpr::Rsp,
        R::RBP => Gpr::Rbp,
        R::RSI => Gpr::Rsi,
        R::RDI => Gpr::Rdi,
        R::R8 => Gpr::R8,
        R::R9 => Gpr::R9,
        R::R10 => Gpr::R10,
        R::R11 => Gpr::R11,
        R::R12 => Gpr::R12,
        R::R13 => Gpr::R13,
        R::R14 => Gpr::R14,
        R::R15 => Gpr::R15,
        _ => return None,
    })
}

/// The instructions that enter the kernel (or the hypervisor) or return
/// from an interrupt, with their names.
fn enters_kernel(mnemonic: Mnemonic) -> Option<&'static str> {
    use Mnemonic as M;
    Some(match mnemonic {
        M::Int3 => "int3",
        M::Int => "int",
        M::Int1 => "int1",
        M::Into => "into",
        M::Syscall => "syscall",
        M::Sysenter => "sysenter",
        M::Sysexit | M::Sysexitq => "sysexit",
        M::Sysret | M::Sysretq => "sysret",
        M::Iret => "iret",
        M::Iretd => "iretd",
        M::Iretq => "iretq",
        M::Vmcall => "vmcall",
        M::Vmmcall => "vmmcall",
        _ => return None,
    })
}

/// A name for a branch the simulator does not handle.
fn branch_name(instr: &Instruction) -> &'static str {
    use Mnemonic as M;
    let far = instr.is_jmp_far() || instr.is_call_far() || instr.is_jmp_far_indirect() || instr.is_call_far_indirect();
    match instr.mnemonic() {
        M::Call if far => "far call",
        M::Call if instr.flow_control() == FlowControl::IndirectCall => "indirect call",
        M::Jmp if far => "far jmp",
        M::Jmp if instr.flow_control() == FlowControl::IndirectBranch => "indirect jmp",
        M::Ret if instr.op_count() > 0 => "ret imm16",
        M::Retf => "far ret",
        M::Loop => "loop",
        M::Loope => "loope",
        M::Loopne => "loopne",
        M::Jrcxz => "jrcxz",
        M::Jecxz => "jecxz",
        M::Jcxz => "jcxz",
        M::Uiret => "uiret",
        M::Jmpe => "jmpe",
        M::Rsm => "rsm",
        _ => name_of(instr.mnemonic()),
    }
}

/// A name for a privileged instruction.
fn privileged_name(instr: &Instruction) -> &'static str {
    use Register as R;
    if instr.mnemonic() == Mnemonic::Mov {
        let control = |r: Register| (R::CR0..=R::CR15).contains(&r);
        let debug = |r: Register| (R::DR0..=R::DR15).contains(&r);
        let (a, b) = (instr.op0_register(), instr.op1_register());
        if control(a) || control(b) {
            return "mov to or from a control register";
        }
        if debug(a) || debug(b) {
            return "mov to or from a debug register";
        }
    }
    name_of(instr.mnemonic())
}

/// Lower-case names for the mnemonics a reject reason may carry. The
/// decoder built without its formatter has no name table; the fallback
/// reads right in "this instruction is privileged".
fn name_of(mnemonic: Mnemonic) -> &'static str {
    use Mnemonic as M;
    match mnemonic {
        M::Hlt => "hlt",
        M::Cli => "cli",
        M::Sti => "sti",
        M::In => "in",
        M::Out => "out",
        M::Insb | M::Insw | M::Insd => "ins",
        M::Outsb | M::Outsw | M::Outsd => "outs",
        M::Lgdt => "lgdt",
        M::Lidt => "lidt",
        M::Lldt => "lldt",
        M::Ltr => "ltr",
        M::Lmsw => "lmsw",
        M::Clts => "clts",
        M::Invd => "invd",
        M::Wbinvd => "wbinvd",
        M::Invlpg => "invlpg",
        M::Invpcid => "invpcid",
        M::Rdmsr => "rdmsr",
        M::Wrmsr => "wrmsr",
        M::Swapgs => "swapgs",
        M::Monitor => "monitor",
        M::Mwait => "mwait",
        M::Xsetbv => "xsetbv",
        M::Rdpmc => "rdpmc",
        M::Xbegin => "xbegin",
        M::Xabort => "xabort",
        M::Xend => "xend",
        M::Call => "call",
        M::Jmp => "jmp",
        M::Ret => "ret",
        _ => "this instruction",
    }
}
