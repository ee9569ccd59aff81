//! The A64 trampolines checked against an independent disassembler
//! (`yaxpeax-arm`): for seeded random words the classifier accepts, placed
//! at a random probe address with a trampoline within +-64 MiB of it, the
//! trampoline's instructions, as the oracle decodes them, must do what the
//! original does at the probed address.
//!
//! Both sides are reduced to the same description: the paths control can
//! take (a conditional branch gives two, told apart by its test, which the
//! oracle prints without its offset), each with the effects along it (a
//! register set to a constant, a load of a register from an address, a
//! prefetch of an address, or an unchanged position-independent
//! instruction) and where it leaves (an address, or a register's value).
//! The original's comes from its disassembly at the probed address; the
//! trampoline's from walking its words from the one after the `svc`, with
//! the literal it holds and the registers the walk has set.
//!
//! A word the relocator refuses must be refused for its stated reason: a
//! target beyond the relocated form's reach, or `blr x30` / a far literal
//! load into the zero register (no scratch register).
//!
//! `ORACLE_TRAMPOLINE_WORDS` (default 250,000) and `ORACLE_SEED` change the
//! sample; a failure prints the seed, the word, its disassembly, the two
//! descriptions and the image.

use probe_core::insn::aarch64::{self, TRAMPOLINE_FILL_BRK_IMMEDIATE, TRAMPOLINE_SVC_IMMEDIATE};
use probe_core::insn::{Classification, SimulatePolicy};
use probe_core::trampoline::{probe_address, NotRelocatable, TrampolineImage, Trampolines};
use probe_core::Aarch64;
use yaxpeax_arch::{Arch, Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::{ARMv8, Instruction, Opcode, Operand, SizeCode};

/// `nop`, which the oracle prints as `hint #0x0`.
const NOP: u32 = 0xd503_201f;

mod common;
use common::{env_u64, Rng};

fn disassemble(word: u32) -> Option<Instruction> {
    let bytes = word.to_le_bytes();
    let mut reader = U8Reader::new(&bytes[..]);
    <ARMv8 as Arch>::Decoder::default().decode(&mut reader).ok()
}

fn pc_offset(insn: &Instruction) -> Option<i64> {
    insn.operands.iter().find_map(|o| match o {
        Operand::PCOffset(offset) => Some(*offset),
        _ => None,
    })
}

/// X register `n` named by operand `i`, if it is one (31 as the oracle gives it).
fn x_register(insn: &Instruction, i: usize) -> Option<u16> {
    match insn.operands[i] {
        Operand::Register(SizeCode::X, n) => Some(n),
        _ => None,
    }
}

/// What happens along a path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Effect {
    /// X[reg] = value.
    Set {
        reg: u16,
        value: u64,
    },
    /// `destination` (the mnemonic and register as the oracle prints them)
    /// loaded from `address`.
    Load {
        destination: String,
        address: u64,
    },
    Prefetch {
        address: u64,
    },
    /// A position-independent instruction, run as it is.
    Same(u32),
}

/// Where a path leaves.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Exit {
    To(u64),
    Register(u16),
}

/// One path: the conditional test and its outcome, if there is one; the
/// effects in order; the exit.
type Path = (Option<(String, bool)>, Vec<Effect>, Exit);

fn is_conditional(insn: &Instruction) -> bool {
    matches!(insn.opcode, Opcode::Bcc(_) | Opcode::BCcc(_))
        || ["cbz", "cbnz", "tbz", "tbnz"].contains(&insn.opcode.to_string().as_str())
}

/// A conditional branch's test, without its offset: `Bcc(1) [..]`.
fn test_of(insn: &Instruction) -> String {
    let operands: Vec<_> = insn.operands.iter().filter(|o| !matches!(o, Operand::PCOffset(_))).collect();
    format!("{:?} {operands:?}", insn.opcode)
}

/// The register a `ret` (x30 unless named) or `br` jumps to.
fn branch_register(insn: &Instruction) -> u16 {
    match insn.operands[0] {
        Operand::Register(_, n) => n,
        _ => 30,
    }
}

