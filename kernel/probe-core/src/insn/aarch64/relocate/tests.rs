//! Tests of the A64 trampolines: one per relocated form, with the exact
//! words (every expected word assembled by LLVM's `llvm-mc` from the
//! instruction in its comment, written relative to `.` so it needs no
//! relocation), the refusals, the branch written at the probe, and a
//! seeded sweep over random accepted words.

use super::*;
use crate::trampoline::probe_address;
use std::vec::Vec;

/// The probed address and a trampoline 31 MiB above it (far for a literal
/// load, near for a branch).
const PROBE: u64 = 0x40_0010_0000;
const FAR: u64 = PROBE + 0x1f0_0000;
/// A trampoline 512 KiB above the probe: within a literal load's reach.
const NEAR: u64 = PROBE + 0x8_0000;

const SVC: u32 = 0xd401_6fc1; // svc #0xb7e
const FILL: u32 = 0xd420_f560; // brk #0x7ab
const NOP_WORD: u32 = 0xd503_201f;
/// `b .-0x1f00004`: from FAR + 8 back to PROBE + 4.
const BACK_FROM_WORD_2: u32 = 0x1783_ffff;
/// `b .-0x1f00008`: from FAR + 12 back to PROBE + 4.
const BACK_FROM_WORD_3: u32 = 0x1783_fffe;
/// `ldr xN, .+12`: from word 1 to the literal at offset 16 (N in bits 4:0).
const LDR_LITERAL_FROM_WORD_1: u32 = 0x5800_0060;

/// The image's eight words, and its literal when the words 4 and 5 are not
/// the fill.
fn words(image: &TrampolineImage) -> [u32; 8] {
    core::array::from_fn(|i| u32::from_le_bytes(image[i * 4..i * 4 + 4].try_into().unwrap()))
}

fn literal(image: &TrampolineImage) -> u64 {
    u64::from_le_bytes(image[16..24].try_into().unwrap())
}

/// The image of `original` at PROBE in a trampoline at `trampoline`: its code
/// words (1 to 3) checked to be followed by the fill, the `svc` first and
/// the probed address last.
fn relocated(original: u32, trampoline: u64) -> (Vec<u32>, TrampolineImage) {
    let image = trampoline_image(original, PROBE, trampoline).unwrap();
    let words = words(&image);
    assert_eq!(words[0], SVC, "{original:#x}: the svc first");
    assert_eq!(probe_address(&image), PROBE);
    let len = words[1..4].iter().position(|&w| w == FILL).map_or(3, |n| n);
    assert!(words[1 + len..4].iter().all(|&w| w == FILL), "{original:#x}: fill after the code: {words:x?}");
    (words[1..1 + len].to_vec(), image)
}

fn no_literal(image: &TrampolineImage) {
    assert_eq!(&words(image)[4..6], &[FILL, FILL], "no literal: the fill");
}

#[test]
fn the_constants_encode_what_the_layout_says() {
    assert_eq!(svc(TRAMPOLINE_SVC_IMMEDIATE), SVC);
    assert_eq!(brk(TRAMPOLINE_FILL_BRK_IMMEDIATE), FILL);
    assert_eq!(<Aarch64 as Trampolines>::ENTRY_BYTES, 4);
    assert_eq!(LITERAL_OFFSET, 16);
    assert_eq!(PROBE_ADDRESS_OFFSET, 24);
}

#[test]
fn a_position_independent_instruction_is_copied_then_branches_back() {
    for original in [0x9100_0420, 0xa9bf_7bfd, NOP_WORD, 0xf940_0020] {
        // add x0, x1, #1; stp x29, x30, [sp, #-16]!; nop; ldr x0, [x1]
        let (code, image) = relocated(original, FAR);
        assert_eq!(code, [original, BACK_FROM_WORD_2]);
        no_literal(&image);
    }
}

#[test]
fn b_branches_to_the_same_target_and_never_back() {
    // b .+0x40 -> `b .-0x1efffc4` from FAR + 4.
    let (code, image) = relocated(0x1400_0010, FAR);
    assert_eq!(code, [0x1784_000f]);
    no_literal(&image);
}

#[test]
fn bl_loads_the_return_address_from_the_literal_then_branches() {
    // bl .+0x1000 -> ldr x30, .+12; b .-0x1eff008; literal PROBE + 4.
    let (code, image) = relocated(0x9400_0400, FAR);
    assert_eq!(code, [LDR_LITERAL_FROM_WORD_1 | 30, 0x1784_03fe]);
    assert_eq!(literal(&image), PROBE + 4);
}

