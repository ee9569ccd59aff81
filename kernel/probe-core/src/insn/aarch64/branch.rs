//! Whether a simulated A64 conditional branch (`b.cond`, `cbz`/`cbnz`,
//! `tbz`/`tbnz`) is taken, and what decided it: the one place the simulator
//! asks, and what a trace says after the branch (`b.gt taken: Z=0 N=1 V=1
//! (NZCV=1001; gt: Z=0 and N=V)`).

use super::{simulate::read_or_zero, Condition, Registers, Simulation};
use core::fmt;

/// Whether a conditional branch is taken, and the state that decided it.
///
/// A conditional branch writes nothing but the PC, so the decision reads the
/// same before and after the branch is simulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchDecision {
    /// The branch goes to its target (else to the next instruction).
    pub taken: bool,
    /// What decided it.
    pub reason: BranchReason,
}

/// What a conditional branch reads to decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BranchReason {
    /// `b.cond`: the condition and N, Z, C, V in bits 31..28 (as SPSR_EL1 holds them).
    Flags { condition: Condition, nzcv: u32 },
    /// `cbz`/`cbnz` (`nonzero`): register `rt` (31: the zero register) compared
    /// with zero, a W register (`is_64` false) by its low 32 bits: `value`.
    Register { rt: u8, is_64: bool, nonzero: bool, value: u64 },
    /// `tbz`/`tbnz` (`nonzero`): bit `bit` of register `rt` (31: the zero
    /// register), whose value is `value` (for bits 0 to 31, the W register's:
    /// the low 32 bits).
    Bit { rt: u8, bit: u8, nonzero: bool, value: u64 },
}

/// The decision of `simulation` on `regs`, if it is a conditional branch.
pub fn branch_decision<R: Registers + ?Sized>(simulation: &Simulation, regs: &R) -> Option<BranchDecision> {
    let (taken, reason) = match *simulation {
        Simulation::BranchConditional { condition, .. } => {
            let nzcv = regs.nzcv();
            (condition.holds(nzcv), BranchReason::Flags { condition, nzcv })
        }
        Simulation::CompareBranch { rt, is_64, nonzero, .. } => {
            let value = compared_value(regs, rt, is_64);
            (compare_taken(value, nonzero), BranchReason::Register { rt, is_64, nonzero, value })
        }
        Simulation::TestBranch { rt, bit, nonzero, .. } => {
            let value = tested_value(regs, rt, bit);
            (test_taken(value, bit, nonzero), BranchReason::Bit { rt, bit, nonzero, value })
        }
        _ => return None,
    };
    Some(BranchDecision { taken, reason })
}

/// What `cbz`/`cbnz` compares with zero: X[rt], or W[rt] (the low 32 bits)
/// unless `is_64`; 31 is the zero register.
pub(super) fn compared_value<R: Registers + ?Sized>(regs: &R, rt: u8, is_64: bool) -> u64 {
    let value = read_or_zero(regs, rt);
    if is_64 {
        value
    } else {
        value & 0xffff_ffff
    }
}

/// Whether `cbz` (`cbnz` if `nonzero`) of `value` is taken.
pub(super) const fn compare_taken(value: u64, nonzero: bool) -> bool {
    (value != 0) == nonzero
}

/// What `tbz`/`tbnz` tests bit `bit` of: X[rt], or for bits 0 to 31 W[rt]
/// (the low 32 bits); 31 is the zero register.
pub(super) fn tested_value<R: Registers + ?Sized>(regs: &R, rt: u8, bit: u8) -> u64 {
    compared_value(regs, rt, bit >= 32)
}

/// Whether `tbz` (`tbnz` if `nonzero`) of bit `bit` of `value` is taken.
pub(super) const fn test_taken(value: u64, bit: u8, nonzero: bool) -> bool {
    (value >> bit & 1 == 1) == nonzero
}

/// The flags as `N`, `Z`, `C`, `V` and their bit in NZCV (bits 31..28).
const FLAGS: [(char, u32); 4] = [('N', 31), ('Z', 30), ('C', 29), ('V', 28)];

/// Register `rt` as the disassembly names it: `x3`, `w3`, `xzr`, `wzr`.
struct RegisterName {
    rt: u8,
    is_64: bool,
}

impl fmt::Display for RegisterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = if self.is_64 { 'x' } else { 'w' };
        if self.rt == 31 {
            write!(f, "{width}zr")
        } else {
            write!(f, "{width}{}", self.rt)
        }
    }
}

impl fmt::Display for BranchDecision {
    /// `b.ne taken: Z=0 (NZCV=0010; ne: Z=0)`, `cbz not taken: w3 = 0x5`,
    /// `tbnz taken: bit 1 of x0 is 1 (x0 = 0x3)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let taken = if self.taken { "taken" } else { "not taken" };
        match self.reason {
            BranchReason::Flags { condition, nzcv } => {
                write!(f, "b.{} {taken}:", condition.name())?;
                let deciding = condition.deciding_flags();
                if deciding.is_empty() {
                    write!(f, " always")?;
                }
                for (name, bit) in FLAGS.iter().filter(|(name, _)| deciding.contains(*name)) {
                    write!(f, " {name}={}", nzcv >> bit & 1)?;
                }
                write!(f, " (NZCV=")?;
                for (_, bit) in FLAGS {
                    write!(f, "{}", nzcv >> bit & 1)?;
                }
                write!(f, "; {}: {})", condition.name(), condition.rule())
            }
            BranchReason::Register { rt, is_64, nonzero, value } => {
                let mnemonic = if nonzero { "cbnz" } else { "cbz" };
                write!(f, "{mnemonic} {taken}: {} = {value:#x}", RegisterName { rt, is_64 })
            }
            BranchReason::Bit { rt, bit, nonzero, value } => {
                let mnemonic = if nonzero { "tbnz" } else { "tbz" };
                // The assembler names a W register for bits 0 to 31.
                let register = RegisterName { rt, is_64: bit >= 32 };
                write!(
                    f,
                    "{mnemonic} {taken}: bit {bit} of {register} is {} ({register} = {value:#x})",
                    value >> bit & 1
                )
            }
        }
    }
}