fn load_destination(insn: &Instruction) -> String {
    format!("{} {:?}", insn.opcode, insn.operands[0])
}

/// What the original word does at `probe`, as the oracle decodes it. The
/// second answer is an alternative that is also right (a `prfm` may become
/// a `nop`).
fn original_paths(insn: &Instruction, word: u32, probe: u64) -> (Vec<Path>, Option<Vec<Path>>) {
    let name = insn.opcode.to_string();
    let back = probe + 4;
    let target = pc_offset(insn).map(|offset| probe.wrapping_add(offset as u64));
    let straight = |effects: Vec<Effect>| vec![(None, effects, Exit::To(back))];
    let paths = match name.as_str() {
        "b" => vec![(None, vec![], Exit::To(target.unwrap()))],
        "bl" => vec![(None, vec![Effect::Set { reg: 30, value: back }], Exit::To(target.unwrap()))],
        _ if is_conditional(insn) => {
            let test = test_of(insn);
            vec![
                (Some((test.clone(), true)), vec![], Exit::To(target.unwrap())),
                (Some((test, false)), vec![], Exit::To(back)),
            ]
        }
        "br" | "ret" => vec![(None, vec![], Exit::Register(branch_register(insn)))],
        "blr" => vec![(None, vec![Effect::Set { reg: 30, value: back }], Exit::Register(branch_register(insn)))],
        "adr" | "adrp" => {
            let rd = x_register(insn, 0).unwrap();
            let value = if name == "adr" {
                target.unwrap()
            } else {
                (probe & !0xfff).wrapping_add(pc_offset(insn).unwrap() as u64)
            };
            straight(if rd == 31 { vec![] } else { vec![Effect::Set { reg: rd, value }] })
        }
        "prfm" if target.is_some() => {
            return (straight(vec![Effect::Prefetch { address: target.unwrap() }]), Some(straight(vec![])));
        }
        "ldr" | "ldrsw" if target.is_some() => {
            straight(vec![Effect::Load { destination: load_destination(insn), address: target.unwrap() }])
        }
        _ if word == NOP => straight(vec![]),
        _ => straight(vec![Effect::Same(word)]),
    };
    (paths, None)
}

/// Walk the trampoline's code from the word after the `svc`: every path.
fn trampoline_paths(image: &TrampolineImage, trampoline: u64) -> Result<Vec<Path>, String> {
    let mut paths = Vec::new();
    walk(image, trampoline, trampoline + 4, None, Vec::new(), [None; 32], &mut paths)?;
    paths.sort();
    Ok(paths)
}