#[test]
fn conditional_branches_keep_their_test_and_skip_over_the_branch_back() {
    // b.ne .-0x100000 -> b.ne .+8; b back; b .-0x200000c.
    let (code, _) = relocated(0x5480_0001, FAR);
    assert_eq!(code, [0x5400_0041, BACK_FROM_WORD_2, 0x177f_fffd]);
    // tbz w2, #5, .+0x10 -> tbz w2, #5, .+8; b back; b .-0x1effffc.
    let (code, _) = relocated(0x3628_0082, FAR);
    assert_eq!(code, [0x3628_0042, BACK_FROM_WORD_2, 0x1784_0001]);
    // cbz w3, .+0x20 -> cbz w3, .+8; b back; b .-0x1efffec.
    let (code, image) = relocated(0x3400_0103, FAR);
    assert_eq!(code, [0x3400_0043, BACK_FROM_WORD_2, 0x1784_0005]);
    no_literal(&image);
    // tbnz x9, #63 and cbnz x7 keep their register, bit and sense.
    let (code, _) = relocated(0xb7fc_0009, FAR);
    assert_eq!(code[0], 0xb7f8_0049);
    let (code, _) = relocated(0xb5ff_fe07, FAR);
    assert_eq!(code[0], 0xb500_0047);
}

#[test]
fn br_and_ret_are_copied_and_blr_loads_the_link_first() {
    for original in [0xd61f_0200, 0xd65f_03c0, 0xd65f_00a0] {
        // br x16; ret; ret x5
        let (code, image) = relocated(original, FAR);
        assert_eq!(code, [original]);
        no_literal(&image);
    }
    // blr x8 -> ldr x30, .+12; br x8.
    let (code, image) = relocated(0xd63f_0100, FAR);
    assert_eq!(code, [LDR_LITERAL_FROM_WORD_1 | 30, 0xd61f_0100]);
    assert_eq!(literal(&image), PROBE + 4);
    // blr x30 would need x30 both as the target and for the link.
    assert_eq!(
        trampoline_image(0xd63f_03c0, PROBE, FAR),
        Err(NotRelocatable::NeedsScratchRegister { mnemonic: "blr x30" })
    );
}

#[test]
fn adr_and_adrp_load_their_value_from_the_literal() {
    // adr x0, .+0x1234 -> ldr x0, .+12; b back; literal PROBE + 0x1234.
    let (code, image) = relocated(0x1000_91a0, FAR);
    assert_eq!(code, [LDR_LITERAL_FROM_WORD_1, BACK_FROM_WORD_2]);
    assert_eq!(literal(&image), PROBE + 0x1234);
    // adrp x1, .+0x5000 from a probe not on a page boundary.
    let image = trampoline_image(0xb000_0021, PROBE + 0x678, FAR).unwrap();
    assert_eq!(words(&image)[1], LDR_LITERAL_FROM_WORD_1 | 1);
    assert_eq!(literal(&image), PROBE + 0x5000);
    // adr xzr writes nothing: a nop.
    let (code, image) = relocated(0x1000_003f, FAR);
    assert_eq!(code, [NOP_WORD, BACK_FROM_WORD_2]);
    no_literal(&image);
}

#[test]
fn literal_loads_are_re_encoded_in_reach_and_go_through_their_register_beyond() {
    // ldr w4, .+0x100 near -> ldr w4, .-0x7ff04; b .-0x80004.
    let (code, image) = relocated(0x1800_0804, NEAR);
    assert_eq!(code, [0x18c0_07e4, 0x17fd_ffff]);
    no_literal(&image);
    // ... far -> ldr x4, .+12; ldr w4, [x4]; b back; literal the address.
    let (code, image) = relocated(0x1800_0804, FAR);
    assert_eq!(code, [LDR_LITERAL_FROM_WORD_1 | 4, 0xb940_0084, BACK_FROM_WORD_3]);
    assert_eq!(literal(&image), PROBE + 0x100);
    // ldrsw x6, .+0x80 far -> ldr x6, .+12; ldrsw x6, [x6].
    let (code, image) = relocated(0x9800_0406, FAR);
    assert_eq!(code, [LDR_LITERAL_FROM_WORD_1 | 6, 0xb980_00c6, BACK_FROM_WORD_3]);
    assert_eq!(literal(&image), PROBE + 0x80);
    // ldr x5, .-0x40 far -> ldr x5, .+12; ldr x5, [x5].
    let (code, image) = relocated(0x58ff_fe05, FAR);
    assert_eq!(code, [LDR_LITERAL_FROM_WORD_1 | 5, 0xf940_00a5, BACK_FROM_WORD_3]);
    assert_eq!(literal(&image), PROBE - 0x40);
    // ldr xzr, .+8: re-encoded near; far it has no register to go through.
    let (code, _) = relocated(0x5800_005f, NEAR);
    assert_eq!(code, [0x58c0_003f, 0x17fd_ffff]);
    assert_eq!(
        trampoline_image(0x5800_005f, PROBE, FAR),
        Err(NotRelocatable::NeedsScratchRegister { mnemonic: "ldr (literal)" })
    );
}

