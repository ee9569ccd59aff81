//! Instruction classification and simulation, the arch-neutral half: the
//! [`Arch`] trait an architecture implements, the three answers a classifier
//! gives ([`Classification`]), the reasons for a refusal ([`RejectReason`]),
//! the simulation policy, and the checked user-memory path a simulation reads
//! and writes through. The A64 half is [`aarch64`].
//!
//! Every probed instruction gets one of three treatments:
//!
//! - **simulate**: the kernel does what the instruction would have done, on the
//!   saved registers, and returns past it: one exception per hit. Required for
//!   anything whose effect depends on where it sits (a branch, `adr`, a
//!   PC-relative load): run from an XOL slot, it would compute from the slot's
//!   address. Optional, for speed, for a few common position-independent
//!   instructions (`nop`, the frame push).
//! - **step** out of line: copy the instruction into an XOL slot, single-step
//!   it there, come back. Two exceptions per hit; works for everything that
//!   does not care where it runs.
//! - **reject**: refuse the probe at registration, with a reason the user reads.

pub mod aarch64;
pub mod x86_64;

use core::fmt;

/// What an architecture supplies to the probe core.
///
/// The registry, tree and return stack are generic over it (with
/// [`aarch64::Aarch64`] as the default), so the x86_64 port adds an
/// implementation (`int3`, an instruction-length decoder, RIP-relative fixups)
/// instead of rewriting the core.
pub trait Arch: 'static {
    /// A name for messages: `"aarch64"`.
    const NAME: &'static str;
    /// Required alignment of an instruction address, in bytes (4 on A64).
    const INSN_ALIGN: u64;
    /// Bytes in one XOL slot: room for the longest instruction a slot is
    /// given (4 on A64; 16 on x86_64, whose instructions are 1 to 15 bytes).
    const XOL_SLOT_BYTES: usize;
    /// One instruction as the text holds it (`u32` on A64).
    type Insn: Copy + Eq + fmt::Debug + Send + Sync + 'static;
    /// What the simulator needs to know about a simulated instruction.
    type Simulation: Copy + Eq + fmt::Debug + Send + Sync + 'static;
    /// The saved user register file a simulation works on (a trait object, so
    /// the kernel's exception frame can implement it directly).
    type Registers: ?Sized;
    /// Whether a simulated conditional branch is taken and what decided it;
    /// `Display` gives the words a trace prints (`b.ne taken: Z=0 ...`).
    type BranchDecision: fmt::Display;

    /// Simulate, step or reject `insn` under `policy`.
    fn classify(insn: Self::Insn, policy: SimulatePolicy) -> Classification<Self::Simulation>;

    /// Carry out a simulated instruction found at `pc`: update `regs`
    /// (including the new PC) and, through the checked path, memory. On a
    /// fault the registers are unchanged.
    fn simulate(
        simulation: &Self::Simulation,
        pc: u64,
        regs: &mut Self::Registers,
        mem: &mut dyn UserMemory,
    ) -> Result<(), SimulationFault>;

    /// If `simulation` is a conditional branch: whether it is taken on `regs`,
    /// and why. A conditional branch changes no register the decision reads,
    /// so it may be asked before or after the simulation.
    fn branch_decision(simulation: &Self::Simulation, regs: &Self::Registers) -> Option<Self::BranchDecision>;

    /// The breakpoint instruction carrying `immediate` (`brk #imm` on A64).
    fn breakpoint(immediate: u16) -> Self::Insn;

    /// `Some(immediate)` if `insn` is a breakpoint instruction.
    fn breakpoint_immediate(insn: Self::Insn) -> Option<u16>;
}

/// What to simulate (`--simulate all|branches`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SimulatePolicy {
    /// Simulate only what cannot run out of line: branches, `ret`,
    /// `adr`/`adrp`, and PC-relative loads (`ldr` literal); step the rest.
    /// Close to Linux at the time of the slot-reuse patch.
    Branches,
    /// Also simulate `nop` and the frame push `stp x29, x30, [sp, #-16]!`: a
    /// probe on a common function prologue then needs no XOL slot at all.
    #[default]
    All,
}

/// The classifier's answer for one instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classification<S> {
    /// Simulate it: one exception per hit, no XOL slot.
    Simulate(S),
    /// Single-step it in an XOL slot.
    Step,
    /// Refuse the probe.
    Reject(RejectReason),
}

impl<S> Classification<S> {
    pub fn is_reject(&self) -> bool {
        matches!(self, Self::Reject(_))
    }
}

