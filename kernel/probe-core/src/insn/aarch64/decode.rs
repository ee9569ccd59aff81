//! The A64 decoder behind the classifier: a walk down the Arm ARM's decode
//! tables (DDI 0487, C4.1 "A64 instruction set encoding" and the group tables
//! under it), written out by hand, that ends at one of four verdicts: must be
//! simulated, may be simulated, may be stepped, or rejected (with why).
//!
//! Scope of "allocated": Armv8.0-A (with the AES/SHA1/SHA256 cryptographic
//! extension and CRC32) plus the Armv8.x features a user program is likely to
//! contain and that need no special state: FEAT_LSE (atomics, `cas`),
//! FEAT_LRCPC and FEAT_LRCPC2 (`ldapr`, `ldapur`), FEAT_LOR (`ldlar`),
//! FEAT_PAuth (`pacia`, `autia`, `ldraa`, and the hints), FEAT_FlagM (`rmif`,
//! `setf8`), FEAT_SB, FEAT_BTI (a hint), FEAT_HBC (`bc.cond`). Other
//! extensions (SVE, SME, FP16 arithmetic, dot product, ...) are rejected as
//! [`RejectReason::Unsupported`]: refused, not guessed at. Every rule below is
//! one row of an Arm ARM table; the row is named in the comment.
//!
//! Field names follow the Arm ARM: `sf`, `size`, `opc`, `Q`, `U`, `Rn`, ...

use super::{
    encodings::{self, Encoding},
    Condition, LiteralLoad, RegisterBranch, Simulation,
};
use crate::insn::RejectReason;

/// Where an instruction stands before the simulation policy is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Its effect depends on its address: simulate it, always.
    PcDependent(Simulation),
    /// Position-independent, but cheap to simulate (`nop`, the frame push):
    /// simulated under `SimulatePolicy::All`, stepped under `Branches`.
    Simple(Simulation),
    /// Runs the same from an XOL slot.
    Step,
    Reject(RejectReason),
}

use Verdict::{PcDependent, Reject, Step};

const UNALLOCATED: Verdict = Reject(RejectReason::Unallocated);

const fn constrained_unpredictable(what: &'static str) -> Verdict {
    Reject(RejectReason::ConstrainedUnpredictable { what })
}

const fn unsupported(extension: &'static str) -> Verdict {
    Reject(RejectReason::Unsupported { extension })
}

const SVE: Verdict = unsupported("SVE");
const SME: Verdict = unsupported("SME");
const FP16: Verdict = unsupported("half-precision arithmetic (FEAT_FP16)");
const FHM: Verdict = unsupported("half-precision multiply-add long (FEAT_FHM)");
const DOT_AND_FRIENDS: Verdict =
    unsupported("Advanced SIMD three-register extension (dot product, complex, RDM, BF16, I8MM)");
const RDM: Verdict = unsupported("rounding doubling multiply-accumulate (FEAT_RDM)");
const MTE: Verdict = unsupported("memory tagging (FEAT_MTE)");
const CSSC: Verdict = unsupported("common short sequence compression (FEAT_CSSC)");
const MOPS: Verdict = unsupported("memory copy and set (FEAT_MOPS)");
const LS64: Verdict = unsupported("64-byte loads and stores (FEAT_LS64)");
const TME: Verdict = unsupported("transactional memory (FEAT_TME)");
const CRYPTO_V82: Verdict = unsupported("SHA512/SHA3/SM3/SM4 (Armv8.2 cryptographic extension)");
const FRINTTS: Verdict = unsupported("floating-point round to integer (FEAT_FRINTTS)");
const JSCVT: Verdict = unsupported("JavaScript conversion (FEAT_JSCVT)");
const BF16: Verdict = unsupported("BFloat16 (FEAT_BF16)");
const WFXT: Verdict = unsupported("wait with timeout (FEAT_WFxT)");
const XS: Verdict = unsupported("XS attribute barriers (FEAT_XS)");
const NEWER: Verdict = unsupported("an Armv8.7+ or Armv9");

/// `word<hi:lo>`
const fn field(word: u32, hi: u32, lo: u32) -> u32 {
    (word >> lo) & ((1 << (hi - lo + 1)) - 1)
}

/// `word<n>`
const fn bit(word: u32, n: u32) -> u32 {
    (word >> n) & 1
}

/// `SignExtend(value<bits-1:0>, 64)`
const fn sign_extend(value: u32, bits: u32) -> i64 {
    ((value as i64) << (64 - bits)) >> (64 - bits)
}

/// Allocated if `ok`, else unallocated: the shape of most table rows.
const fn step_if(ok: bool) -> Verdict {
    if ok {
        Step
    } else {
        UNALLOCATED
    }
}

/// C4.1, "A64 instruction set encoding": the main table, on op0 = `word<31>`
/// and op1 = `word<28:25>`.
pub(super) fn decode(word: u32) -> Verdict {
    match field(word, 28, 25) {
        // Reserved (op0 = 0): `udf #imm16` and the rest of the space are
        // permanently undefined. SME (op0 = 1).
        0b0000 if bit(word, 31) == 0 => UNALLOCATED,
        0b0000 => SME,
        0b0001 | 0b0011 => UNALLOCATED,
        0b0010 => SVE,
        0b1000 | 0b1001 => data_processing_immediate(word),
        0b1010 | 0b1011 => branches_exception_system(word),
        0b0100 | 0b0110 | 0b1100 | 0b1110 => loads_and_stores(word),
        0b0101 | 0b1101 => data_processing_register(word),
        _ => simd_and_fp(word), // x111
    }
}

// ===== Data processing -- immediate (C4.1.86) ===============================

fn data_processing_immediate(word: u32) -> Verdict {
    let sf = bit(word, 31);
    match field(word, 25, 23) {
        // PC-rel. addressing: adr, adrp.
        0b000 | 0b001 => {
            let rd = field(word, 4, 0) as u8;
            let imm = sign_extend(field(word, 23, 5) << 2 | field(word, 30, 29), 21);
            if encodings::ADRP.matches(word) {
                PcDependent(Simulation::Adrp { rd, offset: imm << 12 })
            } else {
                PcDependent(Simulation::Adr { rd, offset: imm })
            }
        }
        // Add/subtract (immediate): every opc/S/sh combination is allocated.
        0b010 => Step,
        // Add/subtract (immediate, with tags) and min/max (immediate).
        0b011 if bit(word, 22) == 0 => MTE,
        0b011 => CSSC,
        // Logical (immediate): N = 1 needs sf = 1; the bitmask must decode.
        0b100 => {
            let n = bit(word, 22);
            step_if(!(sf == 0 && n == 1) && bitmask_immediate_is_valid(n, field(word, 15, 10), true))
        }
        // Move wide (immediate): opc = 01 unallocated; hw<1> = 1 needs sf = 1.
        0b101 => step_if(field(word, 30, 29) != 0b01 && !(sf == 0 && bit(word, 22) == 1)),
        // Bitfield: opc = 11 unallocated; N must equal sf; a 32-bit form
        // cannot name bit 32 or above.
        0b110 => {
            let (n, immr, imms) = (bit(word, 22), field(word, 21, 16), field(word, 15, 10));
            step_if(field(word, 30, 29) != 0b11 && n == sf && (sf == 1 || (immr < 32 && imms < 32)))
        }
        // Extract: op21 = 00, o0 = 0, N = sf, imms < 32 for 32-bit.
        _ => {
            let (n, imms) = (bit(word, 22), field(word, 15, 10));
            step_if(field(word, 30, 29) == 0 && bit(word, 21) == 0 && n == sf && (sf == 1 || imms < 32))
        }
    }
}

