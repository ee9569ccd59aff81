//! The x86_64 trampolines checked against an independent disassembler
//! (`yaxpeax-x86`): for seeded random byte strings the classifier accepts,
//! placed at a random probe address with a trampoline within +-1 GiB of it,
//! the relocated instruction, as the oracle decodes it at its place in the
//! trampoline, must be the original as the oracle decodes it at the probe:
//! the same opcode, the same operands, except that a `[rip + disp32]`
//! operand must address the same byte and a relative branch must reach the
//! same target; the same memory size, lock, rep and segment prefixes.
//! After it comes `jmp rel32` to the instruction after the probe (unless it
//! is a `jmp` or `ret`), then `int3` padding, then the probed address.
//!
//! A refusal must have its stated cause: `call rel32`, or a RIP-relative
//! operand or branch target (or the jump back) beyond +-2 GiB of its new
//! place.
//!
//! `ORACLE_TRAMPOLINE_X86_INSNS` (default 250,000) and `ORACLE_SEED` change
//! the sample; a failure prints the seed, the bytes, both disassemblies and
//! the image.

use probe_core::insn::x86_64::{self, Insn, TRAMPOLINE_VECTOR};
use probe_core::insn::{Classification, SimulatePolicy};
use probe_core::trampoline::{probe_address, NotRelocatable, TrampolineImage, Trampolines, PROBE_ADDRESS_OFFSET};
use probe_core::X86_64;
use yaxpeax_arch::LengthedInstruction;
use yaxpeax_x86::long_mode::{InstDecoder, Instruction, Opcode, Operand, RegSpec};

mod common;
use common::{env_u64, pad_to_15_bytes, rip_relative_operand, vex_rip_relative_operand, Rng};

fn disassemble(bytes: &[u8]) -> Option<Instruction> {
    InstDecoder::default().decode_slice(bytes).ok()
}

fn oracle_len(insn: &Instruction) -> u64 {
    insn.len().to_const()
}

const PREFIXES: [u8; 9] = [0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65];

/// A byte string of a shape chosen by `kind`: uniform; a relative branch
/// (`jmp`, `jcc` rel8 and rel32, `ret`, `call`); a RIP-relative legacy form
/// in any opcode map; a RIP-relative VEX form.
fn sample(rng: &mut Rng, kind: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(24);
    match kind {
        0 => {}
        1 => {
            const BRANCHES: [&[u8]; 6] = [&[0xeb], &[0xe9], &[0x70], &[0x0f, 0x80], &[0xc3], &[0xe8]];
            let branch = rng.pick(&BRANCHES);
            bytes.extend_from_slice(branch);
            // A random condition for the two jcc forms.
            if let Some(last) = bytes.last_mut() {
                if *last & 0xf0 == 0x70 || *last & 0xf0 == 0x80 {
                    *last |= rng.byte() & 0xf;
                }
            }
        }
        2 => rip_relative_operand(rng, &mut bytes, &PREFIXES),
        _ => vex_rip_relative_operand(rng, &mut bytes),
    }
    pad_to_15_bytes(rng, &mut bytes);
    bytes
}

/// One operand as compared: a RIP-relative operand by the address it names,
/// a relative branch by its target, anything else as the oracle gives it.
#[derive(Debug, PartialEq)]
enum Compared {
    RipRelative(u64),
    Target(u64),
    Other(Operand),
}

fn is_branch(opcode: Opcode) -> bool {
    use Opcode::*;
    matches!(opcode, JMP | JO | JNO | JB | JNB | JZ | JNZ | JNA | JA | JS | JNS | JP | JNP | JL | JGE | JLE | JG)
}

