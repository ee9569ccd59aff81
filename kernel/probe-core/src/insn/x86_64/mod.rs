//! The x86_64 classifier, simulator and XOL rewrite: which instructions a
//! probe may sit on and what the kernel does with each, on x86_64. The
//! decoder glue and the verdicts are in `decode.rs`, the simulator in
//! `simulate.rs`, the RIP-relative rewrite in `riprel.rs`, the trampolines
//! (the displaced instruction relocated) in `relocate.rs`; this file holds
//! the types they share and the entry points. It is an ordinary module,
//! compiled on every host: the x86_64 kernel uses it, the aarch64 kernel
//! ignores it, and the host tests both.
//!
//! # The x86 side of a probe
//!
//! **The breakpoint.** x86 instructions are 1 to 15 bytes long and have no
//! alignment, so there is no "instruction word" to replace. The probe writes
//! the one-byte `int3` (0xCC) over the *first byte* of the instruction and
//! leaves the rest in place: whatever bytes follow are never executed while
//! the breakpoint is there, because the `int3` traps first. `int3` raises
//! `#BP` as a *trap*: the saved RIP is the address after the `int3`, probe
//! address + 1, so the kernel subtracts 1 to find the probe. (The two-byte
//! `int 3`, `CD 03`, would do the same job with a 2-byte patch and a
//! different RIP; only 0xCC is used.)
//!
//! **Finding the instruction's end.** To step or simulate the instruction the
//! kernel must know where it ends: prefixes, REX/VEX/EVEX, opcode maps,
//! ModRM, SIB, displacement and immediate all change the length. That is a
//! decoder's job, and a maintained one (`iced-x86`, `no_std`) does it here;
//! the same decoder reports which registers an instruction reads and writes,
//! explicitly or implicitly (`cmpxchg` uses `rax` without naming it).
//!
//! **Stepping out of line.** A stepped instruction is copied into a 16-byte
//! slot of the XOL page; the kernel sets `RFLAGS.TF`, returns to the slot,
//! the processor runs exactly one instruction and raises `#DB` (a trap: RIP
//! is the end of the instruction in the slot). The kernel moves RIP back to
//! probe address + length, clears TF, and the task goes on. A `rep`-prefixed
//! string instruction traps after each iteration with RIP still at the slot
//! start; the kernel steps again until RIP leaves it.
//!
//! **Why RIP-relative needs a scratch register.** In 64-bit mode
//! `mov rax, [rip + disp32]` addresses memory relative to the *next*
//! instruction, and most data references in position-independent code look
//! like that. Run from a slot, it would read relative to the slot. Adjusting
//! `disp32` cannot work here: the XOL page (`0x7f_ffff_0000`) is about 256 GiB
//! above the program text (`0x40_0000_0000`), far beyond the ±2 GiB a signed
//! 32-bit displacement reaches. So [`xol_image`] rewrites the operand to
//! `[scratch + disp32]` (ModRM `mod=10`, same length, same displacement), with
//! `scratch` a general register the instruction does not use; before the
//! step the kernel saves the task's value of `scratch` and loads it with
//! probe address + length, the RIP the original would have seen, and
//! restores it after the step. The slot's bytes then depend only on the
//! instruction, not on where the probe or the slot is: the same slot content
//! is right for every hit, so a slot can be reused without rewriting it.
//!
//! **Simulation.** Branches (`call rel32`, `jmp`, `jcc`, `ret`) cannot be
//! stepped (they would leave the slot for the wrong place, or push the slot's
//! address) and are always simulated; `nop` and `push reg`, common at a
//! function's entry, are simulated under [`SimulatePolicy::All`] because one
//! exception is cheaper than two.
//!
//! **Rejected.** Instructions that enter or leave the kernel, privileged
//! ones, `ud0`/`ud1`/`ud2`, branches the simulator does not implement
//! (indirect, far, `loop`, `jrcxz`, `ret imm16`), TSX transactions, size
//! prefixes on branches, `mov ss` (it holds back the single-step trap), and
//! RIP-relative operands that cannot be rewritten (EVEX/XOP encodings, or no
//! free scratch register). Each has a [`RejectReason`](super::RejectReason)
//! the user reads.
//!
//! **No cache maintenance.** x86 keeps instruction fetch coherent with data
//! writes (self-modifying code is detected by the processor), so writing the
//! `int3` or a slot needs no cache instructions at all.

mod branch;
mod decode;
mod relocate;
mod riprel;
mod simulate;