/// `DecodeBitMasks` (shared pseudocode J1): the (N, imms) pair must give an
/// element size (`len >= 1`), and for a logical immediate the run of ones may
/// not fill the whole element (that would be all ones, which has no encoding).
pub(super) const fn bitmask_immediate_is_valid(n: u32, imms: u32, logical: bool) -> bool {
    let combined = (n << 6) | (!imms & 0x3f);
    if combined < 2 {
        return false; // HighestSetBit < 1
    }
    let len = 31 - combined.leading_zeros();
    let levels = (1 << len) - 1;
    !(logical && (imms & levels) == levels)
}

// ===== Branches, exception generating and system (C4.1.87) ==================

fn branches_exception_system(word: u32) -> Verdict {
    match field(word, 31, 29) {
        // Unconditional branch (immediate): b, bl.
        0b000 | 0b100 => {
            let offset = sign_extend(field(word, 25, 0), 26) << 2;
            if encodings::BL.matches(word) {
                PcDependent(Simulation::BranchLink { offset })
            } else {
                PcDependent(Simulation::Branch { offset })
            }
        }
        // Compare and branch (immediate): cbz, cbnz; test and branch: tbz, tbnz.
        0b001 | 0b101 => {
            let rt = field(word, 4, 0) as u8;
            let nonzero = bit(word, 24) == 1;
            if bit(word, 25) == 0 {
                let offset = sign_extend(field(word, 23, 5), 19) << 2;
                PcDependent(Simulation::CompareBranch { rt, is_64: bit(word, 31) == 1, nonzero, offset })
            } else {
                let offset = sign_extend(field(word, 18, 5), 14) << 2;
                let bit_number = (bit(word, 31) << 5 | field(word, 23, 19)) as u8;
                PcDependent(Simulation::TestBranch { rt, bit: bit_number, nonzero, offset })
            }
        }
        // Conditional branch (immediate): o1 = word<24> must be 0; o0 =
        // word<4> selects b.cond (0) or bc.cond (1, FEAT_HBC).
        0b010 => {
            if field(word, 25, 24) != 0 {
                return UNALLOCATED;
            }
            let condition = Condition::from_bits(field(word, 3, 0));
            PcDependent(Simulation::BranchConditional { condition, offset: sign_extend(field(word, 23, 5), 19) << 2 })
        }
        0b110 => match field(word, 25, 24) {
            0b00 => exception_generation(word),
            0b01 if field(word, 23, 22) == 0 => system(word),
            0b01 => NEWER, // sysp, and the system instruction space of Armv9
            _ => unconditional_branch_register(word),
        },
        // 011, 111: unallocated (Armv9.6 compare-and-branch lives here).
        _ => UNALLOCATED,
    }
}

/// Exception generation: `11010100 opc imm16 op2 LL`.
fn exception_generation(word: u32) -> Verdict {
    if field(word, 4, 2) != 0 {
        return UNALLOCATED;
    }
    let mnemonic = match (field(word, 23, 21), field(word, 1, 0)) {
        (0b000, 0b01) => "svc",
        (0b000, 0b10) => "hvc",
        (0b000, 0b11) => "smc",
        (0b001, 0b00) => "brk",
        (0b010, 0b00) => "hlt",
        (0b011, 0b00) => return TME, // tcancel
        (0b101, 0b01) => "dcps1",
        (0b101, 0b10) => "dcps2",
        (0b101, 0b11) => "dcps3",
        _ => return UNALLOCATED,
    };
    Reject(RejectReason::ExceptionGenerating { mnemonic })
}

/// System instructions: `1101010100 L op0 op1 CRn CRm op2 Rt`.
fn system(word: u32) -> Verdict {
    let l = bit(word, 21);
    let op0 = field(word, 20, 19);
    let op1 = field(word, 18, 16);
    let crn = field(word, 15, 12);
    let crm = field(word, 11, 8);
    let op2 = field(word, 7, 5);
    let rt = field(word, 4, 0);
    match (l, op0) {
        // MSR (register), MRS.
        (0, 0b10 | 0b11) => Reject(RejectReason::SystemRegisterWrite { mnemonic: "msr" }),
        (1, 0b10 | 0b11) => Step,
        // SYS, SYSL: dc, ic, at, tlbi and the rest.
        (0, 0b01) => Reject(RejectReason::SystemInstruction { mnemonic: "sys" }),
        (1, 0b01) => Reject(RejectReason::SystemInstruction { mnemonic: "sysl" }),
        (0, 0b00) => match (op1, crn) {
            // PSTATE: msr <pstatefield>, #imm (and cfinv, xaflag, axflag).
            (_, 0b0100) if rt == 0b11111 => {
                let mnemonic = match (op1, crm, op2) {
                    (0b000, 0b0000, 0b000) => "cfinv",
                    (0b000, 0b0000, 0b001) => "xaflag",
                    (0b000, 0b0000, 0b010) => "axflag",
                    _ => "msr (immediate)",
                };
                Reject(RejectReason::SystemRegisterWrite { mnemonic })
            }
            // Hints: every CRm:op2 is allocated (an unknown hint is a nop).
            (0b011, 0b0010) if rt == 0b11111 => {
                if encodings::NOP.matches(word) {
                    Verdict::Simple(Simulation::Nop)
                } else {
                    Step
                }
            }
            // Barriers.
            (0b011, 0b0011) if rt == 0b11111 => match op2 {
                0b010 => Step,                         // clrex
                0b100..=0b110 => Step,                 // dsb (and ssbb, pssbb), dmb, isb
                0b111 if crm == 0 => Step,             // sb
                0b001 if crm & 0b0011 == 0b0010 => XS, // dsb ... nXS
                0b011 if crm == 0 => TME,              // tcommit
                _ => UNALLOCATED,
            },
            // System instructions with register argument: wfet, wfit.
            (0b011, 0b0001) if crm == 0 && op2 < 2 => WFXT,
            _ => UNALLOCATED,
        },
        // L = 1, op0 = 00: tstart, ttest (FEAT_TME) and nothing else.
        _ if op1 == 0b011 && crn == 0b0011 && crm < 2 && op2 == 0b011 => TME,
        _ => UNALLOCATED,
    }
}

/// Unconditional branch (register): `1101011 opc op2 op3 Rn op4`.
fn unconditional_branch_register(word: u32) -> Verdict {
    let rn = field(word, 9, 5) as u8;
    let pac = |mnemonic| Reject(RejectReason::UnsimulatedBranch { mnemonic });
    for (encoding, kind) in [
        (encodings::BR, RegisterBranch::Br),
        (encodings::BLR, RegisterBranch::Blr),
        (encodings::RET, RegisterBranch::Ret),
    ] {
        if encoding.matches(word) {
            return PcDependent(Simulation::BranchRegister { rn, kind });
        }
    }
    let mnemonic = |encoding: Encoding, a: &'static str, b: &'static str| {
        if encoding.matches(word) {
            Some(if bit(word, 10) == 0 { a } else { b })
        } else {
            None
        }
    };
    if let Some(m) = mnemonic(encodings::BRA_ZERO_MODIFIER, "braaz", "brabz")
        .or_else(|| mnemonic(encodings::BLRA_ZERO_MODIFIER, "blraaz", "blrabz"))
        .or_else(|| mnemonic(encodings::RETA, "retaa", "retab"))
        .or_else(|| mnemonic(encodings::BRA, "braa", "brab"))
        .or_else(|| mnemonic(encodings::BLRA, "blraa", "blrab"))
    {
        return pac(m);
    }
    if encodings::ERET.matches(word) {
        return Reject(RejectReason::ExceptionGenerating { mnemonic: "eret" });
    }
    if let Some(m) = mnemonic(encodings::ERETA, "eretaa", "eretab") {
        return Reject(RejectReason::ExceptionGenerating { mnemonic: m });
    }
    if encodings::DRPS.matches(word) {
        return Reject(RejectReason::ExceptionGenerating { mnemonic: "drps" });
    }
    UNALLOCATED
}