/// The oracle's decoding of `insn` at `address`, operands made comparable.
fn described(insn: &Instruction, address: u64) -> (Opcode, Vec<Compared>, String) {
    let next = address.wrapping_add(oracle_len(insn));
    let operands = (0..insn.operand_count())
        .map(|i| match insn.operand(i) {
            Operand::Disp { base, disp } if base == RegSpec::rip() => {
                Compared::RipRelative(next.wrapping_add(disp as i64 as u64))
            }
            Operand::DispMasked { base, disp, .. } if base == RegSpec::rip() => {
                Compared::RipRelative(next.wrapping_add(disp as i64 as u64))
            }
            // With a 0x67 prefix: EIP-relative, the address truncated to 32
            // bits (Intel SDM vol. 2, 2.2.1.6, "RIP-Relative Addressing").
            Operand::Disp { base, disp } if base == RegSpec::eip() => {
                Compared::RipRelative(u64::from(next.wrapping_add(disp as i64 as u64) as u32))
            }
            Operand::ImmediateI8 { imm } if is_branch(insn.opcode()) => {
                Compared::Target(next.wrapping_add(imm as i64 as u64))
            }
            Operand::ImmediateI32 { imm } if is_branch(insn.opcode()) => {
                Compared::Target(next.wrapping_add(imm as i64 as u64))
            }
            other => Compared::Other(other),
        })
        .collect();
    let segments: Vec<_> = (0..insn.operand_count()).map(|i| insn.segment_override_for_op(i)).collect();
    let prefixes = format!(
        "mem {:?} lock {} rep {} repnz {} segments {segments:?}",
        insn.mem_size(),
        insn.prefixes.lock(),
        insn.prefixes.rep(),
        insn.prefixes.repnz()
    );
    (insn.opcode(), operands, prefixes)
}

/// More than one REX prefix before the opcode: the processor uses the last
/// one only (Intel SDM vol. 2, 2.2.1, "REX Prefixes"), and so do iced-x86
/// and the relocated copy; the oracle combines them.
fn several_rex_prefixes(bytes: &[u8]) -> bool {
    let mut rexes = 0;
    for &byte in bytes {
        if (0x40..=0x4f).contains(&byte) {
            rexes += 1;
        } else if !PREFIXES.contains(&byte) && byte != 0x66 && byte != 0x67 {
            break;
        }
    }
    rexes > 1
}

fn fits_i32(from: u64, to: u64) -> bool {
    i32::try_from(to.wrapping_sub(from) as i64).is_ok()
}

/// Why the image is not the original relocated, if it is not.
fn check_image(
    original: &Instruction,
    len: u64,
    image: &TrampolineImage,
    probe: u64,
    trampoline: u64,
) -> Option<String> {
    if image[..2] != [0xcd, TRAMPOLINE_VECTOR] {
        return Some("it does not start with int 0x82".into());
    }
    if probe_address(image) != probe {
        return Some("the probed address is not recorded".into());
    }
    let at = trampoline + 2;
    let Some(relocated) = disassemble(&image[2..PROBE_ADDRESS_OFFSET]) else {
        return Some("the relocated instruction does not decode".into());
    };
    let want = described(original, probe);
    let got = described(&relocated, at);
    if got != want {
        return Some(format!("relocated `{relocated}` is {got:x?}, the original {want:x?}"));
    }
    let mut end = 2 + oracle_len(&relocated) as usize;
    let falls_through = !matches!(original.opcode(), Opcode::JMP | Opcode::RETURN);
    if falls_through {
        let jump = disassemble(&image[end..PROBE_ADDRESS_OFFSET]);
        let jump_end = trampoline + end as u64 + 5;
        let back = probe + len;
        let ok = jump.as_ref().is_some_and(|j| {
            j.opcode() == Opcode::JMP
                && oracle_len(j) == 5
                && matches!(j.operand(0), Operand::ImmediateI32 { imm } if jump_end.wrapping_add(imm as i64 as u64) == back)
        });
        if !ok {
            return Some(format!("no jmp rel32 back to {back:#x} after it: {jump:?}"));
        }
        end += 5;
    }
    if image[end..PROBE_ADDRESS_OFFSET].iter().any(|&b| b != 0xcc) {
        return Some("not int3 up to the probed address".into());
    }
    None
}

