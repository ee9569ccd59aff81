//! The x86_64 classifier and XOL rewrite checked against an independent x86
//! disassembler (`yaxpeax-x86`, a host-only dev-dependency) on random and
//! shaped byte strings.
//!
//! For every string the classifier's decoder accepts and the oracle decodes
//! too, the two lengths must agree. One-sided beyond that, as in
//! `tests/oracle.rs`: decoders disagree at the edges of the ISA (new
//! extensions, vendor differences), so a string the classifier *refuses*
//! proves nothing. One it *accepts* must be, for the oracle:
//!
//! - stepped: an instruction of the same length that is no branch, call,
//!   return, interrupt or system call; and its XOL image must decode to the
//!   same opcode and operands, except that a `[rip + disp]` operand is now
//!   `[scratch + disp]` (the same disp), with `scratch` a register no
//!   explicit operand of the original names;
//! - simulated: exactly the instruction the simulation claims, with the same
//!   register, length and branch target.
//!
//! An accepted instruction the oracle cannot decode at all fails the test
//! unless its bytes put it in one of the few classes the oracle's tables do
//! not cover (`known_gap`); those are counted and printed.
//!
//! `ORACLE_X86_INSNS` (default 400,000) and `ORACLE_SEED` change the sample;
//! a failure prints the seed, the bytes, the oracle's disassembly and the
//! classifier's answer (the first `ORACLE_SHOW`, default 40, of them).

use probe_core::insn::x86_64::{self, Condition, Gpr, Insn, Simulation};
use probe_core::insn::{Classification, SimulatePolicy};
use yaxpeax_arch::LengthedInstruction;
use yaxpeax_x86::long_mode::{InstDecoder, Instruction, Opcode, Operand, RegSpec};

mod common;
use common::{env_u64, pad_to_15_bytes, rip_relative_operand, vex_rip_relative_operand, Rng};

fn disassemble(bytes: &[u8]) -> Option<Instruction> {
    InstDecoder::default().decode_slice(bytes).ok()
}

fn oracle_len(insn: &Instruction) -> usize {
    insn.len().to_const() as usize
}

fn operands(insn: &Instruction) -> Vec<Operand> {
    (0..insn.operand_count()).map(|i| insn.operand(i)).collect()
}

const LEGACY_PREFIXES: [u8; 11] = [0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65];

/// One byte string of a shape chosen by `kind`: uniform; the one-byte
/// opcodes the simulator cares about, with prefixes; RIP-relative legacy
/// forms in every opcode map; RIP-relative VEX forms.
fn sample(rng: &mut Rng, kind: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(24);
    match kind {
        0 => {}
        1 => {
            for _ in 0..rng.next() % 3 {
                bytes.push(rng.pick(&LEGACY_PREFIXES));
            }
            if rng.next().is_multiple_of(2) {
                bytes.push(0x40 | rng.byte() & 0xf);
            }
            const OPCODES: [u8; 14] =
                [0x90, 0x50, 0x57, 0x54, 0xc3, 0xc2, 0xe8, 0xe9, 0xeb, 0x74, 0x7f, 0xe3, 0xff, 0x9c];
            bytes.push(rng.pick(&OPCODES));
            if rng.next().is_multiple_of(3) {
                bytes.truncate(bytes.len() - 1);
                bytes.extend([0x0f, rng.pick(&[0x1f, 0x84, 0x8f, 0x0d, 0x18, 0x1e])]);
            }
        }
        2 => rip_relative_operand(rng, &mut bytes, &LEGACY_PREFIXES),
        _ => vex_rip_relative_operand(rng, &mut bytes),
    }
    pad_to_15_bytes(rng, &mut bytes);
    bytes
}