// ===== Loads and stores (C4.1.88) ===========================================

fn loads_and_stores(word: u32) -> Verdict {
    let v = bit(word, 26);
    match (field(word, 29, 28), bit(word, 24)) {
        // Load/store exclusive pair / register, ordered, compare and swap.
        (0b00, 0) if v == 0 => exclusive_ordered_and_swap(word),
        (0b00, 1) if v == 0 => UNALLOCATED,
        // Advanced SIMD load/store multiple / single structures (word<31> = 0).
        (0b00, 0) if bit(word, 31) == 0 => simd_multiple_structures(word),
        (0b00, 1) if bit(word, 31) == 0 => simd_single_structure(word),
        (0b00, _) => UNALLOCATED,
        (0b01, 0) => load_register_literal(word),
        (0b01, 1) => ordered_unscaled_and_others(word),
        (0b10, _) => load_store_pair(word),
        (0b11, 0) => load_store_register(word),
        _ => step_if(register_access_is_valid(word, RegisterForm::UnsignedOffset)), // (0b11, 1)
    }
}

/// `size 001000 o2 L o1 Rs o0 Rt2 Rn Rt`
fn exclusive_ordered_and_swap(word: u32) -> Verdict {
    let size = field(word, 31, 30);
    let (o2, l, o1, o0) = (bit(word, 23), bit(word, 22), bit(word, 21), bit(word, 15));
    let rt2_is_ones = field(word, 14, 10) == 0b11111;
    match (o2, o1) {
        // Load/store exclusive register: the kind this project must refuse.
        (0, 0) => {
            let base = match (l, o0) {
                (0, 0) => ["stxrb", "stxrh", "stxr", "stxr"],
                (0, _) => ["stlxrb", "stlxrh", "stlxr", "stlxr"],
                (_, 0) => ["ldxrb", "ldxrh", "ldxr", "ldxr"],
                _ => ["ldaxrb", "ldaxrh", "ldaxr", "ldaxr"],
            };
            Reject(RejectReason::Exclusive { mnemonic: base[size as usize] })
        }
        // Load/store exclusive pair (size 1x), compare and swap pair (size 0x).
        (0, 1) if size >= 2 => {
            let mnemonic = match (l, o0) {
                (0, 0) => "stxp",
                (0, _) => "stlxp",
                (_, 0) => "ldxp",
                _ => "ldaxp",
            };
            Reject(RejectReason::Exclusive { mnemonic })
        }
        // casp, caspa, caspl, caspal: Rs and Rt name even/odd register
        // pairs; an odd first register is UNDEFINED.
        (0, 1) => step_if(rt2_is_ones && field(word, 16, 16) == 0 && bit(word, 0) == 0),
        // Load-acquire / store-release register (and LORegion forms): Rs and
        // Rt2 are should-be-ones fields; anything else is treated as
        // unallocated (as disassemblers do), to stay on the safe side.
        (1, 0) => step_if(rt2_is_ones && field(word, 20, 16) == 0b11111),
        // Compare and swap: cas, casa, casl, casal (b, h, w, x).
        _ => step_if(rt2_is_ones),
    }
}

/// `0 Q 001100 p L 0 Rm opcode size Rn Rt` (p = post-index; without it Rm = 0).
fn simd_multiple_structures(word: u32) -> Verdict {
    let post_index = bit(word, 23) == 1;
    if bit(word, 21) != 0 || (!post_index && field(word, 20, 16) != 0) {
        return UNALLOCATED;
    }
    let one_d = field(word, 11, 10) == 0b11 && bit(word, 30) == 0;
    match field(word, 15, 12) {
        // ld4/st4, ld3/st3, ld2/st2: no 1D arrangement.
        0b0000 | 0b0100 | 0b1000 => step_if(!one_d),
        // ld1/st1 with four, three, one, two registers.
        0b0010 | 0b0110 | 0b0111 | 0b1010 => Step,
        _ => UNALLOCATED,
    }
}

/// `0 Q 001101 p L R Rm opcode S size Rn Rt`
fn simd_single_structure(word: u32) -> Verdict {
    let post_index = bit(word, 23) == 1;
    if !post_index && field(word, 20, 16) != 0 {
        return UNALLOCATED;
    }
    let (l, s, size) = (bit(word, 22), bit(word, 12), field(word, 11, 10));
    step_if(match field(word, 15, 13) {
        0b000 | 0b001 => true,                               // 8-bit lanes
        0b010 | 0b011 => size & 1 == 0,                      // 16-bit lanes
        0b100 | 0b101 => size == 0 || (size == 1 && s == 0), // 32- or 64-bit lanes
        _ => l == 1 && s == 0,                               // ld1r..ld4r (replicate)
    })
}

/// Load register (literal): `opc 011 V 00 imm19 Rt`.
fn load_register_literal(word: u32) -> Verdict {
    let rt = field(word, 4, 0) as u8;
    let offset = sign_extend(field(word, 23, 5), 19) << 2;
    let opc = field(word, 31, 30);
    if bit(word, 26) == 1 {
        // V = 1, SIMD&FP: opc 00, 01, 10 load an S, D or Q register (4, 8,
        // 16 bytes); opc 11 is unallocated.
        let bytes = match opc {
            0b00 => 4,
            0b01 => 8,
            0b10 => 16,
            _ => return UNALLOCATED,
        };
        return PcDependent(Simulation::LoadLiteralSimd { rt, offset, bytes });
    }
    let width = match opc {
        0b00 => LiteralLoad::Word,
        0b01 => LiteralLoad::Doubleword,
        0b10 => LiteralLoad::SignedWord,
        _ => return PcDependent(Simulation::PrefetchLiteral),
    };
    PcDependent(Simulation::LoadLiteral { rt, offset, width })
}

/// `xx 011 V 01 ...`: LDAPR/STLR (unscaled immediate) (FEAT_LRCPC2) and,
/// beside them, memory copy/set and memory tagging.
fn ordered_unscaled_and_others(word: u32) -> Verdict {
    if bit(word, 26) == 1 {
        return NEWER; // FEAT_LRCPC3 SIMD&FP forms
    }
    match (bit(word, 21), field(word, 11, 10)) {
        (0, 0b00) => {
            // size 011001 opc 0 imm9 00 Rn Rt: stlur, ldapur, ldapurs*
            let (size, opc) = (field(word, 31, 30), field(word, 23, 22));
            step_if(match size {
                0b00 | 0b01 => true,
                0b10 => opc != 0b11,
                _ => opc < 0b10,
            })
        }
        (0, 0b01) => MOPS,
        (1, _) if field(word, 31, 30) == 0b11 => MTE,
        _ => NEWER,
    }
}

/// Load/store register pair: `opc 101 V mode L imm7 Rt2 Rn Rt`, mode = 00
/// no-allocate, 01 post-index, 10 signed offset, 11 pre-index.
fn load_store_pair(word: u32) -> Verdict {
    if encodings::STP_FRAME_PUSH.matches(word) {
        return Verdict::Simple(Simulation::FramePush);
    }
    let (opc, v, mode, l) = (field(word, 31, 30), bit(word, 26), field(word, 24, 23), bit(word, 22));
    let (rt, rn, rt2) = (field(word, 4, 0), field(word, 9, 5), field(word, 14, 10));
    let writeback = mode == 0b01 || mode == 0b11;
    if opc != 0b11 && l == 1 && rt == rt2 {
        return constrained_unpredictable("load pair into one register twice");
    }
    if opc != 0b11 && v == 0 && writeback && rn != 31 && (rn == rt || rn == rt2) {
        return constrained_unpredictable("pair with writeback to a transferred register");
    }
    match (v, opc) {
        (_, 0b11) => UNALLOCATED,
        (1, _) => Step,                     // stp/ldp s, d, q
        (0, 0b00) | (0, 0b10) => Step,      // stp/ldp w, x (and stnp/ldnp)
        (0, _) if mode == 0 => UNALLOCATED, // no ldnpsw
        (0, _) if l == 1 => Step,           // ldpsw
        _ => MTE,                           // stgp
    }
}

