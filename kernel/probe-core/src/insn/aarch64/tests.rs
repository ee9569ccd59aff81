//! Tests of the A64 classifier and simulator: real encodings (assembled
//! once with GNU as from the instruction in the first column, then checked
//! in), the decoded fields of every simulated class, the simulator's effect
//! on registers and memory, every reject class, and property tests for the
//! branch and literal offsets at their extremes.

use super::*;
use crate::insn::{SimulatePolicy::Branches, UserMemory};
use proptest::prelude::*;
use std::{string::ToString, vec, vec::Vec};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Sim,
    Step,
    Rej(Why),
}

/// The reject reasons, without their payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    Exclusive,
    ReadsPc,
    UnsimulatedBranch,
    ExceptionGenerating,
    SystemRegisterWrite,
    SystemInstruction,
    ConstrainedUnpredictable,
    Unallocated,
}

use Expect::*;
use Why::*;

fn why(reason: RejectReason) -> Option<Why> {
    Some(match reason {
        RejectReason::Exclusive { .. } => Exclusive,
        RejectReason::ReadsPc { .. } => ReadsPc,
        RejectReason::UnsimulatedBranch { .. } => UnsimulatedBranch,
        RejectReason::ExceptionGenerating { .. } => ExceptionGenerating,
        RejectReason::SystemRegisterWrite { .. } => SystemRegisterWrite,
        RejectReason::SystemInstruction { .. } => SystemInstruction,
        RejectReason::ConstrainedUnpredictable { .. } => ConstrainedUnpredictable,
        RejectReason::Unallocated => Unallocated,
        RejectReason::Unsupported { .. } => return None,
        other => panic!("the A64 classifier gave a reason only x86_64 has: {other:?}"),
    })
}

fn expect_of(classification: Classification) -> Option<Expect> {
    Some(match classification {
        Classification::Simulate(_) => Sim,
        Classification::Step => Step,
        Classification::Reject(reason) => Rej(why(reason)?),
    })
}

