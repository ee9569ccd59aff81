//! The named A64 encodings the classifier cares about, as mask/value pairs in
//! the style of Linux's `arch/arm64/include/asm/insn.h`: an instruction word
//! `w` is an instance of encoding `e` when `w & e.mask == e.value`. Each
//! comment gives the encoding diagram from the Arm ARM (DDI 0487, chapter
//! C4/C6), most significant bit first; fixed bits become the value, field
//! bits are zero in the mask.
//!
//! The decoder in `decode.rs` walks the Arm ARM's decode tables to tell
//! allocated from unallocated; at its leaves it uses these names, and the
//! tests check every entry against real encodings.

/// One named encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoding {
    pub name: &'static str,
    pub mask: u32,
    pub value: u32,
}

impl Encoding {
    const fn new(name: &'static str, mask: u32, value: u32) -> Self {
        assert!(value & !mask == 0, "a fixed bit outside the mask");
        Self { name, mask, value }
    }

    pub const fn matches(&self, word: u32) -> bool {
        word & self.mask == self.value
    }
}

// ---- Simulated: their effect depends on the PC ---------------------------

/// `0 00101 imm26`
pub const B: Encoding = Encoding::new("b", 0xfc00_0000, 0x1400_0000);
/// `1 00101 imm26`
pub const BL: Encoding = Encoding::new("bl", 0xfc00_0000, 0x9400_0000);
/// `0101010 0 imm19 0 cond`
pub const B_COND: Encoding = Encoding::new("b.cond", 0xff00_0010, 0x5400_0000);
/// `0101010 0 imm19 1 cond` (FEAT_HBC: `b.cond` with a hint that it is
/// consistent; behaves the same)
pub const BC_COND: Encoding = Encoding::new("bc.cond", 0xff00_0010, 0x5400_0010);
/// `sf 011010 0 imm19 Rt`
pub const CBZ: Encoding = Encoding::new("cbz", 0x7f00_0000, 0x3400_0000);
/// `sf 011010 1 imm19 Rt`
pub const CBNZ: Encoding = Encoding::new("cbnz", 0x7f00_0000, 0x3500_0000);
/// `b5 011011 0 b40 imm14 Rt`
pub const TBZ: Encoding = Encoding::new("tbz", 0x7f00_0000, 0x3600_0000);
/// `b5 011011 1 b40 imm14 Rt`
pub const TBNZ: Encoding = Encoding::new("tbnz", 0x7f00_0000, 0x3700_0000);
/// `1101011 0000 11111 000000 Rn 00000`
pub const BR: Encoding = Encoding::new("br", 0xffff_fc1f, 0xd61f_0000);
/// `1101011 0001 11111 000000 Rn 00000`
pub const BLR: Encoding = Encoding::new("blr", 0xffff_fc1f, 0xd63f_0000);
/// `1101011 0010 11111 000000 Rn 00000`
pub const RET: Encoding = Encoding::new("ret", 0xffff_fc1f, 0xd65f_0000);
/// `0 immlo 10000 immhi Rd`
pub const ADR: Encoding = Encoding::new("adr", 0x9f00_0000, 0x1000_0000);
/// `1 immlo 10000 immhi Rd`
pub const ADRP: Encoding = Encoding::new("adrp", 0x9f00_0000, 0x9000_0000);
/// `00 011 0 00 imm19 Rt`
pub const LDR_LITERAL_W: Encoding = Encoding::new("ldr (literal, 32-bit)", 0xff00_0000, 0x1800_0000);
/// `01 011 0 00 imm19 Rt`
pub const LDR_LITERAL_X: Encoding = Encoding::new("ldr (literal, 64-bit)", 0xff00_0000, 0x5800_0000);
/// `10 011 0 00 imm19 Rt`
pub const LDRSW_LITERAL: Encoding = Encoding::new("ldrsw (literal)", 0xff00_0000, 0x9800_0000);
/// `00 011 1 00 imm19 Rt`: `ldr st, label` (SIMD&FP, 4 bytes)
pub const LDR_LITERAL_S: Encoding = Encoding::new("ldr (literal, SIMD&FP 32-bit)", 0xff00_0000, 0x1c00_0000);
/// `01 011 1 00 imm19 Rt`: `ldr dt, label` (SIMD&FP, 8 bytes)
pub const LDR_LITERAL_D: Encoding = Encoding::new("ldr (literal, SIMD&FP 64-bit)", 0xff00_0000, 0x5c00_0000);
/// `10 011 1 00 imm19 Rt`: `ldr qt, label` (SIMD&FP, 16 bytes). With opc =
/// 11 (`0xdc..`) the SIMD&FP literal load is unallocated.
pub const LDR_LITERAL_Q: Encoding = Encoding::new("ldr (literal, SIMD&FP 128-bit)", 0xff00_0000, 0x9c00_0000);
/// `11 011 0 00 imm19 Rt`
pub const PRFM_LITERAL: Encoding = Encoding::new("prfm (literal)", 0xff00_0000, 0xd800_0000);