/// Rn == Rt and Rn is not SP: a writeback would write the base register
/// that is also the transfer register.
const fn base_is_transfer_register(word: u32) -> bool {
    let rn = field(word, 9, 5);
    rn != 31 && rn == field(word, 4, 0)
}

/// Which addressing form a single-register load/store has: the allocated
/// size/opc combinations differ a little between them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RegisterForm {
    Unscaled,
    PostIndex,
    Unprivileged,
    PreIndex,
    RegisterOffset,
    UnsignedOffset,
}

/// The size/V/opc table shared by the single-register load/store groups:
/// `size 111 V 0x opc ...`.
fn register_access_is_valid(word: u32, form: RegisterForm) -> bool {
    let (size, v, opc) = (field(word, 31, 30), bit(word, 26), field(word, 23, 22));
    if v == 1 {
        // B/H/S/D with opc 00/01; Q is size = 00 with opc 1x. No ldtr/sttr.
        return form != RegisterForm::Unprivileged && (opc < 2 || size == 0);
    }
    let prefetch_form =
        matches!(form, RegisterForm::Unscaled | RegisterForm::RegisterOffset | RegisterForm::UnsignedOffset);
    match (size, opc) {
        (0b00 | 0b01, _) => true,      // strb/ldrb/ldrsb, strh/ldrh/ldrsh
        (0b10, 0b11) => false,         // no 32-bit sign-extending word load
        (0b10, _) => true,             // str/ldr w, ldrsw
        (0b11, 0b10) => prefetch_form, // prfm, prfum
        (0b11, 0b11) => false,
        _ => true, // str/ldr x
    }
}

/// `size 111 V 00 opc ...`: the unscaled, indexed, unprivileged, atomic,
/// register-offset and pointer-authenticated forms.
fn load_store_register(word: u32) -> Verdict {
    let (v, size) = (bit(word, 26), field(word, 31, 30));
    let form = match (bit(word, 21), field(word, 11, 10)) {
        (0, 0b00) => RegisterForm::Unscaled,
        (0, 0b01) => RegisterForm::PostIndex,
        (0, 0b10) => RegisterForm::Unprivileged,
        (0, _) => RegisterForm::PreIndex,
        (1, 0b00) => return atomic_memory_operation(word),
        (1, 0b10) => {
            // Register offset: option<1> must be 1 (uxtw, lsl, sxtw, sxtx).
            if bit(word, 14) == 0 {
                return UNALLOCATED;
            }
            RegisterForm::RegisterOffset
        }
        // ldraa, ldrab (FEAT_PAuth): 64-bit integer only; W = word<11>
        // asks for writeback.
        _ => {
            if size != 0b11 || v == 1 {
                return UNALLOCATED;
            }
            return if bit(word, 11) == 1 && base_is_transfer_register(word) {
                constrained_unpredictable("load with writeback into its own base register")
            } else {
                Step
            };
        }
    };
    if !register_access_is_valid(word, form) {
        return UNALLOCATED;
    }
    let writeback = matches!(form, RegisterForm::PostIndex | RegisterForm::PreIndex);
    let prefetch = size == 0b11 && field(word, 23, 22) == 0b10;
    if writeback && v == 0 && !prefetch && base_is_transfer_register(word) {
        return constrained_unpredictable("load/store with writeback to its own base register");
    }
    Step
}

/// Atomic memory operations: `size 111 V 00 A R 1 Rs o3 opc 00 Rn Rt`.
fn atomic_memory_operation(word: u32) -> Verdict {
    if bit(word, 26) == 1 {
        return NEWER; // floating-point atomics
    }
    let (a, r, rs) = (bit(word, 23), bit(word, 22), field(word, 20, 16));
    match (bit(word, 15), field(word, 14, 12)) {
        (0, _) => Step,                                           // ldadd .. ldumin
        (1, 0b000) => Step,                                       // swp
        (1, 0b100) => step_if(a == 1 && r == 0 && rs == 0b11111), // ldapr
        (1, 0b001 | 0b010 | 0b011 | 0b101) => LS64,
        _ => UNALLOCATED,
    }
}

// ===== Data processing -- register (C4.1.89) ================================

fn data_processing_register(word: u32) -> Verdict {
    let sf = bit(word, 31);
    let op2 = field(word, 24, 21);
    if bit(word, 28) == 0 {
        let imm6 = field(word, 15, 10);
        return if op2 & 0b1000 == 0 {
            // Logical (shifted register): a 32-bit form cannot shift by 32+.
            step_if(sf == 1 || imm6 < 32)
        } else if op2 & 1 == 0 {
            // Add/subtract (shifted register): shift = 11 is reserved.
            step_if(field(word, 23, 22) != 0b11 && (sf == 1 || imm6 < 32))
        } else {
            // Add/subtract (extended register): opt = 00, imm3 <= 4.
            step_if(field(word, 23, 22) == 0 && field(word, 12, 10) <= 4)
        };
    }
    let (op, s) = (bit(word, 30), bit(word, 29));
    let op3 = field(word, 15, 10);
    match op2 {
        0b0000 => {
            if op3 == 0 {
                Step // adc, adcs, sbc, sbcs
            } else if op3 & 0b11111 == 0b00001 {
                // rmif: sf = 1, op = 0, S = 1, o2 = 0
                step_if(sf == 1 && op == 0 && s == 1 && bit(word, 4) == 0)
            } else if op3 & 0b1111 == 0b0010 {
                // setf8, setf16: sf = 0, op = 0, S = 1, opcode2 = 0, o3 = 0, mask = 1101
                step_if(sf == 0 && op == 0 && s == 1 && field(word, 20, 15) == 0 && field(word, 4, 0) == 0b01101)
            } else {
                UNALLOCATED
            }
        }
        // Conditional compare (register / immediate): ccmn, ccmp need S = 1,
        // o2 = 0, o3 = 0.
        0b0010 => step_if(s == 1 && bit(word, 10) == 0 && bit(word, 4) == 0),
        // Conditional select: S = 0, op2 = 0x.
        0b0100 => step_if(s == 0 && bit(word, 11) == 0),
        0b0110 if op == 0 => data_processing_two_source(word),
        0b0110 => data_processing_one_source(word),
        0b1000..=0b1111 => data_processing_three_source(word),
        _ => UNALLOCATED,
    }
}

/// `sf 0 S 11010110 Rm opcode Rn Rd`
fn data_processing_two_source(word: u32) -> Verdict {
    let sf = bit(word, 31);
    if bit(word, 29) == 1 {
        return if field(word, 15, 10) == 0 && sf == 1 { MTE } else { UNALLOCATED };
        // subps
    }
    match field(word, 15, 10) {
        0b000010 | 0b000011 => Step, // udiv, sdiv
        0b001000..=0b001011 => Step, // lslv, lsrv, asrv, rorv
        // crc32b/h/w/x, crc32cb/h/w/x: the x forms (sz = 11) need sf = 1,
        // and only they.
        opcode @ 0b010000..=0b010111 => step_if((opcode & 0b11 == 0b11) == (sf == 1)),
        0b001100 => step_if(sf == 1),                     // pacga
        0b000000 | 0b000100 | 0b000101 if sf == 1 => MTE, // subp, irg, gmi
        0b011000..=0b011011 => CSSC,                      // smax, umax, smin, umin
        _ => UNALLOCATED,
    }
}