/// `aarch64-linux-gnu-as` (binutils 2.40, `.arch armv8.5-a+crypto+crc+lse+rcpc+pauth+memtag`)
/// assembled the first column; the second is its output (`objdump -dr`
/// showed no relocation for any row but the two `adrp`s). The assembler
/// warned "unpredictable" for the three ConstrainedUnpredictable rows.
#[rustfmt::skip]
const ASSEMBLED: &[(&str, u32, Expect)] = &[
    ("b .+0x40"                              , 0x1400_0010, Sim),
    ("b .-0x8000000"                         , 0x1600_0000, Sim),
    ("b .+0x7fffffc"                         , 0x15ff_ffff, Sim),
    ("bl .+0x1000"                           , 0x9400_0400, Sim),
    ("bl .-4"                                , 0x97ff_ffff, Sim),
    ("b.eq .+8"                              , 0x5400_0040, Sim),
    ("b.ne .-0x100000"                       , 0x5480_0001, Sim),
    ("b.hi .+0xffffc"                        , 0x547f_ffe8, Sim),
    ("b.nv .+16"                             , 0x5400_008f, Sim),
    ("cbz w3, .+0x20"                        , 0x3400_0103, Sim),
    ("cbnz x7, .-0x40"                       , 0xb5ff_fe07, Sim),
    ("cbz xzr, .+8"                          , 0xb400_005f, Sim),
    ("tbz w2, #5, .+0x10"                    , 0x3628_0082, Sim),
    ("tbnz x9, #63, .-0x8000"                , 0xb7fc_0009, Sim),
    ("tbz x0, #0, .+0x7ffc"                  , 0x3603_ffe0, Sim),
    ("br x16"                                , 0xd61f_0200, Sim),
    ("blr x8"                                , 0xd63f_0100, Sim),
    ("blr x30"                               , 0xd63f_03c0, Sim),
    ("ret"                                   , 0xd65f_03c0, Sim),
    ("ret x5"                                , 0xd65f_00a0, Sim),
    ("adr x0, .+0x1234"                      , 0x1000_91a0, Sim),
    ("adr x3, .-0x100000"                    , 0x1080_0003, Sim),
    ("adr xzr, .+4"                          , 0x1000_003f, Sim),
    // The assembler leaves adrp to the linker (a relocation); these two words
    // are encoded by hand: immlo = imm<1:0> at 30:29, immhi = imm<20:2> at 23:5.
    ("adrp x1, .+0x5000"                     , 0xb000_0021, Sim),
    ("adrp x2, .-0x100000000"                , 0x9080_0002, Sim),
    ("ldr w4, .+0x100"                       , 0x1800_0804, Sim),
    ("ldr x5, .-0x40"                        , 0x58ff_fe05, Sim),
    ("ldrsw x6, .+0x80"                      , 0x9800_0406, Sim),
    ("ldr xzr, .+8"                          , 0x5800_005f, Sim),
    ("prfm pldl1keep, .+0x200"               , 0xd800_1000, Sim),
    ("ldr q0, .+0x40"                        , 0x9c00_0200, Sim),
    ("ldr d1, .+0x40"                        , 0x5c00_0201, Sim),
    ("ldr s2, .+0x40"                        , 0x1c00_0202, Sim),
    ("ldr q31, .-0x100000"                   , 0x9c80_001f, Sim),
    ("nop"                                   , 0xd503_201f, Sim),
    ("stp x29, x30, [sp, #-16]!"             , 0xa9bf_7bfd, Sim),
    ("ldxr x0, [x1]"                         , 0xc85f_7c20, Rej(Exclusive)),
    ("ldxrb w0, [x1]"                        , 0x085f_7c20, Rej(Exclusive)),
    ("ldxrh w0, [x1]"                        , 0x485f_7c20, Rej(Exclusive)),
    ("ldaxr w2, [x3]"                        , 0x885f_fc62, Rej(Exclusive)),
    ("stxr w4, x5, [x6]"                     , 0xc804_7cc5, Rej(Exclusive)),
    ("stlxr w4, w5, [x6]"                    , 0x8804_fcc5, Rej(Exclusive)),
    ("stlxrb w4, w5, [x6]"                   , 0x0804_fcc5, Rej(Exclusive)),
    ("ldxp x0, x1, [x2]"                     , 0xc87f_0440, Rej(Exclusive)),
    ("ldaxp w0, w1, [x2]"                    , 0x887f_8440, Rej(Exclusive)),
    ("stxp w3, x0, x1, [x2]"                 , 0xc823_0440, Rej(Exclusive)),
    ("stlxp w3, w0, w1, [x2]"                , 0x8823_8440, Rej(Exclusive)),
    ("svc #0"                                , 0xd400_0001, Rej(ExceptionGenerating)),
    ("hvc #1"                                , 0xd400_0022, Rej(ExceptionGenerating)),
    ("smc #2"                                , 0xd400_0043, Rej(ExceptionGenerating)),
    ("brk #0x4d2"                            , 0xd420_9a40, Rej(ExceptionGenerating)),
    ("hlt #0"                                , 0xd440_0000, Rej(ExceptionGenerating)),
    ("dcps1"                                 , 0xd4a0_0001, Rej(ExceptionGenerating)),
    ("dcps2"                                 , 0xd4a0_0002, Rej(ExceptionGenerating)),
    ("dcps3"                                 , 0xd4a0_0003, Rej(ExceptionGenerating)),
    ("eret"                                  , 0xd69f_03e0, Rej(ExceptionGenerating)),
    ("eretaa"                                , 0xd69f_0bff, Rej(ExceptionGenerating)),
    ("eretab"                                , 0xd69f_0fff, Rej(ExceptionGenerating)),
    ("drps"                                  , 0xd6bf_03e0, Rej(ExceptionGenerating)),
    ("msr nzcv, x0"                          , 0xd51b_4200, Rej(SystemRegisterWrite)),
    ("msr tpidr_el0, x1"                     , 0xd51b_d041, Rej(SystemRegisterWrite)),
    ("msr daifset, #2"                       , 0xd503_42df, Rej(SystemRegisterWrite)),
    ("msr spsel, #1"                         , 0xd500_41bf, Rej(SystemRegisterWrite)),
    ("cfinv"                                 , 0xd500_401f, Rej(SystemRegisterWrite)),
    ("sys #3, c7, c5, #1, x0"                , 0xd50b_7520, Rej(SystemInstruction)),
    ("dc zva, x0"                            , 0xd50b_7420, Rej(SystemInstruction)),
    ("dc civac, x1"                          , 0xd50b_7e21, Rej(SystemInstruction)),
    ("ic ivau, x2"                           , 0xd50b_7522, Rej(SystemInstruction)),
    ("sysl x0, #3, c7, c5, #1"               , 0xd52b_7520, Rej(SystemInstruction)),
    ("braa x0, x1"                           , 0xd71f_0801, Rej(UnsimulatedBranch)),
    ("blraaz x3"                             , 0xd63f_087f, Rej(UnsimulatedBranch)),
    ("retaa"                                 , 0xd65f_0bff, Rej(UnsimulatedBranch)),
    ("retab"                                 , 0xd65f_0fff, Rej(UnsimulatedBranch)),
    ("udf #0"                                , 0x0000_0000, Rej(Unallocated)),
    ("udf #0xffff"                           , 0x0000_ffff, Rej(Unallocated)),
    ("ldp x0, x0, [x1]"                      , 0xa940_0020, Rej(ConstrainedUnpredictable)),
    ("ldr x1, [x1], #8"                      , 0xf840_8421, Rej(ConstrainedUnpredictable)),
    ("stp x0, x1, [x0, #16]!"                , 0xa981_0400, Rej(ConstrainedUnpredictable)),
    ("add x0, x1, #1"                        , 0x9100_0420, Step),
    ("sub w2, w3, #0xfff, lsl #12"           , 0x517f_fc62, Step),
    ("adds x0, x1, x2, lsl #3"               , 0xab02_0c20, Step),
    ("and x0, x1, #0xff"                     , 0x9240_1c20, Step),
    ("orr w0, w1, #0x80000001"               , 0x3201_0420, Step),
    ("eor x3, x4, x5, ror #7"                , 0xcac5_1c83, Step),
    ("movz x0, #0x1234, lsl #48"             , 0xd2e2_4680, Step),
    ("movk w0, #0xffff, lsl #16"             , 0x72bf_ffe0, Step),
    ("movn x1, #0"                           , 0x9280_0001, Step),
    ("ubfx x0, x1, #4, #8"                   , 0xd344_2c20, Step),
    ("sbfiz w0, w1, #3, #5"                  , 0x131d_1020, Step),
    ("extr x0, x1, x2, #13"                  , 0x93c2_3420, Step),
    ("lsl x0, x1, #3"                        , 0xd37d_f020, Step),
    ("asr w0, w1, #31"                       , 0x131f_7c20, Step),
    ("mul x0, x1, x2"                        , 0x9b02_7c20, Step),
    ("madd w0, w1, w2, w3"                   , 0x1b02_0c20, Step),
    ("smulh x0, x1, x2"                      , 0x9b42_7c20, Step),
    ("umaddl x0, w1, w2, x3"                 , 0x9ba2_0c20, Step),
    ("udiv x0, x1, x2"                       , 0x9ac2_0820, Step),
    ("sdiv w0, w1, w2"                       , 0x1ac2_0c20, Step),
    ("lslv x0, x1, x2"                       , 0x9ac2_2020, Step),
    ("csel x0, x1, x2, eq"                   , 0x9a82_0020, Step),
    ("csinc w0, w1, w2, ne"                  , 0x1a82_1420, Step),
    ("cset x0, lt"                           , 0x9a9f_a7e0, Step),
    ("ccmp x0, #5, #4, ne"                   , 0xfa45_1804, Step),
    ("ccmn w1, w2, #0, ge"                   , 0x3a42_a020, Step),
    ("cmp x0, x1"                            , 0xeb01_001f, Step),
    ("adc x0, x1, x2"                        , 0x9a02_0020, Step),
    ("sbcs w0, w1, w2"                       , 0x7a02_0020, Step),
    ("add x0, sp, w1, uxtw #2"               , 0x8b21_4be0, Step),
    ("rbit x0, x1"                           , 0xdac0_0020, Step),
    ("rev w0, w1"                            , 0x5ac0_0820, Step),
    ("rev x0, x1"                            , 0xdac0_0c20, Step),
    ("clz x0, x1"                            , 0xdac0_1020, Step),
    ("crc32cx w0, w1, x2"                    , 0x9ac2_5c20, Step),
    ("ldr x0, [x1]"                          , 0xf940_0020, Step),
    ("ldr x0, [x1, #8]!"                     , 0xf840_8c20, Step),
    ("ldr x0, [x1], #-16"                    , 0xf85f_0420, Step),
    ("ldur w0, [x1, #-3]"                    , 0xb85f_d020, Step),
    ("ldr x0, [x1, x2, lsl #3]"              , 0xf862_7820, Step),
    ("ldrsb w0, [x1, w2, sxtw]"              , 0x38e2_c820, Step),
    ("ldrsw x0, [x1, #4]"                    , 0xb980_0420, Step),
    ("strb w0, [x1, #4095]"                  , 0x393f_fc20, Step),
    ("ldtr x0, [x1]"                         , 0xf840_0820, Step),
    ("prfm pldl1keep, [x0]"                  , 0xf980_0000, Step),
    ("ldp x0, x1, [sp, #16]"                 , 0xa941_07e0, Step),
    ("ldp x29, x30, [sp], #16"               , 0xa8c1_7bfd, Step),
    ("stp x19, x20, [sp, #-32]!"             , 0xa9be_53f3, Step),
    ("ldpsw x0, x1, [x2]"                    , 0x6940_0440, Step),
    ("ldnp q0, q1, [x2]"                     , 0xac40_0440, Step),
    ("stp d8, d9, [sp, #-16]!"               , 0x6dbf_27e8, Step),
    ("ldr q0, [x1, #16]"                     , 0x3dc0_0420, Step),
    ("str b0, [x1]"                          , 0x3d00_0020, Step),
    ("ldar x0, [x1]"                         , 0xc8df_fc20, Step),
    ("stlr w0, [x1]"                         , 0x889f_fc20, Step),
    ("ldapr x0, [x1]"                        , 0xf8bf_c020, Step),
    ("cas x0, x1, [x2]"                      , 0xc8a0_7c41, Step),
    ("casp x0, x1, x2, x3, [x4]"             , 0x4820_7c82, Step),
    ("ldadd w0, w1, [x2]"                    , 0xb820_0041, Step),
    ("swpal x0, x1, [x2]"                    , 0xf8e0_8041, Step),
    ("ld1 {v0.16b}, [x0]"                    , 0x4c40_7000, Step),
    ("ld4 {v0.4s-v3.4s}, [x0], #64"          , 0x4cdf_0800, Step),
    ("st1 {v0.s}[1], [x1]"                   , 0x0d00_9020, Step),
    ("ld1r {v0.8h}, [x1]"                    , 0x4d40_c420, Step),
    ("fadd s0, s1, s2"                       , 0x1e22_2820, Step),
    ("fmul d0, d1, d2"                       , 0x1e62_0820, Step),
    ("fmadd d0, d1, d2, d3"                  , 0x1f42_0c20, Step),
    ("fcmp s0, #0.0"                         , 0x1e20_2008, Step),
    ("fcvtzs w0, d1"                         , 0x1e78_0020, Step),
    ("scvtf d0, x1"                          , 0x9e62_0020, Step),
    ("fmov x0, d1"                           , 0x9e66_0020, Step),
    ("fmov d0, #1.0"                         , 0x1e6e_1000, Step),
    ("fcvt h0, s1"                           , 0x1e23_c020, Step),
    ("fcsel d0, d1, d2, gt"                  , 0x1e62_cc20, Step),
    ("add v0.4s, v1.4s, v2.4s"               , 0x4ea2_8420, Step),
    ("mul v0.8h, v1.8h, v2.8h"               , 0x4e62_9c20, Step),
    ("fmla v0.2d, v1.2d, v2.2d"              , 0x4e62_cc20, Step),
    ("dup v0.4s, w1"                         , 0x4e04_0c20, Step),
    ("umov w0, v1.h[3]"                      , 0x0e0e_3c20, Step),
    ("ins v0.d[1], x1"                       , 0x4e18_1c20, Step),
    ("movi v0.2d, #0xff00ff00ff00ff00"       , 0x6f05_e540, Step),
    ("ushr v0.4s, v1.4s, #3"                 , 0x6f3d_0420, Step),
    ("addv s0, v1.4s"                        , 0x4eb1_b820, Step),
    ("tbl v0.16b, {v1.16b}, v2.16b"          , 0x4e02_0020, Step),
    ("zip1 v0.8b, v1.8b, v2.8b"              , 0x0e02_3820, Step),
    ("ext v0.16b, v1.16b, v2.16b, #3"        , 0x6e02_1820, Step),
    ("cnt v0.8b, v1.8b"                      , 0x0e20_5820, Step),
    ("aese v0.16b, v1.16b"                   , 0x4e28_4820, Step),
    ("sha256h q0, q1, v2.4s"                 , 0x5e02_4020, Step),
    ("pmull v0.1q, v1.1d, v2.1d"             , 0x0ee2_e020, Step),
    ("mrs x0, nzcv"                          , 0xd53b_4200, Step),
    ("mrs x0, tpidr_el0"                     , 0xd53b_d040, Step),
    ("mrs x1, cntvct_el0"                    , 0xd53b_e041, Step),
    ("yield"                                 , 0xd503_203f, Step),
    ("paciasp"                               , 0xd503_233f, Step),
    ("autiasp"                               , 0xd503_23bf, Step),
    ("bti c"                                 , 0xd503_245f, Step),
    ("dmb ish"                               , 0xd503_3bbf, Step),
    ("dsb sy"                                , 0xd503_3f9f, Step),
    ("isb"                                   , 0xd503_3fdf, Step),
    ("clrex"                                 , 0xd503_3f5f, Step),
    ("pacia x0, x1"                          , 0xdac1_0020, Step),
    ("ldraa x0, [x1, #8]"                    , 0xf820_1420, Step),
];

