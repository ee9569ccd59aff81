//! `gen-transparency [SEED]`: differential transparency of probes.
//!
//! The build script (build.rs) generates blocks of A64 instructions from a
//! build seed (`GEN_SEED`); this program runs each block from a state drawn
//! from the run seed SEED (all GPRs, SP, NZCV, FPSR, TPIDR_EL0, the 32 SIMD/FP
//! registers and a 32 KiB scratch buffer the block loads from and stores to):
//! once unprobed, then twice with a probe on every instruction of the block
//! (registered with `probe_register` on its own text). All three must end in
//! the same state. A mismatch prints the seeds, the block, the instruction the
//! difference comes from (found by probing one instruction at a time), its
//! word and assembly text, and the registers that differ.
//!
//! Prints `gen: ok` and exits 0 when every block matched and the counters add
//! up; otherwise `gen: FAILED` and exit 1.

#![no_std]
#![no_main]

use core::ptr::{addr_of, addr_of_mut};
use user_rt::{args, println, sys, Error, ProbeKind};

user_rt::entry!(main);

mod generated {
    include!(concat!(env!("OUT_DIR"), "/gen.rs"));
}
use generated::{GEN_SEED, TEXTS};

core::arch::global_asm!(include_str!(concat!(env!("OUT_DIR"), "/gen.s")));

/// The register file a block starts from and ends with. Offsets are used by
/// the harness below: x 0, sp 248, nzcv 256, fpsr 264, tpidr 272, entry 280,
/// host_sp 288, host_tpidr 296, v 304, host 816 (x19-x30, then d8-d15).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(16))]
struct State {
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

const SCRATCH: usize = 32 * 1024;

#[repr(C, align(16))]
struct Buffer([u8; SCRATCH]);

static mut SCRATCH_BUF: Buffer = Buffer([0; SCRATCH]);
static mut EXPECTED_BUF: Buffer = Buffer([0; SCRATCH]);
static mut EXPECTED: State = zero_state();
static mut RUN: State = zero_state();

const fn zero_state() -> State {
    State { x: [0; 31], sp: 0, nzcv: 0, fpsr: 0, tpidr: 0, entry: 0, host_sp: 0, host_tpidr: 0, v: [0; 32], host: [0; 20] }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Values that make flags, shifts and divisions interesting.
    fn value(&mut self) -> u64 {
        let r = self.next();
        match r % 8 {
            0 => 0,
            1 => u64::MAX,
            2 => r >> 58,
            3 => 1 << (r >> 58),
            4 => (r >> 32) as u32 as u64,
            5 => i64::MIN as u64,
            _ => self.next(),
        }
    }
}

fn block_address(block: usize) -> u64 {
    // SAFETY: a table the assembly defines with one entry per block.
    unsafe { (*addr_of!(gen_block_table))[block] }
}

/// The state and scratch buffer block `block` starts from under run seed `seed`.
fn prepare(state: &mut State, block: usize, seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ block as u64);
    // SAFETY: only this thread touches the scratch buffer.
    let scratch = unsafe { &mut (*addr_of_mut!(SCRATCH_BUF)).0 };
    for chunk in scratch.chunks_exact_mut(8) {
        chunk.copy_from_slice(&rng.value().to_le_bytes());
    }
    let base = scratch.as_ptr() as u64;
    *state = zero_state();
    for x in state.x.iter_mut() {
        *x = rng.value();
    }
    state.x[19] = base + 8 * 1024;
    state.x[20] = base + 16 * 1024;
    state.x[21] = rng.next() % 64;
    state.sp = base + 24 * 1024;
    state.nzcv = (rng.next() & 0xf) << 28;
    state.fpsr = 0;
    state.tpidr = rng.next();
    for v in state.v.iter_mut() {
        *v = (rng.value() as u128) << 64 | rng.value() as u128;
    }
    state.entry = block_address(block);
}

fn run(state: &mut State) {
    // SAFETY: gen_run saves and restores every callee-saved register, SP and
    // TPIDR_EL0, and the blocks touch only the scratch buffer and the state.
    unsafe { gen_run(state) };
}

/// Prints the differences between `expected` (unprobed) and `got` (probed);
/// returns how many there are.
fn differences(expected: &State, got: &State, quiet: bool) -> usize {
    let mut count = 0;
    let mut report = |name: &dyn core::fmt::Display, a: u128, b: u128| {
        if a != b {
            count += 1;
            if !quiet && count <= 12 {
                println!("gen:   {name}: unprobed {a:#x}, probed {b:#x}");
            }
        }
    };
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
    // SAFETY: single-threaded use of the two buffers.
    let (want, have) = unsafe { (&(*addr_of!(EXPECTED_BUF)).0, &(*addr_of!(SCRATCH_BUF)).0) };
    for offset in (0..SCRATCH).step_by(8) {
        let a = u64::from_le_bytes(want[offset..offset + 8].try_into().unwrap());
        let b = u64::from_le_bytes(have[offset..offset + 8].try_into().unwrap());
        report(&format_args!("scratch+{offset:#x}"), a as u128, b as u128);
    }
    count
}

