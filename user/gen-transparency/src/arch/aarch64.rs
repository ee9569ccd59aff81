//! The A64 half of `gen-transparency`: the register file a block starts
//! from and ends with ([`State`]: all GPRs, SP, NZCV, FPSR, TPIDR_EL0 and the
//! 32 SIMD/FP registers), the assembly harness `gen_run`/`gen_exit` that loads
//! and saves it around a block, where the blocks' instructions are (4 bytes
//! each, from `gen_block_table`), and how a state is seeded and compared.

use core::{fmt, ptr::addr_of};

use crate::{generated::TEXTS, Rng};

/// The register file a block starts from and ends with. Offsets are used by
/// the harness below: x 0, sp 248, nzcv 256, fpsr 264, tpidr 272, entry 280,
/// host_sp 288, host_tpidr 296, v 304, host 816 (x19-x30, then d8-d15).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct State {
    x: [u64; 31],
    sp: u64,
    nzcv: u64,
    fpsr: u64,
    tpidr: u64,
    entry: u64,
    host_sp: u64,
    host_tpidr: u64,
    v: [u128; 32],
    host: [u64; 20],
}

const _: () = assert!(core::mem::offset_of!(State, v) == 304 && core::mem::offset_of!(State, host) == 816);

core::arch::global_asm!(
    ".pushsection .text.gen_harness, \"ax\", %progbits",
    ".globl gen_run",
    ".type gen_run, %function",
    ".p2align 4",
    "gen_run:",
    "add x1, x0, #816",
    "stp x19, x20, [x1, #0]",
    "stp x21, x22, [x1, #16]",
    "stp x23, x24, [x1, #32]",
    "stp x25, x26, [x1, #48]",
    "stp x27, x28, [x1, #64]",
    "stp x29, x30, [x1, #80]",
    "stp d8, d9, [x1, #96]",
    "stp d10, d11, [x1, #112]",
    "stp d12, d13, [x1, #128]",
    "stp d14, d15, [x1, #144]",
    "mov x1, sp",
    "str x1, [x0, #288]",
    "mrs x1, tpidr_el0",
    "str x1, [x0, #296]",
    "mov x28, x0",
    "ldr x1, [x28, #248]",
    "mov sp, x1",
    "ldr x1, [x28, #256]",
    "msr nzcv, x1",
    "ldr x1, [x28, #264]",
    "msr fpsr, x1",
    "ldr x1, [x28, #272]",
    "msr tpidr_el0, x1",
    "ldp q0, q1, [x28, #304]",
    "ldp q2, q3, [x28, #336]",
    "ldp q4, q5, [x28, #368]",
    "ldp q6, q7, [x28, #400]",
    "ldp q8, q9, [x28, #432]",
    "ldp q10, q11, [x28, #464]",
    "ldp q12, q13, [x28, #496]",
    "ldp q14, q15, [x28, #528]",
    "ldp q16, q17, [x28, #560]",
    "ldp q18, q19, [x28, #592]",
    "ldp q20, q21, [x28, #624]",
    "ldp q22, q23, [x28, #656]",
    "ldp q24, q25, [x28, #688]",
    "ldp q26, q27, [x28, #720]",
    "ldp q28, q29, [x28, #752]",
    "ldp q30, q31, [x28, #784]",
    "ldp x0, x1, [x28, #0]",
    "ldp x2, x3, [x28, #16]",
    "ldp x4, x5, [x28, #32]",
    "ldp x6, x7, [x28, #48]",
    "ldp x8, x9, [x28, #64]",
    "ldp x10, x11, [x28, #80]",
    "ldp x12, x13, [x28, #96]",
    "ldp x14, x15, [x28, #112]",
    "ldp x16, x17, [x28, #128]",
    "ldp x18, x19, [x28, #144]",
    "ldp x20, x21, [x28, #160]",
    "ldp x22, x23, [x28, #176]",
    "ldp x24, x25, [x28, #192]",
    "ldp x26, x27, [x28, #208]",
    "ldp x29, x30, [x28, #232]",
    "ldr x16, [x28, #280]",
    "br x16",
    ".globl gen_exit",
    "gen_exit:",
    "stp x0, x1, [x28, #0]",
    "stp x2, x3, [x28, #16]",
    "stp x4, x5, [x28, #32]",
    "stp x6, x7, [x28, #48]",
    "stp x8, x9, [x28, #64]",
    "stp x10, x11, [x28, #80]",
    "stp x12, x13, [x28, #96]",
    "stp x14, x15, [x28, #112]",
    "stp x16, x17, [x28, #128]",
    "stp x18, x19, [x28, #144]",
    "stp x20, x21, [x28, #160]",
    "stp x22, x23, [x28, #176]",
    "stp x24, x25, [x28, #192]",
    "stp x26, x27, [x28, #208]",
    "stp x29, x30, [x28, #232]",
    "mov x0, sp",
    "str x0, [x28, #248]",
    "mrs x0, nzcv",
    "str x0, [x28, #256]",
    "mrs x0, fpsr",
    "str x0, [x28, #264]",
    "mrs x0, tpidr_el0",
    "str x0, [x28, #272]",
    "stp q0, q1, [x28, #304]",
    "stp q2, q3, [x28, #336]",
    "stp q4, q5, [x28, #368]",
    "stp q6, q7, [x28, #400]",
    "stp q8, q9, [x28, #432]",
    "stp q10, q11, [x28, #464]",
    "stp q12, q13, [x28, #496]",
    "stp q14, q15, [x28, #528]",
    "stp q16, q17, [x28, #560]",
    "stp q18, q19, [x28, #592]",
    "stp q20, q21, [x28, #624]",
    "stp q22, q23, [x28, #656]",
    "stp q24, q25, [x28, #688]",
    "stp q26, q27, [x28, #720]",
    "stp q28, q29, [x28, #752]",
    "stp q30, q31, [x28, #784]",
    "ldr x0, [x28, #296]",
    "msr tpidr_el0, x0",
    "ldr x0, [x28, #288]",
    "mov sp, x0",
    "add x1, x28, #816",
    "ldp d8, d9, [x1, #96]",
    "ldp d10, d11, [x1, #112]",
    "ldp d12, d13, [x1, #128]",
    "ldp d14, d15, [x1, #144]",
    "ldp x19, x20, [x1, #0]",
    "ldp x21, x22, [x1, #16]",
    "ldp x23, x24, [x1, #32]",
    "ldp x25, x26, [x1, #48]",
    "ldp x29, x30, [x1, #80]",
    "ldp x27, x28, [x1, #64]",
    "ret",
    ".size gen_run, . - gen_run",
    ".popsection",
    // A page-aligned datum for the blocks' `adrp`.
    ".pushsection .rodata.gen_data, \"a\", %progbits",
    ".p2align 12",
    ".globl gen_data",
    "gen_data: .quad 0x1234",
    ".popsection",
);

