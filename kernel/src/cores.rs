//! The cores: which ones came up, and what one core asks of another.
//!
//! Core 0 is the boot core. The architecture's boot order starts the others
//! through [`bring_up`] (PSCI `CPU_ON` or the spin table on aarch64,
//! INIT-SIPI-SIPI on x86_64: `start/<arch>.rs`), which gives each its index
//! and its stack, waits a bounded time for it to [`arrive`], and says in one
//! banner line per core whether it came up, naming it by its hardware id
//! (MPIDR, APIC id). A core that does not answer is reported and the kernel
//! goes on with the others.
//!
//! Once up, a core idles in the scheduler like the boot core. Cores ask each
//! other for work through a per-core mailbox of request bits
//! ([`Request`]) and the machine's cross-core interrupt
//! (`Cores::interrupt_core`): wake up and look for a thread, or stop while
//! instructions are rewritten or a live address space gains a mapping
//! ([`stop`]; on an architecture whose TLB invalidation is local,
//! each stopped core drops its cached user translations before it goes on:
//! that is the TLB shootdown).

use crate::{
    arch::{Cores, Machine},
    memory::frames,
    println, time,
};
use alloc::string::String;
use core::{
    fmt,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
};
use spin::Mutex;

/// The most cores the kernel runs on (core indices are `0..MAX_CORES`): the
/// contract's, which the architectures size their per-core tables by.
pub use crate::arch::MAX_CORES;

/// Pages of each secondary core's own stack (its idle loop and the kernel
/// code it runs when no thread's kernel stack is in use).
pub const STACK_PAGES: usize = 4;

/// How long a started core has to arrive before it is reported and left out.
const ANSWER_WITHIN_MS: u64 = 1000;

/// Per core: did it arrive? Set by the core itself in [`arrive`].
static ARRIVED: [AtomicBool; MAX_CORES] = [const { AtomicBool::new(false) }; MAX_CORES];

/// Per core: the requests other cores left for it ([`Request`] bits).
static MAILBOX: [AtomicU32; MAX_CORES] = [const { AtomicU32::new(0) }; MAX_CORES];

/// The hardware's name for each core (`MPIDR 0x80000001`, `APIC id 2`).
static NAMES: Mutex<[Option<String>; MAX_CORES]> = Mutex::new([const { None }; MAX_CORES]);

/// Set once the secondary cores may join the scheduler ([`open_scheduler`]).
static JOIN_SCHEDULER: AtomicBool = AtomicBool::new(false);

/// What one core asks another, as bits of its mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Request {
    /// A thread became ready: look for one if idle.
    Wake = 1 << 0,
    /// Stop and wait in the kernel, interrupts masked, until released
    /// ([`stop`]).
    Stop = 1 << 1,
}

/// This core's index.
#[inline(always)]
pub fn this() -> usize {
    Machine::core_index()
}

/// Is core `index` up?
pub fn is_online(index: usize) -> bool {
    index < MAX_CORES && ARRIVED[index].load(Ordering::Acquire)
}

/// Record the boot core's hardware name (core 0), before any other starts.
pub fn boot_core_is(name: impl fmt::Display) {
    ARRIVED[0].store(true, Ordering::Release);
    NAMES.lock()[0] = Some(alloc::format!("{}", name));
}

/// The hardware's name for core `index`, if it came up.
fn name(index: usize) -> Option<String> {
    NAMES.lock().get(index).cloned().flatten()
}

/// One core the boot order may start.
pub struct Candidate<Id> {
    /// How the architecture addresses it (MPIDR, APIC id, ...).
    pub id: Id,
    /// Its name in reports (`MPIDR 0x1`).
    pub name: String,
}