/// `sf 1 S 11010110 opcode2 opcode Rn Rd`
fn data_processing_one_source(word: u32) -> Verdict {
    let sf = bit(word, 31);
    let rn_is_ones = field(word, 9, 5) == 0b11111;
    if bit(word, 29) == 1 {
        return UNALLOCATED;
    }
    match (field(word, 20, 16), field(word, 15, 10)) {
        (0b00000, 0b000000..=0b000010) => Step,  // rbit, rev16, rev (w) / rev32 (x)
        (0b00000, 0b000011) => step_if(sf == 1), // rev (x)
        (0b00000, 0b000100 | 0b000101) => Step,  // clz, cls
        (0b00000, 0b000110..=0b001000) => CSSC,  // ctz, cnt, abs
        // pacia .. autdb (Rn = modifier), paciza .. autdzb (Rn = 11111),
        // xpaci, xpacd.
        (0b00001, 0b000000..=0b000111) => step_if(sf == 1),
        (0b00001, 0b001000..=0b010001) => step_if(sf == 1 && rn_is_ones),
        _ => UNALLOCATED,
    }
}

/// `sf op54 11011 op31 Rm o0 Ra Rn Rd`
fn data_processing_three_source(word: u32) -> Verdict {
    let sf = bit(word, 31);
    if field(word, 30, 29) != 0 {
        return UNALLOCATED;
    }
    step_if(match field(word, 23, 21) {
        0b000 => true,                                  // madd, msub
        0b001 | 0b101 => sf == 1,                       // smaddl, smsubl, umaddl, umsubl
        0b010 | 0b110 => sf == 1 && bit(word, 15) == 0, // smulh, umulh
        _ => false,
    })
}

// ===== Data processing -- scalar floating-point and Advanced SIMD (C4.1.90) ==

fn simd_and_fp(word: u32) -> Verdict {
    let (b31, b30, b28, b24) = (bit(word, 31), bit(word, 30), bit(word, 28), bit(word, 24));
    match (b31, b28) {
        // 1100 1110: the Armv8.2 cryptographic extension.
        (1, 0) if field(word, 31, 24) == 0b1100_1110 => CRYPTO_V82,
        (1, 0) => UNALLOCATED,
        (0, 0) if b24 == 0 => simd_vector_01110(word),
        (0, 0) => simd_vector_01111(word),
        (_, 1) if b30 == 0 => floating_point(word),
        (0, 1) if b24 == 0 => simd_scalar_11110(word),
        (0, 1) => simd_scalar_11111(word),
        _ => UNALLOCATED,
    }
}

/// Vector groups `0 Q U 01110 ...`.
fn simd_vector_01110(word: u32) -> Verdict {
    let (u, q) = (bit(word, 29), bit(word, 30));
    if bit(word, 21) == 1 {
        return match field(word, 11, 10) {
            0b01 | 0b11 => vector_three_same(word),
            0b00 => vector_three_different(word),
            _ => match field(word, 20, 17) {
                0b0000 => vector_two_register_misc(word),
                0b1000 => vector_across_lanes(word),
                // Cryptographic AES: 0100 1110 size 10100 opcode 10.
                0b0100 if u == 0 && q == 1 => {
                    step_if(field(word, 23, 22) == 0 && (0b00100..=0b00111).contains(&field(word, 16, 12)))
                }
                0b1100 => FP16, // two-register miscellaneous (FP16)
                _ => UNALLOCATED,
            },
        };
    }
    if bit(word, 10) == 1 {
        return if field(word, 23, 21) == 0 && bit(word, 15) == 0 {
            vector_copy(word)
        } else if bit(word, 22) == 1 && field(word, 15, 14) == 0 {
            FP16 // three same (FP16)
        } else if bit(word, 15) == 1 {
            DOT_AND_FRIENDS // three-register extension
        } else {
            UNALLOCATED
        };
    }
    if bit(word, 15) == 1 {
        return UNALLOCATED;
    }
    if u == 1 {
        // Extract: 0 Q 101110 op2 0 Rm 0 imm4 0; op2 = 00, imm4<3> = 0 for Q = 0.
        return step_if(field(word, 23, 22) == 0 && (q == 1 || bit(word, 14) == 0));
    }
    if bit(word, 11) == 0 {
        // Table lookup: tbl, tbx; op2 = 00.
        step_if(field(word, 23, 22) == 0)
    } else {
        // Permute: uzp1, trn1, zip1, uzp2, trn2, zip2; no 1D arrangement.
        let opcode = field(word, 14, 12);
        step_if(opcode & 0b11 != 0 && !(field(word, 23, 22) == 0b11 && q == 0))
    }
}

/// Advanced SIMD copy: `0 Q op 01110000 imm5 0 imm4 1 Rn Rd`.
fn vector_copy(word: u32) -> Verdict {
    let (q, op, imm5, imm4) = (bit(word, 30), bit(word, 29), field(word, 20, 16), field(word, 14, 11));
    if imm5 & 0b1111 == 0 {
        return UNALLOCATED;
    }
    // The lane size is given by the lowest set bit of imm5: 0 = B .. 3 = D.
    let lane = imm5.trailing_zeros();
    if op == 1 {
        return step_if(q == 1); // ins (element)
    }
    step_if(match imm4 {
        0b0000 | 0b0001 => !(lane == 3 && q == 0), // dup (element), dup (general)
        0b0011 => q == 1,                          // ins (general)
        0b0101 => lane < 2 + q,                    // smov: B, H (to W); B, H, S (to X)
        0b0111 => {
            if q == 0 {
                lane < 3
            } else {
                lane == 3
            }
        } // umov
        _ => false,
    })
}

/// Advanced SIMD three same: `0 Q U 01110 size 1 Rm opcode 1 Rn Rd`.
fn vector_three_same(word: u32) -> Verdict {
    let (q, u, size, opcode) = (bit(word, 30), bit(word, 29), field(word, 23, 22), field(word, 15, 11));
    let no_d = size != 0b11; // byte, half and word lanes only
    let d_needs_q = !(size == 0b11 && q == 0); // 64-bit lanes only as 2D
    let h_or_s = size == 0b01 || size == 0b10;
    if opcode >= 0b11000 {
        return floating_point_three_same(q, u, size, opcode);
    }
    step_if(match (u, opcode) {
        (_, 0b00000 | 0b00010 | 0b00100) => no_d, // shadd, srhadd, shsub (and u-)
        (_, 0b00001 | 0b00101) => d_needs_q,      // sqadd, sqsub (and uq-)
        (_, 0b00011) => true,                     // and, bic, orr, orn / eor, bsl, bit, bif
        (_, 0b00110..=0b01011) => d_needs_q,      // cmgt, cmge, sshl, sqshl, srshl, sqrshl (and u-)
        (_, 0b01100..=0b01111) => no_d,           // smax, smin, sabd, saba (and u-)
        (_, 0b10000 | 0b10001) => d_needs_q,      // add, cmtst / sub, cmeq
        (_, 0b10010) => no_d,                     // mla / mls
        (0, 0b10011) => no_d,                     // mul
        (1, 0b10011) => size == 0,                // pmul
        (_, 0b10100 | 0b10101) => no_d,           // smaxp, sminp (and u-)
        (_, 0b10110) => h_or_s,                   // sqdmulh / sqrdmulh
        (0, 0b10111) => d_needs_q,                // addp
        _ => false,
    })
}

