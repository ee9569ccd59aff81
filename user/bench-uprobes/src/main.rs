//! `bench-uprobes SECTIONS ITERS REPS`: the EL0 half of `cargo xtask bench`.
//!
//! SECTIONS is a `+`-separated list of `floor`, `trig`, `scale`, `threads`, `kv`
//! (or `all`). Every case runs REPS repetitions of ITERS units of work (calls of
//! the target, or key-value requests), each timed in EL0 with the `clock` system
//! call and bracketed by `probe_counters`, and prints one line per repetition:
//!
//! ```text
//! bench: case=trig-uprobe-nop threads=1 probes=1 rep=0 iters=20000 ticks=.. freq=.. hits=.. simulated=.. stepped=.. slot_written=.. slot_reused=.. dc_cvau=.. ic_ivau=.. slot_waits=..
//! ```
//!
//! `hits` and the counters after it are deltas of the kernel-wide counters over
//! the repetition (this is the only process running). `bench: done` ends a
//! successful run; `bench: error ...` reports a case that could not be set up.
//!
//! The probed targets and the bare trap instructions are per architecture
//! (`arch/aarch64.rs`, `arch/x86_64.rs`); x86_64 has one `trig` target more,
//! `add` (first instruction always stepped), so its `trig-*-add` cases. The
//! cache counters (`dc_cvau`, `ic_ivau`) stay in the line on x86_64, where
//! instruction fetch is coherent and the kernel counts 0 lines.

#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use user_rt::{args, println, sys, thread, ProbeCounters, ProbeKind};

user_rt::entry!(main);

/// How many tiny functions `bench_fns` holds (the scaling case's probes).
const MANY: usize = 10_000;

#[cfg(target_arch = "aarch64")]
#[path = "arch/aarch64.rs"]
mod arch;
#[cfg(target_arch = "x86_64")]
#[path = "arch/x86_64.rs"]
mod arch;

use arch::{bench_fns, MANY_FN_STRIDE};

type Target = extern "C" fn(u64) -> u64;

fn many_fn(i: usize) -> Target {
    // SAFETY: bench_fns + MANY_FN_STRIDE * i (i < MANY) is the start of a
    // two-instruction function (`add x0, x0, #(i % 4096); ret` on aarch64,
    // `lea rax, [rdi + 4096 + i % 4096]; ret` on x86_64), which has the Target
    // signature.
    unsafe {
        let base = core::ptr::addr_of!(bench_fns) as usize;
        core::mem::transmute::<usize, Target>(base + MANY_FN_STRIDE * i)
    }
}

fn address(f: Target) -> u64 {
    f as *const () as u64
}

struct Config {
    iters: u64,
    reps: u64,
}

fn counters() -> ProbeCounters {
    sys::probe_counters().unwrap_or_default()
}

/// Times `body(iters)` REPS times (after one untimed warm-up of a tenth), printing one
/// `bench:` line per repetition with the probe counters it moved.
fn measure(config: &Config, case: &str, threads: u64, probes: u64, body: &mut dyn FnMut(u64)) {
    body((config.iters / 10).max(1));
    for rep in 0..config.reps {
        let a = counters();
        let (t0, freq) = sys::clock();
        body(config.iters);
        let (t1, _) = sys::clock();
        let b = counters();
        let (iters, ticks) = (config.iters, t1 - t0);
        println!(
            "bench: case={case} threads={threads} probes={probes} rep={rep} iters={iters} ticks={ticks} freq={freq} hits={} simulated={} stepped={} slot_written={} slot_reused={} dc_cvau={} ic_ivau={} slot_waits={} lock_waits={} trampolined={}",
            b.hits - a.hits,
            b.simulated - a.simulated,
            b.stepped - a.stepped,
            b.slot_written - a.slot_written,
            b.slot_reused - a.slot_reused,
            b.dc_cvau_lines - a.dc_cvau_lines,
            b.ic_ivau_lines - a.ic_ivau_lines,
            b.slot_waits - a.slot_waits,
            b.lock_waits - a.lock_waits,
            b.trampolined - a.trampolined,
        );
    }
}

fn call_loop(f: Target, n: u64) {
    let mut x = 0u64;
    for _ in 0..n {
        x = f(core::hint::black_box(x));
    }
    core::hint::black_box(x);
}

fn floor(config: &Config) {
    measure(config, "null-svc", 1, 0, &mut |n| {
        for _ in 0..n {
            arch::null_system_call();
        }
    });
    measure(config, "null-brk", 1, 0, &mut |n| {
        for _ in 0..n {
            arch::null_breakpoint();
        }
    });
}