#[test]
fn assembled_encodings_get_their_class() {
    for &(asm, word, expected) in ASSEMBLED {
        assert_eq!(expect_of(classify(word)), Some(expected), "{asm} ({word:#010x})");
    }
}

#[test]
fn the_branches_policy_steps_nop_and_the_frame_push_and_changes_nothing_else() {
    for &(asm, word, expected) in ASSEMBLED {
        let got = expect_of(classify_with(word, Branches)).unwrap();
        if asm == "nop" || asm.starts_with("stp x29, x30, [sp, #-16]!") {
            assert_eq!(got, Step, "{asm}");
        } else {
            assert_eq!(got, expected, "{asm}");
        }
    }
}

/// The fields the decoder extracts, for the assembled simulated rows.
#[test]
fn simulated_encodings_decode_to_their_fields() {
    use LiteralLoad::*;
    use RegisterBranch::*;
    use Simulation::*;
    let expected: &[(u32, Simulation)] = &[
        (0x1400_0010, Branch { offset: 0x40 }),
        (0x1600_0000, Branch { offset: -0x800_0000 }),
        (0x15ff_ffff, Branch { offset: 0x7ff_fffc }),
        (0x9400_0400, BranchLink { offset: 0x1000 }),
        (0x97ff_ffff, BranchLink { offset: -4 }),
        (0x5400_0040, BranchConditional { condition: Condition::Eq, offset: 8 }),
        (0x5480_0001, BranchConditional { condition: Condition::Ne, offset: -0x10_0000 }),
        (0x547f_ffe8, BranchConditional { condition: Condition::Hi, offset: 0xf_fffc }),
        (0x5400_008f, BranchConditional { condition: Condition::Nv, offset: 16 }),
        (0x3400_0103, CompareBranch { rt: 3, is_64: false, nonzero: false, offset: 0x20 }),
        (0xb5ff_fe07, CompareBranch { rt: 7, is_64: true, nonzero: true, offset: -0x40 }),
        (0xb400_005f, CompareBranch { rt: 31, is_64: true, nonzero: false, offset: 8 }),
        (0x3628_0082, TestBranch { rt: 2, bit: 5, nonzero: false, offset: 0x10 }),
        (0xb7fc_0009, TestBranch { rt: 9, bit: 63, nonzero: true, offset: -0x8000 }),
        (0x3603_ffe0, TestBranch { rt: 0, bit: 0, nonzero: false, offset: 0x7ffc }),
        (0xd61f_0200, BranchRegister { rn: 16, kind: Br }),
        (0xd63f_0100, BranchRegister { rn: 8, kind: Blr }),
        (0xd63f_03c0, BranchRegister { rn: 30, kind: Blr }),
        (0xd65f_03c0, BranchRegister { rn: 30, kind: Ret }),
        (0xd65f_00a0, BranchRegister { rn: 5, kind: Ret }),
        (0x1000_91a0, Adr { rd: 0, offset: 0x1234 }),
        (0x1080_0003, Adr { rd: 3, offset: -0x10_0000 }),
        (0x1000_003f, Adr { rd: 31, offset: 4 }),
        (0xb000_0021, Adrp { rd: 1, offset: 0x5000 }),
        (0x9080_0002, Adrp { rd: 2, offset: -0x1_0000_0000 }),
        (0x1800_0804, LoadLiteral { rt: 4, offset: 0x100, width: Word }),
        (0x58ff_fe05, LoadLiteral { rt: 5, offset: -0x40, width: Doubleword }),
        (0x9800_0406, LoadLiteral { rt: 6, offset: 0x80, width: SignedWord }),
        (0x5800_005f, LoadLiteral { rt: 31, offset: 8, width: Doubleword }),
        (0xd800_1000, PrefetchLiteral),
        (0x9c00_0200, LoadLiteralSimd { rt: 0, offset: 0x40, bytes: 16 }),
        (0x5c00_0201, LoadLiteralSimd { rt: 1, offset: 0x40, bytes: 8 }),
        (0x1c00_0202, LoadLiteralSimd { rt: 2, offset: 0x40, bytes: 4 }),
        (0x9c80_001f, LoadLiteralSimd { rt: 31, offset: -0x10_0000, bytes: 16 }),
        (0xd503_201f, Nop),
        (0xa9bf_7bfd, FramePush),
    ];
    for &(word, simulation) in expected {
        assert_eq!(classify(word), Classification::Simulate(simulation), "{word:#010x}");
    }
    // Every simulated row of the assembled table is covered above.
    let covered = ASSEMBLED.iter().filter(|row| row.2 == Sim).all(|row| expected.iter().any(|e| e.0 == row.1));
    assert!(covered);
}

