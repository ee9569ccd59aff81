//! `scenarios MODE ...`: fault, race and hostile-input scenarios for the brk
//! path (docs/proving.md), each printing `scenarios: ...` lines the tests in
//! tests/tests/scenarios.rs check exactly.
//!
//! - `fuzz CALLS SEED`: CALLS system calls with seeded random numbers and
//!   arguments (never `exit` or `thread_exit`); every result must be a value or
//!   one of the ABI's errors.
//! - `register-bad`: probe registrations outside text, unaligned, in data, on
//!   the XOL page (the trampoline), twice on one address.
//! - `flood`: registers probes on a 17,000-instruction sled until the kernel
//!   refuses, then unregisters them all and checks a probe still works.
//! - `retdepth DEPTH`: a return probe on a function recursing DEPTH deep.
//! - `longjmp`: a non-local exit out of probed calls, then ordinary calls.
//! - `race ROUNDS`: 4 threads call a probed function while it is unregistered
//!   and registered again ROUNDS times.
//! - `xol-write`, `xol-jump SLOT`, `own-brk`: things the kernel must kill.
//!
//! The assembly functions and the few addresses and instructions that differ
//! between architectures are in `arch/aarch64.rs` and `arch/x86_64.rs`; the
//! scenarios and the lines they print are the same on both (`register-bad`
//! skips its unaligned registration on x86_64, which has no alignment).

#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use user_rt::{args, layout, println, sys, thread, Error, ProbeKind};

user_rt::entry!(main);

/// The instructions of `flood_sled` (its `.rept` count in the `arch` module).
const SLED_INSTRUCTIONS: usize = 17_000;

#[cfg(target_arch = "aarch64")]
#[path = "arch/aarch64.rs"]
mod arch;
#[cfg(target_arch = "x86_64")]
#[path = "arch/x86_64.rs"]
mod arch;

use arch::{depth, flood_sled, jump_depth, own_brk, setjmp_and_jump, INSN_SIZE};

fn addr(f: unsafe extern "C" fn(u64) -> u64) -> u64 {
    f as usize as u64
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
}

// ---------------------------------------------------------------- fuzz

/// Where the fuzzer points the kernel's writes. Pointers go up to 4 KiB into it,
/// and the largest structure the kernel writes is 72 bytes, so the second half
/// is padding: the kernel's writes must never land on the fuzzer's own
/// statics (FUZZ_THREADS is next in .bss).
static mut FUZZ_BUF: [u8; 8192] = [0; 8192];
static FUZZ_THREADS: AtomicU64 = AtomicU64::new(0);

extern "C" fn fuzz_thread(a: u64, _b: u64) -> ! {
    FUZZ_THREADS.fetch_sub(1, Ordering::Relaxed);
    sys::thread_exit(a)
}

/// A value for a system call argument. Each class of pointer is what its comment
/// says by construction: the kernel may write through any of them, so none may
/// reach this program's own writable data other than `FUZZ_BUF`'s first half.
fn fuzz_value(rng: &mut Rng) -> u64 {
    let buf = core::ptr::addr_of_mut!(FUZZ_BUF) as u64;
    let text = user_rt::image::text();
    let r = rng.next();
    match r % 14 {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => r >> 60,
        4 => buf + (r >> 52), // anywhere in the first 4 KiB of our buffer
        5 => text.start + (((r >> 40) % (text.end - text.start)) & !3), // our text (read-only)
        6 => layout::XOL_PAGE + ((r >> 40) & 0xfff), // the XOL page
        7 => layout::STACKS_TOP - layout::STACK_SIZE - 8, // a guard page
        8 => arch::fuzz_kernel_address(r), // kernel addresses
        9 => arch::KERNEL_PHYSICAL, // the kernel's physical memory
        10 => layout::USER_END - 8,
        11 => (r >> 32) as u32 as u64,      // below the user range
        _ => outside_our_image(rng.next()), // anywhere else
    }
}

/// `value`, or, if it falls in this program's image (where its writable data
/// is), the same value with the top bit set: a kernel address.
fn outside_our_image(value: u64) -> u64 {
    if user_rt::image::image().contains(&value) {
        value | 1 << 63
    } else {
        value
    }
}

