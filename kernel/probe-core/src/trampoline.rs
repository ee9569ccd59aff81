//! Branch trampolines: one exception per hit for every probe class.
//!
//! A probe on the breakpoint path costs one exception for a simulated
//! instruction and two for a stepped one (the breakpoint, then the step). A
//! probe with a trampoline costs one exception whatever its instruction: the
//! probed instruction is replaced by a branch to the probe's own trampoline, a
//! few instructions in a per-process trampoline area within branch range of
//! the text, which
//!
//! 1. enters the kernel with an instruction the kernel recognises as a
//!    trampoline call only when the trap's resume address is the second
//!    instruction of a trampoline (`svc #TRAMPOLINE_SVC_IMMEDIATE` on A64,
//!    `int 0x82` on x86_64): the kernel counts the hit, arms a return probe,
//!    and returns to the next instruction;
//! 2. executes the displaced instruction, relocated where it computes from
//!    the PC (so it does what it did at the probed address);
//! 3. branches back to the instruction after the probed one (unless the
//!    displaced instruction is itself an unconditional branch).
//!
//! The last 8 bytes of every trampoline hold the probed address, as data that
//! is never executed: the kernel reads it back at a trampoline call and to
//! report a fault inside a displaced instruction at the probed address.
//!
//! What cannot be relocated without a scratch register (or whose target is
//! beyond what the relocated form reaches) stays on the breakpoint path; the
//! kernel says why with the [`NotRelocatable`] reason.
//!
//! This module holds what both architectures share; each architecture
//! implements [`Trampolines`] beside its classifier.

use crate::Arch;
use core::fmt;

/// Bytes of one trampoline in the trampoline area (a power of two; a page
/// holds `4096 / TRAMPOLINE_BYTES`).
pub const TRAMPOLINE_BYTES: usize = 32;

/// Where in a trampoline the probed address is kept, little-endian: its last
/// 8 bytes, never executed.
pub const PROBE_ADDRESS_OFFSET: usize = TRAMPOLINE_BYTES - 8;

/// One trampoline's bytes, as the trampoline area holds them.
pub type TrampolineImage = [u8; TRAMPOLINE_BYTES];

/// The probed address a trampoline image records.
pub fn probe_address(image: &TrampolineImage) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&image[PROBE_ADDRESS_OFFSET..]);
    u64::from_le_bytes(bytes)
}

/// The bytes written over a probed instruction to send it to its trampoline:
/// exactly as long as the instruction they replace (a `b` on A64; a 5-byte
/// `jmp rel32` followed by `int3` padding on x86_64).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BranchPatch {
    bytes: [u8; 16],
    len: u8,
}

impl BranchPatch {
    /// A patch of `bytes` (at most 16).
    pub fn new(bytes: &[u8]) -> Self {
        let mut patch = Self { bytes: [0; 16], len: bytes.len() as u8 };
        patch.bytes[..bytes.len()].copy_from_slice(bytes);
        patch
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for BranchPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BranchPatch({:02x?})", self.bytes())
    }
}

/// Why a probe keeps the breakpoint path instead of a trampoline. `Display`
/// gives the words a trace and the registration line print after
/// "no trampoline: ".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotRelocatable {
    /// The trampoline lies beyond the reach of the branch written at the
    /// probe (`b`: +-128 MiB; `jmp rel32`: +-2 GiB).
    OutOfBranchRange { reach: &'static str },
    /// A PC-relative operand's target is beyond what the relocated form
    /// reaches from the trampoline.
    TargetOutOfRange { mnemonic: &'static str, reach: &'static str },
    /// Relocating it would need a register the instruction does not already
    /// write (`blr x30`, a literal load into the zero register ...).
    NeedsScratchRegister { mnemonic: &'static str },
    /// x86_64: shorter than the 5-byte `jmp rel32` that would replace it.
    TooShort { len: usize },
    /// x86_64: a direct jump or call of the function lands inside the
    /// instruction's bytes, at `target`; the `jmp rel32` would cut it.
    JumpTargetInside { target: u64 },
    /// x86_64: the function has an indirect jump (a jump table, perhaps),
    /// whose targets cannot be known; one might land inside the instruction.
    IndirectJump { at: u64 },
    /// x86_64: the function's bytes do not decode as instructions from its
    /// start to its end, so its jump targets cannot be checked.
    UndecodableFunction { at: u64 },
    /// An instruction this relocator does not handle (`mnemonic` says which).
    Unsupported { mnemonic: &'static str },
}

impl fmt::Display for NotRelocatable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfBranchRange { reach } => write!(f, "the trampoline is beyond the branch's reach ({reach})"),
            Self::TargetOutOfRange { mnemonic, reach } => {
                write!(f, "{mnemonic}'s target is beyond the relocated form's reach ({reach})")
            }
            Self::NeedsScratchRegister { mnemonic } => {
                write!(f, "{mnemonic} cannot be relocated without a scratch register")
            }
            Self::TooShort { len } => write!(f, "the instruction is {len} bytes, shorter than a 5-byte jmp rel32"),
            Self::JumpTargetInside { target } => {
                write!(f, "a jump in the function lands at {target:#x}, inside the instruction")
            }
            Self::IndirectJump { at } => {
                write!(f, "the function has an indirect jump at {at:#x}, which might land inside the instruction")
            }
            Self::UndecodableFunction { at } => {
                write!(f, "the function does not decode at {at:#x}, so its jump targets cannot be checked")
            }
            Self::Unsupported { mnemonic } => write!(f, "{mnemonic} is not relocated into trampolines"),
        }
    }
}

/// What an architecture supplies for trampolines.
pub trait Trampolines: Arch {
    /// Bytes of the kernel-entry instruction at a trampoline's start: the
    /// trap's resume address is the trampoline's address plus this.
    const ENTRY_BYTES: u64;
    /// Bytes at a trampoline's start that may hold instructions (after them
    /// come data: a literal, the probed address). Traces disassemble this
    /// much, up to the first fill breakpoint.
    const CODE_BYTES: usize;

    /// The trampoline for the probe at `probe_vaddr` whose instruction is
    /// `original`, to sit at user address `trampoline`: the kernel entry, the
    /// displaced instruction (relocated), the branch back, the probed address
    /// at [`PROBE_ADDRESS_OFFSET`]. Unused bytes hold the breakpoint
    /// instruction.
    fn trampoline_image(
        original: Self::Insn,
        probe_vaddr: u64,
        trampoline: u64,
    ) -> Result<TrampolineImage, NotRelocatable>;

    /// What is written over `original` at `probe_vaddr` to branch to
    /// `trampoline`: as long as `original`.
    fn branch_to_trampoline(
        original: Self::Insn,
        probe_vaddr: u64,
        trampoline: u64,
    ) -> Result<BranchPatch, NotRelocatable>;

    /// Whether the branch may be written over `original` at `probe_vaddr`
    /// given the bytes of the function that holds it (`function`, starting at
    /// `function_start`): on x86_64 no direct jump of the function may land
    /// inside the replaced bytes and it may have no indirect jump. Nothing to
    /// check where every instruction is replaced whole (A64).
    fn check_function(
        original: Self::Insn,
        probe_vaddr: u64,
        function: &[u8],
        function_start: u64,
    ) -> Result<(), NotRelocatable>;
}