/// Start each of `candidates` (the boot core not among them) with `start`,
/// at most `wanted - 1` of them so that `wanted` cores run in all. `start`
/// gets the index the core will have, its hardware id and the top of a
/// fresh stack of [`STACK_PAGES`]; it returns `Err(why)` if the machine
/// refused at once. Each started core has [`ANSWER_WITHIN_MS`] to call
/// [`arrive`]; one that does not is reported by name and left out (its
/// index is given to the next). Prints one `cores:` line per core. Returns
/// how many cores run.
pub fn bring_up<Id>(
    candidates: &[Candidate<Id>],
    wanted: usize,
    mut start: impl FnMut(usize, &Id, usize) -> Result<(), String>,
) -> usize {
    let boot = name(0).unwrap_or_else(|| String::from("boot core"));
    println!("cores:   core 0 ({}) up: the boot core", boot);
    let wanted = wanted.clamp(1, MAX_CORES);
    let mut next = 1;
    for candidate in candidates {
        if next >= wanted {
            println!("cores:   {} left parked (cores={} asked for {} core(s))", candidate.name, wanted, wanted);
            continue;
        }
        let Some(stack) = frames::alloc_zeroed_contiguous(STACK_PAGES) else {
            println!("cores:   {} not started: no memory for its stack", candidate.name);
            continue;
        };
        let stack_top = stack + STACK_PAGES * crate::memory::PAGE_SIZE;
        NAMES.lock()[next] = Some(candidate.name.clone());
        if let Err(why) = start(next, &candidate.id, stack_top) {
            println!("cores:   {} not started: {}", candidate.name, why);
            NAMES.lock()[next] = None;
            frames::free_contiguous(stack, STACK_PAGES);
            continue;
        }
        let deadline = time::counter() + time::frequency() * ANSWER_WITHIN_MS / 1000;
        while !ARRIVED[next].load(Ordering::Acquire) && time::counter() < deadline {
            core::hint::spin_loop();
        }
        if ARRIVED[next].load(Ordering::Acquire) {
            println!("cores:   core {} ({}) up", next, candidate.name);
            next += 1;
        } else {
            // Its stack stays allocated: the core may still wake up late and
            // run on it, and must not find it reused.
            println!("cores:   {} did not answer within {} ms: going on without it", candidate.name, ANSWER_WITHIN_MS);
            NAMES.lock()[next] = None;
        }
    }
    next
}

/// Called by a secondary core, on its own stack with its exception entry,
/// interrupt controller and tick set up, interrupts masked: it is up.
pub fn arrive(index: usize) {
    ARRIVED[index].store(true, Ordering::Release);
}

/// Let the secondary cores into the scheduler (the boot core calls this once
/// the tasks exist).
pub fn open_scheduler() {
    JOIN_SCHEDULER.store(true, Ordering::Release);
    for index in 1..MAX_CORES {
        if is_online(index) {
            ask(index, Request::Wake);
        }
    }
}

/// A secondary core after [`arrive`]: wait until [`open_scheduler`] lets it
/// join (`crate::run::secondary_core`), answering requests to stop meanwhile.
pub fn wait_to_join_the_scheduler() {
    while !JOIN_SCHEDULER.load(Ordering::Acquire) {
        handle_stop_while_waiting();
        core::hint::spin_loop();
    }
}

/// Leave `request` in core `index`'s mailbox and interrupt it.
pub fn ask(index: usize, request: Request) {
    MAILBOX[index].fetch_or(request as u32, Ordering::AcqRel);
    Machine::interrupt_core(index);
}

/// Take this core's requests (the cross-core interrupt arrived).
fn take_requests() -> u32 {
    MAILBOX[this()].swap(0, Ordering::AcqRel)
}

/// Whether `requests` (from [`take_requests`]) holds `request`.
fn asked(requests: u32, request: Request) -> bool {
    requests & request as u32 != 0
}