fn walk(
    image: &TrampolineImage,
    trampoline: u64,
    mut pc: u64,
    mut test: Option<(String, bool)>,
    mut effects: Vec<Effect>,
    mut known: [Option<u64>; 32],
    paths: &mut Vec<Path>,
) -> Result<(), String> {
    let code = trampoline + 4..trampoline + 16;
    loop {
        if !code.contains(&pc) {
            return Err(format!("runs to {pc:#x}, outside the code words"));
        }
        let at = (pc - trampoline) as usize;
        let word = u32::from_le_bytes(image[at..at + 4].try_into().unwrap());
        if word == aarch64::brk(TRAMPOLINE_FILL_BRK_IMMEDIATE) {
            return Err(format!("falls into the fill at {pc:#x}"));
        }
        let insn = disassemble(word).ok_or_else(|| format!("{word:#010x} at {pc:#x} does not decode"))?;
        let name = insn.opcode.to_string();
        let target = pc_offset(&insn).map(|offset| pc.wrapping_add(offset as u64));
        // A load into register `r` makes an earlier constant in it dead.
        let load = |effects: &mut Vec<Effect>, known: &mut [Option<u64>; 32], address: u64| {
            if let Operand::Register(_, r) = insn.operands[0] {
                effects.retain(|e| !matches!(e, Effect::Set { reg, .. } if *reg == r));
                known[usize::from(r)] = None;
            }
            effects.push(Effect::Load { destination: load_destination(&insn), address });
        };
        match name.as_str() {
            "b" => {
                paths.push((test, effects, Exit::To(target.unwrap())));
                return Ok(());
            }
            _ if is_conditional(&insn) => {
                if test.is_some() {
                    return Err("two conditional branches on one path".into());
                }
                let taken = target.unwrap();
                let case = test_of(&insn);
                if code.contains(&taken) {
                    walk(image, trampoline, taken, Some((case.clone(), true)), effects.clone(), known, paths)?;
                } else {
                    paths.push((Some((case.clone(), true)), effects.clone(), Exit::To(taken)));
                }
                test = Some((case, false));
            }
            "br" | "ret" => {
                paths.push((test, effects, Exit::Register(branch_register(&insn))));
                return Ok(());
            }
            _ if word == NOP => {}
            "ldr" if target == Some(trampoline + 16) => {
                let reg = x_register(&insn, 0).ok_or("a literal of the trampoline loaded into a non-X register")?;
                let value = u64::from_le_bytes(image[16..24].try_into().unwrap());
                effects.push(Effect::Set { reg, value });
                known[usize::from(reg)] = Some(value);
            }
            "prfm" if target.is_some() => effects.push(Effect::Prefetch { address: target.unwrap() }),
            "ldr" | "ldrsw" if target.is_some() => load(&mut effects, &mut known, target.unwrap()),
            // The second word of a far literal load: through the register
            // the literal set (a stepped load from any other register is
            // an unchanged instruction).
            "ldr" | "ldrsw" if through_known_register(&insn, &known).is_some() => {
                let address = through_known_register(&insn, &known).unwrap();
                load(&mut effects, &mut known, address);
            }
            _ if target.is_some() || ["adr", "adrp", "bl", "blr"].contains(&name.as_str()) => {
                return Err(format!("{insn} at {pc:#x} computes from the trampoline's PC"));
            }
            _ => effects.push(Effect::Same(word)),
        }
        pc += 4;
    }
}

/// The address a `[xn]` load reads, if the walk set xn to a constant.
fn through_known_register(insn: &Instruction, known: &[Option<u64>; 32]) -> Option<u64> {
    match insn.operands[1] {
        Operand::RegPreIndex(base, 0, false) => known[usize::from(base)],
        _ => None,
    }
}

/// Whether `to` is within `reach` bytes (exclusive above) of `from`.
fn reaches(from: u64, to: u64, reach: i64) -> bool {
    (-reach..reach).contains(&(to.wrapping_sub(from) as i64))
}

/// Why a refusal is wrong, if it is.
fn check_refusal(insn: &Instruction, reason: NotRelocatable, probe: u64, trampoline: u64) -> Option<String> {
    let name = insn.opcode.to_string();
    let target = pc_offset(insn).map(|offset| probe.wrapping_add(offset as u64));
    let simd = matches!(insn.operands[0], Operand::SIMDRegister(..));
    let literal_far = |word_index: u64| target.is_some_and(|t| !reaches(trampoline + 4 * word_index, t, 1 << 20));
    let ok = match reason {
        NotRelocatable::NeedsScratchRegister { .. } => {
            (name == "blr" && branch_register(insn) == 30)
                || ((name == "ldr" || name == "ldrsw")
                    && matches!(insn.operands[0], Operand::Register(_, 31))
                    && literal_far(1))
        }
        NotRelocatable::TargetOutOfRange { .. } => {
            // The `b target` is word 1 (b), 2 (bl) or 3 (a conditional).
            let branch_word = match name.as_str() {
                "b" => Some(1),
                "bl" => Some(2),
                _ if is_conditional(insn) => Some(3),
                _ => None,
            };
            let branch_far = branch_word.is_some_and(|w| !reaches(trampoline + 4 * w, target.unwrap(), 1 << 27));
            branch_far || (name == "ldr" && simd && literal_far(1))
        }
        _ => false,
    };
    (!ok).then(|| format!("refused without cause: {reason:?}"))
}