/// Why an instruction cannot be probed. `Display` gives the sentence the
/// user sees after "cannot probe <where>: ".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// A load/store exclusive (`ldxr`, `stxr`, ...): the exception taken to
    /// step it clears the exclusive monitor, so the store-exclusive of the
    /// pair would fail forever and the program would spin.
    Exclusive { mnemonic: &'static str },
    /// Reads the PC to compute an address and is not simulated (stepped, it
    /// would read relative to the XOL slot).
    ReadsPc { mnemonic: &'static str },
    /// A branch the simulator does not implement. Stepped, a branch would
    /// leave the slot for its target and the kernel could not tell.
    UnsimulatedBranch { mnemonic: &'static str },
    /// An exception-generating or exception-return instruction: probing the
    /// instruction that enters the kernel (or returns from it) is not sound.
    ExceptionGenerating { mnemonic: &'static str },
    /// Writes a system register or PSTATE field (`msr`).
    SystemRegisterWrite { mnemonic: &'static str },
    /// A cache, TLB or address-translation maintenance instruction (`sys`).
    SystemInstruction { mnemonic: &'static str },
    /// An allocated encoding whose operands make its behaviour CONSTRAINED
    /// UNPREDICTABLE in the Arm ARM (`ldp x0, x0, [x1]`, a writeback load
    /// into its own base): a real program does not contain it, and no
    /// promise could be made about running it elsewhere.
    ConstrainedUnpredictable { what: &'static str },
    /// No instruction has this encoding (or it is permanently undefined).
    Unallocated,
    /// An allocated encoding from an extension the classifier's tables do not
    /// decode (SVE, SME, half-precision arithmetic, ...): refused rather than
    /// guessed at.
    Unsupported { extension: &'static str },
    /// x86: enters the kernel or the hypervisor, or returns from an
    /// interrupt (`int3`, `int n`, `syscall`, `sysenter`, `iretq` ...).
    EntersKernel { mnemonic: &'static str },
    /// x86: a privileged (CPL 0 or IOPL-checked) instruction (`hlt`, `cli`,
    /// `out`, `mov cr3` ...). In user mode it faults wherever it runs, so a
    /// probe on it would only move the fault.
    Privileged { mnemonic: &'static str },
    /// x86: `xbegin`/`xabort`/`xend` (TSX). The debug exception that ends a
    /// step aborts the transaction, so a stepped transaction never commits.
    Transactional { mnemonic: &'static str },
    /// x86: a direct branch or `ret` with a 0x66 or 0x67 prefix. Intel
    /// processors ignore the operand-size prefix on a near branch in 64-bit
    /// mode, AMD processors truncate the target to 16 bits (and read a
    /// 16-bit displacement): no one simulation is right on both.
    BranchSizePrefix { mnemonic: &'static str },
    /// x86: `mov ss`: it blocks the single-step trap of the instruction after
    /// it, so the task would run past the end of the XOL slot.
    DelaysSingleStep { mnemonic: &'static str },
    /// x86: a RIP-relative operand the XOL rewrite cannot move to a scratch
    /// register (`what` says why).
    RipRelative { what: &'static str },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exclusive { mnemonic } => {
                write!(f, "exclusive load/store ({mnemonic}) cannot be stepped out of line")
            }
            Self::ReadsPc { mnemonic } => {
                write!(f, "{mnemonic} reads the PC implicitly and is not simulated")
            }
            Self::UnsimulatedBranch { mnemonic } => {
                write!(f, "{mnemonic} is a branch the simulator does not handle, and a branch cannot be stepped")
            }
            Self::ExceptionGenerating { mnemonic } => {
                write!(f, "{mnemonic} is a brk/hlt/svc/hvc/smc/eret")
            }
            Self::SystemRegisterWrite { mnemonic } => {
                write!(f, "{mnemonic} writes a system register")
            }
            Self::SystemInstruction { mnemonic } => {
                write!(f, "{mnemonic} is a system instruction (cache, TLB or address translation)")
            }
            Self::ConstrainedUnpredictable { what } => {
                write!(f, "{what}: its behaviour is CONSTRAINED UNPREDICTABLE")
            }
            Self::Unallocated => write!(f, "unallocated encoding"),
            Self::Unsupported { extension } => {
                write!(f, "{extension} instructions are not in the classifier's decode tables")
            }
            Self::EntersKernel { mnemonic } => {
                write!(f, "{mnemonic} enters the kernel or returns from an interrupt")
            }
            Self::Privileged { mnemonic } => {
                write!(f, "{mnemonic} is privileged: in user mode it faults")
            }
            Self::Transactional { mnemonic } => {
                write!(f, "{mnemonic} is a TSX instruction: the debug exception of a step aborts the transaction")
            }
            Self::BranchSizePrefix { mnemonic } => {
                write!(
                    f,
                    "{mnemonic} has a 0x66/0x67 size prefix, whose effect on a branch differs between Intel and AMD"
                )
            }
            Self::DelaysSingleStep { mnemonic } => {
                write!(f, "{mnemonic} delays the single-step trap past the next instruction")
            }
            Self::RipRelative { what } => {
                write!(f, "its RIP-relative operand cannot be moved to an XOL slot: {what}")
            }
        }
    }
}

/// A simulated instruction's memory access that the task may not make. The
/// kernel reports it at the probed address as the hardware would have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimulationFault {
    /// The checked user-access path refused: not mapped for the task, or not
    /// with this permission.
    UserAccess { addr: u64, write: bool },
    /// An SP-based access with SP not 16-byte aligned: the SP alignment fault
    /// the hardware raises when `SCTLR_EL1.SA0` is set (it is, in this kernel).
    SpAlignment { sp: u64 },
}

impl fmt::Display for SimulationFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UserAccess { addr, write: false } => write!(f, "read of {addr:#x} not permitted"),
            Self::UserAccess { addr, write: true } => write!(f, "write of {addr:#x} not permitted"),
            Self::SpAlignment { sp } => write!(f, "SP {sp:#x} not 16-byte aligned"),
        }
    }
}

/// The task's memory, reached only through the kernel's checked user-access
/// path: each call checks the address against the task's mappings and
/// permissions before touching it.
///
/// This is the lesson of CVE-2024-50099: Linux's arm64 `ldr` literal
/// simulation read the literal with a plain kernel load, so a probe on a
/// literal load could be made to read kernel memory; Linux removed the
/// simulation. Here the simulator has no other way to touch memory.
pub trait UserMemory {
    /// Read 4 bytes at `addr` (any alignment), little-endian.
    fn read_u32(&mut self, addr: u64) -> Result<u32, SimulationFault>;
    /// Read 8 bytes at `addr` (any alignment), little-endian.
    fn read_u64(&mut self, addr: u64) -> Result<u64, SimulationFault>;
    /// Write 8 bytes at `addr` (any alignment), little-endian.
    fn write_u64(&mut self, addr: u64, value: u64) -> Result<(), SimulationFault>;
}