/// The floating-point half of three same (opcode 11xxx); size<1> is part of
/// the opcode, size<0> (sz) selects single or double.
fn floating_point_three_same(q: u32, u: u32, size: u32, opcode: u32) -> Verdict {
    let (high, sz) = (size >> 1, size & 1);
    let allocated = match (u, high, opcode) {
        // fmaxnm, fmla, fadd, fmulx, fcmeq, fmax, frecps
        (0, 0, 0b11000..=0b11100 | 0b11110 | 0b11111) => true,
        // fminnm, fmls, fsub, fmin, frsqrts
        (0, 1, 0b11000..=0b11010 | 0b11110 | 0b11111) => true,
        // fmaxnmp, faddp, fmul, fcmge, facge, fmaxp, fdiv
        (1, 0, 0b11000 | 0b11010..=0b11111) => true,
        // fminnmp, fabd, fcmgt, facgt, fminp
        (1, 1, 0b11000 | 0b11010 | 0b11100..=0b11110) => true,
        // fmlal, fmlsl, fmlal2, fmlsl2 (FEAT_FHM), single-precision only
        (0, _, 0b11101) | (1, _, 0b11001) if sz == 0 => return FHM,
        _ => false,
    };
    step_if(allocated && !(sz == 1 && q == 0))
}

/// Advanced SIMD three different: `0 Q U 01110 size 1 Rm opcode 00 Rn Rd`.
fn vector_three_different(word: u32) -> Verdict {
    let (u, size, opcode) = (bit(word, 29), field(word, 23, 22), field(word, 15, 12));
    if opcode == 0b1110 && u == 0 {
        // pmull: 8B -> 8H, or 1D -> 1Q (the cryptographic extension)
        return step_if(size == 0 || size == 0b11);
    }
    if size == 0b11 {
        return UNALLOCATED;
    }
    step_if(match (u, opcode) {
        (_, 0b0000..=0b1000 | 0b1010 | 0b1100) => true, // [su]addl .. [su]mlal, [su]mlsl, [su]mull
        (0, 0b1001 | 0b1011 | 0b1101) => size != 0,     // sqdmlal, sqdmlsl, sqdmull
        _ => false,
    })
}

/// Advanced SIMD two-register miscellaneous: `0 Q U 01110 size 10000 opcode 10 Rn Rd`.
fn vector_two_register_misc(word: u32) -> Verdict {
    let (q, u, size, opcode) = (bit(word, 30), bit(word, 29), field(word, 23, 22), field(word, 16, 12));
    let no_d = size != 0b11;
    let d_needs_q = !(size == 0b11 && q == 0);
    let (high, sz) = (size >> 1, size & 1);
    // Same-size floating-point: 2D needs Q = 1.
    let fp_lanes = !(sz == 1 && q == 0);
    step_if(match (u, opcode) {
        (0, 0b00000) => no_d,                                         // rev64
        (0, 0b00001) => size == 0,                                    // rev16
        (1, 0b00000) => size < 2,                                     // rev32
        (_, 0b00010 | 0b00110) => no_d,                               // saddlp, sadalp (and u-)
        (_, 0b00011 | 0b00111) => d_needs_q,                          // suqadd, sqabs / usqadd, sqneg
        (_, 0b00100) => no_d,                                         // cls / clz
        (0, 0b00101) => size == 0,                                    // cnt
        (1, 0b00101) => size < 2,                                     // not, rbit
        (_, 0b01000 | 0b01001) => d_needs_q,                          // cmgt, cmeq / cmge, cmle (zero)
        (0, 0b01010) => d_needs_q,                                    // cmlt (zero)
        (_, 0b01011) => d_needs_q,                                    // abs / neg
        (_, 0b10010) | (0, 0b10100) | (1, 0b10011 | 0b10100) => no_d, // xtn, sqxtun, sqxtn, shll, uqxtn
        (0, 0b10110) if high == 1 => return BF16,                     // bfcvtn
        (0, 0b10110 | 0b10111) => high == 0,                          // fcvtn, fcvtl
        (1, 0b10110) => size == 0b01,                                 // fcvtxn
        // Floating-point, sz selects S or D lanes; size<1> is opcode.
        (0, 0b11000 | 0b11001) => fp_lanes,    // frintn, frintm, frintp, frintz
        (1, 0b11000) => high == 0 && fp_lanes, // frinta
        (1, 0b11001) => fp_lanes,              // frintx, frinti
        (_, 0b11010 | 0b11011) => fp_lanes,    // fcvtns, fcvtms, fcvtps, fcvtzs (and u)
        (_, 0b11100) if high == 0 => fp_lanes, // fcvtas / fcvtau
        (_, 0b11100) => size == 0b10,          // urecpe / ursqrte
        (_, 0b11101) => fp_lanes,              // scvtf, frecpe / ucvtf, frsqrte
        (_, 0b01100 | 0b01101) if high == 1 => fp_lanes, // fcmgt, fcmeq / fcmge, fcmle (zero)
        (0, 0b01110) if high == 1 => fp_lanes, // fcmlt (zero)
        (_, 0b01111) if high == 1 => fp_lanes, // fabs / fneg
        (1, 0b11111) if high == 1 => fp_lanes, // fsqrt
        (_, 0b11110 | 0b11111) if high == 0 => return FRINTTS, // frint32z, frint64z, ...
        _ => false,
    })
}

/// Advanced SIMD across lanes: `0 Q U 01110 size 11000 opcode 10 Rn Rd`.
fn vector_across_lanes(word: u32) -> Verdict {
    let (q, u, size, opcode) = (bit(word, 30), bit(word, 29), field(word, 23, 22), field(word, 16, 12));
    step_if(match (u, opcode) {
        // saddlv, smaxv, sminv, addv (and u-, no uaddv): 4S only as Q = 1.
        (_, 0b00011 | 0b01010 | 0b11010) | (0, 0b11011) => size < 2 || (size == 0b10 && q == 1),
        // fmaxnmv, fmaxv, fminnmv, fminv: single precision, 4S only.
        (1, 0b01100 | 0b01111) => size & 1 == 0 && q == 1,
        (0, 0b01100 | 0b01111) => return FP16,
        _ => false,
    })
}

/// Vector groups `0 Q U 01111 ...`.
fn simd_vector_01111(word: u32) -> Verdict {
    if bit(word, 10) == 1 {
        if bit(word, 23) == 1 {
            return UNALLOCATED;
        }
        return if field(word, 22, 19) == 0 { modified_immediate(word) } else { vector_shift_immediate(word) };
    }
    vector_indexed_element(word)
}

/// Advanced SIMD modified immediate: `0 Q op 0111100000 abc cmode o2 1 defgh Rd`.
fn modified_immediate(word: u32) -> Verdict {
    let (q, op, cmode) = (bit(word, 30), bit(word, 29), field(word, 15, 12));
    if bit(word, 11) == 1 {
        return if op == 0 && cmode == 0b1111 { FP16 } else { UNALLOCATED }; // fmov (half)
    }
    // Every cmode is allocated; op = 1, cmode = 1111 is fmov (double), 2D only.
    step_if(!(op == 1 && cmode == 0b1111 && q == 0))
}

/// Advanced SIMD shift by immediate: `0 Q U 011110 immh immb opcode 1 Rn Rd`.
fn vector_shift_immediate(word: u32) -> Verdict {
    let (q, u, immh, opcode) = (bit(word, 30), bit(word, 29), field(word, 22, 19), field(word, 15, 11));
    let wide_lanes_need_q = !(immh >= 0b1000 && q == 0);
    step_if(match (u, opcode) {
        // sshr, ssra, srshr, srsra, shl, sqshl (and u-, sri, sli, sqshlu)
        (_, 0b00000 | 0b00010 | 0b00100 | 0b00110 | 0b01010 | 0b01110) | (1, 0b01000 | 0b01100) => wide_lanes_need_q,
        // Narrowing and lengthening shifts: no 64-bit source lanes.
        (_, 0b10000..=0b10100) => immh < 0b1000,
        // scvtf, fcvtzs (fixed-point) (and u): S or D lanes; H is FP16.
        (_, 0b11100 | 0b11111) if (0b0010..0b0100).contains(&immh) => return FP16,
        (_, 0b11100 | 0b11111) => immh >= 0b0100 && wide_lanes_need_q,
        _ => false,
    })
}

