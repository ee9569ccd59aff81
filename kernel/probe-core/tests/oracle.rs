//! The classifier checked against an independent A64 disassembler
//! (`yaxpeax-arm`, a host-only dev-dependency) on random words.
//!
//! One-sided by design: disassemblers disagree on CONSTRAINED UNPREDICTABLE
//! operand combinations and on should-be-one fields, so a word the classifier
//! *refuses* proves nothing. A word it *accepts* must be, for the oracle:
//!
//! - stepped: a valid instruction that has no PC-relative operand, is not a
//!   branch, not a load/store exclusive, not `msr`/`sys`/`sysl` (or their
//!   `dc`/`ic`/`at`/`tlbi` aliases), not exception generating or returning;
//! - simulated: exactly the instruction the simulation claims, with the same
//!   register and the same PC offset (for a SIMD&FP literal load, the same
//!   S, D or Q register).
//!
//! `ORACLE_WORDS` (default 1,000,000) and `ORACLE_SEED` change the sample; a
//! failure prints the seed, the word, the oracle's disassembly and the
//! classifier's answer.

use probe_core::insn::aarch64::{self, Condition, LiteralLoad, RegisterBranch, Simulation};
use probe_core::insn::{Classification, SimulatePolicy};
use yaxpeax_arch::{Arch, Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::{ARMv8, Instruction, Opcode, Operand, SIMDSizeCode, SizeCode};

mod common;
use common::{env_u64, Rng};

fn disassemble(word: u32) -> Option<Instruction> {
    let bytes = word.to_le_bytes();
    let mut reader = U8Reader::new(&bytes[..]);
    <ARMv8 as Arch>::Decoder::default().decode(&mut reader).ok()
}

fn mnemonic(insn: &Instruction) -> String {
    insn.opcode.to_string()
}

const EXCLUSIVE_PREFIXES: &[&str] = &["ldxr", "ldaxr", "stxr", "stlxr", "ldxp", "ldaxp", "stxp", "stlxp"];
const SYSTEM: &[&str] = &["msr", "sys", "sysl", "dc", "ic", "at", "tlbi", "cfinv", "xaflag", "axflag"];
const EXCEPTION: &[&str] =
    &["svc", "hvc", "smc", "brk", "hlt", "eret", "eretaa", "eretab", "dcps1", "dcps2", "dcps3", "drps", "udf"];

fn is_branch(insn: &Instruction, name: &str) -> bool {
    matches!(insn.opcode, Opcode::Bcc(_) | Opcode::BCcc(_))
        || ["b", "bl", "br", "blr", "ret", "cbz", "cbnz", "tbz", "tbnz"].contains(&name)
        || ["bra", "blra", "reta"].iter().any(|p| name.starts_with(p))
}

fn has_pc_operand(insn: &Instruction) -> bool {
    insn.operands.iter().any(|o| matches!(o, Operand::PCOffset(_)))
}

fn pc_offset(insn: &Instruction) -> Option<i64> {
    insn.operands.iter().find_map(|o| match o {
        Operand::PCOffset(offset) => Some(*offset),
        _ => None,
    })
}

/// Register number of the first operand when it is a general register
/// (31 = zero register in this position).
fn first_register(insn: &Instruction) -> Option<(SizeCode, u16)> {
    match insn.operands[0] {
        Operand::Register(size, n) => Some((size, n)),
        _ => None,
    }
}

/// Why a stepped word is wrong for the oracle, if it is.
fn check_step(insn: &Instruction) -> Option<String> {
    let name = mnemonic(insn);
    if matches!(insn.opcode, Opcode::Invalid) {
        return Some("the oracle decodes an invalid instruction".into());
    }
    if has_pc_operand(insn) || name == "adr" || name == "adrp" {
        return Some("PC-relative".into());
    }
    if is_branch(insn, &name) {
        return Some("a branch".into());
    }
    if EXCLUSIVE_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Some("a load/store exclusive".into());
    }
    if SYSTEM.contains(&name.as_str()) || matches!(insn.opcode, Opcode::SYS(_) | Opcode::MSR) {
        return Some("a system register write or system instruction".into());
    }
    if EXCEPTION.contains(&name.as_str()) {
        return Some("exception generating or returning".into());
    }
    None
}

fn condition_code(condition: Condition) -> u8 {
    use Condition::*;
    [Eq, Ne, Cs, Cc, Mi, Pl, Vs, Vc, Hi, Ls, Ge, Lt, Gt, Le, Al, Nv].iter().position(|c| *c == condition).unwrap() as u8
}

