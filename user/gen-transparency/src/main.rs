//! `gen-transparency [SEED [CORE|any]]`: differential transparency of probes.
//! With CORE, the program pins itself to that core first; with `any` it runs
//! wherever the scheduler puts it (and moves between cores). Either way
//! several of it may run at once on every core: the kernel-wide counters then
//! count the others' hits too, so it checks only its own probes' counts.
//!
//! The build script (build.rs) generates blocks of instructions (A64 or
//! x86_64, for the target) from a build seed (`GEN_SEED`); this program runs
//! each block from a state drawn from the run seed SEED (the registers the
//! architecture half in `arch/` names, and a 32 KiB scratch buffer the block
//! loads from and stores to): once unprobed, then twice with a probe on every
//! instruction of the block (registered with `probe_register` on its own
//! text). All three must end in the same state. A mismatch prints the seeds,
//! the block, the instruction the difference comes from (found by probing one
//! instruction at a time), its encoding and assembly text, and the registers
//! that differ. This file is the driver both architectures share.
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

#[cfg_attr(target_arch = "aarch64", path = "arch/aarch64.rs")]
#[cfg_attr(target_arch = "x86_64", path = "arch/x86_64.rs")]
mod arch;
use arch::{block_address, encoding, insn_address, State};

/// Bytes in the scratch buffer.
const SCRATCH: usize = 32 * 1024;

#[repr(C, align(16))]
struct Buffer([u8; SCRATCH]);

/// The buffer the blocks load from and store to. Named, so x86_64 blocks can
/// reach it RIP-relative as `gen_scratch` (it is in this program's .bss,
/// within +-2 GiB of the text).
#[unsafe(export_name = "gen_scratch")]
static mut SCRATCH_BUF: Buffer = Buffer([0; SCRATCH]);
static mut EXPECTED_BUF: Buffer = Buffer([0; SCRATCH]);
static mut EXPECTED: State = arch::zero_state();
static mut RUN: State = arch::zero_state();

/// SplitMix64, as in build.rs, for the run seed's states.
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

/// The state and scratch buffer block `block` starts from under run seed `seed`.
fn prepare(state: &mut State, block: usize, seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ block as u64);
    // SAFETY: only this thread touches the scratch buffer, and no block runs
    // while this reference lives.
    let scratch = unsafe { &mut (*addr_of_mut!(SCRATCH_BUF)).0 };
    for chunk in scratch.chunks_exact_mut(8) {
        chunk.copy_from_slice(&rng.value().to_le_bytes());
    }
    arch::seed(state, &mut rng, scratch.as_ptr() as u64, block);
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
    arch::compare(expected, got, &mut report);
    // SAFETY: single-threaded use of the two buffers.
    let (want, have) = unsafe { (&(*addr_of!(EXPECTED_BUF)).0, &(*addr_of!(SCRATCH_BUF)).0) };
    for offset in (0..SCRATCH).step_by(8) {
        let a = u64::from_le_bytes(want[offset..offset + 8].try_into().unwrap());
        let b = u64::from_le_bytes(have[offset..offset + 8].try_into().unwrap());
        report(&format_args!("scratch+{offset:#x}"), a as u128, b as u128);
    }
    count
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
        let address = insn_address(block, i);
        match sys::probe_register(ProbeKind::Uprobe, address) {
            Ok(probe) => *id = Some(probe),
            Err(Error::Refused) => {
                totals.refused += 1;
                println!(
                    "gen: refused: block {block} +{:#x} `{}` ({})",
                    address - base,
                    TEXTS[block][i],
                    encoding(block, i)
                );
            }
            Err(error) => {
                totals.errors += 1;
                println!("gen: probe_register(block {block} +{:#x}) failed: {}", address - base, error.name());
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
    arch::run(expected);
    // SAFETY: as above.
    unsafe { (*addr_of_mut!(EXPECTED_BUF)).0 = (*addr_of!(SCRATCH_BUF)).0 };

    let mut ids = [None; 256];
    let len = TEXTS[block].len();
    register(block, None, &mut ids[..len], totals);
    totals.probed += ids.iter().flatten().count() as u64;
    let mut bad = false;
    for _ in 0..2 {
        prepare(state, block, seed);
        arch::run(state);
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
    for (i, text) in TEXTS[block].iter().enumerate() {
        register(block, Some(i), &mut ids[..len], totals);
        prepare(state, block, seed);
        arch::run(state);
        let count = differences(expected, state, true);
        unregister(&mut ids[..len], totals);
        if count > 0 {
            found = true;
            println!(
                "gen: instruction {i} at +{:#x}: `{}` ({}) alone makes the run differ:",
                insn_address(block, i) - base,
                text,
                encoding(block, i)
            );
            differences(expected, state, false);
            break;
        }
    }
    if !found {
        println!("gen: no single probe makes the run differ; with all of them:");
        register(block, None, &mut ids[..len], totals);
        prepare(state, block, seed);
        arch::run(state);
        differences(expected, state, false);
        unregister(&mut ids[..len], totals);
    }
}

fn main(arguments: &str) -> i32 {
    let mut operands = args::operands(arguments, "gen-transparency");
    let seed: u64 = operands.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    // `CORE`: run on that core only, beside other processes on the others
    // (the kernel-wide counters then count their hits too, so only this
    // program's own probes are summed).
    let core_operand = operands.next();
    let shared = core_operand.is_some();
    let core: Option<u64> = core_operand.and_then(|s| s.parse().ok());
    if let Some(core) = core {
        match sys::pin_to_core(core).and_then(|_| sys::core_index()) {
            Ok(on) => println!("gen: run seed {seed} on core {on}"),
            Err(error) => {
                println!("gen: cannot run on core {core}: {}", error.name());
                return 1;
            }
        }
    }
    let before = sys::probe_counters().expect("probe_counters");
    let mut totals = Totals::default();
    for block in 0..TEXTS.len() {
        test_block(block, seed, &mut totals);
    }
    let after = sys::probe_counters().expect("probe_counters");
    let hits = after.hits - before.hits;
    let simulated = after.simulated - before.simulated;
    let stepped = after.stepped - before.stepped;
    let trampolined = after.trampolined - before.trampolined;
    if shared {
        println!(
            "gen: build seed {GEN_SEED}, run seed {seed}: {} blocks, {} instructions probed, {} hits (its own probes' counts), {} refused, {} mismatches",
            TEXTS.len(),
            totals.probed,
            totals.hits,
            totals.refused,
            totals.mismatches
        );
    } else {
        println!(
            "gen: build seed {GEN_SEED}, run seed {seed}: {} blocks, {} instructions probed, {} hits ({} simulated, {} stepped, {} trampolined), {} refused, {} mismatches",
            TEXTS.len(),
            totals.probed,
            hits,
            simulated,
            stepped,
            trampolined,
            totals.refused,
            totals.mismatches
        );
    }
    let counted = if shared {
        // Other processes hit probes meanwhile: the kernel-wide counters are
        // theirs too, and the test compares them with the sum of every run.
        true
    } else {
        hits == totals.hits
            && simulated + stepped + trampolined == hits
            && after.slot_reused + after.slot_written == after.stepped
    };
    if !counted {
        println!("gen: counters do not add up: probes counted {} hits, the kernel {hits} ({simulated} simulated + {stepped} stepped + {trampolined} trampolined)", totals.hits);
    }
    let ok = counted && totals.mismatches == 0 && totals.refused == 0 && totals.errors == 0 && totals.probed > 0;
    println!("gen: {}", if ok { "ok" } else { "FAILED" });
    if ok {
        0
    } else {
        1
    }
}