/// Advanced SIMD vector x indexed element: `0 Q U 01111 size L M Rm opcode H 0 Rn Rd`.
fn vector_indexed_element(word: u32) -> Verdict {
    let (q, u, size, l, opcode) =
        (bit(word, 30), bit(word, 29), field(word, 23, 22), bit(word, 21), field(word, 15, 12));
    let h_or_s = size == 0b01 || size == 0b10;
    // Floating point: size = 1x (sz = size<0>); a D element has no L bit,
    // and D lanes need Q = 1.
    let fp = size >= 0b10 && !(size == 0b11 && (l == 1 || q == 0));
    step_if(match (u, opcode) {
        (0, 0b0010 | 0b0011 | 0b0110 | 0b0111 | 0b1000 | 0b1010 | 0b1011 | 0b1100 | 0b1101) => h_or_s,
        (1, 0b0000 | 0b0010 | 0b0100 | 0b0110 | 0b1010) => h_or_s,
        (0, 0b0001 | 0b0101 | 0b1001) | (1, 0b1001) if size == 0 => return FP16,
        (0, 0b0001 | 0b0101 | 0b1001) | (1, 0b1001) => fp, // fmla, fmls, fmul / fmulx
        (0, 0b0000 | 0b0100) | (1, 0b1000 | 0b1100) if size == 0b10 => return FHM,
        (1, 0b1101 | 0b1111) if h_or_s => return RDM,
        (_, 0b1110 | 0b1111) | (1, 0b0001 | 0b0011 | 0b0101 | 0b0111) => return DOT_AND_FRIENDS,
        _ => false,
    })
}

/// Scalar groups `01 U 11110 ...`.
fn simd_scalar_11110(word: u32) -> Verdict {
    let u = bit(word, 29);
    if bit(word, 21) == 1 {
        return match field(word, 11, 10) {
            0b01 | 0b11 => scalar_three_same(word),
            0b00 => scalar_three_different(word),
            _ => match field(word, 20, 17) {
                0b0000 => scalar_two_register_misc(word),
                0b1000 => scalar_pairwise(word),
                // Cryptographic two-register SHA: 01011110 size 10100 opcode 10.
                0b0100 if u == 0 => step_if(field(word, 23, 22) == 0 && field(word, 16, 12) <= 0b00010),
                0b1100 => FP16,
                _ => UNALLOCATED,
            },
        };
    }
    if bit(word, 10) == 1 {
        return if field(word, 23, 21) == 0 && bit(word, 15) == 0 {
            // Scalar copy: dup (element), op = 0, imm4 = 0000.
            step_if(u == 0 && field(word, 14, 11) == 0 && field(word, 19, 16) != 0)
        } else if bit(word, 22) == 1 && field(word, 15, 14) == 0 {
            FP16
        } else if bit(word, 15) == 1 {
            RDM // scalar three same extra: sqrdmlah, sqrdmlsh
        } else {
            UNALLOCATED
        };
    }
    // Cryptographic three-register SHA: 01011110 size 0 Rm 0 opcode 00.
    step_if(
        u == 0
            && bit(word, 15) == 0
            && field(word, 11, 10) == 0
            && field(word, 23, 22) == 0
            && field(word, 14, 12) != 0b111,
    )
}

/// Advanced SIMD scalar three same: `01 U 11110 size 1 Rm opcode 1 Rn Rd`.
fn scalar_three_same(word: u32) -> Verdict {
    let (u, size, opcode) = (bit(word, 29), field(word, 23, 22), field(word, 15, 11));
    let d = size == 0b11;
    let h_or_s = size == 0b01 || size == 0b10;
    let (high, _sz) = (size >> 1, size & 1);
    step_if(match (u, opcode) {
        (_, 0b00001 | 0b00101 | 0b01001 | 0b01011) => true, // sqadd, sqsub, sqshl, sqrshl (and u)
        (_, 0b00110 | 0b00111 | 0b01000 | 0b01010 | 0b10000 | 0b10001) => d, // cmgt, cmge, sshl, srshl, add, cmtst ...
        (_, 0b10110) => h_or_s,                             // sqdmulh, sqrdmulh
        (0, 0b11011 | 0b11100 | 0b11111) if high == 0 => true, // fmulx, fcmeq, frecps
        (0, 0b11111) => true,                               // frsqrts
        (1, 0b11100 | 0b11101) => true,                     // fcmge, facge / fcmgt, facgt
        (1, 0b11010) => high == 1,                          // fabd
        _ => false,
    })
}

/// Advanced SIMD scalar three different: `01 U 11110 size 1 Rm opcode 00 Rn Rd`.
fn scalar_three_different(word: u32) -> Verdict {
    let (u, size, opcode) = (bit(word, 29), field(word, 23, 22), field(word, 15, 12));
    // sqdmlal, sqdmlsl, sqdmull: H or S sources.
    step_if(u == 0 && matches!(opcode, 0b1001 | 0b1011 | 0b1101) && (size == 0b01 || size == 0b10))
}

/// Advanced SIMD scalar two-register miscellaneous: `01 U 11110 size 10000 opcode 10 Rn Rd`.
fn scalar_two_register_misc(word: u32) -> Verdict {
    let (u, size, opcode) = (bit(word, 29), field(word, 23, 22), field(word, 16, 12));
    let d = size == 0b11;
    let high = size >> 1;
    step_if(match (u, opcode) {
        (_, 0b00011 | 0b00111) => true,                       // suqadd, sqabs / usqadd, sqneg
        (_, 0b01000 | 0b01001 | 0b01011) | (0, 0b01010) => d, // cmgt, cmeq, abs, cmlt / cmge, cmle, neg (zero)
        (0, 0b10100) | (1, 0b10010 | 0b10100) => !d,          // sqxtn / sqxtun, uqxtn
        (1, 0b10110) => size == 0b01,                         // fcvtxn
        (_, 0b11010 | 0b11011) => true,                       // fcvtns, fcvtms, fcvtps, fcvtzs (and u)
        (_, 0b11100) => high == 0,                            // fcvtas, fcvtau
        (_, 0b11101) => true,                                 // scvtf, frecpe / ucvtf, frsqrte
        (0, 0b11111) => high == 1,                            // frecpx
        (_, 0b01100 | 0b01101) | (0, 0b01110) => high == 1,   // fcmgt, fcmeq, fcmlt / fcmge, fcmle (zero)
        _ => false,
    })
}

/// Advanced SIMD scalar pairwise: `01 U 11110 size 11000 opcode 10 Rn Rd`.
fn scalar_pairwise(word: u32) -> Verdict {
    let (u, size, opcode) = (bit(word, 29), field(word, 23, 22), field(word, 16, 12));
    let high = size >> 1;
    match (u, opcode) {
        (0, 0b11011) => step_if(size == 0b11), // addp
        (0, 0b01100 | 0b01101 | 0b01111) => FP16,
        (1, 0b01100 | 0b01111) => Step,     // fmaxnmp, fmaxp / fminnmp, fminp
        (1, 0b01101) => step_if(high == 0), // faddp
        _ => UNALLOCATED,
    }
}