fn fuzz(calls: u64, seed: u64) -> bool {
    let mut rng = Rng(seed);
    let mut values = 0u64;
    let mut errors = [0u64; 9];
    let mut undefined = 0u64;
    let mut spawned = 0u64;
    for i in 0..calls {
        let r = rng.next();
        let mut number = match r % 16 {
            0..=13 => (r >> 8) % 16,
            14 => (r >> 8) % 1000,
            _ => rng.next(),
        };
        if number == 1 || number == 9 {
            number = 2; // exit and thread_exit do not return
        }
        let mut a = [0u64; 6];
        for v in a.iter_mut() {
            *v = fuzz_value(&mut rng);
        }
        match number {
            0 if a[0] == 1 || a[0] == 2 => a[2] = 0, // never print random bytes on the console
            3 => a[0] %= 2_000,                      // sleep: a few microseconds at most
            6 => {
                // A known entry while few threads live; otherwise a random one
                // (refused unless it is text, and then it must be ours).
                if rng.next().is_multiple_of(2) && FUZZ_THREADS.load(Ordering::Relaxed) < 8 {
                    FUZZ_THREADS.fetch_add(1, Ordering::Relaxed);
                    a[0] = arch::fuzz_thread_entry();
                    spawned += 1;
                } else if a[0] >= layout::USER_BASE && a[0] < layout::USER_END {
                    a[0] = 0x1000;
                }
            }
            11 if a[1] >= layout::USER_BASE && a[1] < layout::USER_END => {
                // probe_register on our own text: only on the sled, at an
                // instruction start. A probe on the instruction between the ldxr
                // and stxr of an atomic in this loop would make the stxr fail
                // forever (the brk clears the exclusive monitor); one inside an
                // x86 instruction would corrupt it: damage of the program's own
                // making, which no kernel can prevent.
                a[1] = flood_sled as *const () as u64
                    + ((a[1] % (INSN_SIZE * SLED_INSTRUCTIONS as u64)) & !(INSN_SIZE - 1));
            }
            // join: only threads that end by themselves, or nonsense ids.
            7 if rng.next().is_multiple_of(2) => a[0] %= 64,
            _ => {}
        }
        // SAFETY: exit/thread_exit are never called; spawn_thread gets only
        // fuzz_thread's entry or an address outside the user range; probe_register
        // gets only instruction starts on the sled. Every pointer `fuzz_value`
        // makes goes to the first half of FUZZ_BUF, to our text (bounded by the
        // linker's `__text_end`, so never into our data), to the XOL page, a
        // guard page, other unmapped memory or the kernel: whatever the kernel
        // writes through one lands in FUZZ_BUF or is refused.
        let x0 = unsafe { sys::syscall6(number, a) };
        if number == 6 && a[0] == arch::fuzz_thread_entry() && (x0 as i64) < 0 {
            FUZZ_THREADS.fetch_sub(1, Ordering::Relaxed);
        }
        let signed = x0 as i64;
        if signed >= 0 {
            values += 1;
        } else if (-8..=-1).contains(&signed) {
            errors[(-signed) as usize] += 1;
        } else {
            undefined += 1;
            if undefined <= 10 {
                println!(
                    "scenarios: fuzz: call {i}: nr {number} args {a:x?} returned {x0:#x}, not a value or an ABI error"
                );
            }
        }
    }
    // Let the spawned threads finish.
    while FUZZ_THREADS.load(Ordering::Relaxed) > 0 {
        thread::yield_now();
    }
    println!("scenarios: fuzz: {calls} calls (seed {seed}), {values} values, {spawned} threads spawned");
    let mut line = heapless_line();
    for error in Error::ALL {
        line.push(error.name(), errors[error as usize]);
    }
    println!("scenarios: fuzz: errors:{}", line.as_str());
    println!("scenarios: fuzz: {undefined} undefined results");
    undefined == 0
}

/// A small fixed buffer for one line of `name=count` pairs.
struct Line {
    bytes: [u8; 512],
    len: usize,
}

fn heapless_line() -> Line {
    Line { bytes: [0; 512], len: 0 }
}

impl Line {
    fn push(&mut self, name: &str, count: u64) {
        use core::fmt::Write;
        let _ = write!(self, " {}={count}", name.replace(' ', "_").as_str());
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

trait Replace {
    fn replace(&self, from: char, to: &str) -> Replaced<'_>;
}

impl Replace for str {
    fn replace(&self, from: char, to: &str) -> Replaced<'_> {
        Replaced { text: self, from, to: to.as_bytes()[0] as char }
    }
}

struct Replaced<'a> {
    text: &'a str,
    from: char,
    to: char,
}