#[cfg(test)]
mod tests;

pub use branch::{branch_decision, BranchDecision};
pub use relocate::TRAMPOLINE_VECTOR;
pub use simulate::simulate;

use super::{Arch, SimulatePolicy, SimulationFault, UserMemory};
use core::fmt;

/// The longest x86 instruction, in bytes: a longer one raises `#GP`.
pub const MAX_INSN_LEN: usize = 15;

/// `int3`, the one-byte breakpoint instruction.
pub const INT3: u8 = 0xCC;

/// Bytes in one XOL slot: the longest instruction, rounded up to 16.
pub const XOL_SLOT_BYTES: usize = 16;

/// The classifier's answer for an x86_64 instruction.
pub type Classification = super::Classification<Simulation>;

/// The x86_64 implementation of [`Arch`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct X86_64;

impl Arch for X86_64 {
    const NAME: &'static str = "x86_64";
    const INSN_ALIGN: u64 = 1;
    const XOL_SLOT_BYTES: usize = XOL_SLOT_BYTES;
    type Insn = Insn;
    type Simulation = Simulation;
    type Registers = dyn Registers;
    type BranchDecision = BranchDecision;

    fn classify(insn: Insn, policy: SimulatePolicy) -> Classification {
        classify_with(&insn, policy)
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

    /// `int3`. x86 breakpoints carry no immediate, so `immediate` is unused.
    fn breakpoint(_immediate: u16) -> Insn {
        Insn::from_valid(&[INT3])
    }

    /// `Some(0)` if the instruction starts with `int3` (0xCC).
    fn breakpoint_immediate(insn: Insn) -> Option<u16> {
        (insn.bytes[0] == INT3).then_some(0)
    }
}

/// Classify under the default policy ([`SimulatePolicy::All`]).
pub fn classify(insn: &Insn) -> Classification {
    classify_with(insn, SimulatePolicy::default())
}

/// Simulate, step or reject `insn` under `policy`.
pub fn classify_with(insn: &Insn, policy: SimulatePolicy) -> Classification {
    decode::classify(insn, policy)
}

/// One decoded x86_64 instruction as the text holds it: its bytes and
/// length, nothing else (the classifier decodes again when it needs more).
/// Only [`Insn::decode`] and [`X86_64::breakpoint`] make one, so the bytes
/// are always a whole valid instruction and the unused tail is zero.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    bytes: [u8; MAX_INSN_LEN],
    len: u8,
}

impl Insn {
    /// Decode the one instruction at the start of `bytes` (1 to 15 bytes
    /// available; fewer near the end of a mapping; more are ignored). Fails
    /// if the bytes are not a valid x86_64 (64-bit mode) instruction or are
    /// cut short before its end.
    pub fn decode(bytes: &[u8]) -> Result<Insn, DecodeError> {
        let decoded = decode::decode(bytes)?;
        Ok(Insn::from_valid(&bytes[..decoded.instr.len()]))
    }

    /// Exactly the instruction's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len()]
    }

    /// Its length, 1 to 15.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Never true: an instruction has at least one byte (here for clippy's
    /// `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `bytes` must be one whole instruction the decoder accepted.
    fn from_valid(bytes: &[u8]) -> Insn {
        let mut insn = Insn { bytes: [0; MAX_INSN_LEN], len: bytes.len() as u8 };
        insn.bytes[..bytes.len()].copy_from_slice(bytes);
        insn
    }
}

/// Hex bytes, as a disassembly listing shows them: `Insn(48 8b 05 10 00 00 00)`.
impl fmt::Debug for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Insn(")?;
        for (i, byte) in self.bytes().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

/// Why bytes are not one x86_64 instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The instruction goes on past the `available` bytes (the end of the
    /// readable memory, or of the slice given).
    Truncated { available: usize },
    /// Not a valid instruction in 64-bit mode (undefined opcode, a prefix
    /// the opcode does not allow, longer than 15 bytes ...).
    Invalid,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { available } => {
                write!(f, "instruction cut short: it goes on past the {available} readable bytes")
            }
            Self::Invalid => write!(f, "not a valid x86_64 instruction"),
        }
    }
}

/// The 16 general-purpose registers, by their hardware numbers (the ModRM,
/// SIB and REX fields that name them, and `push r64`'s low opcode bits).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Gpr {
    Rax = 0,
    Rcx,
    Rdx,
    Rbx,
    Rsp,
    Rbp,
    Rsi,
    Rdi,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
}

