//! The A64 classifier and simulator: which instructions a probe may sit on
//! and what the kernel does with each, on aarch64. The decode tables are in
//! `decode.rs`, the named encodings in [`encodings`], the simulator in
//! `simulate.rs`, the trampolines (the displaced instruction relocated) in
//! `relocate.rs`; this file holds the types they share and the entry points.
//!
//! The kernel calls [`classify_with`] once, at registration, and keeps the
//! answer in the probe; on every hit it calls [`simulate`] for a simulated
//! probe, or steps the original instruction in an XOL slot.

mod branch;
mod decode;
pub mod encodings;
mod relocate;
mod simulate;

#[cfg(test)]
mod tests;

pub use branch::{branch_decision, BranchDecision, BranchReason};
pub use relocate::{TRAMPOLINE_FILL_BRK_IMMEDIATE, TRAMPOLINE_SVC_IMMEDIATE};
pub use simulate::simulate;

use super::{Arch, RejectReason, SimulatePolicy, SimulationFault, UserMemory};
use decode::Verdict;

/// The classifier's answer for an A64 instruction.
pub type Classification = super::Classification<Simulation>;

/// The A64 implementation of [`Arch`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Aarch64;

impl Arch for Aarch64 {
    const NAME: &'static str = "aarch64";
    const INSN_ALIGN: u64 = 4;
    const XOL_SLOT_BYTES: usize = 4;
    type Insn = u32;
    type Simulation = Simulation;
    type Registers = dyn Registers;
    type BranchDecision = BranchDecision;

    fn classify(insn: u32, policy: SimulatePolicy) -> Classification {
        classify_with(insn, policy)
    }

    fn simulate(
        simulation: &Simulation,
        pc: u64,
        regs: &mut Self::Registers,
        mem: &mut dyn UserMemory,
    ) -> Result<(), SimulationFault> {
        simulate(simulation, pc, regs, mem)
    }

    fn branch_decision(simulation: &Simulation, regs: &Self::Registers) -> Option<BranchDecision> {
        branch_decision(simulation, regs)
    }

    fn breakpoint(immediate: u16) -> u32 {
        brk(immediate)
    }

    fn breakpoint_immediate(insn: u32) -> Option<u16> {
        encodings::BRK.matches(insn).then_some((insn >> 5) as u16)
    }
}

/// `brk #immediate`: `11010100 001 imm16 000 00`.
pub const fn brk(immediate: u16) -> u32 {
    encodings::BRK.value | (immediate as u32) << 5
}

/// Classify under the default policy ([`SimulatePolicy::All`]).
pub fn classify(word: u32) -> Classification {
    classify_with(word, SimulatePolicy::default())
}

/// Classify `word` (as it sits in the text, little-endian already decoded)
/// under `policy`.
pub fn classify_with(word: u32, policy: SimulatePolicy) -> Classification {
    match decode::decode(word) {
        Verdict::PcDependent(simulation) => Classification::Simulate(simulation),
        Verdict::Simple(simulation) => match policy {
            SimulatePolicy::All => Classification::Simulate(simulation),
            SimulatePolicy::Branches => Classification::Step,
        },
        Verdict::Step => Classification::Step,
        Verdict::Reject(reason) => Classification::Reject(reason),
    }
}

/// Whether `word` is an allocated A64 instruction as far as the decode tables
/// go (classified as anything but unallocated or unsupported).
pub fn is_decoded(word: u32) -> bool {
    !matches!(decode::decode(word), Verdict::Reject(RejectReason::Unallocated | RejectReason::Unsupported { .. }))
}