impl Replaced<'_> {
    fn as_str(&self) -> impl core::fmt::Display + '_ {
        struct D<'b>(&'b Replaced<'b>);
        impl core::fmt::Display for D<'_> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                use core::fmt::Write;
                for c in self.0.text.chars() {
                    f.write_char(if c == self.0.from { self.0.to } else { c })?;
                }
                Ok(())
            }
        }
        D(self)
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = (self.len + s.len()).min(self.bytes.len());
        self.bytes[self.len..end].copy_from_slice(&s.as_bytes()[..end - self.len]);
        self.len = end;
        Ok(())
    }
}

// ---------------------------------------------------------------- registration

fn show(what: &str, result: Result<u64, Error>) -> Result<u64, Error> {
    match result {
        Ok(_) => println!("scenarios: register {what}: ok"),
        Err(error) => println!("scenarios: register {what}: {}", error.name()),
    }
    result
}

static DATA_WORD: AtomicU64 = AtomicU64::new(arch::NOP_WORD); // a `nop`, in data

fn register_bad() -> bool {
    let text = addr(flood_sled);
    show("below the program", sys::probe_register(ProbeKind::Uprobe, 0x1000)).ok();
    show("in kernel space", sys::probe_register(ProbeKind::Uprobe, arch::KERNEL_ADDRESS)).ok();
    if INSN_SIZE > 1 {
        show("unaligned", sys::probe_register(ProbeKind::Uprobe, text + 2)).ok();
    } else {
        // x86_64: every byte may start an instruction, so there is no unaligned
        // address; and a probe in the middle of an instruction cannot be told
        // from one at its start without decoding from a known start, which the
        // kernel does not have (the sled's bytes are all starts anyway).
        println!("scenarios: register unaligned: skipped (x86_64 instructions have no alignment; a probe inside an instruction is not detectable)");
    }
    show("in data", sys::probe_register(ProbeKind::Uprobe, &DATA_WORD as *const AtomicU64 as u64)).ok();
    show("on the trampoline", sys::probe_register(ProbeKind::Uprobe, layout::XOL_PAGE)).ok();
    show("in the XOL page", sys::probe_register(ProbeKind::Uprobe, layout::XOL_PAGE + 64)).ok();
    show("on a stack", sys::probe_register(ProbeKind::Uprobe, layout::STACKS_TOP - 64)).ok();
    // SAFETY: probe_register only reads its two arguments.
    let raw = unsafe { sys::syscall6(11, [7, text, 0, 0, 0, 0]) };
    show("with kind 7", Error::decode(raw)).ok();
    let first = show("on flood_sled", sys::probe_register(ProbeKind::Uprobe, text));
    show("on flood_sled again", sys::probe_register(ProbeKind::Uprobe, text)).ok();
    show("a return probe on flood_sled", sys::probe_register(ProbeKind::Uretprobe, text)).ok();
    // SAFETY: flood_sled only adds and returns.
    let result = unsafe { flood_sled(0) };
    let hits = first.and_then(sys::probe_stats).map(|s| s.hits).unwrap_or(0);
    if let Ok(id) = first {
        sys::probe_unregister(id).ok();
        println!("scenarios: unregister twice: {}", sys::probe_unregister(id).err().map_or("ok", |e| e.name()));
    }
    println!("scenarios: unregister 999999: {}", sys::probe_unregister(999_999).err().map_or("ok", |e| e.name()));
    println!("scenarios: flood_sled(0) = {result}, probe hits {hits}");
    result == 17_000 && hits == 1
}