impl Gpr {
    /// All 16, in hardware order.
    pub const ALL: [Gpr; 16] = [
        Self::Rax,
        Self::Rcx,
        Self::Rdx,
        Self::Rbx,
        Self::Rsp,
        Self::Rbp,
        Self::Rsi,
        Self::Rdi,
        Self::R8,
        Self::R9,
        Self::R10,
        Self::R11,
        Self::R12,
        Self::R13,
        Self::R14,
        Self::R15,
    ];

    /// The register with hardware number `number & 15`.
    pub const fn from_number(number: u8) -> Gpr {
        Self::ALL[(number & 0xf) as usize]
    }

    /// The hardware number, 0 to 15.
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The assembler name: `"rax"`.
    pub const fn name(self) -> &'static str {
        const NAMES: [&str; 16] = [
            "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
            "r15",
        ];
        NAMES[self as usize]
    }
}

/// The saved user registers, as the simulator reads and writes them. The
/// kernel implements it on its trap frame.
pub trait Registers {
    fn gpr(&self, reg: Gpr) -> u64;
    fn set_gpr(&mut self, reg: Gpr, value: u64);
    /// The address the task resumes at.
    fn rip(&self) -> u64;
    fn set_rip(&mut self, value: u64);
    /// RFLAGS as the trap frame holds it (the conditions read CF, PF, ZF,
    /// SF and OF).
    fn rflags(&self) -> u64;
}

/// What the simulator needs to carry out one simulated instruction; the
/// decoder has already worked out the length and the branch offset.
///
/// Branch offsets count from the first byte of the instruction (the probed
/// address), not from its end as the encoding's `rel8`/`rel32` does: the
/// target is `pc + offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simulation {
    /// `nop` in any of its forms (`90`, `66 90`, `0F 1F /0` with any
    /// operand): RIP += len.
    Nop { len: u8 },
    /// `push r64` (`50+r`, REX.B for r8 to r15): store the register at
    /// RSP - 8, RSP -= 8. `push rsp` stores the old RSP.
    Push { reg: Gpr, len: u8 },
    /// `ret` (`C3`, also `rep ret` and `bnd ret`): RIP = the quadword at
    /// RSP, RSP += 8.
    Ret,
    /// `call rel32`: store the return address pc + len at RSP - 8, RSP -= 8,
    /// RIP = pc + offset.
    Call { offset: i64, len: u8 },
    /// `jmp rel8`/`jmp rel32`: RIP = pc + offset.
    Jmp { offset: i64 },
    /// `jcc rel8`/`jcc rel32`: RIP = pc + offset if the condition holds in
    /// RFLAGS, else pc + len.
    Jcc { condition: Condition, offset: i64, len: u8 },
}

impl Simulation {
    /// The mnemonic, for traces: `"nop"`, `"push"`, `"ret"`, `"call"`,
    /// `"jmp"`, or the `jcc`'s own (`"jne"`).
    pub fn mnemonic(&self) -> &'static str {
        match self {
            Self::Nop { .. } => "nop",
            Self::Push { .. } => "push",
            Self::Ret => "ret",
            Self::Call { .. } => "call",
            Self::Jmp { .. } => "jmp",
            Self::Jcc { condition, .. } => condition.mnemonic(),
        }
    }

    /// Why it is simulated rather than stepped, for traces.
    pub fn why(&self) -> &'static str {
        match self {
            Self::Nop { .. } | Self::Push { .. } => "position-independent, but cheaper to simulate than to step",
            Self::Ret => "a branch: out of line the kernel could not tell where it went",
            Self::Call { .. } => "a branch that pushes its own address: out of line it would push the slot's",
            Self::Jmp { .. } | Self::Jcc { .. } => "a relative branch: out of line it would jump relative to the slot",
        }
    }
}

/// The 16 `jcc` conditions, in encoding order (the low 4 bits of `70+cc`
/// and `0F 80+cc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Overflow: OF.
    O,
    No,
    /// Below (unsigned <), also `jc`/`jnae`: CF.
    B,
    Ae,
    /// Equal, also `jz`: ZF.
    E,
    Ne,
    /// Below or equal (unsigned <=): CF or ZF.
    Be,
    A,
    /// Sign: SF.
    S,
    Ns,
    /// Parity even: PF.
    P,
    Np,
    /// Less (signed <): SF != OF.
    L,
    Ge,
    /// Less or equal (signed <=): ZF or SF != OF.
    Le,
    G,
}