/// What the simulator needs to carry out one simulated instruction; the
/// decoder has already extracted and sign-extended every field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simulation {
    /// `b label`: PC += offset.
    Branch { offset: i64 },
    /// `bl label`: x30 = PC + 4, PC += offset.
    BranchLink { offset: i64 },
    /// `b.cond label` (and `bc.cond`): PC += offset if the condition holds.
    BranchConditional { condition: Condition, offset: i64 },
    /// `cbz`/`cbnz` (`nonzero`): compare a W (`is_64` false) or X register
    /// with zero. Register 31 is the zero register.
    CompareBranch { rt: u8, is_64: bool, nonzero: bool, offset: i64 },
    /// `tbz`/`tbnz` (`nonzero`): test bit `bit` of X[rt] (31 = zero register).
    TestBranch { rt: u8, bit: u8, nonzero: bool, offset: i64 },
    /// `br`, `blr`, `ret`: jump to X[rn] (31 = zero register).
    BranchRegister { rn: u8, kind: RegisterBranch },
    /// `adr xd, label`: X[rd] = PC + offset (rd 31 = zero register: no write).
    Adr { rd: u8, offset: i64 },
    /// `adrp xd, label`: X[rd] = (PC with the low 12 bits clear) + offset.
    Adrp { rd: u8, offset: i64 },
    /// `ldr wt|xt, label`, `ldrsw xt, label`: load from PC + offset through
    /// the checked user path (rt 31 = zero register: load, then discard).
    LoadLiteral { rt: u8, offset: i64, width: LiteralLoad },
    /// `ldr st|dt|qt, label` (Load register, SIMD&FP literal): load `bytes`
    /// (4, 8 or 16) from PC + offset through the checked user path into
    /// V[rt]; a scalar load zeroes the bits of V[rt] above its size (Arm ARM
    /// C7.2, LDR (literal, SIMD&FP), and "SIMD&FP scalar load": writing a
    /// scalar register clears the rest of the vector register).
    LoadLiteralSimd { rt: u8, offset: i64, bytes: u8 },
    /// `prfm <op>, label`: a hint; nothing to do but move on.
    PrefetchLiteral,
    /// `nop`.
    Nop,
    /// `stp x29, x30, [sp, #-16]!`: store x29 at SP - 16, x30 at SP - 8,
    /// SP -= 16.
    FramePush,
}

impl Simulation {
    /// The mnemonic, for traces.
    pub fn mnemonic(&self) -> &'static str {
        match self {
            Self::Branch { .. } => "b",
            Self::BranchLink { .. } => "bl",
            Self::BranchConditional { .. } => "b.cond",
            Self::CompareBranch { nonzero: false, .. } => "cbz",
            Self::CompareBranch { nonzero: true, .. } => "cbnz",
            Self::TestBranch { nonzero: false, .. } => "tbz",
            Self::TestBranch { nonzero: true, .. } => "tbnz",
            Self::BranchRegister { kind: RegisterBranch::Br, .. } => "br",
            Self::BranchRegister { kind: RegisterBranch::Blr, .. } => "blr",
            Self::BranchRegister { kind: RegisterBranch::Ret, .. } => "ret",
            Self::Adr { .. } => "adr",
            Self::Adrp { .. } => "adrp",
            Self::LoadLiteral { width: LiteralLoad::SignedWord, .. } => "ldrsw (literal)",
            Self::LoadLiteral { .. } => "ldr (literal)",
            Self::LoadLiteralSimd { .. } => "ldr (literal, SIMD&FP)",
            Self::PrefetchLiteral => "prfm (literal)",
            Self::Nop => "nop",
            Self::FramePush => "stp x29, x30, [sp, #-16]!",
        }
    }

    /// Why it is simulated rather than stepped, for traces.
    pub fn why(&self) -> &'static str {
        match self {
            Self::Nop | Self::FramePush => "position-independent, but cheaper to simulate than to step",
            Self::Adr { .. } | Self::Adrp { .. } => "computes from the PC: out of line it would use the slot's",
            Self::LoadLiteral { .. } | Self::LoadLiteralSimd { .. } | Self::PrefetchLiteral => {
                "loads PC-relative: out of line it would read near the slot"
            }
            _ => "a branch: out of line it would leave the slot for the wrong place",
        }
    }
}

/// The register-branch kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterBranch {
    Br,
    /// Also writes x30 = PC + 4 (after reading the target: `blr x30` works).
    Blr,
    Ret,
}

/// What a literal load reads and how it extends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiteralLoad {
    /// `ldr wt`: 4 bytes, zero-extended.
    Word,
    /// `ldr xt`: 8 bytes.
    Doubleword,
    /// `ldrsw xt`: 4 bytes, sign-extended.
    SignedWord,
}

/// The 16 A64 condition codes, in encoding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Eq,
    Ne,
    Cs,
    Cc,
    Mi,
    Pl,
    Vs,
    Vc,
    Hi,
    Ls,
    Ge,
    Lt,
    Gt,
    Le,
    Al,
    Nv,
}