fn with_probe(kind: ProbeKind, at: u64, what: &str, run: impl FnOnce()) {
    match sys::probe_register(kind, at) {
        Ok(id) => {
            run();
            if let Err(e) = sys::probe_unregister(id) {
                println!("bench: error unregistering the probe of {what}: {}", e.name());
            }
        }
        Err(e) => println!("bench: error registering a probe on {what}: {}", e.name()),
    }
}

fn trig(config: &Config) {
    for &(name, f) in arch::TRIG_TARGETS {
        let case = |kind: &str| {
            let mut s = Label::new();
            s.push("trig-").push(kind).push("-").push(name);
            s
        };
        measure(config, case("base").as_str(), 1, 0, &mut |n| call_loop(f, n));
        with_probe(ProbeKind::Uprobe, address(f), name, || {
            measure(config, case("uprobe").as_str(), 1, 1, &mut |n| call_loop(f, n));
        });
        with_probe(ProbeKind::Uretprobe, address(f), name, || {
            measure(config, case("uretprobe").as_str(), 1, 1, &mut |n| call_loop(f, n));
        });
    }
}

static IDS: [AtomicU64; MANY] = [const { AtomicU64::new(u64::MAX) }; MANY];

fn scale(config: &Config) {
    let base = many_fn(0);
    measure(config, "scale-base", 1, 0, &mut |n| call_loop(base, n));
    let mut registered = 0usize;
    let heap_before = sys::memory_info().map(|m| m.heap_used).unwrap_or(0);
    for probes in [1usize, 100, MANY] {
        while registered < probes {
            match sys::probe_register(ProbeKind::Uprobe, address(many_fn(registered))) {
                Ok(id) => IDS[registered].store(id, Ordering::Relaxed),
                Err(e) => {
                    println!("bench: error registering probe {registered}: {}", e.name());
                    return unregister_all(registered);
                }
            }
            registered += 1;
        }
        // Hit the most recently registered one (the others stay registered, unhit).
        let f = many_fn(probes - 1);
        measure(config, "scale-uprobe", 1, probes as u64, &mut |n| call_loop(f, n));
    }
    // What the kernel spends per probe (registry entry), and per entry of this
    // thread's breakpoint tree (each probe hit once more adds one).
    let heap_registered = sys::memory_info().map(|m| m.heap_used).unwrap_or(0);
    for i in 0..registered {
        call_loop(many_fn(i), 1);
    }
    let heap_hit = sys::memory_info().map(|m| m.heap_used).unwrap_or(0);
    println!(
        "bench: memory probes={registered} heap_per_probe={} heap_per_tree_entry={}",
        heap_registered.saturating_sub(heap_before) / registered as u64,
        heap_hit.saturating_sub(heap_registered) / registered as u64
    );
    unregister_all(registered);
}

fn unregister_all(count: usize) {
    for id in IDS.iter().take(count) {
        let _ = sys::probe_unregister(id.load(Ordering::Relaxed));
    }
}

static PER_THREAD: AtomicU64 = AtomicU64::new(0);
/// Bumped by the main thread to start one round of calls in every worker.
static ROUND: AtomicU64 = AtomicU64::new(0);
/// Workers that finished the current round.
static DONE: AtomicU64 = AtomicU64::new(0);
static QUIT: AtomicU64 = AtomicU64::new(0);

/// Worker `i` calls its own probed function once per round. Workers live for all
/// the rounds of one thread count: a process may create only 64 threads in all.
fn worker(i: usize) -> usize {
    let mut seen = 0;
    loop {
        while ROUND.load(Ordering::Acquire) == seen {
            if QUIT.load(Ordering::Acquire) != 0 {
                return 0;
            }
            thread::yield_now();
        }
        seen = ROUND.load(Ordering::Acquire);
        call_loop(many_fn(i), PER_THREAD.load(Ordering::Relaxed));
        DONE.fetch_add(1, Ordering::AcqRel);
    }
}

