//! The x86_64 half of `gen-transparency`: the register file a block starts
//! from and ends with ([`State`]: the 16 general registers and RFLAGS), the
//! assembly harness `gen_run`/`gen_exit` that loads and saves it around a
//! block, where the blocks' instructions are and what their bytes are (from
//! `gen_insn_table`, which the build script's assembly fills in: x86
//! instructions are 1 to 15 bytes, so only the assembler knows), and how a
//! state is seeded and compared.
//!
//! The harness keeps its own pointers in memory (`gen_state`, `gen_entry`,
//! `gen_spill`, reached RIP-relative), so every register, rsp included,
//! belongs to the block.

use core::{fmt, ptr::addr_of};

use crate::{
    generated::{FIRST, INSN_TABLE_LEN, TEXTS},
    Rng,
};

/// The register file a block starts from and ends with. Offsets are used by
/// the harness below: gpr 0 (hardware order: rax rcx rdx rbx rsp rbp rsi rdi
/// r8-r15), rflags 128, entry 136, host_rsp 144, host 152 (rbx rbp r12 r13
/// r14 r15).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct State {
    gpr: [u64; 16],
    rflags: u64,
    entry: u64,
    host_rsp: u64,
    host: [u64; 6],
}

const _: () = assert!(
    core::mem::offset_of!(State, rflags) == 128
        && core::mem::offset_of!(State, entry) == 136
        && core::mem::offset_of!(State, host_rsp) == 144
        && core::mem::offset_of!(State, host) == 152
);

/// Hardware numbers of the registers the generator (build/x86_64.rs) gives
/// fixed roles.
const RBX: usize = 3;
const RSP: usize = 4;
const RSI: usize = 6;
const RDI: usize = 7;
const R13: usize = 13;

const GPR_NAMES: [&str; 16] =
    ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

/// RFLAGS bit 1 is reserved and always reads 1.
const RFLAGS_RESERVED: u64 = 1 << 1;
/// IF: ring 3 cannot change it (`popfq` leaves it alone at IOPL 0) and the
/// kernel runs tasks with it set, so the value saved at the end has it.
const RFLAGS_IF: u64 = 1 << 9;
/// The arithmetic flags a block starts with at random: CF, PF, AF, ZF, SF,
/// OF. TF, DF and AC stay clear (DF clear: the string instructions move
/// forward, and Rust code expects it).
const RFLAGS_ARITHMETIC: u64 = (1 << 0) | (1 << 2) | (1 << 4) | (1 << 6) | (1 << 7) | (1 << 11);

core::arch::global_asm!(
    ".pushsection .text.gen_harness, \"ax\", @progbits",
    ".globl gen_run",
    ".type gen_run, %function",
    ".p2align 4",
    // gen_run(state = rdi): save the callee-saved registers and rsp, load
    // the state, jump to the block. Only `mov` after the `popfq`: it changes
    // no flag.
    "gen_run:",
    "mov [rdi + 152], rbx",
    "mov [rdi + 160], rbp",
    "mov [rdi + 168], r12",
    "mov [rdi + 176], r13",
    "mov [rdi + 184], r14",
    "mov [rdi + 192], r15",
    "mov [rdi + 144], rsp",
    "mov [rip + gen_state], rdi",
    "mov rax, [rdi + 136]",
    "mov [rip + gen_entry], rax",
    // On the host stack, so the scratch buffer is not written.
    "push qword ptr [rdi + 128]",
    "popfq",
    "mov rax, [rdi + 0]",
    "mov rcx, [rdi + 8]",
    "mov rdx, [rdi + 16]",
    "mov rbx, [rdi + 24]",
    "mov rsp, [rdi + 32]",
    "mov rbp, [rdi + 40]",
    "mov rsi, [rdi + 48]",
    "mov r8, [rdi + 64]",
    "mov r9, [rdi + 72]",
    "mov r10, [rdi + 80]",
    "mov r11, [rdi + 88]",
    "mov r12, [rdi + 96]",
    "mov r13, [rdi + 104]",
    "mov r14, [rdi + 112]",
    "mov r15, [rdi + 120]",
    "mov rdi, [rdi + 56]",
    "jmp qword ptr [rip + gen_entry]",
    // Every block ends with `jmp gen_exit`: save the registers (rax
    // through gen_spill, since the state pointer needs a register), then
    // RFLAGS on the host stack, restore the host's registers and return.
    ".globl gen_exit",
    "gen_exit:",
    "mov [rip + gen_spill], rax",
    "mov rax, [rip + gen_state]",
    "mov [rax + 8], rcx",
    "mov [rax + 16], rdx",
    "mov [rax + 24], rbx",
    "mov [rax + 32], rsp",
    "mov [rax + 40], rbp",
    "mov [rax + 48], rsi",
    "mov [rax + 56], rdi",
    "mov [rax + 64], r8",
    "mov [rax + 72], r9",
    "mov [rax + 80], r10",
    "mov [rax + 88], r11",
    "mov [rax + 96], r12",
    "mov [rax + 104], r13",
    "mov [rax + 112], r14",
    "mov [rax + 120], r15",
    "mov rcx, [rip + gen_spill]",
    "mov [rax + 0], rcx",
    "mov rsp, [rax + 144]",
    "pushfq",
    "pop qword ptr [rax + 128]",
    // Rust code runs with DF clear; a block that left it set shows in the
    // saved RFLAGS.
    "cld",
    "mov rbx, [rax + 152]",
    "mov rbp, [rax + 160]",
    "mov r12, [rax + 168]",
    "mov r13, [rax + 176]",
    "mov r14, [rax + 184]",
    "mov r15, [rax + 192]",
    "ret",
    ".size gen_run, . - gen_run",
    ".popsection",
    ".pushsection .bss.gen_harness, \"aw\", @nobits",
    ".p2align 3",
    // The State being run, the block's first instruction, and rax while
    // gen_exit needs a register.
    "gen_state: .zero 8",
    "gen_entry: .zero 8",
    "gen_spill: .zero 8",
    ".popsection",
);