unsafe extern "C" {
    fn gen_run(state: *mut State);
    static gen_block_table: [u64; TEXTS.len()];
}

pub const fn zero_state() -> State {
    State {
        x: [0; 31],
        sp: 0,
        nzcv: 0,
        fpsr: 0,
        tpidr: 0,
        entry: 0,
        host_sp: 0,
        host_tpidr: 0,
        v: [0; 32],
        host: [0; 20],
    }
}

/// Bytes in one A64 instruction.
const INSN_BYTES: u64 = 4;

/// The address of block `block`'s first instruction.
pub fn block_address(block: usize) -> u64 {
    // SAFETY: a table the assembly defines with one entry per block.
    unsafe { (*addr_of!(gen_block_table))[block] }
}

/// The address of instruction `index` of block `block`.
pub fn insn_address(block: usize, index: usize) -> u64 {
    block_address(block) + INSN_BYTES * index as u64
}

/// The instruction word at `address`, as messages show it: `word 0x8b020020`.
pub struct Encoding(u64);

/// How instruction `index` of block `block` is encoded.
pub fn encoding(block: usize, index: usize) -> Encoding {
    Encoding(insn_address(block, index))
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: the address of one of our own instructions, readable at EL0.
        let word = unsafe { core::ptr::read_volatile(self.0 as *const u32) };
        write!(f, "word {word:#010x}")
    }
}

/// Fills the registers of `state` from `rng` for block `block`, whose scratch
/// buffer (already filled) starts at `scratch`.
pub fn seed(state: &mut State, rng: &mut Rng, scratch: u64, block: usize) {
    *state = zero_state();
    for x in state.x.iter_mut() {
        *x = rng.value();
    }
    state.x[19] = scratch + 8 * 1024;
    state.x[20] = scratch + 16 * 1024;
    state.x[21] = rng.next() % 64;
    state.sp = scratch + 24 * 1024;
    state.nzcv = (rng.next() & 0xf) << 28;
    state.fpsr = 0;
    state.tpidr = rng.next();
    for v in state.v.iter_mut() {
        *v = (rng.value() as u128) << 64 | rng.value() as u128;
    }
    state.entry = block_address(block);
}

/// Runs the block `state.entry` from `state` and leaves its end state there.
pub fn run(state: &mut State) {
    // SAFETY: gen_run saves and restores every callee-saved register, SP and
    // TPIDR_EL0, and the blocks touch only the scratch buffer and the state.
    unsafe { gen_run(state) };
}

/// Calls `report` with the name and both values of every register the
/// comparison covers (all but x28, the harness's state pointer).
pub fn compare(expected: &State, got: &State, report: &mut dyn FnMut(&dyn fmt::Display, u128, u128)) {
    for (i, (a, b)) in expected.x.iter().zip(got.x.iter()).enumerate() {
        if i != 28 {
            report(&format_args!("x{i}"), *a as u128, *b as u128);
        }
    }
    report(&"sp", expected.sp as u128, got.sp as u128);
    report(&"nzcv", expected.nzcv as u128, got.nzcv as u128);
    report(&"fpsr", expected.fpsr as u128, got.fpsr as u128);
    report(&"tpidr_el0", expected.tpidr as u128, got.tpidr as u128);
    for (i, (a, b)) in expected.v.iter().zip(got.v.iter()).enumerate() {
        report(&format_args!("v{i}"), *a, *b);
    }
}