/// Encodings the classifier's decoder accepts (as the processor does) but
/// the oracle's tables do not cover; an accepted instruction the oracle cannot
/// decode must be one of these. Recognised from the bytes alone.
fn known_gap(bytes: &[u8]) -> Option<&'static str> {
    let (mut i, mut rexes, mut rex_r) = (0, 0, false);
    while let Some(&byte) = bytes.get(i) {
        if LEGACY_PREFIXES.contains(&byte) {
            rex_r = false;
        } else if (0x40..=0x4f).contains(&byte) {
            rexes += 1;
            rex_r = byte & 0b0100 != 0;
        } else {
            break;
        }
        i += 1;
    }
    if rexes > 1 {
        return Some("two REX prefixes (the processor ignores all but one)");
    }
    match &bytes[i..] {
        [0x0f, 0x0d | 0x18..=0x1f, ..] => Some("the reserved-NOP and hint space 0F 0D, 0F 18-1F"),
        [0x0f, 0x38, 0xfc, ..] => Some("RAO-INT (aadd, aand, aor, axor)"),
        [0x0f, 0xa6 | 0xa7, ..] => Some("VIA PadLock (0F A6, 0F A7)"),
        [0xc4 | 0xc5, ..] => Some("VEX extensions (FMA4, CMPccXADD, AVX-VNNI, SM3/SM4 ...)"),
        [0x62, ..] => Some("EVEX extensions (AVX512-FP16 ...)"),
        [0x8f, map, ..] if map & 0b1_1111 >= 8 => Some("XOP (AMD)"),
        [0x8c | 0x8e, ..] if rex_r => Some("mov with a segment register and REX.R"),
        _ => None,
    }
}

/// Opcodes a stepped instruction must never be: they leave the slot or enter
/// the kernel.
fn leaves_the_slot(opcode: Opcode) -> bool {
    use Opcode::*;
    matches!(
        opcode,
        CALL | CALLF
            | JMP
            | JMPF
            | RETURN
            | RETF
            | JO
            | JNO
            | JB
            | JNB
            | JZ
            | JNZ
            | JA
            | JNA
            | JS
            | JNS
            | JP
            | JNP
            | JL
            | JGE
            | JLE
            | JG
            | JRCXZ
            | LOOP
            | LOOPZ
            | LOOPNZ
            | INT
            | INTO
            | JECXZ
            | SYSCALL
            | SYSENTER
            | SYSEXIT
            | SYSRET
            | IRET
            | IRETD
            | IRETQ
            | HLT
            | UD0
            | UD1
            | UD2
            | XBEGIN
            | XABORT
            | XEND
            | VMCALL
            | VMMCALL
    )
}

/// The base and displacement of a memory operand without index.
fn base_disp(operand: &Operand) -> Option<(RegSpec, i32)> {
    match *operand {
        Operand::Disp { base, disp } => Some((base, disp)),
        Operand::MemDeref { base } => Some((base, 0)),
        _ => None,
    }
}

/// Every name the oracle may give (part of) `reg`.
fn names_of(reg: Gpr) -> Vec<&'static str> {
    let names: &[&str] = match reg {
        Gpr::Rax => &["rax", "eax", "ax", "al", "ah"],
        Gpr::Rcx => &["rcx", "ecx", "cx", "cl", "ch"],
        Gpr::Rdx => &["rdx", "edx", "dx", "dl", "dh"],
        Gpr::Rbx => &["rbx", "ebx", "bx", "bl", "bh"],
        Gpr::Rsi => &["rsi", "esi", "si", "sil"],
        Gpr::Rdi => &["rdi", "edi", "di", "dil"],
        _ => &[],
    };
    names.to_vec()
}

/// Registers an operand names explicitly, by the oracle's names.
fn register_names(operand: &Operand) -> Vec<&'static str> {
    let regs: Vec<RegSpec> = match *operand {
        Operand::Register { reg } => vec![reg],
        Operand::RegisterMaskMerge { reg, .. }
        | Operand::RegisterMaskMergeSae { reg, .. }
        | Operand::RegisterMaskMergeSaeNoround { reg, .. } => vec![reg],
        Operand::MemDeref { base } | Operand::Disp { base, .. } => vec![base],
        Operand::MemIndexScale { index, .. } | Operand::MemIndexScaleDisp { index, .. } => {
            vec![index]
        }
        Operand::MemBaseIndexScale { base, index, .. } | Operand::MemBaseIndexScaleDisp { base, index, .. } => {
            vec![base, index]
        }
        _ => vec![],
    };
    regs.iter().map(|r| r.name()).collect()
}

