//! A64 trampolines: the probed instruction relocated into a 32-byte
//! trampoline, so that a hit costs one exception (the `svc` at the
//! trampoline's start) whatever the instruction (see [`crate::trampoline`]).
//!
//! ```text
//!  offset  word
//!   0x00   svc #TRAMPOLINE_SVC_IMMEDIATE    the kernel counts the hit, returns to 0x04
//!   0x04   \
//!   0x08    } the displaced instruction, relocated (1 to 3 words), then,
//!   0x0c   /  unless it never falls through, `b probe+4`
//!   0x10   \ an 8-byte literal for the relocated forms (`ldr xN, literal`),
//!   0x14   /  8-aligned because the area places every trampoline 32-aligned
//!   0x18   \ the probed address (PROBE_ADDRESS_OFFSET), data
//!   0x1c   /
//! ```
//!
//! Every word not used is `brk #TRAMPOLINE_FILL_BRK_IMMEDIATE`, never
//! executed. The probed word itself becomes one `b trampoline`: every A64
//! instruction is one word, so nothing can jump into the middle of it.
//!
//! How each instruction is relocated follows from what it computes from the
//! PC (the classification under [`SimulatePolicy::Branches`]):
//!
//! | probed | in the trampoline |
//! | --- | --- |
//! | position-independent (stepped) | the same word; `b back` |
//! | `b label` | `b label` |
//! | `bl label` | `ldr x30, =probe+4`; `b label` |
//! | `b.cond`/`bc.cond`/`cbz`/`cbnz`/`tbz`/`tbnz label` | the same test to `.+8`; `b back`; `b label` |
//! | `br xn`, `ret xn` | the same word |
//! | `blr xn` (n != 30) | `ldr x30, =probe+4`; `br xn` |
//! | `adr`/`adrp xd, label` | `ldr xd, =value`; `b back` (`nop` for xzr) |
//! | `ldr wt/xt`, `ldrsw xt, label` | re-encoded within +-1 MiB, else `ldr xt, =label`; `ldr wt/xt`/`ldrsw xt, [xt]`; `b back` |
//! | `ldr st/dt/qt, label` | re-encoded within +-1 MiB; `b back` |
//! | `prfm op, label` | re-encoded within +-1 MiB, else `nop` (a hint); `b back` |
//!
//! Refused ([`NotRelocatable`]): `blr x30` (the target register is the one
//! the link overwrites: no register is free to hold it), a literal load into
//! the zero register whose literal is out of reach (the two-instruction
//! form needs the destination as its base), a SIMD&FP literal out of reach
//! (no general register may be clobbered to hold its address), a branch
//! whose target is beyond +-128 MiB of the trampoline, and whatever the
//! classifier refuses.
//!
//! Encodings are from the Arm ARM (DDI 0487), C6.2 (the instruction pages
//! of `B`, `BL`, `B.cond`, `CBZ`, `TBZ`, `BR`, `LDR (literal)`, `LDR
//! (immediate)`, `LDRSW (immediate)`, `SVC`, `BRK`, `NOP`) and C7.2 (`LDR
//! (literal, SIMD&FP)`).

use super::{brk, classify_with, encodings, Aarch64, LiteralLoad, RegisterBranch, Simulation};
use crate::insn::{Classification, SimulatePolicy};
use crate::trampoline::{
    BranchPatch, NotRelocatable, TrampolineImage, Trampolines, PROBE_ADDRESS_OFFSET, TRAMPOLINE_BYTES,
};

/// The immediate of the `svc` that opens every trampoline: the kernel takes
/// an `svc` with it as a trampoline call only when the trap's resume address
/// is the second word of a trampoline.
pub const TRAMPOLINE_SVC_IMMEDIATE: u16 = 0x0b7e;

/// The immediate of the `brk` that fills a trampoline's unused words. They
/// are never executed; if a bug ever ran one, the kernel would see a `brk`
/// that is no probe's and kill the task instead of running stray bytes.
pub const TRAMPOLINE_FILL_BRK_IMMEDIATE: u16 = 0x07ab;