unsafe extern "C" {
    fn gen_run(state: *mut State);
    /// Per block, the address of each instruction and then the address
    /// where its last one ends (build/x86_64.rs).
    static gen_insn_table: [u64; INSN_TABLE_LEN];
}

pub const fn zero_state() -> State {
    State { gpr: [0; 16], rflags: 0, entry: 0, host_rsp: 0, host: [0; 6] }
}

/// The address of block `block`'s first instruction.
pub fn block_address(block: usize) -> u64 {
    insn_address(block, 0)
}

/// The address of instruction `index` of block `block`.
pub fn insn_address(block: usize, index: usize) -> u64 {
    assert!(index <= TEXTS[block].len());
    // SAFETY: a table the assembly defines alongside TEXTS and FIRST; the
    // index is checked against its length.
    unsafe { (*addr_of!(gen_insn_table))[FIRST[block] + index] }
}

/// An instruction's bytes, as messages show them: `bytes 48 8b 05 10 00 00 00`.
pub struct Encoding {
    address: u64,
    len: u64,
}

/// How instruction `index` of block `block` is encoded.
pub fn encoding(block: usize, index: usize) -> Encoding {
    let address = insn_address(block, index);
    Encoding { address, len: insn_address(block, index + 1) - address }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")?;
        for i in 0..self.len {
            // SAFETY: inside one of our own instructions (between two entries
            // of gen_insn_table), mapped readable; a probe's int3 would show
            // as 0xcc, but messages are printed with no probe registered.
            let byte = unsafe { core::ptr::read_volatile((self.address + i) as *const u8) };
            write!(f, " {byte:02x}")?;
        }
        Ok(())
    }
}

/// Fills the registers of `state` from `rng` for block `block`, whose scratch
/// buffer (already filled) starts at `scratch`. The bases are where
/// build/x86_64.rs expects them: rbx 8 KiB into the buffer, rsi and rdi at
/// 16 and 20 KiB (plus up to 63 bytes, so string copies are not all
/// aligned), rsp at 24 KiB (16-byte aligned), r13 a small index.
pub fn seed(state: &mut State, rng: &mut Rng, scratch: u64, block: usize) {
    *state = zero_state();
    for r in state.gpr.iter_mut() {
        *r = rng.value();
    }
    state.gpr[RBX] = scratch + 8 * 1024;
    state.gpr[RSI] = scratch + 16 * 1024 + rng.next() % 64;
    state.gpr[RDI] = scratch + 20 * 1024 + rng.next() % 64;
    state.gpr[RSP] = scratch + 24 * 1024;
    state.gpr[R13] = rng.next() % 64;
    state.rflags = RFLAGS_RESERVED | RFLAGS_IF | (rng.next() & RFLAGS_ARITHMETIC);
    state.entry = block_address(block);
}

/// Runs the block `state.entry` from `state` and leaves its end state there.
pub fn run(state: &mut State) {
    // SAFETY: gen_run saves and restores every callee-saved register and
    // rsp and leaves DF clear, and the blocks touch only the scratch buffer
    // (their bases point into it and stay there), their own stack inside it,
    // and the state.
    unsafe { gen_run(state) };
}

/// Calls `report` with the name and both values of every register the
/// comparison covers: all 16 and the whole of RFLAGS.
pub fn compare(expected: &State, got: &State, report: &mut dyn FnMut(&dyn fmt::Display, u128, u128)) {
    for (name, (a, b)) in GPR_NAMES.iter().zip(expected.gpr.iter().zip(got.gpr.iter())) {
        report(name, *a as u128, *b as u128);
    }
    report(&"rflags", expected.rflags as u128, got.rflags as u128);
}