#[test]
fn relocated_words_do_at_the_trampoline_what_they_did_at_the_probe() {
    let seed = env_u64("ORACLE_SEED", 0x7a3b_0c1e_5eed_1234);
    let words = env_u64("ORACLE_TRAMPOLINE_WORDS", 250_000);
    let mut rng = Rng(seed);
    let (mut relocated, mut refused, mut conditional, mut through_literal) = (0u64, 0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    for i in 0..words {
        let r = rng.next();
        let mut word = r as u32;
        if i % 2 == 1 {
            // The PC-relative groups: b, bl, b.cond, cbz/cbnz, tbz/tbnz,
            // br/blr/ret, adr, adrp, ldr (literal) w/x/ldrsw/prfm, SIMD&FP.
            const GROUPS: [u32; 16] =
                [0x14, 0x94, 0x54, 0x34, 0xb5, 0x36, 0xb7, 0xd6, 0x10, 0x90, 0x18, 0x58, 0x98, 0xd8, 0x1c, 0x9c];
            word = (word & 0x00ff_ffff) | GROUPS[(r >> 40) as usize % GROUPS.len()] << 24;
        }
        if matches!(aarch64::classify_with(word, SimulatePolicy::Branches), Classification::Reject(_)) {
            continue;
        }
        let Some(insn) = disassemble(word) else {
            failures.push(format!("{word:08x}: accepted, but the oracle does not decode it"));
            continue;
        };
        let probe = 0x40_0000_0000 | (rng.next() & 0xff_ffff_fffc);
        let distance = (rng.next() % (128 << 20)) as i64 - (64 << 20);
        let trampoline = probe.wrapping_add(distance as u64) & !31;
        let image = match Aarch64::trampoline_image(word, probe, trampoline) {
            Ok(image) => image,
            Err(reason) => {
                refused += 1;
                if let Some(problem) = check_refusal(&insn, reason, probe, trampoline) {
                    failures.push(format!("{word:08x} `{insn}` at {probe:#x}, trampoline {trampoline:#x}: {problem}"));
                }
                continue;
            }
        };
        relocated += 1;
        let svc = u32::from_le_bytes(image[..4].try_into().unwrap());
        let svc_ok = disassemble(svc).is_some_and(|i| {
            i.opcode.to_string() == "svc" && i.operands[0] == Operand::Imm16(TRAMPOLINE_SVC_IMMEDIATE)
        });
        let (expected, alternative) = original_paths(&insn, word, probe);
        let mut expected = expected;
        expected.sort();
        let problem = if !svc_ok {
            Some(format!("word 0 is {svc:#010x}, not svc #{TRAMPOLINE_SVC_IMMEDIATE:#x}"))
        } else if probe_address(&image) != probe {
            Some("the probed address is not recorded".into())
        } else {
            match trampoline_paths(&image, trampoline) {
                Err(problem) => Some(problem),
                Ok(got) if got == expected || alternative.as_ref().is_some_and(|a| *a == got) => None,
                Ok(got) => Some(format!("the trampoline does {got:x?}, the original {expected:x?}")),
            }
        };
        if expected.len() == 2 {
            conditional += 1;
        }
        if image[16..24] != [aarch64::brk(TRAMPOLINE_FILL_BRK_IMMEDIATE).to_le_bytes(); 2].concat()[..] {
            through_literal += 1;
        }
        if let Some(problem) = problem {
            failures.push(format!(
                "{word:08x} `{insn}` at {probe:#x}, trampoline {trampoline:#x}: {problem}\n  image {image:02x?}"
            ));
        }
    }
    println!(
        "oracle (trampolines): {words} words (seed {seed:#x}), {relocated} relocated ({conditional} conditional, \
         {through_literal} through the literal), {refused} refused, {} disagreements",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "ORACLE_SEED={seed:#x}: {} disagreements; first ones:\n{}",
        failures.len(),
        failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(relocated > words / 4 && conditional > words / 100 && through_literal > words / 100 && refused > 0);
}