/// Bytes of one A64 instruction.
const WORD: usize = 4;
/// Words of code at the start of a trampoline: the `svc` and at most three
/// of the displaced sequence (a conditional branch needs all three).
const CODE_WORDS: usize = 4;
/// Where the 8-byte literal sits: right after the code.
const LITERAL_OFFSET: usize = CODE_WORDS * WORD;

/// `b`'s reach: imm26 words, +-128 MiB.
const BRANCH_REACH: &str = "+-128 MiB";
/// A literal load's reach: imm19 words, +-1 MiB.
const LITERAL_REACH: &str = "+-1 MiB";

/// `nop` (C6.2, NOP).
const NOP: u32 = encodings::NOP.value;
/// `svc #imm16`: `11010100 000 imm16 000 01` (C6.2, SVC).
const fn svc(immediate: u16) -> u32 {
    encodings::SVC.value | (immediate as u32) << 5
}
/// `br xn`: `1101011 0000 11111 000000 Rn 00000` (C6.2, BR).
const fn br(rn: u8) -> u32 {
    encodings::BR.value | (rn as u32) << 5
}
/// `ldr xt, label`: `01 011 0 00 imm19 Rt` (C6.2, LDR (literal)).
const fn ldr_x_literal(rt: u8, imm19: u32) -> u32 {
    encodings::LDR_LITERAL_X.value | imm19 << 5 | rt as u32
}
/// `ldr wt|xt, [xt]` or `ldrsw xt, [xt]`: the unsigned-offset forms with
/// offset 0, `size 111 0 01 opc imm12 Rn Rt` (C6.2, LDR (immediate), LDRSW
/// (immediate)): size 10 opc 01 for W, size 11 opc 01 for X, size 10 opc 10
/// for LDRSW.
const fn load_from_own_register(rt: u8, width: LiteralLoad) -> u32 {
    let base = match width {
        LiteralLoad::Word => 0xb940_0000,
        LiteralLoad::Doubleword => 0xf940_0000,
        LiteralLoad::SignedWord => 0xb980_0000,
    };
    base | (rt as u32) << 5 | rt as u32
}

/// The imm26 field of a `b` at `from` to `to`, if it reaches.
fn imm26(from: u64, to: u64) -> Option<u32> {
    let delta = to.wrapping_sub(from) as i64;
    (delta % 4 == 0 && (-(1 << 27)..1 << 27).contains(&delta)).then_some((delta >> 2) as u32 & 0x3ff_ffff)
}

/// The imm19 field of a literal load or conditional branch at `from` to
/// `to`, if it reaches.
fn imm19(from: u64, to: u64) -> Option<u32> {
    let delta = to.wrapping_sub(from) as i64;
    (delta % 4 == 0 && (-(1 << 20)..1 << 20).contains(&delta)).then_some((delta >> 2) as u32 & 0x7_ffff)
}

/// `word` with its imm19 field (bits 23:5: `b.cond`, `cbz`, literal loads)
/// replaced.
const fn with_imm19(word: u32, imm19: u32) -> u32 {
    word & !(0x7_ffff << 5) | imm19 << 5
}

/// `word` with its imm14 field (bits 18:5: `tbz`, `tbnz`) replaced.
const fn with_imm14(word: u32, imm14: u32) -> u32 {
    word & !(0x3fff << 5) | imm14 << 5
}

/// The trampoline under construction: its code words after the `svc`, and
/// the literal if one is used.
struct Builder {
    trampoline: u64,
    code: [u32; CODE_WORDS],
    len: usize,
    literal: Option<u64>,
}

impl Builder {
    fn new(trampoline: u64) -> Self {
        let mut code = [brk(TRAMPOLINE_FILL_BRK_IMMEDIATE); CODE_WORDS];
        code[0] = svc(TRAMPOLINE_SVC_IMMEDIATE);
        Self { trampoline, code, len: 1, literal: None }
    }

    /// The user address of the next word.
    fn here(&self) -> u64 {
        self.trampoline + (self.len * WORD) as u64
    }

    fn push(&mut self, word: u32) {
        self.code[self.len] = word;
        self.len += 1;
    }

