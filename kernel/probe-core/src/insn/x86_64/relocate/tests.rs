//! Tests of the x86_64 trampolines: one per relocated form with the exact
//! bytes (displacements and offsets worked out in the comments), the
//! refusals, the `jmp rel32` written at the probe, and the function check.

use super::*;
use crate::trampoline::probe_address;
use std::vec::Vec;

const PROBE: u64 = 0x40_0000_1000;
/// 256 MiB above the probe.
const TRAMPOLINE: u64 = PROBE + 0x1000_0000;

fn insn(bytes: &[u8]) -> Insn {
    Insn::decode(bytes).unwrap()
}

/// The image's code (after `CD 82`, up to the `int3` padding), checked to be
/// followed by padding up to the probed address.
fn code(bytes: &[u8], trampoline: u64, code_len: usize) -> Vec<u8> {
    let image = trampoline_image(&insn(bytes), PROBE, trampoline).unwrap();
    assert_eq!(&image[..2], &[0xcd, 0x82], "int 0x82 first");
    assert_eq!(probe_address(&image), PROBE);
    let end = 2 + code_len;
    assert!(image[end..PROBE_ADDRESS_OFFSET].iter().all(|&b| b == INT3), "{image:02x?}");
    image[2..end].to_vec()
}

#[test]
fn an_instruction_without_a_rip_relative_operand_is_copied_then_jumps_back() {
    // mov rax, rcx; jmp back from T + 10 to P + 3: rel32 = -0x10000007.
    assert_eq!(code(&[0x48, 0x89, 0xc8], TRAMPOLINE, 8), [0x48, 0x89, 0xc8, 0xe9, 0xf9, 0xff, 0xff, 0xef]);
    // push rbp and nop are stepped under the Branches policy: copied too.
    assert_eq!(code(&[0x55], TRAMPOLINE, 6)[0], 0x55);
}

#[test]
fn a_rip_relative_operand_gets_the_displacement_for_its_new_place() {
    // mov rax, [rip + 0x10] at P reads P + 0x17. At T + 2 (ending at T + 9)
    // the disp32 is P + 0x17 - (T + 9) = 0xe - 0x10000000 = 0xf000000e;
    // jmp back from T + 14 to P + 7: rel32 = -0x10000007.
    assert_eq!(
        code(&[0x48, 0x8b, 0x05, 0x10, 0, 0, 0], TRAMPOLINE, 12),
        [0x48, 0x8b, 0x05, 0x0e, 0, 0, 0xf0, 0xe9, 0xf9, 0xff, 0xff, 0xef]
    );
    // Beyond +-2 GiB: refused.
    assert_eq!(
        trampoline_image(&insn(&[0x48, 0x8b, 0x05, 0x10, 0, 0, 0]), PROBE, PROBE + 0x9000_0000),
        Err(NotRelocatable::TargetOutOfRange { mnemonic: "a RIP-relative operand", reach: "+-2 GiB" })
    );
}

#[test]
fn jmp_becomes_jmp_rel32_to_the_same_target_and_never_jumps_back() {
    // jmp .+0x12 (EB 10) -> E9 rel32 at T + 2: P + 0x12 - (T + 7) = 0xb - 0x10000000.
    assert_eq!(code(&[0xeb, 0x10], TRAMPOLINE, 5), [0xe9, 0x0b, 0, 0, 0xf0]);
    // jmp rel32 (E9 00 01 00 00): target P + 0x105.
    assert_eq!(code(&[0xe9, 0, 1, 0, 0], TRAMPOLINE, 5), [0xe9, 0xfe, 0, 0, 0xf0]);
}

#[test]
fn jcc_becomes_jcc_rel32_to_the_same_target_then_jumps_back() {
    // je .+0x12 (74 10) -> 0F 84 rel32 at T + 2 (ends T + 8): 0xa - 0x10000000;
    // jmp back from T + 13 to P + 2: -0x1000000b.
    assert_eq!(code(&[0x74, 0x10], TRAMPOLINE, 11), [0x0f, 0x84, 0x0a, 0, 0, 0xf0, 0xe9, 0xf5, 0xff, 0xff, 0xef]);
    // jne rel32 +0x100 (0F 85 00 01 00 00): target P + 0x106; back to P + 6.
    assert_eq!(
        code(&[0x0f, 0x85, 0, 1, 0, 0], TRAMPOLINE, 11),
        [0x0f, 0x85, 0xfe, 0, 0, 0xf0, 0xe9, 0xf9, 0xff, 0xff, 0xef]
    );
}

#[test]
fn ret_is_copied_and_call_and_refused_instructions_are_not_relocated() {
    assert_eq!(code(&[0xc3], TRAMPOLINE, 1), [0xc3]);
    assert_eq!(
        trampoline_image(&insn(&[0xe8, 0, 1, 0, 0]), PROBE, TRAMPOLINE),
        Err(NotRelocatable::Unsupported { mnemonic: "call rel32" })
    );
    // syscall, int3, jmp rax: the classifier refuses them.
    for bytes in [&[0x0f, 0x05][..], &[0xcc], &[0xff, 0xe0]] {
        assert!(matches!(
            trampoline_image(&insn(bytes), PROBE, TRAMPOLINE),
            Err(NotRelocatable::Unsupported { mnemonic: "a refused instruction" })
        ));
    }
    // The jump back beyond +-2 GiB.
    assert_eq!(
        trampoline_image(&insn(&[0x48, 0x89, 0xc8]), PROBE, PROBE + 0x9000_0000),
        Err(NotRelocatable::TargetOutOfRange { mnemonic: "the jump back", reach: "+-2 GiB" })
    );
}