fn read_word(address: u64) -> u32 {
    // SAFETY: our own text, readable at EL0.
    unsafe { core::ptr::read_volatile(address as *const u32) }
}

#[derive(Default)]
struct Totals {
    probed: u64,
    refused: u64,
    hits: u64,
    mismatches: u64,
    errors: u64,
}

/// Registers a probe on every instruction of `block` (or only on `only`).
fn register(block: usize, only: Option<usize>, ids: &mut [Option<u64>], totals: &mut Totals) {
    let base = block_address(block);
    for (i, id) in ids.iter_mut().enumerate().take(TEXTS[block].len()) {
        *id = None;
        if only.is_some_and(|o| o != i) {
            continue;
        }
        match sys::probe_register(ProbeKind::Uprobe, base + 4 * i as u64) {
            Ok(probe) => *id = Some(probe),
            Err(Error::Refused) => {
                totals.refused += 1;
                println!("gen: refused: block {block} +{:#x} `{}` (word {:#010x})", 4 * i, TEXTS[block][i], read_word(base + 4 * i as u64));
            }
            Err(error) => {
                totals.errors += 1;
                println!("gen: probe_register(block {block} +{:#x}) failed: {}", 4 * i, error.name());
            }
        }
    }
}

/// Unregisters every probe in `ids`; returns the hits they counted.
fn unregister(ids: &mut [Option<u64>], totals: &mut Totals) -> u64 {
    let mut hits = 0;
    for id in ids.iter_mut() {
        if let Some(probe) = id.take() {
            hits += sys::probe_stats(probe).map(|s| s.hits).unwrap_or_else(|_| {
                totals.errors += 1;
                0
            });
            if sys::probe_unregister(probe).is_err() {
                totals.errors += 1;
            }
        }
    }
    hits
}

fn test_block(block: usize, seed: u64, totals: &mut Totals) {
    // SAFETY: single-threaded use of the statics.
    let (expected, state) = unsafe { (&mut *addr_of_mut!(EXPECTED), &mut *addr_of_mut!(RUN)) };
    prepare(expected, block, seed);
    run(expected);
    // SAFETY: as above.
    unsafe { (*addr_of_mut!(EXPECTED_BUF)).0 = (*addr_of!(SCRATCH_BUF)).0 };

    let mut ids = [None; 256];
    let len = TEXTS[block].len();
    register(block, None, &mut ids[..len], totals);
    totals.probed += ids.iter().flatten().count() as u64;
    let mut bad = false;
    for _ in 0..2 {
        prepare(state, block, seed);
        run(state);
        if differences(expected, state, true) > 0 {
            bad = true;
        }
    }
    totals.hits += unregister(&mut ids[..len], totals);
    if !bad {
        return;
    }
    totals.mismatches += 1;
    println!("gen: MISMATCH: build seed {GEN_SEED}, run seed {seed}, block {block} (GEN_SEED={GEN_SEED} gen-transparency:{seed})");
    // Find the instruction: probe one at a time.
    let base = block_address(block);
    let mut found = false;
    for i in 0..len {
        register(block, Some(i), &mut ids[..len], totals);
        prepare(state, block, seed);
        run(state);
        let count = differences(expected, state, true);
        unregister(&mut ids[..len], totals);
        if count > 0 {
            found = true;
            println!("gen: instruction {i} at +{:#x}: `{}` (word {:#010x}) alone makes the run differ:", 4 * i, TEXTS[block][i], read_word(base + 4 * i as u64));
            differences(expected, state, false);
            break;
        }
    }
    if !found {
        println!("gen: no single probe makes the run differ; with all of them:");
        register(block, None, &mut ids[..len], totals);
        prepare(state, block, seed);
        run(state);
        differences(expected, state, false);
        unregister(&mut ids[..len], totals);
    }
}

fn main(arguments: &str) -> i32 {
    let mut operands = args::operands(arguments, "gen-transparency");
    let seed: u64 = operands.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let before = sys::probe_counters().expect("probe_counters");
    let mut totals = Totals::default();
    for block in 0..TEXTS.len() {
        test_block(block, seed, &mut totals);
    }
    let after = sys::probe_counters().expect("probe_counters");
    let hits = after.hits - before.hits;
    let simulated = after.simulated - before.simulated;
    let stepped = after.stepped - before.stepped;
    println!(
        "gen: build seed {GEN_SEED}, run seed {seed}: {} blocks, {} instructions probed, {} hits ({} simulated, {} stepped), {} refused, {} mismatches",
        TEXTS.len(),
        totals.probed,
        hits,
        simulated,
        stepped,
        totals.refused,
        totals.mismatches
    );
    let counted = hits == totals.hits && simulated + stepped == hits && after.slot_reused + after.slot_written == after.stepped;
    if !counted {
        println!("gen: counters do not add up: probes counted {} hits, the kernel {hits} ({simulated} simulated + {stepped} stepped)", totals.hits);
    }
    let ok = counted && totals.mismatches == 0 && totals.refused == 0 && totals.errors == 0 && totals.probed > 0;
    println!("gen: {}", if ok { "ok" } else { "FAILED" });
    if ok { 0 } else { 1 }
}