/// Why a stepped instruction or its image is wrong for the oracle.
fn check_step(insn: &Insn, oracle: &Instruction) -> Option<String> {
    if leaves_the_slot(oracle.opcode()) {
        return Some(format!("stepped, but the oracle says {}", oracle.opcode()));
    }
    let image = x86_64::xol_image(insn);
    if image.len() != insn.len() {
        return Some(format!("image length {} for a {}-byte instruction", image.len(), insn.len()));
    }
    let Some(rewritten) = disassemble(image.bytes()) else {
        return Some(format!("the oracle does not decode the image {:02x?}", image.bytes()));
    };
    if oracle_len(&rewritten) != insn.len() || rewritten.opcode() != oracle.opcode() {
        return Some(format!("the image {:02x?} is `{rewritten}`", image.bytes()));
    }
    let (before, after) = (operands(oracle), operands(&rewritten));
    if before.len() != after.len() {
        return Some(format!("the image {:02x?} is `{rewritten}`", image.bytes()));
    }
    let rip_relative = before
        .iter()
        .position(|op| base_disp(op).is_some_and(|(base, _)| base == RegSpec::rip() || base == RegSpec::eip()));
    match (image.fixup.rip_relative_scratch, rip_relative) {
        (None, None) => {
            if image.bytes() != insn.bytes() {
                return Some("an image without fixup differs from the instruction".into());
            }
            None
        }
        (Some(scratch), Some(index)) => {
            for (i, (old, new)) in before.iter().zip(&after).enumerate() {
                if i != index && old != new {
                    return Some(format!("operand {i} changed: image `{rewritten}`"));
                }
            }
            let (rip, disp) = base_disp(&before[index]).unwrap();
            let want_base = if rip == RegSpec::eip() { names_of(scratch)[1] } else { names_of(scratch)[0] };
            match base_disp(&after[index]) {
                Some((base, d)) if base.name() == want_base && d == disp => {}
                _ => return Some(format!("rip-relative operand became `{rewritten}`, want [{want_base} + {disp:#x}]")),
            }
            let scratch_names = names_of(scratch);
            if let Some(name) = before.iter().flat_map(register_names).find(|name| scratch_names.contains(name)) {
                return Some(format!("scratch {scratch:?}, but the instruction names {name}"));
            }
            None
        }
        (fixup, position) => Some(format!("fixup {fixup:?} but the oracle's rip-relative operand is {position:?}")),
    }
}

fn condition_opcode(condition: Condition) -> Opcode {
    use Opcode::*;
    [JO, JNO, JB, JNB, JZ, JNZ, JNA, JA, JS, JNS, JP, JNP, JL, JGE, JLE, JG][condition.bits() as usize]
}

/// The oracle's relative branch displacement, from the end of the instruction.
fn relative(oracle: &Instruction) -> Option<i64> {
    match oracle.operand(0) {
        Operand::ImmediateI8 { imm } => Some(imm.into()),
        Operand::ImmediateI32 { imm } => Some(imm.into()),
        _ => None,
    }
}