fn flood() -> bool {
    let base = addr(flood_sled);
    let mut registered = 0u64;
    let mut refusal = None;
    for i in 0..17_000u64 {
        match sys::probe_register(ProbeKind::Uprobe, base + INSN_SIZE * i) {
            Ok(_) => registered += 1,
            Err(error) => {
                refusal = Some((i, error));
                break;
            }
        }
    }
    match refusal {
        Some((i, error)) => {
            println!("scenarios: flood: {registered} probes registered, probe {i} refused: {}", error.name())
        }
        None => println!("scenarios: flood: {registered} probes registered, none refused"),
    }
    // SAFETY: flood_sled only adds and returns.
    let through = unsafe { flood_sled(0) };
    let counters = sys::probe_counters().unwrap_or_default();
    println!("scenarios: flood: flood_sled(0) = {through} with every probe hit once: {} hits", counters.hits);
    // The ids are 1..=registered in this kernel run (nothing else registers).
    let mut unregistered = 0;
    for id in 1..=registered {
        if sys::probe_unregister(id).is_ok() {
            unregistered += 1;
        }
    }
    println!("scenarios: flood: {unregistered} unregistered");
    let again = sys::probe_register(ProbeKind::Uprobe, base);
    // SAFETY: as above.
    let after = unsafe { flood_sled(5) };
    let hits = again.and_then(sys::probe_stats).map(|s| s.hits);
    println!(
        "scenarios: flood: after unregistering: register {}, flood_sled(5) = {after}, hits {hits:?}",
        if again.is_ok() { "ok" } else { "refused" }
    );
    through == 17_000 && after == 17_005 && hits == Ok(1)
}

// ---------------------------------------------------------------- return probes

fn retdepth(n: u64) -> bool {
    let id = sys::probe_register(ProbeKind::Uretprobe, addr(depth)).expect("register");
    let before = sys::probe_counters().unwrap_or_default();
    // SAFETY: depth only recurses on its own stack and returns n.
    let result = unsafe { depth(n) };
    let stats = sys::probe_stats(id).expect("stats");
    let after = sys::probe_counters().unwrap_or_default();
    sys::probe_unregister(id).ok();
    let skipped = after.return_probes_skipped - before.return_probes_skipped;
    println!(
        "scenarios: retdepth: depth({n}) = {result}, {} entries, {} returns, {skipped} skipped",
        stats.hits, stats.return_hits
    );
    result == n
}

fn longjmp() -> bool {
    let id = sys::probe_register(ProbeKind::Uretprobe, addr(jump_depth_addr())).expect("register");
    let mut env = [0u64; 2];
    // SAFETY: setjmp_and_jump saves SP and a resume point in env and the
    // innermost jump_depth jumps back there with SP restored.
    let jumped = unsafe { setjmp_and_jump(10, &mut env) };
    let after_jump = sys::probe_stats(id).expect("stats");
    // Ordinary returns afterwards must still be counted, and return to the right place.
    // SAFETY: with a valid env the jump never happens for n = 0 ... it does:
    // jump_depth(0, env) jumps at once, so call it through setjmp_and_jump again.
    let again = unsafe { setjmp_and_jump(3, &mut env) };
    let after_second = sys::probe_stats(id).expect("stats");
    sys::probe_unregister(id).ok();
    println!(
        "scenarios: longjmp: jumped out of 11 probed calls -> {jumped}: {} entries, {} returns; again out of 4 -> {again}: {} entries, {} returns",
        after_jump.hits, after_jump.return_hits, after_second.hits, after_second.return_hits
    );
    jumped == 77 && again == 77
}

fn jump_depth_addr() -> unsafe extern "C" fn(u64) -> u64 {
    // SAFETY: only the address is used (for probe_register).
    unsafe {
        core::mem::transmute::<unsafe extern "C" fn(u64, *mut [u64; 2]) -> u64, unsafe extern "C" fn(u64) -> u64>(
            jump_depth,
        )
    }
}

// ---------------------------------------------------------------- race

#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn race_target(x: u64) -> u64 {
    x.wrapping_mul(0x9e37_79b9).rotate_left(7) ^ 0x33
}

static STOP: AtomicBool = AtomicBool::new(false);
static CALLS: AtomicU64 = AtomicU64::new(0);
/// Per worker: the calls it made, and the core it ran on once pinned
/// (`u64::MAX`: it could not be pinned, there is no such core).
static WORKER_CALLS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static WORKER_CORE: [AtomicU64; 4] = [const { AtomicU64::new(u64::MAX) }; 4];

/// Worker `i` of `race`: pinned to core `i` if it is up (so that with four
/// cores each hits the probe on its own core while the main thread, on core
/// 0, registers and unregisters it), then calls the probed function.
fn hammer(i: usize) -> usize {
    if sys::pin_to_core(i as u64).is_ok() {
        WORKER_CORE[i].store(sys::core_index().unwrap_or(u64::MAX), Ordering::Relaxed);
    }
    let mut x = 1u64;
    while !STOP.load(Ordering::Relaxed) {
        x = race_target(core::hint::black_box(x));
        CALLS.fetch_add(1, Ordering::Relaxed);
        WORKER_CALLS[i].fetch_add(1, Ordering::Relaxed);
    }
    x as usize
}