/// Why a refusal is wrong, if it is.
fn check_refusal(
    original: &Instruction,
    len: u64,
    reason: NotRelocatable,
    probe: u64,
    trampoline: u64,
) -> Option<String> {
    let far = |(_, operands, _): (Opcode, Vec<Compared>, String)| {
        // Any new place within 32 bytes of the trampoline: the relocated
        // instruction ends somewhere in there.
        operands.iter().any(|o| match o {
            Compared::RipRelative(a) | Compared::Target(a) => {
                !(fits_i32(trampoline, *a) && fits_i32(trampoline + 32, *a))
            }
            Compared::Other(_) => false,
        })
    };
    let ok = match reason {
        NotRelocatable::Unsupported { mnemonic: "call rel32" } => original.opcode() == Opcode::CALL,
        NotRelocatable::TargetOutOfRange { mnemonic: "the jump back", .. } => {
            let back = probe + len;
            !(fits_i32(trampoline, back) && fits_i32(trampoline + 32, back))
        }
        NotRelocatable::TargetOutOfRange { .. } => far(described(original, probe)),
        _ => false,
    };
    (!ok).then(|| format!("refused without cause: {reason:?}"))
}

#[test]
fn relocated_instructions_are_the_originals_at_their_new_place() {
    let seed = env_u64("ORACLE_SEED", 0x7a3b_0c1e_5eed_0086);
    let count = env_u64("ORACLE_TRAMPOLINE_X86_INSNS", 250_000);
    let mut rng = Rng(seed);
    let (mut relocated, mut refused, mut rip_relative, mut branches, mut undecoded) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    for i in 0..count {
        let bytes = sample(&mut rng, i % 4);
        let Ok(insn) = Insn::decode(&bytes) else { continue };
        if matches!(x86_64::classify_with(&insn, SimulatePolicy::Branches), Classification::Reject(_)) {
            continue;
        }
        let original = disassemble(insn.bytes()).filter(|_| !several_rex_prefixes(insn.bytes()));
        let Some(original) = original else {
            // The oracle's tables do not cover every extension, and it
            // reads two REX prefixes differently from the processor (see
            // tests/oracle_x86.rs, `known_gap`); counted, not checked.
            undecoded += 1;
            continue;
        };
        let len = insn.len() as u64;
        let probe = 0x40_0000_0000 | (rng.next() & 0xff_ffff_ffff);
        let distance = (rng.next() % (2 << 30)) as i64 - (1 << 30);
        let trampoline = probe.wrapping_add(distance as u64) & !31;
        let problem = match X86_64::trampoline_image(insn, probe, trampoline) {
            Err(reason) => {
                refused += 1;
                check_refusal(&original, len, reason, probe, trampoline)
            }
            Ok(image) => {
                relocated += 1;
                let (_, operands, _) = described(&original, probe);
                rip_relative += u64::from(operands.iter().any(|o| matches!(o, Compared::RipRelative(_))));
                branches += u64::from(operands.iter().any(|o| matches!(o, Compared::Target(_))));
                check_image(&original, len, &image, probe, trampoline).map(|p| format!("{p}\n  image {image:02x?}"))
            }
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "{:02x?} `{original}` at {probe:#x}, trampoline {trampoline:#x}: {problem}",
                insn.bytes()
            ));
        }
    }
    println!(
        "oracle (x86 trampolines): {count} strings (seed {seed:#x}), {relocated} relocated ({rip_relative} \
         RIP-relative, {branches} branches), {refused} refused, {undecoded} left out (the oracle cannot decode them as the processor does), {} disagreements",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "ORACLE_SEED={seed:#x}: {} disagreements; first ones:\n{}",
        failures.len(),
        failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(relocated > count / 4 && rip_relative > count / 20 && branches > count / 40 && refused > 0);
}