    /// `b to` from the next word.
    fn branch(&mut self, to: u64, mnemonic: &'static str) -> Result<(), NotRelocatable> {
        let imm26 = imm26(self.here(), to).ok_or(NotRelocatable::TargetOutOfRange { mnemonic, reach: BRANCH_REACH })?;
        self.push(encodings::B.value | imm26);
        Ok(())
    }

    /// `ldr xt, <literal = value>` from the next word.
    fn load_literal(&mut self, rt: u8, value: u64) {
        let literal = self.trampoline + LITERAL_OFFSET as u64;
        let imm19 = imm19(self.here(), literal).expect("the literal is a few words away");
        self.literal = Some(value);
        self.push(ldr_x_literal(rt, imm19));
    }

    /// The literal-load `word` (any of them: its imm19 is bits 23:5)
    /// re-encoded to read `target` from the next word, if it reaches.
    fn reencoded_literal(&self, word: u32, target: u64) -> Option<u32> {
        imm19(self.here(), target).map(|imm19| with_imm19(word, imm19))
    }

    /// The 32 bytes: code, fill, the literal (or fill), the probed address.
    fn image(&self, probe_vaddr: u64) -> TrampolineImage {
        let fill = brk(TRAMPOLINE_FILL_BRK_IMMEDIATE);
        let literal_fill = [fill, fill];
        let words = self.code.iter().chain(&literal_fill);
        let mut image = [0; TRAMPOLINE_BYTES];
        for (bytes, word) in image[..PROBE_ADDRESS_OFFSET].chunks_exact_mut(WORD).zip(words) {
            bytes.copy_from_slice(&word.to_le_bytes());
        }
        if let Some(value) = self.literal {
            image[LITERAL_OFFSET..PROBE_ADDRESS_OFFSET].copy_from_slice(&value.to_le_bytes());
        }
        image[PROBE_ADDRESS_OFFSET..].copy_from_slice(&probe_vaddr.to_le_bytes());
        image
    }
}