/// Stop-the-others protocol state: how many cores have stopped, and whether
/// they may go on.
static STOPPED: AtomicUsize = AtomicUsize::new(0);
/// The number of the latest stop, and of the latest release: a stopped core
/// waits for the release of *its* stop, so one that has not yet seen the last
/// release when the next stop begins still leaves (and is asked again).
static STOP_ROUND: AtomicU64 = AtomicU64::new(0);
static RELEASED_ROUND: AtomicU64 = AtomicU64::new(0);
/// One stop at a time.
static STOPPER: Mutex<()> = Mutex::new(());

/// Run `f` while the cores `which` names (other than this one; bit `i` for
/// core `i`) wait in the kernel with interrupts masked, executing nothing of
/// user mode: the way this kernel follows the Arm ARM's rule for concurrent
/// modification and execution of instructions (B2.2.5) when it plants or
/// removes a breakpoint, stopping the cores that run the process whose text
/// changes (docs/brk-path.md). With no such core, `f` just runs.
pub fn stop<R>(which: u32, f: impl FnOnce() -> R) -> R {
    let me = this();
    let targets: u32 = (0..MAX_CORES)
        .filter(|&index| index != me && which & (1 << index) != 0 && is_online(index))
        .fold(0, |mask, index| mask | 1 << index);
    let count = targets.count_ones() as usize;
    if count == 0 {
        return f();
    }
    let _one_at_a_time = loop {
        // Another core stopping the others waits for this one too.
        if let Some(guard) = STOPPER.try_lock() {
            break guard;
        }
        handle_stop_while_waiting();
        core::hint::spin_loop();
    };
    // Every stopped core of the last round has counted itself before that
    // round was released, so the count starts afresh here.
    STOPPED.store(0, Ordering::Release);
    let round = STOP_ROUND.fetch_add(1, Ordering::AcqRel) + 1;
    for index in (0..MAX_CORES).filter(|&index| targets & (1 << index) != 0) {
        ask(index, Request::Stop);
    }
    while STOPPED.load(Ordering::Acquire) < count {
        core::hint::spin_loop();
    }
    let result = f();
    RELEASED_ROUND.store(round, Ordering::Release);
    result
}

/// This core was asked to stop: say so and wait for the release. Its way
/// back to user mode is an exception return, which is context
/// synchronising: it fetches the rewritten instructions afresh.
fn stop_here() {
    let round = STOP_ROUND.load(Ordering::Acquire);
    STOPPED.fetch_add(1, Ordering::AcqRel);
    while RELEASED_ROUND.load(Ordering::Acquire) < round {
        core::hint::spin_loop();
    }
}

/// Take `lock`, answering requests to stop while waiting for it: for every
/// lock that a core may hold while it stops the others ([`stop`]), so
/// that a core waiting for it with interrupts masked cannot keep the stopper
/// waiting for ever.
pub fn lock_answering_stops<T>(lock: &Mutex<T>) -> spin::MutexGuard<'_, T> {
    loop {
        if let Some(guard) = lock.try_lock() {
            return guard;
        }
        handle_stop_while_waiting();
        core::hint::spin_loop();
    }
}

/// Answer a request to stop while spinning for something with interrupts
/// masked (a lock whose holder may be the core that asks everyone to stop):
/// without this the two would wait for each other.
fn handle_stop_while_waiting() {
    let mailbox = &MAILBOX[this()];
    if mailbox.load(Ordering::Acquire) & Request::Stop as u32 != 0 {
        mailbox.fetch_and(!(Request::Stop as u32), Ordering::AcqRel);
        stop_here();
        if !<Machine as Cores>::TLB_INVALIDATION_IS_BROADCAST {
            Machine::flush_local_user_translations();
        }
    }
}

/// Carry out this core's requests (called by the dispatcher for
/// `Interrupt::CrossCore`). `Wake` needs nothing here: the scheduler's
/// `resume` after every interrupt looks for a thread.
pub fn handle_requests() {
    let requests = take_requests();
    if asked(requests, Request::Stop) {
        stop_here();
        if !<Machine as Cores>::TLB_INVALIDATION_IS_BROADCAST {
            Machine::flush_local_user_translations();
        }
    }
}