// ---- Simulated under `SimulatePolicy::All` only ---------------------------

/// `1101010100 0 00 011 0010 0000 000 11111`
pub const NOP: Encoding = Encoding::new("nop", 0xffff_ffff, 0xd503_201f);
/// `stp x29, x30, [sp, #-16]!`: `10 101 0 011 0 1111110 11110 11111 11101`
/// (opc = 64-bit, pre-index, imm7 = -2 eight-byte units, Rt2 = x30, Rn = sp,
/// Rt = x29). Exactly this word: the frame push of almost every function.
pub const STP_FRAME_PUSH: Encoding = Encoding::new("stp x29, x30, [sp, #-16]!", 0xffff_ffff, 0xa9bf_7bfd);

// ---- Rejected --------------------------------------------------------------

/// `size 001000 0 L 0 Rs o0 Rt2 Rn Rt`: `stxr`, `stlxr`, `ldxr`, `ldaxr` (and
/// their `b`/`h` forms).
pub const LOAD_STORE_EXCLUSIVE_REGISTER: Encoding =
    Encoding::new("load/store exclusive register", 0x3fa0_0000, 0x0800_0000);
/// `1 sz 001000 0 L 1 Rs o0 Rt2 Rn Rt`: `stxp`, `stlxp`, `ldxp`, `ldaxp`.
pub const LOAD_STORE_EXCLUSIVE_PAIR: Encoding = Encoding::new("load/store exclusive pair", 0xbfa0_0000, 0x8820_0000);
/// `11010100 000 imm16 000 01`
pub const SVC: Encoding = Encoding::new("svc", 0xffe0_001f, 0xd400_0001);
/// `11010100 000 imm16 000 10`
pub const HVC: Encoding = Encoding::new("hvc", 0xffe0_001f, 0xd400_0002);
/// `11010100 000 imm16 000 11`
pub const SMC: Encoding = Encoding::new("smc", 0xffe0_001f, 0xd400_0003);
/// `11010100 001 imm16 000 00`
pub const BRK: Encoding = Encoding::new("brk", 0xffe0_001f, 0xd420_0000);
/// `11010100 010 imm16 000 00`
pub const HLT: Encoding = Encoding::new("hlt", 0xffe0_001f, 0xd440_0000);
/// `11010100 101 imm16 000 LL` with LL = 01, 10, 11.
pub const DCPS: Encoding = Encoding::new("dcps", 0xffe0_001c, 0xd4a0_0000);
/// `1101011 0100 11111 000000 11111 00000`
pub const ERET: Encoding = Encoding::new("eret", 0xffff_ffff, 0xd69f_03e0);
/// `1101011 0100 11111 00001 M 11111 11111`
pub const ERETA: Encoding = Encoding::new("ereta", 0xffff_fbff, 0xd69f_0bff);
/// `1101011 0101 11111 000000 11111 00000`
pub const DRPS: Encoding = Encoding::new("drps", 0xffff_ffff, 0xd6bf_03e0);
/// `1101011 0000 11111 00001 M Rn 11111` (`braaz`, `brabz`)
pub const BRA_ZERO_MODIFIER: Encoding = Encoding::new("braaz/brabz", 0xffff_f81f, 0xd61f_081f);
/// `1101011 0001 11111 00001 M Rn 11111` (`blraaz`, `blrabz`)
pub const BLRA_ZERO_MODIFIER: Encoding = Encoding::new("blraaz/blrabz", 0xffff_f81f, 0xd63f_081f);
/// `1101011 0010 11111 00001 M 11111 11111` (`retaa`, `retab`)
pub const RETA: Encoding = Encoding::new("retaa/retab", 0xffff_fbff, 0xd65f_0bff);
/// `1101011 1000 11111 00001 M Rn Rm` (`braa`, `brab`)
pub const BRA: Encoding = Encoding::new("braa/brab", 0xffff_f800, 0xd71f_0800);
/// `1101011 1001 11111 00001 M Rn Rm` (`blraa`, `blrab`)
pub const BLRA: Encoding = Encoding::new("blraa/blrab", 0xffff_f800, 0xd73f_0800);
/// `1101010100 0 00 op1 0100 CRm op2 11111`: writes a PSTATE field
/// (`msr daifset, #2`, `msr pan, #1`, also `cfinv`, `xaflag`, `axflag`).
pub const MSR_IMMEDIATE: Encoding = Encoding::new("msr (immediate)", 0xfff8_f01f, 0xd500_401f);
/// `1101010100 0 1 o0 op1 CRn CRm op2 Rt`
pub const MSR_REGISTER: Encoding = Encoding::new("msr (register)", 0xfff0_0000, 0xd510_0000);
/// `1101010100 0 01 op1 CRn CRm op2 Rt` (`dc`, `ic`, `at`, `tlbi`, ...)
pub const SYS: Encoding = Encoding::new("sys", 0xfff8_0000, 0xd508_0000);
/// `1101010100 1 01 op1 CRn CRm op2 Rt`
pub const SYSL: Encoding = Encoding::new("sysl", 0xfff8_0000, 0xd528_0000);