/// The trampoline for `original` at `probe_vaddr`, placed at `trampoline`
/// (a multiple of [`TRAMPOLINE_BYTES`], so the literal is 8-aligned).
pub fn trampoline_image(original: u32, probe_vaddr: u64, trampoline: u64) -> Result<TrampolineImage, NotRelocatable> {
    debug_assert!(trampoline.is_multiple_of(TRAMPOLINE_BYTES as u64), "a trampoline is 32-byte aligned");
    let back = probe_vaddr.wrapping_add(WORD as u64);
    let relative = |offset: i64| probe_vaddr.wrapping_add(offset as u64);
    let mut t = Builder::new(trampoline);
    let simulation = match classify_with(original, SimulatePolicy::Branches) {
        Classification::Reject(_) => return Err(NotRelocatable::Unsupported { mnemonic: "a refused instruction" }),
        Classification::Step => {
            t.push(original);
            t.branch(back, "the branch back")?;
            return Ok(t.image(probe_vaddr));
        }
        Classification::Simulate(simulation) => simulation,
    };
    let mnemonic = simulation.mnemonic();
    // Whether the sequence falls through to the instruction after the probe.
    let mut falls_through = true;
    match simulation {
        // Position-independent; simulated only under SimulatePolicy::All.
        Simulation::Nop | Simulation::FramePush => t.push(original),
        Simulation::Branch { offset } => {
            t.branch(relative(offset), mnemonic)?;
            falls_through = false;
        }
        Simulation::BranchLink { offset } => {
            t.load_literal(30, back);
            t.branch(relative(offset), mnemonic)?;
            falls_through = false;
        }
        Simulation::BranchConditional { offset, .. }
        | Simulation::CompareBranch { offset, .. }
        | Simulation::TestBranch { offset, .. } => {
            // The same test, taken to the third word: `b target`; not taken
            // falls into the second: `b back`. The offset is 2 words in
            // whichever field the form has.
            let skip = if matches!(simulation, Simulation::TestBranch { .. }) {
                with_imm14(original, 2)
            } else {
                with_imm19(original, 2)
            };
            t.push(skip);
            t.branch(back, "the branch back")?;
            t.branch(relative(offset), mnemonic)?;
            falls_through = false;
        }
        Simulation::BranchRegister { kind: RegisterBranch::Br | RegisterBranch::Ret, .. } => {
            t.push(original);
            falls_through = false;
        }
        Simulation::BranchRegister { rn, kind: RegisterBranch::Blr } => {
            if rn == 30 {
                return Err(NotRelocatable::NeedsScratchRegister { mnemonic: "blr x30" });
            }
            t.load_literal(30, back);
            t.push(br(rn));
            falls_through = false;
        }
        Simulation::Adr { rd, offset } => materialise(&mut t, rd, relative(offset)),
        Simulation::Adrp { rd, offset } => materialise(&mut t, rd, (probe_vaddr & !0xfff).wrapping_add(offset as u64)),
        Simulation::LoadLiteral { rt, offset, width } => {
            let target = relative(offset);
            match t.reencoded_literal(original, target) {
                Some(word) => t.push(word),
                // The destination holds the address, then the value: no
                // other register changes. The zero register cannot be a base.
                None if rt == 31 => return Err(NotRelocatable::NeedsScratchRegister { mnemonic }),
                None => {
                    t.load_literal(rt, target);
                    t.push(load_from_own_register(rt, width));
                }
            }
        }
        Simulation::LoadLiteralSimd { offset, .. } => {
            let word = t
                .reencoded_literal(original, relative(offset))
                .ok_or(NotRelocatable::TargetOutOfRange { mnemonic, reach: LITERAL_REACH })?;
            t.push(word);
        }
        // A prefetch is a hint (Arm ARM C6.2, PRFM (literal): it has no
        // architecturally visible effect), so out of reach it becomes `nop`.
        Simulation::PrefetchLiteral => {
            let target = relative(offset_of_literal(original));
            let word = t.reencoded_literal(original, target).unwrap_or(NOP);
            t.push(word);
        }
    }
    if falls_through {
        t.branch(back, "the branch back")?;
    }
    Ok(t.image(probe_vaddr))
}

/// `adr`/`adrp xd`'s result as `ldr xd, <literal = value>`; for xzr the
/// instruction writes nothing, so a `nop`.
fn materialise(t: &mut Builder, rd: u8, value: u64) {
    if rd == 31 {
        t.push(NOP);
    } else {
        t.load_literal(rd, value);
    }
}

/// The byte offset a literal-load word's imm19 gives (bits 23:5, in words,
/// sign-extended).
fn offset_of_literal(word: u32) -> i64 {
    (((word >> 5 & 0x7_ffff) as i64) << 45 >> 45) * WORD as i64
}

/// `b trampoline`, written over the probed word at `probe_vaddr`.
pub fn branch_to_trampoline(probe_vaddr: u64, trampoline: u64) -> Result<BranchPatch, NotRelocatable> {
    let imm26 = imm26(probe_vaddr, trampoline).ok_or(NotRelocatable::OutOfBranchRange { reach: BRANCH_REACH })?;
    Ok(BranchPatch::new(&(encodings::B.value | imm26).to_le_bytes()))
}

impl Trampolines for Aarch64 {
    const ENTRY_BYTES: u64 = WORD as u64;
    /// The entry and up to three words; the literal follows.
    const CODE_BYTES: usize = LITERAL_OFFSET;

    fn trampoline_image(original: u32, probe_vaddr: u64, trampoline: u64) -> Result<TrampolineImage, NotRelocatable> {
        trampoline_image(original, probe_vaddr, trampoline)
    }

    fn branch_to_trampoline(_original: u32, probe_vaddr: u64, trampoline: u64) -> Result<BranchPatch, NotRelocatable> {
        branch_to_trampoline(probe_vaddr, trampoline)
    }

    /// Every A64 instruction is one word, replaced whole: no jump can land
    /// inside it.
    fn check_function(
        _original: u32,
        _probe_vaddr: u64,
        _function: &[u8],
        _function_start: u64,
    ) -> Result<(), NotRelocatable> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