/// Why a simulated instruction is not, for the oracle, what `simulation` claims.
fn check_simulation(insn: &Insn, oracle: &Instruction, simulation: &Simulation) -> Option<String> {
    let len = insn.len() as i64;
    let target_ok = |offset: i64| relative(oracle).is_some_and(|rel| rel + len == offset);
    let ok = match *simulation {
        Simulation::Nop { len: l } => oracle.opcode() == Opcode::NOP && usize::from(l) == insn.len(),
        Simulation::Push { reg, len: l } => {
            oracle.opcode() == Opcode::PUSH
                && usize::from(l) == insn.len()
                && matches!(oracle.operand(0), Operand::Register { reg: r } if r.name() == reg.name())
        }
        Simulation::Ret => oracle.opcode() == Opcode::RETURN && oracle.operand_count() == 0,
        Simulation::Call { offset, len: l } => {
            oracle.opcode() == Opcode::CALL && usize::from(l) == insn.len() && target_ok(offset)
        }
        Simulation::Jmp { offset } => oracle.opcode() == Opcode::JMP && target_ok(offset),
        Simulation::Jcc { condition, offset, len: l } => {
            oracle.opcode() == condition_opcode(condition) && usize::from(l) == insn.len() && target_ok(offset)
        }
    };
    (!ok).then(|| format!("claims {simulation:?}"))
}

#[test]
fn every_accepted_instruction_is_what_the_oracle_says() {
    let seed = env_u64("ORACLE_SEED", 0x0b5e_55ed_c1a5_51f1);
    let count = env_u64("ORACLE_X86_INSNS", 400_000);
    let mut rng = Rng(seed);
    let (mut decoded, mut stepped, mut fixed, mut simulated, mut rejected) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    let mut gaps = std::collections::BTreeMap::new();
    for i in 0..count {
        let bytes = sample(&mut rng, i % 4);
        let Ok(insn) = Insn::decode(&bytes) else {
            continue;
        };
        decoded += 1;
        let oracle = disassemble(&bytes);
        if let Some(oracle) = &oracle {
            if oracle_len(oracle) != insn.len() {
                let verdict = x86_64::classify(&insn);
                if !verdict.is_reject() {
                    failures.push(format!(
                        "{:02x?} `{oracle}`: length {} here, {} for the oracle ({verdict:?})",
                        insn.bytes(),
                        insn.len(),
                        oracle_len(oracle)
                    ));
                }
                continue;
            }
        }
        for policy in [SimulatePolicy::All, SimulatePolicy::Branches] {
            let verdict = x86_64::classify_with(&insn, policy);
            let problem = match (&verdict, &oracle) {
                (Classification::Reject(_), _) => {
                    rejected += 1;
                    continue;
                }
                (_, None) => match known_gap(insn.bytes()) {
                    Some(gap) => {
                        *gaps.entry(gap).or_insert(0) += 1;
                        continue;
                    }
                    None => Some("the oracle does not decode it".to_string()),
                },
                (Classification::Step, Some(oracle)) => {
                    stepped += 1;
                    fixed += u64::from(x86_64::xol_image(&insn).fixup.rip_relative_scratch.is_some());
                    check_step(&insn, oracle)
                }
                (Classification::Simulate(simulation), Some(oracle)) => {
                    simulated += 1;
                    check_simulation(&insn, oracle, simulation)
                }
            };
            if let Some(problem) = problem {
                let text = oracle.as_ref().map_or_else(|| "<undecoded>".into(), |o| o.to_string());
                failures.push(format!(
                    "{:02x?} `{text}` ({policy:?}): classifier {verdict:?}, oracle: {problem}",
                    insn.bytes()
                ));
            }
        }
    }
    println!(
        "oracle_x86: {count} strings (seed {seed:#x}), {decoded} decoded; verdicts: {stepped} stepped ({fixed} RIP-relative), {simulated} simulated, {rejected} rejected; {} disagreements",
        failures.len()
    );
    for (gap, n) in &gaps {
        println!("oracle_x86: {n} verdicts not checked, the oracle lacks {gap}");
    }
    assert!(
        failures.is_empty(),
        "ORACLE_SEED={seed:#x}: {} accepted instructions the oracle disagrees with; first ones:\n{}",
        failures.len(),
        failures.iter().take(env_u64("ORACLE_SHOW", 40) as usize).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(
        stepped > count / 4 && fixed > count / 50 && simulated > count / 100,
        "too few accepted instructions to mean anything"
    );
}