/// RFLAGS.CF, carry.
pub const RFLAGS_CF: u64 = 1 << 0;
/// RFLAGS.PF, parity of the low result byte.
pub const RFLAGS_PF: u64 = 1 << 2;
/// RFLAGS.ZF, zero.
pub const RFLAGS_ZF: u64 = 1 << 6;
/// RFLAGS.SF, sign.
pub const RFLAGS_SF: u64 = 1 << 7;
/// RFLAGS.TF, the trap flag that single-steps.
pub const RFLAGS_TF: u64 = 1 << 8;
/// RFLAGS.OF, overflow.
pub const RFLAGS_OF: u64 = 1 << 11;

impl Condition {
    const ALL: [Condition; 16] = [
        Self::O,
        Self::No,
        Self::B,
        Self::Ae,
        Self::E,
        Self::Ne,
        Self::Be,
        Self::A,
        Self::S,
        Self::Ns,
        Self::P,
        Self::Np,
        Self::L,
        Self::Ge,
        Self::Le,
        Self::G,
    ];

    /// From the 4-bit condition field.
    pub const fn from_bits(cc: u8) -> Self {
        Self::ALL[(cc & 0xf) as usize]
    }

    /// The condition field, 0 to 15.
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// The `jcc` mnemonic (the first of the assembler's synonyms).
    pub const fn mnemonic(self) -> &'static str {
        const NAMES: [&str; 16] =
            ["jo", "jno", "jb", "jae", "je", "jne", "jbe", "ja", "js", "jns", "jp", "jnp", "jl", "jge", "jle", "jg"];
        NAMES[self as usize]
    }

    /// Whether the condition holds in `rflags`: bits 3:1 of the field pick
    /// the test, bit 0 inverts it (Intel SDM vol. 2, appendix B.1.4.7).
    pub const fn holds(self, rflags: u64) -> bool {
        let cf = rflags & RFLAGS_CF != 0;
        let pf = rflags & RFLAGS_PF != 0;
        let zf = rflags & RFLAGS_ZF != 0;
        let sf = rflags & RFLAGS_SF != 0;
        let of = rflags & RFLAGS_OF != 0;
        let cc = self as u8;
        let test = match cc >> 1 {
            0 => of,
            1 => cf,
            2 => zf,
            3 => cf || zf,
            4 => sf,
            5 => pf,
            6 => sf != of,
            _ => zf || sf != of,
        };
        test != (cc & 1 == 1)
    }
}

/// The bytes an XOL slot holds for a stepped instruction, and what the
/// kernel must do around the step.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct XolImage {
    bytes: [u8; XOL_SLOT_BYTES],
    len: u8,
    pub fixup: StepFixup,
}

impl XolImage {
    /// The instruction to write at the slot's start (`len` bytes, at most
    /// 15; the rest of the slot is never executed).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len()]
    }

    /// The length, equal to the original instruction's.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Never true (here for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What the kernel does around the step of an [`XolImage`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct StepFixup {
    /// RIP-relative operand rewritten to `[scratch + disp32]`: before the
    /// step the kernel saves the task's value of `scratch` and sets scratch
    /// = probed address + instruction length; after the step (or when the
    /// step faults, before the fault is reported) it restores it.
    pub rip_relative_scratch: Option<Gpr>,
    /// The instruction pushes RFLAGS (`pushf`): after the step the kernel
    /// clears TF in the pushed copy at `[rsp]`, which the step's own TF put
    /// there.
    pub pushes_flags: bool,
}

/// For an instruction [`classify`] said [`Step`](super::Classification::Step)
/// for: what to put in the slot. For anything else the answer is the
/// instruction's own bytes with no fixup, and means nothing.
///
/// It asks the decoder for the instruction's register use, which allocates a
/// little from the heap.
pub fn xol_image(insn: &Insn) -> XolImage {
    let mut image = XolImage { bytes: [0; XOL_SLOT_BYTES], len: insn.len, fixup: StepFixup::default() };
    image.bytes[..insn.len()].copy_from_slice(insn.bytes());
    let Ok(decoded) = decode::decode(insn.bytes()) else {
        return image;
    };
    image.fixup.pushes_flags = decode::pushes_flags(&decoded);
    if let Ok(Some(plan)) = riprel::plan(&decoded) {
        plan.apply(&mut image.bytes);
        image.fixup.rip_relative_scratch = Some(plan.scratch);
    }
    image
}