fn race(rounds: u64) -> bool {
    let target = race_target as *const () as u64;
    // SAFETY: our own text, readable at EL0.
    let original = unsafe { core::ptr::read_volatile(target as *const u32) };
    let mut workers = [None; 4];
    for (i, w) in workers.iter_mut().enumerate() {
        *w = Some(thread::spawn(hammer, i).expect("spawn"));
    }
    let (mut hits, mut late, mut restored) = (0, 0, 0);
    for round in 0..rounds {
        let id = sys::probe_register(ProbeKind::Uprobe, target).expect("register");
        if round % 10 == 0 {
            thread::yield_now();
        }
        sys::probe_unregister(id).expect("unregister");
        let at_unregister = sys::probe_stats(id).expect("stats").hits;
        // SAFETY: as above.
        if unsafe { core::ptr::read_volatile(target as *const u32) } == original {
            restored += 1;
        }
        thread::yield_now();
        late += sys::probe_stats(id).expect("stats").hits - at_unregister;
        hits += at_unregister;
    }
    STOP.store(true, Ordering::Relaxed);
    for w in workers.into_iter().flatten() {
        thread::join(w).expect("join");
    }
    println!("scenarios: race: 4 threads, {rounds} rounds, hits after unregister {late}, text restored {restored} of {rounds}");
    for i in 0..4 {
        let calls = if WORKER_CALLS[i].load(Ordering::Relaxed) > 0 { "some" } else { "no" };
        match WORKER_CORE[i].load(Ordering::Relaxed) {
            u64::MAX => println!("scenarios: race: worker {i} not pinned (no core {i}), {calls} calls"),
            core => println!("scenarios: race: worker {i} pinned, ran on core {core}, {calls} calls"),
        }
    }
    println!(
        "scenarios: race: {} hits in all, {} calls",
        if hits > 0 { "some" } else { "no" },
        if CALLS.load(Ordering::Relaxed) > 0 { "some" } else { "no" }
    );
    late == 0 && restored == rounds
}

// ---------------------------------------------------------------- faults

fn xol_write() -> ! {
    println!("scenarios: writing the XOL page");
    // SAFETY: deliberately not: the kernel must kill us.
    unsafe { core::ptr::write_volatile(layout::XOL_PAGE as *mut u32, 0xd503_201f) };
    println!("scenarios: the write to the XOL page succeeded");
    sys::exit(0)
}

fn xol_jump(slot: u64) -> ! {
    println!("scenarios: jumping into XOL slot {slot}");
    let target = layout::XOL_PAGE + arch::XOL_SLOT_SIZE * slot;
    // SAFETY: deliberately not: the kernel must kill us in the slot
    // (arch::call_address says what a slot holds).
    unsafe { arch::call_address(target) };
    println!("scenarios: came back from XOL slot {slot}");
    sys::exit(0)
}

fn run_own_brk() -> ! {
    println!("scenarios: executing {}", arch::OWN_BREAKPOINT);
    // SAFETY: deliberately not: the kernel must kill us for our own breakpoint.
    unsafe { own_brk() };
    println!("scenarios: came back from {}", arch::OWN_BREAKPOINT);
    sys::exit(0)
}

fn main(arguments: &str) -> i32 {
    let mut operands = args::operands(arguments, "scenarios");
    let mode = operands.next().unwrap_or("");
    let mut number = |default: u64| operands.next().and_then(|n| n.parse().ok()).unwrap_or(default);
    let ok = match mode {
        "fuzz" => {
            let calls = number(100_000);
            fuzz(calls, number(1))
        }
        "register-bad" => register_bad(),
        "flood" => flood(),
        "retdepth" => retdepth(number(100)),
        "longjmp" => longjmp(),
        "race" => race(number(1000)),
        "xol-write" => xol_write(),
        "xol-jump" => xol_jump(number(1)),
        "own-brk" => run_own_brk(),
        _ => {
            println!("scenarios: usage: scenarios fuzz|register-bad|flood|retdepth|longjmp|race|xol-write|xol-jump|own-brk ...");
            return 2;
        }
    };
    println!("scenarios: {}", if ok { "ok" } else { "FAILED" });
    if ok {
        0
    } else {
        1
    }
}