#[test]
fn the_probe_gets_a_jmp_rel32_padded_with_int3() {
    let mov = insn(&[0x48, 0x8b, 0x05, 0x10, 0, 0, 0]);
    // rel32 = T - (P + 5) = 0x0ffffffb.
    assert_eq!(
        branch_to_trampoline(&mov, PROBE, TRAMPOLINE).unwrap().bytes(),
        [0xe9, 0xfb, 0xff, 0xff, 0x0f, 0xcc, 0xcc]
    );
    // Backwards, the furthest: rel32 = i32::MIN.
    let far_back = PROBE + 5 - 0x8000_0000;
    assert_eq!(branch_to_trampoline(&mov, PROBE, far_back).unwrap().bytes()[1..5], [0, 0, 0, 0x80]);
    assert_eq!(
        branch_to_trampoline(&mov, PROBE, PROBE + 0x8000_0100),
        Err(NotRelocatable::OutOfBranchRange { reach: "+-2 GiB" })
    );
    assert_eq!(
        branch_to_trampoline(&insn(&[0x48, 0x89, 0xc8]), PROBE, TRAMPOLINE),
        Err(NotRelocatable::TooShort { len: 3 })
    );
}

/// push rbp; mov rbp, rsp; mov rax, [rip + 0x10] (the probe, at +4, 7
/// bytes); `tail` at +0xb; ret.
fn function(tail: &[u8]) -> Vec<u8> {
    let mut bytes = std::vec![0x55, 0x48, 0x89, 0xe5, 0x48, 0x8b, 0x05, 0x10, 0, 0, 0];
    bytes.extend_from_slice(tail);
    bytes.push(0xc3);
    bytes
}

const START: u64 = PROBE - 4;

fn check(tail: &[u8]) -> Result<(), NotRelocatable> {
    let probed = insn(&[0x48, 0x8b, 0x05, 0x10, 0, 0, 0]);
    check_function(&probed, PROBE, &function(tail), START)
}

#[test]
fn a_function_passes_when_no_jump_lands_inside_the_replaced_bytes() {
    assert_eq!(check(&[]), Ok(()));
    // je to the probe itself (+0xd - 9 = +4) and to the instruction after it.
    assert_eq!(check(&[0x74, 0xf7]), Ok(()));
    assert_eq!(check(&[0x74, 0xfe]), Ok(()));
}

#[test]
fn a_direct_jump_or_call_into_the_replaced_bytes_is_refused() {
    // je .-7 from +0xb: +6, inside (+4, +0xb).
    assert_eq!(check(&[0x74, 0xf9]), Err(NotRelocatable::JumpTargetInside { target: START + 6 }));
    // call rel32 from +0xb (ends +0x10) to +0xa: rel32 = -6.
    assert_eq!(check(&[0xe8, 0xfa, 0xff, 0xff, 0xff]), Err(NotRelocatable::JumpTargetInside { target: START + 0xa }));
    // loop .-6 from +0xb: +7.
    assert_eq!(check(&[0xe2, 0xfa]), Err(NotRelocatable::JumpTargetInside { target: START + 7 }));
}

#[test]
fn an_indirect_jump_or_an_undecodable_function_is_refused() {
    // jmp rax (FF /4) at +0xb; jmp qword [rip] (FF /4, memory); jmp far [rax] (FF /5).
    assert_eq!(check(&[0xff, 0xe0]), Err(NotRelocatable::IndirectJump { at: START + 0xb }));
    assert_eq!(check(&[0xff, 0x25, 0, 0, 0, 0]), Err(NotRelocatable::IndirectJump { at: START + 0xb }));
    assert_eq!(check(&[0x48, 0xff, 0x28]), Err(NotRelocatable::IndirectJump { at: START + 0xb }));
    // An indirect call is no jump: its targets return to the next instruction.
    assert_eq!(check(&[0xff, 0xd0]), Ok(()));
    // 06 (push es) is invalid in 64-bit mode.
    assert_eq!(check(&[0x06]), Err(NotRelocatable::UndecodableFunction { at: START + 0xb }));
    // Cut short: the function ends inside an instruction.
    let probed = insn(&[0x48, 0x8b, 0x05, 0x10, 0, 0, 0]);
    let cut = &function(&[])[..8];
    assert_eq!(check_function(&probed, PROBE, cut, START), Err(NotRelocatable::UndecodableFunction { at: PROBE }));
    // A probe address that is not an instruction boundary.
    assert_eq!(
        check_function(&probed, PROBE + 1, &function(&[]), START),
        Err(NotRelocatable::UndecodableFunction { at: PROBE + 1 })
    );
}