#[test]
fn every_reject_class_has_its_reason() {
    let rows: &[(u32, Why, &str)] = &[
        // The exclusives, every size and ordering.
        (0x085f_7c20, Exclusive, "ldxrb"),
        (0x485f_7c20, Exclusive, "ldxrh"),
        (0x885f_7c20, Exclusive, "ldxr"),
        (0xc85f_7c20, Exclusive, "ldxr"),
        (0xc85f_fc20, Exclusive, "ldaxr"),
        (0xc804_7cc5, Exclusive, "stxr"),
        (0x8804_fcc5, Exclusive, "stlxr"),
        (0xc87f_0440, Exclusive, "ldxp"),
        (0x887f_8440, Exclusive, "ldaxp"),
        (0xc823_0440, Exclusive, "stxp"),
        (0x8823_8440, Exclusive, "stlxp"),
        (0xd400_0001, ExceptionGenerating, "svc"),
        (0xd400_0022, ExceptionGenerating, "hvc"),
        (0xd400_0043, ExceptionGenerating, "smc"),
        (0xd420_0000, ExceptionGenerating, "brk"),
        (0xd440_0000, ExceptionGenerating, "hlt"),
        (0xd4a0_0001, ExceptionGenerating, "dcps1"),
        (0xd69f_03e0, ExceptionGenerating, "eret"),
        (0xd69f_0bff, ExceptionGenerating, "eretaa"),
        (0xd6bf_03e0, ExceptionGenerating, "drps"),
        (0xd51b_4200, SystemRegisterWrite, "msr"),
        (0xd503_42df, SystemRegisterWrite, "msr (immediate)"),
        (0xd500_401f, SystemRegisterWrite, "cfinv"),
        (0xd50b_7420, SystemInstruction, "sys"),
        (0xd52b_7520, SystemInstruction, "sysl"),
        (0xd71f_0820, UnsimulatedBranch, "braa"),
        (0xd65f_0fff, UnsimulatedBranch, "retab"),
        (0xd63f_087f, UnsimulatedBranch, "blraaz"),
        (0x0000_0000, Unallocated, ""),
        (0xdc00_0000, Unallocated, ""), // ldr (literal, SIMD&FP) with opc = 11
        (0x5500_0000, Unallocated, ""), // conditional branch with o1 = 1
        (0xd6ff_03e0, Unallocated, ""), // branch (register) opc = 0111
    ];
    for &(word, expected, mnemonic) in rows {
        let Classification::Reject(reason) = classify(word) else {
            panic!("{word:#010x} not rejected");
        };
        assert_eq!(why(reason), Some(expected), "{word:#010x}: {reason}");
        assert!(reason.to_string().contains(mnemonic), "{word:#010x}: {reason}");
    }
}

#[test]
fn reject_reasons_read_as_sentences() {
    let cases = [
        (0x885f_7c20, "exclusive load/store (ldxr) cannot be stepped out of line"),
        (0xd420_0000, "brk is a brk/hlt/svc/hvc/smc/eret"),
        (0xd51b_4200, "msr writes a system register"),
        (0x0000_0000, "unallocated encoding"),
        (0x0400_0000, "SVE instructions are not in the classifier's decode tables"),
    ];
    for (word, text) in cases {
        let Classification::Reject(reason) = classify(word) else { panic!("{word:#x}") };
        assert_eq!(reason.to_string(), text);
    }
}

#[test]
fn the_named_encodings_match_their_own_values_and_are_distinct() {
    for (index, encoding) in encodings::ALL.iter().enumerate() {
        assert!(encoding.matches(encoding.value), "{}", encoding.name);
        for other in &encodings::ALL[index + 1..] {
            assert_ne!(encoding.name, other.name);
        }
    }
    // The simulated classes never overlap each other.
    let simulated = [
        encodings::B,
        encodings::BL,
        encodings::B_COND,
        encodings::BC_COND,
        encodings::CBZ,
        encodings::CBNZ,
        encodings::TBZ,
        encodings::TBNZ,
        encodings::BR,
        encodings::BLR,
        encodings::RET,
        encodings::ADR,
        encodings::ADRP,
        encodings::LDR_LITERAL_W,
        encodings::LDR_LITERAL_X,
        encodings::LDRSW_LITERAL,
        encodings::LDR_LITERAL_S,
        encodings::LDR_LITERAL_D,
        encodings::LDR_LITERAL_Q,
        encodings::PRFM_LITERAL,
        encodings::NOP,
        encodings::STP_FRAME_PUSH,
    ];
    for a in &simulated {
        for b in &simulated {
            if a.name != b.name {
                assert!(!b.matches(a.value), "{} matches {}", b.name, a.name);
            }
        }
    }
}

