//! `probes MODE ...`: puts probes on its own code through the probe system
//! calls and checks what the kernel promises about them.
//!
//! - `probes unregister ROUNDS`: two threads call `probe_target` non-stop while
//!   the main thread, ROUNDS times, registers a probe on it, lets them hit it,
//!   and unregisters it. After `probe_unregister` returns, the probe must never
//!   count another hit, and the text must hold the original instruction again.
//! - `probes threads N CALLS`: N threads each call `probe_target` CALLS times
//!   with a probe on it (boot with `xol-slots=1` to have fewer step slots than
//!   threads); the probe must count exactly N x CALLS hits.
//!
//! - `probes die-stepping`: a worker thread hits a stepped probe non-stop
//!   while the main thread commits an undefined instruction. Booted with
//!   `preempt-steps`, the worker is always between a `brk` and its step when
//!   the main thread runs, so the process is killed with a slot in flight.
//!
//! Prints one line per check and `probes: ok` when all held (exit 0), else 1.
//!
//! `probe_target` and the undefined instruction are per architecture
//! (`arch/aarch64.rs`, `arch/x86_64.rs`); the rest is the same on both.

#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use user_rt::{args, println, sys, thread, ProbeKind};

user_rt::entry!(main);

#[cfg(target_arch = "aarch64")]
#[path = "arch/aarch64.rs"]
mod arch;
#[cfg(target_arch = "x86_64")]
#[path = "arch/x86_64.rs"]
mod arch;

use arch::probe_target;

static STOP: AtomicBool = AtomicBool::new(false);
static CALLS: AtomicU64 = AtomicU64::new(0);

fn target_address() -> u64 {
    probe_target as *const () as u64
}

/// The first four bytes of `probe_target`, as EL0 reads them (text is
/// readable): the original instruction, or while a probe is there the
/// breakpoint over it (a `brk` on aarch64; on x86_64 an `int3`, 0xcc, over the
/// first of these bytes).
fn first_instruction() -> u32 {
    // SAFETY: our own text, mapped readable for EL0; read_volatile so the read
    // really happens each time.
    unsafe { core::ptr::read_volatile(target_address() as *const u32) }
}

fn hammer(_: usize) -> usize {
    let mut x = 1u64;
    while !STOP.load(Ordering::Relaxed) {
        x = probe_target(core::hint::black_box(x));
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
    x as usize
}

fn unregister_rounds(rounds: u64) -> bool {
    let original = first_instruction();
    let workers = [thread::spawn(hammer, 0).expect("spawn"), thread::spawn(hammer, 1).expect("spawn")];
    let (mut total_hits, mut late_hits, mut restored, mut hit_rounds) = (0, 0, 0, 0);
    for _ in 0..rounds {
        let id = match sys::probe_register(ProbeKind::Uprobe, target_address()) {
            Ok(id) => id,
            Err(error) => {
                println!("probes: probe_register failed: {}", error.name());
                return false;
            }
        };
        thread::sleep(3_000_000);
        sys::probe_unregister(id).expect("probe_unregister");
        let at_unregister = sys::probe_stats(id).expect("stats").hits;
        if first_instruction() == original {
            restored += 1;
        }
        // The threads go on calling the function: none of those calls may count.
        let calls_before = CALLS.load(Ordering::Relaxed);
        while CALLS.load(Ordering::Relaxed) < calls_before + 200 {
            thread::yield_now();
        }
        let later = sys::probe_stats(id).expect("stats").hits;
        late_hits += later - at_unregister;
        total_hits += at_unregister;
        if at_unregister > 0 {
            hit_rounds += 1;
        }
    }
    STOP.store(true, Ordering::Relaxed);
    for worker in workers {
        thread::join(worker).expect("join");
    }
    println!("probes: unregister: {rounds} rounds, {hit_rounds} with hits, {total_hits} hits in all");
    println!("probes: unregister: hits after probe_unregister returned: {late_hits}");
    println!("probes: unregister: text restored after {restored} of {rounds} unregistrations");
    late_hits == 0 && restored == rounds && hit_rounds > 0
}

static PER_THREAD_CALLS: AtomicU64 = AtomicU64::new(0);

fn call_n_times(_: usize) -> usize {
    let calls = PER_THREAD_CALLS.load(Ordering::Relaxed);
    let mut x = 7u64;
    for _ in 0..calls {
        x = probe_target(core::hint::black_box(x));
    }
    x as usize
}

fn many_threads(threads: u64, calls: u64) -> bool {
    PER_THREAD_CALLS.store(calls, Ordering::Relaxed);
    let id = sys::probe_register(ProbeKind::Uprobe, target_address()).expect("probe_register");
    let threads = threads.min(32);
    let mut tids: [Option<thread::Tid>; 32] = [None; 32];
    for tid in tids.iter_mut().take(threads as usize) {
        *tid = Some(thread::spawn(call_n_times, 0).expect("spawn"));
    }
    for tid in tids.into_iter().flatten() {
        thread::join(tid).expect("join");
    }
    let hits = sys::probe_stats(id).expect("stats").hits;
    let counters = sys::probe_counters().expect("counters");
    sys::probe_unregister(id).expect("probe_unregister");
    println!(
        "probes: threads: {threads} threads x {calls} calls, probe hits {hits}, expected {} (slot waits {})",
        threads * calls,
        counters.slot_waits
    );
    hits == threads * calls
}

fn main(arguments: &str) -> i32 {
    let mut operands = args::operands(arguments, "probes");
    let mode = operands.next().unwrap_or("");
    let mut number = |default: u64| operands.next().and_then(|n| n.parse().ok()).unwrap_or(default);
    let ok = match mode {
        "unregister" => unregister_rounds(number(20)),
        "die-stepping" => {
            sys::probe_register(ProbeKind::Uprobe, target_address()).expect("probe_register");
            thread::spawn(hammer, 0).expect("spawn");
            while CALLS.load(Ordering::Relaxed) < 100 {
                thread::yield_now();
            }
            println!("probes: die-stepping: committing an undefined instruction");
            arch::commit_undefined_instruction();
            false
        }
        "threads" => {
            let threads = number(8);
            many_threads(threads, number(500))
        }
        _ => {
            println!("probes: usage: probes unregister [ROUNDS] | probes threads [N] [CALLS] | probes die-stepping");
            return 2;
        }
    };
    println!("probes: {}", if ok { "ok" } else { "FAILED" });
    if ok {
        0
    } else {
        1
    }
}