fn threads(config: &Config) {
    let mut ids = [0u64; 8];
    for (i, id) in ids.iter_mut().enumerate() {
        match sys::probe_register(ProbeKind::Uprobe, address(many_fn(i))) {
            Ok(v) => *id = v,
            Err(e) => {
                println!("bench: error registering thread probe {i}: {}", e.name());
                return;
            }
        }
    }
    for n in [1u64, 2, 4, 8] {
        QUIT.store(0, Ordering::Release);
        let mut tids = [None; 8];
        for (i, tid) in tids.iter_mut().enumerate().take(n as usize) {
            match thread::spawn(worker, i) {
                Ok(t) => *tid = Some(t),
                Err(e) => println!("bench: error spawning worker {i} of {n}: {}", e.name()),
            }
        }
        let started = tids.iter().flatten().count() as u64;
        if started == n {
            measure(config, "threads-uprobe", n, n, &mut |total| {
                PER_THREAD.store(total / n, Ordering::Relaxed);
                DONE.store(0, Ordering::Release);
                ROUND.fetch_add(1, Ordering::AcqRel);
                while DONE.load(Ordering::Acquire) < n {
                    thread::yield_now();
                }
            });
        }
        QUIT.store(1, Ordering::Release);
        for tid in tids.into_iter().flatten() {
            let _ = thread::join(tid);
        }
    }
    for id in ids {
        let _ = sys::probe_unregister(id);
    }
}

// ---- a small key-value store: open addressing over a fixed table ----

const SLOTS: usize = 4096;
const KEYS: u64 = 1024;
static TABLE_KEYS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
static TABLE_VALUES: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn kv_hash(key: u64) -> u64 {
    let mut h = key ^ 0x9e37_79b9_7f4a_7c15;
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Keys are never 0 (0 marks an empty slot).
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn kv_set(key: u64, value: u64) -> u64 {
    let mut i = kv_hash(key) as usize % SLOTS;
    loop {
        let k = TABLE_KEYS[i].load(Ordering::Relaxed);
        if k == key || k == 0 {
            TABLE_KEYS[i].store(key, Ordering::Relaxed);
            TABLE_VALUES[i].store(value, Ordering::Relaxed);
            return 1;
        }
        i = (i + 1) % SLOTS;
    }
}

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn kv_get(key: u64) -> u64 {
    let mut i = kv_hash(key) as usize % SLOTS;
    loop {
        let k = TABLE_KEYS[i].load(Ordering::Relaxed);
        if k == key {
            return TABLE_VALUES[i].load(Ordering::Relaxed);
        }
        if k == 0 {
            return 0;
        }
        i = (i + 1) % SLOTS;
    }
}

/// `n` requests of a fixed seeded mix: 80% GET, 20% SET over 1024 keys.
fn kv_requests(n: u64) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut sum = 0u64;
    for _ in 0..n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let key = 1 + (state >> 8) % KEYS;
        if state.is_multiple_of(5) {
            sum = sum.wrapping_add(kv_set(core::hint::black_box(key), state));
        } else {
            sum = sum.wrapping_add(kv_get(core::hint::black_box(key)));
        }
    }
    core::hint::black_box(sum);
}

fn kv(config: &Config) {
    for key in 1..=KEYS {
        kv_set(key, key * 3);
    }
    measure(config, "kv-base", 1, 0, &mut kv_requests);
    let hot = [kv_hash as *const () as u64, kv_get as *const () as u64, kv_set as *const () as u64];
    for (kind, case) in [(ProbeKind::Uprobe, "kv-uprobe"), (ProbeKind::Uretprobe, "kv-uretprobe")] {
        let mut ids = [None; 3];
        for (id, at) in ids.iter_mut().zip(hot) {
            match sys::probe_register(kind, at) {
                Ok(v) => *id = Some(v),
                Err(e) => println!("bench: error registering a kv probe at {at:#x}: {}", e.name()),
            }
        }
        measure(config, case, 1, ids.iter().flatten().count() as u64, &mut kv_requests);
        for id in ids.into_iter().flatten() {
            let _ = sys::probe_unregister(id);
        }
    }
}

/// A case name built without a heap.
struct Label {
    bytes: [u8; 48],
    len: usize,
}

impl Label {
    fn new() -> Self {
        Label { bytes: [0; 48], len: 0 }
    }
    fn push(&mut self, s: &str) -> &mut Self {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        self
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("?")
    }
}

fn main(arguments: &str) -> i32 {
    let mut operands = args::operands(arguments, "bench-uprobes");
    let sections = operands.next().unwrap_or("all");
    let iters = operands.next().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let reps = operands.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let config = Config { iters, reps };
    let (_, freq) = sys::clock();
    println!("bench: start sections={sections} iters={iters} reps={reps} freq={freq}");
    for section in sections.split('+') {
        let all = section == "all";
        if all || section == "floor" {
            floor(&config);
        }
        if all || section == "trig" {
            trig(&config);
        }
        if all || section == "scale" {
            scale(&config);
        }
        if all || section == "threads" {
            threads(&config);
        }
        if all || section == "kv" {
            kv(&config);
        }
    }
    println!("bench: done");
    0
}