/// Scalar groups `01 U 11111 ...`.
fn simd_scalar_11111(word: u32) -> Verdict {
    if bit(word, 10) == 1 {
        if bit(word, 23) == 1 || field(word, 22, 19) == 0 {
            return UNALLOCATED;
        }
        return scalar_shift_immediate(word);
    }
    scalar_indexed_element(word)
}

/// Advanced SIMD scalar shift by immediate: `01 U 111110 immh immb opcode 1 Rn Rd`.
fn scalar_shift_immediate(word: u32) -> Verdict {
    let (u, immh, opcode) = (bit(word, 29), field(word, 22, 19), field(word, 15, 11));
    let d = immh >= 0b1000;
    step_if(match (u, opcode) {
        (_, 0b00000 | 0b00010 | 0b00100 | 0b00110 | 0b01010) | (1, 0b01000) => d, // sshr .. shl, sri, sli
        (_, 0b01110) | (1, 0b01100) => true,                                      // sqshl, uqshl, sqshlu
        (_, 0b10010 | 0b10011) | (1, 0b10000 | 0b10001) => !d,                    // sqshrn .. uqrshrn
        (_, 0b11100 | 0b11111) if (0b0010..0b0100).contains(&immh) => return FP16,
        (_, 0b11100 | 0b11111) => immh >= 0b0100, // scvtf, fcvtzs (fixed)
        _ => false,
    })
}

/// Advanced SIMD scalar x indexed element: `01 U 11111 size L M Rm opcode H 0 Rn Rd`.
fn scalar_indexed_element(word: u32) -> Verdict {
    let (u, size, l, opcode) = (bit(word, 29), field(word, 23, 22), bit(word, 21), field(word, 15, 12));
    let h_or_s = size == 0b01 || size == 0b10;
    let fp = size == 0b10 || (size == 0b11 && l == 0);
    step_if(match (u, opcode) {
        (0, 0b0011 | 0b0111 | 0b1011 | 0b1100 | 0b1101) => h_or_s, // sqdmlal, sqdmlsl, sqdmull, sqdmulh, sqrdmulh
        (0, 0b0001 | 0b0101 | 0b1001) | (1, 0b1001) if size == 0 => return FP16,
        (0, 0b0001 | 0b0101 | 0b1001) | (1, 0b1001) => fp, // fmla, fmls, fmul, fmulx
        (1, 0b1101 | 0b1111) if h_or_s => return RDM,
        _ => false,
    })
}

/// Scalar floating-point: `M 0 S 1111x ftype ...`.
fn floating_point(word: u32) -> Verdict {
    let (m, s, ftype) = (bit(word, 31), bit(word, 29), field(word, 23, 22));
    // FP <-> integer conversion uses word<31> as sf; every other group has
    // M = 0 and S = 0.
    if bit(word, 24) == 0 && bit(word, 21) == 1 && field(word, 15, 10) == 0 {
        return fp_integer_conversion(word);
    }
    if bit(word, 24) == 0 && bit(word, 21) == 0 {
        return fp_fixed_point_conversion(word);
    }
    if m == 1 || s == 1 {
        return UNALLOCATED;
    }
    if bit(word, 24) == 1 {
        // Floating-point data-processing (3 source): fmadd, fmsub, fnmadd, fnmsub.
        return fp_type(ftype, Step);
    }
    match field(word, 11, 10) {
        0b01 => fp_type(ftype, Step), // conditional compare: fccmp, fccmpe
        0b10 => {
            // Data-processing (2 source): fmul .. fnmul (opcode <= 1000).
            fp_type(ftype, step_if(field(word, 15, 12) <= 0b1000))
        }
        0b11 => fp_type(ftype, Step), // conditional select: fcsel
        _ => {
            if bit(word, 12) == 1 {
                // Immediate: fmov (scalar, immediate), imm5 = 0.
                fp_type(ftype, step_if(field(word, 9, 5) == 0))
            } else if field(word, 13, 12) == 0b10 {
                // Compare: fcmp, fcmpe; op = 00, opcode2<2:0> = 000.
                fp_type(ftype, step_if(field(word, 15, 14) == 0 && field(word, 2, 0) == 0))
            } else if field(word, 14, 12) == 0b100 {
                fp_one_source(word)
            } else {
                UNALLOCATED
            }
        }
    }
}

/// ftype: 00 single, 01 double, 10 unallocated, 11 half (FEAT_FP16).
const fn fp_type(ftype: u32, verdict: Verdict) -> Verdict {
    match ftype {
        0b00 | 0b01 => verdict,
        0b11 => match verdict {
            Reject(_) => verdict,
            _ => FP16,
        },
        _ => UNALLOCATED,
    }
}

/// Floating-point data-processing (1 source): `M 0 S 11110 ftype 1 opcode 10000 Rn Rd`.
fn fp_one_source(word: u32) -> Verdict {
    let ftype = field(word, 23, 22);
    match field(word, 20, 15) {
        // fcvt between precisions, including to and from half (Armv8.0):
        // opcode 0001 oo with oo = the destination type, never the source.
        opcode @ 0b000100..=0b000111 => {
            let destination = opcode & 0b11;
            step_if(ftype != 0b10 && destination != 0b10 && destination != ftype)
                .or_bf16(ftype == 0b01 && destination == 0b10)
        }
        // fmov, fabs, fneg, fsqrt; frintn, frintp, frintm, frintz, frinta,
        // frintx, frinti (001101 is unallocated).
        0b000000..=0b000011 | 0b001000..=0b001100 | 0b001110 | 0b001111 => fp_type(ftype, Step),
        0b010000..=0b010011 => fp_type(ftype, FRINTTS),
        _ => UNALLOCATED,
    }
}

impl Verdict {
    /// `bfcvt` sits in the fcvt row's unallocated corner.
    const fn or_bf16(self, is_bfcvt: bool) -> Verdict {
        if is_bfcvt {
            BF16
        } else {
            self
        }
    }
}

/// Conversion between floating-point and fixed-point:
/// `sf 0 S 11110 ftype 0 rmode opcode scale Rn Rd`.
fn fp_fixed_point_conversion(word: u32) -> Verdict {
    let (sf, s, ftype) = (bit(word, 31), bit(word, 29), field(word, 23, 22));
    let scale = field(word, 15, 10);
    if s == 1 || (sf == 0 && scale < 32) {
        return UNALLOCATED;
    }
    let allocated = matches!((field(word, 20, 19), field(word, 18, 16)), (0b00, 0b010 | 0b011) | (0b11, 0b000 | 0b001));
    fp_type(ftype, step_if(allocated))
}

/// Conversion between floating-point and integer:
/// `sf 0 S 11110 ftype 1 rmode opcode 000000 Rn Rd`.
fn fp_integer_conversion(word: u32) -> Verdict {
    let (sf, s, ftype) = (bit(word, 31), bit(word, 29), field(word, 23, 22));
    let (rmode, opcode) = (field(word, 20, 19), field(word, 18, 16));
    if s == 1 {
        return UNALLOCATED;
    }
    if ftype == 0b10 {
        // fmov x, v.d[1] / v.d[1], x: the top half of a 128-bit register.
        return step_if(sf == 1 && rmode == 0b01 && opcode >= 0b110);
    }
    let allocated = match (rmode, opcode) {
        (_, 0b000 | 0b001) => true,    // fcvtn/p/m/z s/u
        (0b00, 0b010..=0b101) => true, // scvtf, ucvtf, fcvtas, fcvtau
        // fmov between a general and a same-sized FP register.
        (0b00, 0b110 | 0b111) => (sf == 0 && ftype != 0b01) || (sf == 1 && ftype != 0b00),
        (0b11, 0b110) if sf == 0 && ftype == 0b01 => return JSCVT, // fjcvtzs
        _ => false,
    };
    if ftype == 0b11 && allocated {
        return FP16;
    }
    step_if(allocated)
}