#[test]
fn brk_encodes_and_decodes_its_immediate() {
    assert_eq!(brk(0), 0xd420_0000);
    assert_eq!(brk(0x4d2), 0xd420_9a40);
    for immediate in [0, 1, 0x4d2, 0xffff] {
        assert_eq!(Aarch64::breakpoint_immediate(Aarch64::breakpoint(immediate)), Some(immediate));
    }
    assert_eq!(Aarch64::breakpoint_immediate(0xd503_201f), None);
    assert_eq!(Aarch64::breakpoint_immediate(0xd440_0000), None); // hlt
}

#[test]
fn bitmask_immediates_follow_decode_bit_masks() {
    use super::decode::bitmask_immediate_is_valid as valid;
    // and x0, x1, #0xff: N = 1, imms = 000111.
    assert!(valid(1, 0b000111, true));
    // All ones in a 64-bit element (imms = 111111 with N = 1): no encoding.
    assert!(!valid(1, 0b111111, true));
    // All ones in a 2-bit element (imms = 111101): no encoding.
    assert!(!valid(0, 0b111101, true));
    // imms = 111110 with N = 0: the element size would be 1 bit.
    assert!(!valid(0, 0b111110, true));
    assert!(!valid(0, 0b111111, false));
    // ...but a bitfield move accepts an all-ones run.
    assert!(valid(1, 0b111111, false));
}

// ---- The simulator ------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Frame {
    x: [u64; 31],
    v: [u128; 32],
    sp: u64,
    pc: u64,
    nzcv: u32,
}

impl Registers for Frame {
    fn x(&self, index: u8) -> u64 {
        assert!(index < 31, "x{index} asked for: the simulator must decide what 31 means");
        self.x[index as usize]
    }
    fn set_x(&mut self, index: u8, value: u64) {
        assert!(index < 31, "x{index} written");
        self.x[index as usize] = value;
    }
    fn sp(&self) -> u64 {
        self.sp
    }
    fn set_sp(&mut self, value: u64) {
        self.sp = value;
    }
    fn pc(&self) -> u64 {
        self.pc
    }
    fn set_pc(&mut self, value: u64) {
        self.pc = value;
    }
    fn nzcv(&self) -> u32 {
        self.nzcv
    }
    fn set_v(&mut self, index: u8, value: u128) {
        self.v[index as usize] = value;
    }
}

/// A task's memory: one window of bytes, readable, writable if `writable`,
/// everything else unmapped.
struct Window {
    base: u64,
    bytes: Vec<u8>,
    writable: bool,
}

impl Window {
    fn new(base: u64, len: usize) -> Self {
        let bytes = (0..len).map(|i| (i * 7 + 1) as u8).collect();
        Self { base, bytes, writable: true }
    }

    fn range(&self, addr: u64, len: usize, write: bool) -> Result<core::ops::Range<usize>, SimulationFault> {
        let fault = SimulationFault::UserAccess { addr, write };
        if write && !self.writable {
            return Err(fault);
        }
        let start = addr.checked_sub(self.base).ok_or(fault)? as usize;
        if start + len > self.bytes.len() {
            return Err(fault);
        }
        Ok(start..start + len)
    }
}

impl UserMemory for Window {
    fn read_u32(&mut self, addr: u64) -> Result<u32, SimulationFault> {
        let range = self.range(addr, 4, false)?;
        Ok(u32::from_le_bytes(self.bytes[range].try_into().unwrap()))
    }
    fn read_u64(&mut self, addr: u64) -> Result<u64, SimulationFault> {
        let range = self.range(addr, 8, false)?;
        Ok(u64::from_le_bytes(self.bytes[range].try_into().unwrap()))
    }
    fn write_u64(&mut self, addr: u64, value: u64) -> Result<(), SimulationFault> {
        let range = self.range(addr, 8, true)?;
        self.bytes[range].copy_from_slice(&value.to_le_bytes());
        Ok(())
    }
}

const PC: u64 = 0x40_1000;

fn frame() -> Frame {
    let mut frame = Frame { sp: 0x7fff_0000, pc: PC, ..Frame::default() };
    for (i, x) in frame.x.iter_mut().enumerate() {
        *x = 0x1111 * i as u64;
    }
    for (i, v) in frame.v.iter_mut().enumerate() {
        *v = u128::MAX - i as u128;
    }
    frame
}

/// Classify `word`, which must be simulated, and run it at `PC` on `regs`.
fn run(word: u32, regs: &mut Frame, mem: &mut Window) -> Result<(), SimulationFault> {
    let Classification::Simulate(simulation) = classify(word) else { panic!("{word:#x} is not simulated") };
    simulate(&simulation, PC, regs, mem)
}

fn no_memory() -> Window {
    Window::new(0, 0)
}

#[test]
fn b_and_bl_branch_relative_to_the_probed_address() {
    let mut regs = frame();
    run(0x1400_0010, &mut regs, &mut no_memory()).unwrap(); // b .+0x40
    assert_eq!(regs.pc, PC + 0x40);
    assert_eq!(regs.x[30], frame().x[30]);
    let mut regs = frame();
    run(0x97ff_ffff, &mut regs, &mut no_memory()).unwrap(); // bl .-4
    assert_eq!((regs.pc, regs.x[30]), (PC - 4, PC + 4));
}

/// Every condition against every NZCV, checked against the conditions'
/// definitions written out by name (Arm ARM C1.2.4, table C1-1).
#[test]
fn b_cond_evaluates_all_sixteen_conditions_from_nzcv() {
    for cond in 0..16u32 {
        for flags in 0..16u32 {
            let (n, z, c, v) = (flags & 8 != 0, flags & 4 != 0, flags & 2 != 0, flags & 1 != 0);
            let expected = match cond {
                0 => z,
                1 => !z,
                2 => c,
                3 => !c,
                4 => n,
                5 => !n,
                6 => v,
                7 => !v,
                8 => c && !z,
                9 => !c || z,
                10 => n == v,
                11 => n != v,
                12 => !z && n == v,
                13 => z || n != v,
                _ => true, // al, nv
            };
            let mut regs = Frame { nzcv: flags << 28, ..frame() };
            // b.<cond> .+0x20: imm19 = 8
            run(0x5400_0000 | 8 << 5 | cond, &mut regs, &mut no_memory()).unwrap();
            let taken = regs.pc == PC + 0x20;
            assert_eq!(taken, expected, "cond {cond:#06b} nzcv {flags:#06b}");
            assert!(taken || regs.pc == PC + 4);
        }
    }
}

