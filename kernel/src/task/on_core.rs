//! What each core is running, for the code that must find it without the
//! scheduler's lock: the probe hit path (its thread's probe state and
//! process) and the scheduler's own fast return to the same thread.
//!
//! Each core has one slot, written by that core alone when the scheduler
//! switches a thread in or out on it (under the scheduler's lock) and read by
//! that core alone in its trap handlers, which run with interrupts masked: a
//! slot is never touched by two cores, so reading it takes no lock. The slot
//! holds its own references (`Arc`) to the thread's probe state and to its
//! process, so whatever another core does meanwhile (end the process, reap
//! the thread), what this core is using stays alive until it switches away.
//!
//! Beside it, per core, the flag that sends the next return through the
//! scheduler ([`Here::may_return_straight`]): set by this core when the scheduler was
//! involved in a trap, and by other cores when they end this core's process
//! or make a thread ready for it (with a cross-core interrupt).

use super::process::{Pid, Process, Tid};
use crate::{arch::Frame, cores, probe::thread_state::ThreadProbes};
use alloc::sync::Arc;
use core::{
    cell::UnsafeCell,
    sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
};
use spin::Mutex;

/// The thread a core runs, as its trap handlers see it.
pub struct Running {
    pub tid: Tid,
    /// Where its registers are saved on a trap (the top of its kernel stack).
    pub frame: *mut Frame,
    pub probes: Arc<Mutex<ThreadProbes>>,
    pub process: Arc<Process>,
}

struct Slot(UnsafeCell<Option<Running>>);

// SAFETY: slot `i` is read and written only by core `i` (indexed by
// `cores::this()`), in trap context with interrupts masked, so no two
// accesses to one slot ever overlap.
unsafe impl Sync for Slot {}

static SLOTS: [Slot; cores::MAX_CORES] = [const { Slot(UnsafeCell::new(None)) }; cores::MAX_CORES];

/// Per core: the next return from a trap must go through the scheduler.
static NEEDS_SCHEDULER: [AtomicBool; cores::MAX_CORES] = [const { AtomicBool::new(true) }; cores::MAX_CORES];

/// Per core: the process whose thread it runs (0: none). Written by the
/// scheduler under its lock when a core switches; read by anyone, to learn
/// which cores may be executing a process's code ([`cores_running`]).
static RUNS_PROCESS: [AtomicU32; cores::MAX_CORES] = [const { AtomicU32::new(0) }; cores::MAX_CORES];

/// The cores running a thread of process `pid` now, as a bit mask (bit `i`:
/// core `i`). Exact while the caller holds the scheduler's lock: no core
/// switches a thread in or out without it.
pub fn cores_running(pid: Pid) -> u32 {
    (0..cores::MAX_CORES)
        .filter(|&index| RUNS_PROCESS[index].load(Ordering::Acquire) == pid)
        .fold(0, |mask, index| mask | 1 << index)
}

/// Per core: the kernel stack (base) of the thread it switched away from at
/// its last pass through the scheduler, which it runs on until it has
/// restored its next frame (0: none). Set under the scheduler's lock by the
/// core itself; cleared by the core itself once it is surely off that stack:
/// at its next trap entry ([`off_the_old_stack`]) or in its idle loop.
static LEAVING: [AtomicUsize; cores::MAX_CORES] = [const { AtomicUsize::new(0) }; cores::MAX_CORES];

/// This core leaves the kernel stack `stack` (based there) when it restores
/// the frame its scheduler pass chose.
pub(super) fn leaving(stack: Option<usize>) {
    LEAVING[cores::this()].store(stack.unwrap_or(0), Ordering::Release);
}

/// This core is off the stack it was leaving (it took a trap on another, or
/// it is in its idle loop).
#[inline(always)]
pub fn off_the_old_stack() {
    Here::now().off_the_old_stack();
}

/// This core, its index read once: a trap handler's fast route asks several
/// things of its own core's slot, flags and stack, and reads the index
/// (`TPIDR_EL1`, `gs:`) once for all of them.
#[derive(Clone, Copy)]
pub struct Here(usize);

impl Here {
    #[inline(always)]
    pub fn now() -> Here {
        Here(cores::this())
    }

    /// [`off_the_old_stack`] on this core.
    #[inline(always)]
    pub fn off_the_old_stack(self) {
        LEAVING[self.0].store(0, Ordering::Release);
    }

    /// `f` with the thread this core runs, if any.
    #[inline(always)]
    pub fn with_mine<R>(self, f: impl FnOnce(Option<&Running>) -> R) -> R {
        // SAFETY: this core's own slot (see `Slot`); the reference does not
        // outlive `f`, during which this core does not switch threads.
        f(unsafe { &*SLOTS[self.0].0.get() }.as_ref())
    }

    /// May the trap that saved `interrupted` return to it without the
    /// scheduler? Only if nothing asked for the scheduler on this core and
    /// the frame is this core's thread's (the return path of every trap).
    #[inline(always)]
    pub fn may_return_straight(self, interrupted: *mut Frame) -> bool {
        !NEEDS_SCHEDULER[self.0].load(Ordering::Acquire)
            && self.with_mine(|running| running.is_some_and(|running| running.frame == interrupted))
    }
}

/// Is a core other than `me` still on the kernel stack based at `stack`,
/// which it switched away from? The thread that owns the stack must not run
/// elsewhere until it is off: its next trap would save its frame where that
/// core's code still runs.
pub(super) fn still_leaving(stack: usize, me: usize) -> bool {
    (0..cores::MAX_CORES).any(|index| index != me && LEAVING[index].load(Ordering::Acquire) == stack)
}

/// Make `running` this core's thread; returns the one it replaces, which the
/// caller drops once this core has left that thread's address space.
pub(super) fn set_mine(running: Option<Running>) -> Option<Running> {
    let me = cores::this();
    RUNS_PROCESS[me].store(running.as_ref().map_or(0, |running| running.process.pid), Ordering::Release);
    // SAFETY: this core's own slot, written by this core only (see `Slot`).
    core::mem::replace(unsafe { &mut *SLOTS[me].0.get() }, running)
}

/// Send core `index`'s next return through the scheduler.
pub fn call_scheduler_on(index: usize) {
    NEEDS_SCHEDULER[index].store(true, Ordering::Release);
}

/// This core's scheduler pass is done: returns may skip it until flagged.
pub(super) fn scheduler_done_here() {
    NEEDS_SCHEDULER[cores::this()].store(false, Ordering::Release);
}