impl Condition {
    const ALL: [Condition; 16] = [
        Self::Eq,
        Self::Ne,
        Self::Cs,
        Self::Cc,
        Self::Mi,
        Self::Pl,
        Self::Vs,
        Self::Vc,
        Self::Hi,
        Self::Ls,
        Self::Ge,
        Self::Lt,
        Self::Gt,
        Self::Le,
        Self::Al,
        Self::Nv,
    ];

    /// From the 4-bit `cond` field.
    pub const fn from_bits(cond: u32) -> Self {
        Self::ALL[(cond & 0xf) as usize]
    }

    /// The condition's name in the assembler's `b.<cond>` (`"gt"`).
    pub const fn name(self) -> &'static str {
        const NAMES: [&str; 16] =
            ["eq", "ne", "cs", "cc", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al", "nv"];
        NAMES[self as usize]
    }

    /// When the condition holds, in terms of the flags (Arm ARM C1.2.4, table C1-1).
    pub const fn rule(self) -> &'static str {
        const RULES: [&str; 16] = [
            "Z=1",
            "Z=0",
            "C=1",
            "C=0",
            "N=1",
            "N=0",
            "V=1",
            "V=0",
            "C=1 and Z=0",
            "C=0 or Z=1",
            "N=V",
            "N!=V",
            "Z=0 and N=V",
            "Z=1 or N!=V",
            "always",
            "always",
        ];
        RULES[self as usize]
    }

    /// The flags [`Self::rule`] reads, by name (`"ZNV"` for `gt`; empty for `al` and `nv`).
    pub const fn deciding_flags(self) -> &'static str {
        const FLAGS: [&str; 8] = ["Z", "C", "N", "V", "CZ", "NV", "ZNV", ""];
        FLAGS[self as usize >> 1]
    }

    /// `ConditionHolds` (Arm ARM shared pseudocode): bits 3:1 pick the test,
    /// bit 0 inverts it, except for `nv` (1111) which, like `al`, always
    /// holds. `nzcv` is laid out as in PSTATE/SPSR: N bit 31, Z 30, C 29, V 28.
    pub const fn holds(self, nzcv: u32) -> bool {
        let n = nzcv >> 31 & 1 == 1;
        let z = nzcv >> 30 & 1 == 1;
        let c = nzcv >> 29 & 1 == 1;
        let v = nzcv >> 28 & 1 == 1;
        let cond = self as u32;
        let result = match cond >> 1 {
            0b000 => z,
            0b001 => c,
            0b010 => n,
            0b011 => v,
            0b100 => c && !z,
            0b101 => n == v,
            0b110 => n == v && !z,
            _ => true,
        };
        if cond & 1 == 1 && cond != 0b1111 {
            !result
        } else {
            result
        }
    }
}

/// The saved user registers, as the simulator reads and writes them. The
/// kernel implements it on its exception frame.
///
/// Register 31 is never passed to [`x`](Self::x) or [`set_x`](Self::set_x):
/// whether an encoding's 31 means the zero register or SP depends on the
/// instruction, so the simulator decides (`adr`, `ldr` literal, `cbz`, `br`:
/// zero register; the frame push's base: SP).
///
/// The SIMD&FP registers are written whole ([`set_v`](Self::set_v)): the only
/// simulated instruction that touches them, `ldr` (literal, SIMD&FP), writes
/// a whole V register, zeroing the bits above what it loaded.
pub trait Registers {
    /// X[index], `index` in 0..=30.
    fn x(&self, index: u8) -> u64;
    fn set_x(&mut self, index: u8, value: u64);
    fn sp(&self) -> u64;
    fn set_sp(&mut self, value: u64);
    /// The address the task resumes at (ELR_EL1 in the saved frame).
    fn pc(&self) -> u64;
    fn set_pc(&mut self, value: u64);
    /// N, Z, C, V in bits 31..28 (as SPSR_EL1 holds them).
    fn nzcv(&self) -> u32;
    /// V[index] = value: the whole 128-bit SIMD&FP register, `index` in
    /// 0..=31 (31 is v31 here; there is no zero register among them).
    fn set_v(&mut self, index: u8, value: u128);
}