#[test]
fn cbz_and_cbnz_compare_a_w_register_by_its_low_half() {
    let mut regs = frame();
    regs.x[3] = 0xffff_ffff_0000_0000; // w3 == 0
    run(0x3400_0103, &mut regs, &mut no_memory()).unwrap(); // cbz w3, .+0x20
    assert_eq!(regs.pc, PC + 0x20);
    let mut regs = frame();
    regs.x[7] = 0xffff_ffff_0000_0000; // x7 != 0
    run(0xb5ff_fe07, &mut regs, &mut no_memory()).unwrap(); // cbnz x7, .-0x40
    assert_eq!(regs.pc, PC - 0x40);
    let mut regs = frame();
    regs.x[7] = 0;
    run(0xb5ff_fe07, &mut regs, &mut no_memory()).unwrap();
    assert_eq!(regs.pc, PC + 4);
    let mut regs = frame();
    run(0xb400_005f, &mut regs, &mut no_memory()).unwrap(); // cbz xzr: always taken
    assert_eq!(regs.pc, PC + 8);
}

#[test]
fn tbz_and_tbnz_test_one_bit() {
    let mut regs = frame();
    regs.x[9] = 1 << 63;
    run(0xb7fc_0009, &mut regs, &mut no_memory()).unwrap(); // tbnz x9, #63, .-0x8000
    assert_eq!(regs.pc, PC - 0x8000);
    let mut regs = frame();
    regs.x[2] = !(1 << 5);
    run(0x3628_0082, &mut regs, &mut no_memory()).unwrap(); // tbz w2, #5, .+0x10
    assert_eq!(regs.pc, PC + 0x10);
    let mut regs = frame();
    regs.x[2] = 1 << 5;
    run(0x3628_0082, &mut regs, &mut no_memory()).unwrap();
    assert_eq!(regs.pc, PC + 4);
}

/// The decision a trace prints says what the simulator did, with the flags
/// or the register that decided it.
#[test]
fn conditional_branches_say_whether_they_were_taken_and_why() {
    let decide = |word: u32, regs: &Frame| {
        let Classification::Simulate(simulation) = classify(word) else { panic!("{word:#x} is not simulated") };
        branch_decision(&simulation, regs).expect("a conditional branch")
    };
    // b.gt .+0x20 with Z=0, N=V=1 (NZCV=1001): taken.
    let regs = Frame { nzcv: 0b1001 << 28, ..frame() };
    let gt = decide(0x5400_0000 | 8 << 5 | 12, &regs);
    assert!(gt.taken);
    assert_eq!(gt.to_string(), "b.gt taken: N=1 Z=0 V=1 (NZCV=1001; gt: Z=0 and N=V)");
    // b.ne with Z=1: not taken.
    let regs = Frame { nzcv: 0b0110 << 28, ..frame() };
    assert_eq!(decide(0x5400_0101, &regs).to_string(), "b.ne not taken: Z=1 (NZCV=0110; ne: Z=0)");
    assert_eq!(decide(0x5400_010e, &regs).to_string(), "b.al taken: always (NZCV=0110; al: always)");
    // cbz w3 reads the low half only; cbz xzr is always taken.
    let mut regs = frame();
    regs.x[3] = 0xffff_ffff_0000_0000;
    assert_eq!(decide(0x3400_0103, &regs).to_string(), "cbz taken: w3 = 0x0");
    assert_eq!(decide(0xb400_005f, &regs).to_string(), "cbz taken: xzr = 0x0");
    regs.x[7] = 0;
    assert_eq!(decide(0xb5ff_fe07, &regs).to_string(), "cbnz not taken: x7 = 0x0");
    // tbz w2, #5 and tbnz x9, #63.
    regs.x[2] = 0xffff_ffff_0000_0020;
    assert_eq!(decide(0x3628_0082, &regs).to_string(), "tbz not taken: bit 5 of w2 is 1 (w2 = 0x20)");
    regs.x[9] = 1 << 63;
    assert_eq!(decide(0xb7fc_0009, &regs).to_string(), "tbnz taken: bit 63 of x9 is 1 (x9 = 0x8000000000000000)");
    // Anything else is no conditional branch.
    let Classification::Simulate(b) = classify(0x1400_0010) else { panic!("b is simulated") };
    assert_eq!(branch_decision(&b, &regs), None);
}

/// For every condition and every NZCV, the decision is what the simulator
/// did, and it names exactly the flags the condition's rule reads.
#[test]
fn branch_decisions_agree_with_the_simulator_and_name_the_flags_the_rule_reads() {
    for cond in 0..16u32 {
        let condition = Condition::from_bits(cond);
        for flags in 0..16u32 {
            let mut regs = Frame { nzcv: flags << 28, ..frame() };
            let word = 0x5400_0000 | 8 << 5 | cond;
            let Classification::Simulate(simulation) = classify(word) else { panic!("b.cond is simulated") };
            let decision = branch_decision(&simulation, &regs).unwrap();
            run(word, &mut regs, &mut no_memory()).unwrap();
            assert_eq!(decision.taken, regs.pc == PC + 0x20, "cond {cond:#06b} nzcv {flags:#06b}");
            let text = decision.to_string();
            for flag in ["N", "Z", "C", "V"] {
                let named = text.contains(&std::format!(" {flag}="));
                assert_eq!(named, condition.rule().contains(flag), "{text}");
            }
        }
    }
}

#[test]
fn br_blr_and_ret_jump_to_a_register() {
    let mut regs = frame();
    run(0xd61f_0200, &mut regs, &mut no_memory()).unwrap(); // br x16
    assert_eq!(regs.pc, frame().x[16]);
    let mut regs = frame();
    run(0xd63f_0100, &mut regs, &mut no_memory()).unwrap(); // blr x8
    assert_eq!((regs.pc, regs.x[30]), (frame().x[8], PC + 4));
    let mut regs = frame();
    run(0xd63f_03c0, &mut regs, &mut no_memory()).unwrap(); // blr x30: jumps to the old x30
    assert_eq!((regs.pc, regs.x[30]), (frame().x[30], PC + 4));
    let mut regs = frame();
    run(0xd65f_03c0, &mut regs, &mut no_memory()).unwrap(); // ret
    assert_eq!(regs.pc, frame().x[30]);
    let mut regs = frame();
    run(0xd65f_00a0, &mut regs, &mut no_memory()).unwrap(); // ret x5
    assert_eq!(regs.pc, frame().x[5]);
    let mut regs = frame();
    run(0xd61f_03e0, &mut regs, &mut no_memory()).unwrap(); // br xzr: to address 0
    assert_eq!(regs.pc, 0);
}

#[test]
fn adr_and_adrp_compute_from_the_probed_address() {
    let mut regs = frame();
    run(0x1000_91a0, &mut regs, &mut no_memory()).unwrap(); // adr x0, .+0x1234
    assert_eq!((regs.x[0], regs.pc), (PC + 0x1234, PC + 4));
    let mut regs = frame();
    run(0xb000_0021, &mut regs, &mut no_memory()).unwrap(); // adrp x1, .+0x5000
    assert_eq!(regs.x[1], (PC & !0xfff) + 0x5000);
    let mut regs = Frame { pc: 0, ..frame() };
    let at = 0x40_1abc;
    let Classification::Simulate(adrp) = classify(0x9080_0002) else { panic!() }; // adrp x2, .-4 GiB
    simulate(&adrp, at, &mut regs, &mut no_memory()).unwrap();
    assert_eq!(regs.x[2], (at & !0xfff).wrapping_sub(0x1_0000_0000));
    let mut regs = frame();
    run(0x1000_003f, &mut regs, &mut no_memory()).unwrap(); // adr xzr: nothing written
    assert_eq!(regs.x, frame().x);
    assert_eq!(regs.pc, PC + 4);
}