// ---- Stepped, named for the tests and traces --------------------------------

/// `1101010100 1 1 o0 op1 CRn CRm op2 Rt`: reading a system register
/// (`mrs x0, nzcv`, `mrs x0, tpidr_el0`) runs the same anywhere.
pub const MRS: Encoding = Encoding::new("mrs", 0xfff0_0000, 0xd530_0000);
/// `1101010100 0 00 011 0010 CRm op2 11111`: the hint space (`nop`, `yield`,
/// `bti`, `paciasp`, ...); an unallocated hint executes as a `nop`.
pub const HINT: Encoding = Encoding::new("hint", 0xffff_f01f, 0xd503_201f);

/// Every encoding above, for tests and for tools that print the table.
pub const ALL: &[Encoding] = &[
    B,
    BL,
    B_COND,
    BC_COND,
    CBZ,
    CBNZ,
    TBZ,
    TBNZ,
    BR,
    BLR,
    RET,
    ADR,
    ADRP,
    LDR_LITERAL_W,
    LDR_LITERAL_X,
    LDRSW_LITERAL,
    LDR_LITERAL_S,
    LDR_LITERAL_D,
    LDR_LITERAL_Q,
    PRFM_LITERAL,
    NOP,
    STP_FRAME_PUSH,
    LOAD_STORE_EXCLUSIVE_REGISTER,
    LOAD_STORE_EXCLUSIVE_PAIR,
    SVC,
    HVC,
    SMC,
    BRK,
    HLT,
    DCPS,
    ERET,
    ERETA,
    DRPS,
    BRA_ZERO_MODIFIER,
    BLRA_ZERO_MODIFIER,
    RETA,
    BRA,
    BLRA,
    MSR_IMMEDIATE,
    MSR_REGISTER,
    SYS,
    SYSL,
    MRS,
    HINT,
];