/// Why a simulated word is not, for the oracle, what `simulation` claims.
fn check_simulation(insn: &Instruction, simulation: &Simulation) -> Option<String> {
    let name = mnemonic(insn);
    let offset = pc_offset(insn);
    let expect = |ok: bool, what: &str| if ok { None } else { Some(format!("claims {what}")) };
    match *simulation {
        Simulation::Branch { offset: o } => expect(name == "b" && offset == Some(o), "b"),
        Simulation::BranchLink { offset: o } => expect(name == "bl" && offset == Some(o), "bl"),
        Simulation::BranchConditional { condition, offset: o } => {
            let code = condition_code(condition);
            expect(
                matches!(insn.opcode, Opcode::Bcc(c) | Opcode::BCcc(c) if c == code) && offset == Some(o),
                "b.cond/bc.cond with that condition and offset",
            )
        }
        Simulation::CompareBranch { rt, is_64, nonzero, offset: o } => {
            let want = if nonzero { "cbnz" } else { "cbz" };
            let size = if is_64 { SizeCode::X } else { SizeCode::W };
            expect(name == want && first_register(insn) == Some((size, rt as u16)) && offset == Some(o), want)
        }
        Simulation::TestBranch { rt, bit, nonzero, offset: o } => {
            let want = if nonzero { "tbnz" } else { "tbz" };
            let bit_ok = insn.operands.iter().any(|op| {
                matches!(op, Operand::Imm16(b) if *b == bit as u16)
                    || matches!(op, Operand::Immediate(b) if *b == bit as u32)
                    || matches!(op, Operand::Imm64(b) if *b == bit as u64)
            });
            let reg_ok = matches!(first_register(insn), Some((_, r)) if r == rt as u16);
            expect(name == want && reg_ok && bit_ok && offset == Some(o), want)
        }
        Simulation::BranchRegister { rn, kind } => {
            let want = match kind {
                RegisterBranch::Br => "br",
                RegisterBranch::Blr => "blr",
                RegisterBranch::Ret => "ret",
            };
            let reg_ok = match insn.operands[0] {
                Operand::Register(SizeCode::X, r) => r == rn as u16,
                Operand::Nothing => rn == 30,
                _ => false,
            };
            expect(name == want && reg_ok, want)
        }
        Simulation::Adr { rd, offset: o } => {
            expect(name == "adr" && first_register(insn) == Some((SizeCode::X, rd as u16)) && offset == Some(o), "adr")
        }
        Simulation::Adrp { rd, offset: o } => expect(
            name == "adrp" && first_register(insn) == Some((SizeCode::X, rd as u16)) && offset == Some(o),
            "adrp",
        ),
        Simulation::LoadLiteral { rt, offset: o, width } => {
            let (want, size) = match width {
                LiteralLoad::Word => ("ldr", SizeCode::W),
                LiteralLoad::Doubleword => ("ldr", SizeCode::X),
                LiteralLoad::SignedWord => ("ldrsw", SizeCode::X),
            };
            expect(name == want && first_register(insn) == Some((size, rt as u16)) && offset == Some(o), want)
        }
        Simulation::LoadLiteralSimd { rt, offset: o, bytes } => {
            let size = match bytes {
                4 => SIMDSizeCode::S,
                8 => SIMDSizeCode::D,
                _ => SIMDSizeCode::Q,
            };
            let reg_ok = insn.operands[0] == Operand::SIMDRegister(size, rt as u16);
            expect(name == "ldr" && reg_ok && offset == Some(o), "ldr (literal, SIMD&FP) of that size")
        }
        Simulation::PrefetchLiteral => expect(name == "prfm" && offset.is_some(), "prfm (literal)"),
        Simulation::Nop => expect(name == "nop" || (name == "hint" && insn.to_string().ends_with("#0x0")), "nop"),
        Simulation::FramePush => {
            let text = insn.to_string();
            expect(name == "stp" && text.replace(' ', "") == "stpx29,x30,[sp,#-0x10]!", "stp x29, x30, [sp, #-16]!")
        }
    }
}

#[test]
fn every_accepted_word_is_what_the_oracle_says() {
    let seed = env_u64("ORACLE_SEED", 0x0b5e_55ed_c1a5_51f1);
    let words = env_u64("ORACLE_WORDS", 1_000_000);
    let mut rng = Rng(seed);
    let (mut stepped, mut simulated, mut rejected) = (0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    for i in 0..words {
        // Half the words uniform; half with the top byte drawn from the
        // load/store, branch and system groups, where the hard rules live.
        let r = rng.next();
        let mut word = r as u32;
        if i % 2 == 1 {
            const GROUPS: [u32; 15] =
                [0x08, 0x88, 0xc8, 0x14, 0x54, 0x94, 0xd4, 0xd5, 0xd6, 0x10, 0x90, 0x58, 0x1c, 0x5c, 0x9c];
            word = (word & 0x00ff_ffff) | GROUPS[(r >> 40) as usize % GROUPS.len()] << 24;
        }
        for policy in [SimulatePolicy::All, SimulatePolicy::Branches] {
            let verdict = aarch64::classify_with(word, policy);
            let problem = match verdict {
                Classification::Reject(_) => {
                    rejected += 1;
                    continue;
                }
                Classification::Step => {
                    stepped += 1;
                    match disassemble(word) {
                        None => Some("the oracle does not decode it".to_string()),
                        Some(insn) => check_step(&insn),
                    }
                }
                Classification::Simulate(ref simulation) => {
                    simulated += 1;
                    match disassemble(word) {
                        None => Some("the oracle does not decode it".to_string()),
                        Some(insn) => check_simulation(&insn, simulation),
                    }
                }
            };
            if let Some(problem) = problem {
                let text = disassemble(word).map_or_else(|| "<undecoded>".into(), |i| i.to_string());
                failures.push(format!("{word:08x} `{text}` ({policy:?}): classifier {verdict:?}, oracle: {problem}"));
            }
        }
    }
    println!(
        "oracle: {words} words (seed {seed:#x}), {stepped} stepped, {simulated} simulated, {rejected} rejected verdicts, {} disagreements",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "ORACLE_SEED={seed:#x}: {} accepted words the oracle disagrees with; first ones:\n{}",
        failures.len(),
        failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(stepped > words / 20 && simulated > words / 200, "too few accepted words to mean anything");
}