#[test]
fn ldr_literal_reads_through_the_checked_path() {
    let mut mem = Window::new(PC, 0x200);
    let word_at = |mem: &Window, offset: usize| u32::from_le_bytes(mem.bytes[offset..offset + 4].try_into().unwrap());
    let mut regs = frame();
    run(0x1800_0804, &mut regs, &mut mem).unwrap(); // ldr w4, .+0x100
    assert_eq!(regs.x[4], u64::from(word_at(&mem, 0x100)));
    assert_eq!(regs.pc, PC + 4);
    // ldrsw sign-extends: make the literal negative.
    mem.bytes[0x80..0x84].copy_from_slice(&0x8000_0001u32.to_le_bytes());
    let mut regs = frame();
    run(0x9800_0406, &mut regs, &mut mem).unwrap(); // ldrsw x6, .+0x80
    assert_eq!(regs.x[6], 0xffff_ffff_8000_0001);
    let mut regs = frame();
    run(0x5800_005f, &mut regs, &mut mem).unwrap(); // ldr xzr, .+8: loads, discards
    assert_eq!(regs.x, frame().x);
    // Outside the task's memory: a fault, and the registers stay as they were.
    let mut regs = frame();
    assert_eq!(
        run(0x58ff_fe05, &mut regs, &mut mem), // ldr x5, .-0x40
        Err(SimulationFault::UserAccess { addr: PC - 0x40, write: false })
    );
    assert_eq!(regs, frame());
    let mut regs = frame();
    assert!(run(0x5800_005f, &mut regs, &mut no_memory()).is_err(), "xzr loads still fault");
}

/// `ldr s/d/q, label` reads 4, 8 or 16 bytes through the checked path and
/// writes the whole V register: the bits above a scalar's size become zero.
#[test]
fn ldr_literal_simd_fp_writes_the_whole_v_register() {
    let mut mem = Window::new(PC, 0x200);
    let bytes_at = |mem: &Window, len: usize| {
        let mut value = [0u8; 16];
        value[..len].copy_from_slice(&mem.bytes[0x40..0x40 + len]);
        u128::from_le_bytes(value)
    };
    for (word, rt, len) in [(0x9c00_0200u32, 0usize, 16usize), (0x5c00_0201, 1, 8), (0x1c00_0202, 2, 4)] {
        let mut regs = frame();
        run(word, &mut regs, &mut mem).unwrap();
        assert_eq!(regs.v[rt], bytes_at(&mem, len), "{word:#x}");
        assert!(len == 16 || regs.v[rt] >> (len * 8) == 0, "{word:#x}: the bits above the scalar are zero");
        assert_eq!(regs.pc, PC + 4);
        assert_eq!(regs.x, frame().x);
        // Every other V register is as it was.
        let mut expected = frame().v;
        expected[rt] = regs.v[rt];
        assert_eq!(regs.v, expected);
    }
    // ldr q31, .-0x100000: outside the window, a fault; nothing changes.
    let mut regs = frame();
    assert_eq!(
        run(0x9c80_001f, &mut regs, &mut mem),
        Err(SimulationFault::UserAccess { addr: PC - 0x10_0000, write: false })
    );
    assert_eq!(regs, frame());
    // A q literal whose second half is unmapped faults at that half, and V
    // stays as it was (the first half was read, but never written back).
    let mut short = Window::new(PC + 0x40, 8);
    let mut regs = frame();
    assert_eq!(
        run(0x9c00_0200, &mut regs, &mut short),
        Err(SimulationFault::UserAccess { addr: PC + 0x48, write: false })
    );
    assert_eq!(regs, frame());
}

#[test]
fn prfm_literal_and_nop_only_move_on() {
    for word in [0xd800_1000, 0xd503_201f] {
        let mut regs = frame();
        run(word, &mut regs, &mut no_memory()).unwrap();
        assert_eq!(regs, Frame { pc: PC + 4, ..frame() });
    }
}

#[test]
fn the_frame_push_stores_the_pair_below_sp() {
    let stack_top = 0x7fff_0000;
    let mut mem = Window::new(stack_top - 0x100, 0x100);
    let mut regs = frame();
    run(0xa9bf_7bfd, &mut regs, &mut mem).unwrap();
    assert_eq!(regs.sp, stack_top - 16);
    assert_eq!(regs.pc, PC + 4);
    assert_eq!(mem.read_u64(stack_top - 16).unwrap(), frame().x[29]);
    assert_eq!(mem.read_u64(stack_top - 8).unwrap(), frame().x[30]);
}

#[test]
fn a_faulting_frame_push_leaves_the_registers_unchanged() {
    // Only the lower half of the pair is mapped: the second store faults.
    let stack_top = 0x7fff_0000;
    let mut mem = Window::new(stack_top - 16, 8);
    let mut regs = frame();
    assert_eq!(
        run(0xa9bf_7bfd, &mut regs, &mut mem),
        Err(SimulationFault::UserAccess { addr: stack_top - 8, write: true })
    );
    assert_eq!(regs, frame());
    // Read-only stack.
    let mut mem = Window { writable: false, ..Window::new(stack_top - 0x100, 0x100) };
    assert!(run(0xa9bf_7bfd, &mut regs, &mut mem).is_err());
    assert_eq!(regs, frame());
    // A misaligned SP: the SP alignment fault SCTLR_EL1.SA0 asks for.
    let mut mem = Window::new(stack_top - 0x100, 0x100);
    let mut regs = Frame { sp: stack_top - 8, ..frame() };
    assert_eq!(run(0xa9bf_7bfd, &mut regs, &mut mem), Err(SimulationFault::SpAlignment { sp: stack_top - 8 }));
    assert_eq!(regs, Frame { sp: stack_top - 8, ..frame() });
}

#[test]
fn the_arch_trait_simulates_through_trait_objects() {
    let mut regs = frame();
    let Classification::Simulate(simulation) = Aarch64::classify(0x1400_0010, SimulatePolicy::All) else { panic!() };
    let registers: &mut dyn Registers = &mut regs;
    let memory: &mut dyn UserMemory = &mut no_memory();
    Aarch64::simulate(&simulation, PC, registers, memory).unwrap();
    assert_eq!(regs.pc, PC + 0x40);
}

// ---- Properties -----------------------------------------------------------------