#[test]
fn simd_literal_loads_are_re_encoded_in_reach_and_refused_beyond() {
    // ldr q0, .+0x40 near -> ldr q0, .-0x7ffc4.
    let (code, _) = relocated(0x9c00_0200, NEAR);
    assert_eq!(code, [0x9cc0_01e0, 0x17fd_ffff]);
    assert_eq!(
        trampoline_image(0x9c00_0200, PROBE, FAR),
        Err(NotRelocatable::TargetOutOfRange { mnemonic: "ldr (literal, SIMD&FP)", reach: "+-1 MiB" })
    );
}

#[test]
fn prfm_literal_is_re_encoded_in_reach_and_a_nop_beyond() {
    // prfm pldl1keep, .+0x200 near -> prfm pldl1keep, .-0x7fe04.
    let (code, _) = relocated(0xd800_1000, NEAR);
    assert_eq!(code, [0xd8c0_0fe0, 0x17fd_ffff]);
    let (code, _) = relocated(0xd800_1000, FAR);
    assert_eq!(code, [NOP_WORD, BACK_FROM_WORD_2]);
}

#[test]
fn branches_beyond_reach_and_refused_instructions_are_not_relocated() {
    // b .+0x7fffffc from a probe 32 MiB below the trampoline: 160 MiB away.
    assert_eq!(
        trampoline_image(0x15ff_ffff, PROBE, PROBE - 0x200_0000),
        Err(NotRelocatable::TargetOutOfRange { mnemonic: "b", reach: "+-128 MiB" })
    );
    // The branch back from a trampoline 128 MiB above the probe.
    assert_eq!(
        trampoline_image(0x9100_0420, PROBE, PROBE + 0x800_0000),
        Err(NotRelocatable::TargetOutOfRange { mnemonic: "the branch back", reach: "+-128 MiB" })
    );
    for refused in [0xc85f_7c20, 0xd400_0001, 0x0000_0000] {
        // ldxr, svc, udf
        assert!(matches!(trampoline_image(refused, PROBE, FAR), Err(NotRelocatable::Unsupported { .. })));
    }
}

#[test]
fn the_probe_gets_a_b_to_its_trampoline_within_128_mib() {
    // b .+0x1f00000
    assert_eq!(branch_to_trampoline(PROBE, FAR).unwrap().bytes(), 0x147c_0000u32.to_le_bytes());
    // b .-0x8000000: the furthest back.
    assert_eq!(branch_to_trampoline(PROBE, PROBE - 0x800_0000).unwrap().bytes(), 0x1600_0000u32.to_le_bytes());
    assert_eq!(
        branch_to_trampoline(PROBE, PROBE + 0x800_0000),
        Err(NotRelocatable::OutOfBranchRange { reach: "+-128 MiB" })
    );
    assert_eq!(<Aarch64 as Trampolines>::check_function(0xd65f_03c0, PROBE, &[0; 8], PROBE), Ok(()));
}

/// splitmix64, seeded, so a failing word is reproducible.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Random accepted words at random places: either a reason, or a well
/// formed image (the svc, code that every path of which ends in a branch,
/// every code word an accepted instruction or the fill, the probed address).
#[test]
fn random_accepted_words_give_a_reason_or_a_well_formed_image() {
    let mut state = 0x7a3b_0c1e_5eed_0001;
    let (mut images, mut reasons) = (0, 0);
    for i in 0..100_000 {
        let r = next(&mut state);
        let mut word = r as u32;
        if i % 2 == 1 {
            // The PC-relative groups: branches, adr/adrp, literal loads.
            const GROUPS: [u8; 10] = [0x14, 0x94, 0x54, 0x34, 0xb6, 0xd6, 0x10, 0x90, 0x58, 0x9c];
            word = word & 0x00ff_ffff | u32::from(GROUPS[(r >> 40) as usize % GROUPS.len()]) << 24;
        }
        if classify_with(word, SimulatePolicy::Branches).is_reject() {
            continue;
        }
        let probe = (next(&mut state) & 0xff_ffff_fffc) | 0x40_0000_0000;
        let distance = (next(&mut state) % (128 << 20)) as i64 - (64 << 20);
        let trampoline = probe.wrapping_add(distance as u64) & !31;
        match trampoline_image(word, probe, trampoline) {
            Err(_) => reasons += 1,
            Ok(image) => {
                images += 1;
                let words = words(&image);
                assert_eq!(words[0], SVC);
                assert_eq!(probe_address(&image), probe);
                let code = &words[1..4];
                let len = code.iter().position(|&w| w == FILL).unwrap_or(3);
                assert!(len >= 1 && code[len..].iter().all(|&w| w == FILL), "{word:#x}: {words:x?}");
                for &w in &code[..len] {
                    assert!(!classify_with(w, SimulatePolicy::Branches).is_reject(), "{word:#x}: {w:#x} refused");
                }
                // The last code word never falls through into the fill.
                let last = code[len - 1];
                let ends = encodings::B.matches(last) || encodings::BR.matches(last) || encodings::RET.matches(last);
                assert!(ends, "{word:#x}: the sequence falls into the fill: {words:x?}");
            }
        }
    }
    assert!(images > 20_000 && reasons > 0, "{images} images, {reasons} reasons");
}
