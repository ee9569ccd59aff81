//! Whether a simulated x86_64 `jcc` is taken, and what decided it: the one
//! place the simulator asks, and what a trace says after the branch (`jg
//! taken: ZF=0 SF=1 OF=1 (RFLAGS=0xa82; jg: ZF=0 and SF=OF)`).

use super::{Condition, Registers, Simulation, RFLAGS_CF, RFLAGS_OF, RFLAGS_PF, RFLAGS_SF, RFLAGS_ZF};
use core::fmt;

/// Whether a `jcc` is taken, and the flags that decided it.
///
/// A `jcc` writes nothing but RIP, so the decision reads the same before and
/// after it is simulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchDecision {
    /// The branch goes to its target (else to the next instruction).
    pub taken: bool,
    pub condition: Condition,
    /// RFLAGS as the branch read it.
    pub rflags: u64,
}

/// The decision of `simulation` on `regs`, if it is a conditional branch.
pub fn branch_decision<R: Registers + ?Sized>(simulation: &Simulation, regs: &R) -> Option<BranchDecision> {
    let Simulation::Jcc { condition, .. } = *simulation else { return None };
    let rflags = regs.rflags();
    Some(BranchDecision { taken: condition.holds(rflags), condition, rflags })
}

/// The status flags a condition can read, by name, in RFLAGS order.
const FLAGS: [(&str, u64); 5] =
    [("CF", RFLAGS_CF), ("PF", RFLAGS_PF), ("ZF", RFLAGS_ZF), ("SF", RFLAGS_SF), ("OF", RFLAGS_OF)];

impl Condition {
    /// When the condition holds, in terms of the flags (Intel SDM vol. 2, `Jcc`).
    pub const fn rule(self) -> &'static str {
        const RULES: [&str; 16] = [
            "OF=1",
            "OF=0",
            "CF=1",
            "CF=0",
            "ZF=1",
            "ZF=0",
            "CF=1 or ZF=1",
            "CF=0 and ZF=0",
            "SF=1",
            "SF=0",
            "PF=1",
            "PF=0",
            "SF!=OF",
            "SF=OF",
            "ZF=1 or SF!=OF",
            "ZF=0 and SF=OF",
        ];
        RULES[self as usize]
    }

    /// The flags [`Self::rule`] reads.
    pub const fn deciding_flags(self) -> u64 {
        const FLAGS: [u64; 8] = [
            RFLAGS_OF,
            RFLAGS_CF,
            RFLAGS_ZF,
            RFLAGS_CF | RFLAGS_ZF,
            RFLAGS_SF,
            RFLAGS_PF,
            RFLAGS_SF | RFLAGS_OF,
            RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF,
        ];
        FLAGS[self as usize >> 1]
    }
}

impl fmt::Display for BranchDecision {
    /// `jne taken: ZF=0 (RFLAGS=0x202; jne: ZF=0)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let taken = if self.taken { "taken" } else { "not taken" };
        write!(f, "{} {taken}:", self.condition.mnemonic())?;
        let deciding = self.condition.deciding_flags();
        for (name, flag) in FLAGS.iter().filter(|(_, flag)| deciding & flag != 0) {
            write!(f, " {name}={}", u8::from(self.rflags & flag != 0))?;
        }
        write!(f, " (RFLAGS={:#x}; {}: {})", self.rflags, self.condition.mnemonic(), self.condition.rule())
    }
}