/// The new PC after simulating `word` at `pc` with every condition true and
/// every tested register zero.
fn target(word: u32, pc: u64) -> u64 {
    let Classification::Simulate(simulation) = classify(word) else { panic!("{word:#x}") };
    let mut regs = Frame { nzcv: 0, ..Frame::default() };
    simulate(&simulation, pc, &mut regs, &mut no_memory()).unwrap();
    regs.pc
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// b: imm26, scaled by 4, sign-extended: +-128 MiB.
    #[test]
    fn b_offsets_sign_extend(imm in -(1i64 << 25)..(1i64 << 25), pc in any::<u64>()) {
        let word = 0x1400_0000 | (imm as u32 & 0x3ff_ffff);
        prop_assert_eq!(target(word, pc), pc.wrapping_add((imm * 4) as u64));
    }

    /// b.eq (taken with Z = 0? no: use b.al), cbz with xzr, tbz on xzr: imm19
    /// and imm14, scaled by 4, sign-extended.
    #[test]
    fn conditional_offsets_sign_extend(imm19 in -(1i64 << 18)..(1i64 << 18), imm14 in -(1i64 << 13)..(1i64 << 13), pc in any::<u64>()) {
        let field19 = (imm19 as u32 & 0x7_ffff) << 5;
        prop_assert_eq!(target(0x5400_000e | field19, pc), pc.wrapping_add((imm19 * 4) as u64)); // b.al
        prop_assert_eq!(target(0xb400_001f | field19, pc), pc.wrapping_add((imm19 * 4) as u64)); // cbz xzr
        let field14 = (imm14 as u32 & 0x3fff) << 5;
        prop_assert_eq!(target(0xb6f8_001f | field14, pc), pc.wrapping_add((imm14 * 4) as u64)); // tbz xzr, #63
    }

    /// adr: immhi:immlo, 21 bits, unscaled; adrp: the same in 4 KiB pages
    /// from the page of the PC.
    #[test]
    fn adr_and_adrp_offsets_sign_extend(imm in -(1i64 << 20)..(1i64 << 20), pc in any::<u64>()) {
        let fields = ((imm as u32 & 3) << 29) | (((imm as u32 >> 2) & 0x7_ffff) << 5);
        let Classification::Simulate(adr) = classify(0x1000_0000 | fields) else { panic!() };
        let Classification::Simulate(adrp) = classify(0x9000_0000 | fields) else { panic!() };
        let mut regs = Frame::default();
        simulate(&adr, pc, &mut regs, &mut no_memory()).unwrap();
        prop_assert_eq!(regs.x[0], pc.wrapping_add(imm as u64));
        simulate(&adrp, pc, &mut regs, &mut no_memory()).unwrap();
        prop_assert_eq!(regs.x[0], (pc & !0xfff).wrapping_add((imm << 12) as u64));
    }

    /// ldr literal: the address read is PC + imm19 * 4, whatever the sign.
    #[test]
    fn ldr_literal_offsets_sign_extend(imm in -(1i64 << 18)..(1i64 << 18), pc in any::<u64>()) {
        let word = 0x5800_0000 | ((imm as u32 & 0x7_ffff) << 5);
        let Classification::Simulate(simulation) = classify(word) else { panic!() };
        let result = simulate(&simulation, pc, &mut Frame::default(), &mut no_memory());
        let addr = pc.wrapping_add((imm * 4) as u64);
        prop_assert_eq!(result, Err(SimulationFault::UserAccess { addr, write: false }));
    }

    /// Any word: a simulated word is one of the simulated encodings; a
    /// stepped word is none of the PC-reading, branching, exclusive or
    /// system-writing ones; the two policies differ only on nop and the
    /// frame push.
    #[test]
    fn classification_is_consistent_with_the_named_encodings(word in any::<u32>()) {
        use encodings::*;
        let all = classify_with(word, SimulatePolicy::All);
        let branches = classify_with(word, Branches);
        let simple = NOP.matches(word) || STP_FRAME_PUSH.matches(word);
        if simple {
            prop_assert!(matches!(all, Classification::Simulate(_)));
            prop_assert_eq!(branches, Classification::Step);
        } else {
            prop_assert_eq!(all, branches);
        }
        let pc_dependent = [B, BL, B_COND, BC_COND, CBZ, CBNZ, TBZ, TBNZ, BR, BLR, RET, ADR, ADRP, LDR_LITERAL_W, LDR_LITERAL_X, LDRSW_LITERAL, LDR_LITERAL_S, LDR_LITERAL_D, LDR_LITERAL_Q, PRFM_LITERAL];
        let forbidden = [LOAD_STORE_EXCLUSIVE_REGISTER, LOAD_STORE_EXCLUSIVE_PAIR, SVC, HVC, SMC, BRK, HLT, DCPS, ERET, ERETA, DRPS, BRA_ZERO_MODIFIER, BLRA_ZERO_MODIFIER, RETA, BRA, BLRA, MSR_IMMEDIATE, MSR_REGISTER, SYS, SYSL];
        match all {
            Classification::Simulate(_) => {
                prop_assert!(simple || pc_dependent.iter().any(|e| e.matches(word)), "{:#x}", word);
            }
            Classification::Step => {
                for encoding in pc_dependent.iter().chain(&forbidden) {
                    prop_assert!(!encoding.matches(word), "{:#x} stepped but is {}", word, encoding.name);
                }
            }
            Classification::Reject(_) => {
                prop_assert!(!pc_dependent.iter().any(|e| e.matches(word)), "{:#x} rejected", word);
            }
        }
    }
}

#[test]
fn every_pc_dependent_encoding_is_simulated_for_every_operand() {
    // Walk each simulated encoding's fields with a stride: thousands of words
    // per class, none of them stepped or rejected.
    let classes = [
        encodings::B,
        encodings::BL,
        encodings::B_COND,
        encodings::BC_COND,
        encodings::CBZ,
        encodings::CBNZ,
        encodings::TBZ,
        encodings::TBNZ,
        encodings::ADR,
        encodings::ADRP,
        encodings::LDR_LITERAL_W,
        encodings::LDR_LITERAL_X,
        encodings::LDRSW_LITERAL,
        encodings::LDR_LITERAL_S,
        encodings::LDR_LITERAL_D,
        encodings::LDR_LITERAL_Q,
        encodings::PRFM_LITERAL,
        encodings::BR,
        encodings::BLR,
        encodings::RET,
    ];
    for class in classes {
        let free = !class.mask;
        let mut checked = 0;
        let mut operands = 0u32;
        loop {
            let word = class.value | (operands & free);
            assert!(matches!(classify(word), Classification::Simulate(_)), "{} {word:#010x}", class.name);
            checked += 1;
            // Next subset of the free bits, in steps that reach the top bits.
            operands = operands.wrapping_add(0x0001_0101 | 0x1f) & free;
            if operands == 0 || checked > 4096 {
                break;
            }
        }
    }
}

#[test]
fn the_table_lists_what_it_says() {
    let names: Vec<_> = vec![encodings::B.name, encodings::STP_FRAME_PUSH.name];
    assert_eq!(names, ["b", "stp x29, x30, [sp, #-16]!"]);
}
