//! The scheduler: round-robin over one queue of ready threads shared by every
//! core, switched on each core's timer tick, on `yield`, and whenever the
//! running thread blocks or ends.
//!
//! Every exception ends in [`resume`], which returns the register frame that
//! `vectors.s` restores: the interrupted thread's own, or another's (a context
//! switch: a different kernel stack, address space and FP/SIMD state), or the
//! core's idle loop's. The kernel is not preemptible: handlers run with
//! interrupts masked. One lock guards the scheduler's state on every core;
//! a return to the same thread after a trap the scheduler had no part in (a
//! probe hit, most system calls' fast path) does not take it
//! ([`on_core::Here::may_return_straight`]). What each core runs is kept per core
//! ([`CoreState`]): its thread, its idle frame, whose FP/SIMD registers and
//! which address space it holds, and the kernel stack it is on, so that a
//! thread's kernel stack is freed only when no core runs on it. A thread's
//! FP/SIMD registers are saved when it is switched out, so it can resume on
//! any core; its user thread pointer and single-step state move with it.
//! Other cores are told of work with a cross-core interrupt: an idle core
//! when a thread becomes ready, a running one when its process was ended.
//!
//! The scheduler calls nothing above it. The probes keep per-thread state in
//! each [`Thread`] (`probe::thread_state`, a leaf module, whose own methods
//! clean it up when the thread ends), and what they need at a process's start
//! and end reaches them through the [`Hooks`] the scheduler is handed at
//! [`init`]: plain function pointers, called on spawn and exit only, never on
//! a probe hit (the exception dispatcher hands the probes the current thread
//! itself, under the one lock it takes).

use super::{
    address_space::{self, UserAccess},
    on_core::{self, Running},
    process::*,
    symbols::Symbols,
};
use crate::{
    arch::{Access, Cpu, Frame, Machine, Probes, SavedRegisters, Timer},
    bootargs::Expectation,
    cores,
    memory::frames,
    power::{self, ExitStatus},
    println,
    probe::thread_state::ThreadProbes,
    time,
};
use alloc::{
    boxed::Box,
    collections::{BTreeMap, VecDeque},
    format,
    string::String,
    sync::Arc,
    vec::Vec,
};
use brk_abi::{layout, Error};
use core::sync::atomic::{AtomicU64, Ordering};
use probe_core::XolSlots;
use spin::Mutex;

/// What the scheduler calls in the layer above it (the probes), handed to
/// [`init`] so that the dependency runs one way. Called when a process
/// starts and ends and when the last one has ended; never on a probe hit.
#[derive(Clone, Copy)]
pub struct Hooks {
    /// The XOL slots of a new process's address space.
    pub new_xol_slots: fn() -> XolSlots,
    /// A process is loaded and about to get its first thread: plant the
    /// probes asked for it.
    pub process_loaded: fn(&mut Process),
    /// A process (with this pid) has ended and its threads are gone.
    pub process_ended: fn(Pid),
    /// Every process has ended: print what the layer above has to report,
    /// before the scheduler's verdict.
    pub all_ended: fn(),
}

/// A process that has ended, for the final report.
struct Finished {
    pid: Pid,
    title: String,
    end: ProcessEnd,
    expectation: Expectation,
    threads: u64,
    run_time: u64,
    ticks: u64,
    preemptions: u64,
}

/// What one core runs, as the scheduler keeps it.
struct CoreState {
    /// The thread on this core; `None` while it idles.
    current: Option<Tid>,
    /// Where this core's idle loop's registers were saved when a thread was
    /// switched in.
    idle_frame: *mut Frame,
    /// Whose FP/SIMD state is in this core's registers.
    fp_owner: Option<Tid>,
    /// The process whose table is live on this core (TTBR0, CR3): kept alive
    /// by this reference until the core has left it.
    active: Option<Arc<Process>>,
    /// Set by the tick and `yield`: pick another thread at the next `resume`.
    reschedule: bool,
    /// The thread a tick interrupted: if `resume` then runs another thread,
    /// that was a preemption of it.
    ticked: Option<Tid>,
    /// When the current thread was switched in (counter value).
    switched_in_at: u64,
    /// The kernel stack (base) of the thread whose frame this core returned
    /// to last: the stack it runs on now (`None`: its own idle stack).
    on_stack: Option<usize>,
    /// The stack it left at its last `resume`, still under its feet until
    /// the code after `resume` restored the new frame.
    leaving: Option<usize>,
}

impl CoreState {
    const IDLE: CoreState = CoreState {
        current: None,
        idle_frame: core::ptr::null_mut(),
        fp_owner: None,
        active: None,
        reschedule: false,
        ticked: None,
        switched_in_at: 0,
        on_stack: None,
        leaving: None,
    };
}

pub struct Scheduler {
    processes: BTreeMap<Pid, ProcessEntry>,
    threads: BTreeMap<Tid, Thread>,
    ready: VecDeque<Tid>,
    /// Per core, by index.
    cores: [CoreState; cores::MAX_CORES],
    /// Kernel stacks of ended threads, freed once no core runs on them.
    dead_stacks: Vec<usize>,
    finished: Vec<Finished>,
    audited_spaces: usize,
    audited_user_pages: usize,
    audited_writable_executable: usize,
    next_pid: Pid,
    next_tid: Tid,
    /// Whether any thread has run yet (for the boot-time line).
    entered_user_mode: bool,
    /// The earliest counter value a sleeping thread waits for (also in
    /// [`EARLIEST_WAKE`], for the fast return).
    earliest_wake: Option<u64>,
    /// What could not be started at boot, for the final report and status.
    launch: super::launch::Launched,
    hooks: Hooks,
    /// The shell runs: when the last process ends, idle and wait for its
    /// commands instead of powering off ([`Scheduler::stay_up`]).
    stays_up: bool,
}

// SAFETY: the raw frame pointers refer to each core's idle stack, which lives
// as long as the kernel; the scheduler is only touched under its lock.
unsafe impl Send for Scheduler {}

static SCHEDULER: Mutex<Option<Scheduler>> = Mutex::new(None);

/// The earliest counter value a sleeping thread waits for (`u64::MAX`: none):
/// a return that would skip the scheduler takes it once this has passed.
static EARLIEST_WAKE: AtomicU64 = AtomicU64::new(u64::MAX);

/// Take the scheduler's lock. A core waiting for it with interrupts masked
/// still answers another core's request to stop (`cores::stop`,
/// whose caller may hold this lock), so the two can never wait for each
/// other.
fn lock() -> spin::MutexGuard<'static, Option<Scheduler>> {
    cores::lock_answering_stops(&SCHEDULER)
}

/// Run `f` on the scheduler, which must exist. A method that changes what
/// this core should run next sends its return through the scheduler
/// ([`Scheduler::reschedule_here`]); the others (`getpid`, a probe
/// registration) let it return straight to the thread.
pub fn with<R>(f: impl FnOnce(&mut Scheduler) -> R) -> R {
    f(lock().as_mut().expect("scheduler used before init"))
}

/// Create the scheduler, which calls `hooks` when processes start and end.
pub fn init(hooks: Hooks) {
    *SCHEDULER.lock() = Some(Scheduler {
        processes: BTreeMap::new(),
        threads: BTreeMap::new(),
        ready: VecDeque::new(),
        cores: [const { CoreState::IDLE }; cores::MAX_CORES],
        dead_stacks: Vec::new(),
        finished: Vec::new(),
        audited_spaces: 0,
        audited_user_pages: 0,
        audited_writable_executable: 0,
        next_pid: 1,
        next_tid: 1,
        entered_user_mode: false,
        earliest_wake: None,
        launch: super::launch::Launched::default(),
        hooks,
        stays_up: false,
    });
}

/// The frame to return to after an exception that interrupted `interrupted`.
/// Without the scheduler's lock when nothing asked for it on this core since
/// the last pass (no tick, no scheduler call, no other core's request) and
/// no sleep is due: the trap came from this core's thread, which goes on.
#[inline(always)]
pub fn resume(interrupted: *mut Frame) -> *mut Frame {
    resume_on(on_core::Here::now(), interrupted)
}

/// [`resume`] on this core, `here` (a fast route has read the core's index
/// already).
#[inline(always)]
pub fn resume_on(here: on_core::Here, interrupted: *mut Frame) -> *mut Frame {
    if here.may_return_straight(interrupted) && {
        let wake = EARLIEST_WAKE.load(Ordering::Acquire);
        wake == u64::MAX || time::counter() < wake
    } {
        return interrupted;
    }
    resume_through_the_scheduler(interrupted)
}

#[inline(never)]
fn resume_through_the_scheduler(interrupted: *mut Frame) -> *mut Frame {
    match lock().as_mut() {
        Some(scheduler) => {
            // Cleared before the pass, so a request made during it is not lost.
            on_core::scheduler_done_here();
            scheduler.resume(interrupted)
        }
        None => interrupted, // before tasks exist (self-tests): just return
    }
}

/// This core's timer tick: wake sleepers, count the tick against the process
/// it interrupted, and let the next thread run here.
pub fn on_tick() {
    on_core::call_scheduler_on(cores::this());
    if let Some(scheduler) = lock().as_mut() {
        scheduler.wake_sleepers(time::counter());
        let core = &mut scheduler.cores[cores::this()];
        core.reschedule = true;
        core.ticked = core.current;
        if let Some(process) = core.current.and_then(|tid| scheduler.threads.get(&tid)).map(|t| t.pid) {
            if let Some(process) = scheduler.processes.get_mut(&process) {
                process.ticks += 1;
            }
        }
    }
}

/// What becomes of the running thread after a trap that code above the
/// scheduler handled (a probe hit): the exception dispatcher hands it to
/// [`Scheduler::carry_out`].
pub enum After {
    /// Return to the thread (its frame says where).
    Resume,
    /// Let other threads run first (it waits for an XOL slot, or a step was
    /// armed under `preempt-steps`).
    Yield,
    /// Kill the process, with this reason. Boxed: it keeps `Option<After>`, which
    /// every probe hit returns, two words wide, so it comes back in registers
    /// rather than through memory (the reason is allocated only on a kill).
    /// `Box<str>` would be a two-word pointer and make the enum three words.
    #[allow(clippy::box_collection)] // the extra allocation is the point: a one-word payload
    Kill(Box<String>),
}

impl After {
    /// Kill the process for `reason`.
    pub fn kill(reason: impl Into<String>) -> After {
        After::Kill(Box::new(reason.into()))
    }
}

// The hit path's return value fits two registers (AAPCS64, SysV x86_64).
const _: () = assert!(core::mem::size_of::<Option<After>>() <= 2 * core::mem::size_of::<usize>());

/// Arguments for a new process's first thread.
pub struct Launch<'a> {
    pub name: &'a str,
    pub image: &'a [u8],
    pub args: &'a str,
    pub expectation: Expectation,
}

impl Scheduler {
    /// Note what became of the boot's program requests (`launch_requested`).
    pub fn note_launch(&mut self, launched: super::launch::Launched) {
        self.launch = launched;
    }

    /// Load a program and make its main thread ready.
    pub fn spawn_process(&mut self, launch: Launch) -> Result<Pid, String> {
        let loaded = super::loader::load(launch.name, launch.image)?;
        let args = &launch.args.as_bytes()[..launch.args.len().min(layout::ARGS_MAX)];
        let pid = self.next_pid;
        let mut process = Process {
            pid,
            name: String::from(launch.name),
            args: String::from(core::str::from_utf8(args).unwrap_or("")),
            space: SharedSpace::new(loaded.space),
            symbols: loaded.symbols,
            expectation: launch.expectation,
            xol: (self.hooks.new_xol_slots)(),
        };
        // SAFETY: the process is not shared yet: no thread of it exists.
        let stack_top = map_thread_stack(unsafe { process.space.get_mut() }, 0)
            .map_err(|e| format!("{}: stack: {}", launch.name, e.name()))?;
        // The argument string sits at the top of the main stack; SP starts below it.
        let args_at = (stack_top - args.len() as u64) & !15;
        process
            .space
            .check(args_at, args.len() as u64, UserAccess::Write)
            .map(|range| process.space.write(range, args))
            .map_err(|e| format!("{}: arguments: {}", launch.name, e.name()))?;
        let frame = Frame::new_user(loaded.entry, args_at, [args_at, args.len() as u64]);
        self.next_pid += 1;
        (self.hooks.process_loaded)(&mut process);
        self.processes.insert(
            pid,
            ProcessEntry {
                shared: Arc::new(process),
                live_threads: 0,
                threads_created: 1,
                run_time: 0,
                ticks: 0,
                preemptions: 0,
                exit_status: None,
            },
        );
        self.add_thread(pid, frame).map_err(|e| {
            self.processes.remove(&pid);
            format!("{}: thread: {}", launch.name, e.name())
        })?;
        Ok(pid)
    }

    fn add_thread(&mut self, pid: Pid, frame: Frame) -> Result<Tid, Error> {
        let kernel_stack = frames::alloc_zeroed_contiguous(KERNEL_STACK_PAGES).ok_or(Error::OutOfMemory)?;
        let tid = self.next_tid;
        self.next_tid += 1;
        let thread = Thread {
            tid,
            pid,
            state: ThreadState::Ready,
            kernel_stack,
            fp: Machine::new_fp_state(),
            thread_pointer: 0,
            joined_by: None,
            last_core: None,
            pinned: None,
            probes: Arc::new(Mutex::new(ThreadProbes::new(pid))),
        };
        // SAFETY: the frame slot lies inside the stack we just allocated and own.
        unsafe { thread.frame().write(frame) };
        self.threads.insert(tid, thread);
        self.make_ready(tid);
        let process = self.processes.get_mut(&pid).expect("thread for a live process");
        process.live_threads += 1;
        Ok(tid)
    }

    /// Queue `tid` to run, and wake an idle core for it (its own core, if it
    /// is pinned to another one: that core may be running something else,
    /// which its next tick preempts).
    fn make_ready(&mut self, tid: Tid) {
        self.ready.push_back(tid);
        let me = cores::this();
        let wake = match self.threads.get(&tid).and_then(|thread| thread.pinned) {
            Some(core) => Some(core).filter(|&core| core != me),
            None => (0..cores::MAX_CORES)
                .find(|&index| index != me && cores::is_online(index) && self.cores[index].current.is_none()),
        };
        if let Some(core) = wake {
            on_core::call_scheduler_on(core);
            cores::ask(core, cores::Request::Wake);
        }
    }

    /// `pin_to_core`: the calling thread runs on core `core` only from now on
    /// (it moves there at once if it is elsewhere).
    pub fn pin_current(&mut self, core: u64) -> Result<u64, Error> {
        let core = usize::try_from(core).ok().filter(|&core| cores::is_online(core)).ok_or(Error::InvalidArgument)?;
        let me = cores::this();
        let (thread, _) = self.current().ok_or(Error::NoSuchThread)?;
        thread.pinned = Some(core);
        if core != me {
            self.reschedule_here();
        }
        Ok(0)
    }

    /// The first ready thread this core may run, taken off the queue.
    ///
    /// A thread another core has not finished leaving is not taken: one that
    /// is still that core's current thread (made ready by a third core, a
    /// join or a wake-up, before its own core's pass), or whose kernel stack
    /// that core still runs on until it has restored its next frame
    /// ([`on_core::still_leaving`]). It waits for that core, or the next tick.
    fn next_ready_here(&mut self) -> Option<Tid> {
        let me = cores::this();
        let (threads, cores) = (&self.threads, &self.cores);
        let at = self.ready.iter().position(|tid| {
            threads.get(tid).is_some_and(|t| {
                t.state == ThreadState::Ready
                    && t.pinned.is_none_or(|core| core == me)
                    && !cores.iter().enumerate().any(|(index, core)| index != me && core.current == Some(*tid))
                    && !on_core::still_leaving(t.kernel_stack, me)
            })
        })?;
        self.ready.remove(at)
    }

    /// The thread running on this core and its process (during a system
    /// call or a fault), or `None` if another core ended its process since
    /// the trap (the thread is gone; its trap's result goes nowhere).
    pub fn current(&mut self) -> Option<(&mut Thread, &mut ProcessEntry)> {
        let tid = self.cores[cores::this()].current?;
        let thread = self.threads.get_mut(&tid)?;
        let process = self.processes.get_mut(&thread.pid)?;
        Some((thread, process))
    }

    pub fn current_process(&self) -> Option<&ProcessEntry> {
        let thread = self.threads.get(&self.cores[cores::this()].current?)?;
        self.processes.get(&thread.pid)
    }

    // ---- the shell: what it reads and asks ----

    /// Keep running when the last process has ended (the shell's `poweroff`
    /// ends the run), and say in one line how each process ends.
    pub fn stay_up(&mut self) {
        self.stays_up = true;
    }

    /// Every live process, by pid.
    pub fn processes(&self) -> impl Iterator<Item = &ProcessEntry> {
        self.processes.values()
    }

    pub fn process(&self, pid: Pid) -> Option<&ProcessEntry> {
        self.processes.get(&pid)
    }

    /// The threads of process `pid`, by tid (ended ones not yet joined included).
    pub fn threads_of(&self, pid: Pid) -> impl Iterator<Item = &Thread> {
        self.threads.values().filter(move |thread| thread.pid == pid)
    }

    /// End process `pid` from outside (the shell's `kill`), as a fault would:
    /// killed with `reason`. `Err` if there is no such process.
    pub fn kill(&mut self, pid: Pid, reason: String) -> Result<(), String> {
        if !self.processes.contains_key(&pid) {
            return Err(format!("no process {}", pid));
        }
        self.end_process(pid, ProcessEnd::Killed(reason));
        Ok(())
    }

    /// End every process still running, killed with `reason`, and power off
    /// with the run's status, after the usual report (the shell's `poweroff`).
    pub fn power_off(&mut self, reason: &str) -> ! {
        let pids: Vec<Pid> = self.processes.keys().copied().collect();
        for pid in pids {
            self.end_process(pid, ProcessEnd::Killed(String::from(reason)));
        }
        self.finish()
    }

    // ---- system calls (the running thread asks) ----

    /// A new thread of the caller's process at `entry`. Its stack is mapped
    /// while the other cores running this process are stopped: threads of it
    /// may be walking its table on them (a probe hit reads user memory
    /// without the scheduler's lock).
    pub fn spawn_thread(&mut self, entry: u64, args: [u64; 2]) -> Result<u64, Error> {
        let (thread, process) = self.current().ok_or(Error::NoSuchThread)?;
        let pid = thread.pid;
        process.space.check(entry, 4, UserAccess::Execute).map_err(|_| Error::InvalidArgument)?;
        let slot = process.threads_created;
        let shared = Arc::clone(&process.shared);
        // SAFETY: every other core running this process is stopped for the
        // mapping (no other core can switch to it: this one holds the
        // scheduler's lock) (`SharedSpace::get_mut`'s contract).
        let stack_top =
            cores::stop(on_core::cores_running(pid), || map_thread_stack(unsafe { shared.space.get_mut() }, slot))?;
        self.processes.get_mut(&pid).expect("the caller's process").threads_created += 1;
        let tid = self.add_thread(pid, Frame::new_user(entry, stack_top, args))?;
        Ok(tid as u64)
    }

    /// Do what a trap handler above the scheduler asked for the running thread.
    pub fn carry_out(&mut self, after: After) {
        match after {
            After::Resume => {}
            After::Yield => self.yield_now(),
            After::Kill(reason) => self.kill_current_process(*reason),
        }
    }

    pub fn yield_now(&mut self) {
        self.reschedule_here();
    }

    /// Pick another thread for this core at the end of its trap (the running
    /// one yields, blocks or ends).
    fn reschedule_here(&mut self) {
        let me = cores::this();
        self.cores[me].reschedule = true;
        on_core::call_scheduler_on(me);
    }

    pub fn sleep(&mut self, nanoseconds: u64) {
        let ticks = (nanoseconds as u128 * time::frequency() as u128 / 1_000_000_000) as u64;
        let until = time::counter().saturating_add(ticks);
        let Some((thread, _)) = self.current() else { return };
        thread.state = ThreadState::Sleeping(until);
        self.reschedule_here();
        self.set_earliest_wake(Some(self.earliest_wake.map_or(until, |earliest| earliest.min(until))));
    }

    fn set_earliest_wake(&mut self, earliest: Option<u64>) {
        self.earliest_wake = earliest;
        EARLIEST_WAKE.store(earliest.unwrap_or(u64::MAX), Ordering::Release);
    }

    /// Make every thread whose sleep is over ready, and note the next deadline.
    fn wake_sleepers(&mut self, now: u64) {
        if self.earliest_wake.is_none_or(|earliest| earliest > now) {
            return;
        }
        let mut earliest = None;
        let mut woken = Vec::new();
        for thread in self.threads.values_mut() {
            if let ThreadState::Sleeping(until) = thread.state {
                if now >= until {
                    thread.state = ThreadState::Ready;
                    woken.push(thread.tid);
                } else {
                    earliest = Some(earliest.map_or(until, |e: u64| e.min(until)));
                }
            }
        }
        for tid in woken {
            self.make_ready(tid);
        }
        self.set_earliest_wake(earliest);
    }

    /// `join`: `Ok(Some(value))` at once, `Ok(None)` when the caller now waits
    /// (the value is delivered into its frame when the target ends).
    pub fn join(&mut self, target: u64) -> Result<Option<u64>, Error> {
        let (me, _) = self.current().ok_or(Error::NoSuchThread)?;
        let (my_tid, my_pid) = (me.tid, me.pid);
        let target = Tid::try_from(target).map_err(|_| Error::NoSuchThread)?;
        if target == my_tid {
            return Err(Error::Deadlock);
        }
        let other = self.threads.get_mut(&target).filter(|t| t.pid == my_pid).ok_or(Error::NoSuchThread)?;
        if other.joined_by.is_some() {
            return Err(Error::InvalidArgument);
        }
        if let ThreadState::Exited(value) = other.state {
            self.reap(target);
            return Ok(Some(value));
        }
        other.joined_by = Some(my_tid);
        self.threads.get_mut(&my_tid).expect("current").state = ThreadState::Joining(target);
        self.reschedule_here();
        Ok(None)
    }

    /// `thread_exit`: end the calling thread.
    pub fn exit_thread(&mut self, value: u64) {
        if let Some(tid) = self.current().map(|(thread, _)| thread.tid) {
            self.reschedule_here();
            self.end_thread(tid, value);
        }
    }

    /// `exit`: end the whole process with `status`.
    pub fn exit_process(&mut self, status: i64) {
        if let Some(pid) = self.current().map(|(_, process)| process.pid) {
            self.end_process(pid, ProcessEnd::Exited(status));
        }
    }

    /// Kill the current thread's process (a fault), with a one-line reason.
    pub fn kill_current_process(&mut self, reason: String) {
        if let Some(pid) = self.current().map(|(_, process)| process.pid) {
            self.end_process(pid, ProcessEnd::Killed(reason));
        }
    }

    // ---- endings ----

    fn end_thread(&mut self, tid: Tid, value: u64) {
        let thread = self.threads.get_mut(&tid).expect("ending a live thread");
        let pid = thread.pid;
        thread.state = ThreadState::Exited(value);
        if let Some(process) = self.processes.get(&pid) {
            thread.probes.lock().end(&process.xol);
        }
        for core in self.cores.iter_mut().filter(|core| core.fp_owner == Some(tid)) {
            core.fp_owner = None;
        }
        if let Some(joiner) = thread.joined_by {
            let waiting = self.threads.get_mut(&joiner).expect("joiner exists");
            waiting.frame_mut().set_syscall_result(0);
            waiting.frame_mut().set_syscall_second_result(value);
            waiting.state = ThreadState::Ready;
            self.make_ready(joiner);
            self.reap(tid);
        }
        let process = self.processes.get_mut(&pid).expect("thread's process");
        process.live_threads -= 1;
        if process.live_threads == 0 {
            let status = process.exit_status.unwrap_or(0);
            self.end_process(pid, ProcessEnd::Exited(status));
        }
    }

    /// Forget an ended thread; its kernel stack is freed once no core runs on it.
    fn reap(&mut self, tid: Tid) {
        if let Some(thread) = self.threads.remove(&tid) {
            self.dead_stacks.push(thread.kernel_stack);
        }
    }

    fn end_process(&mut self, pid: Pid, end: ProcessEnd) {
        let in_flight = self.threads.values().filter(|t| t.pid == pid && t.probes.lock().is_stepping()).count();
        if in_flight > 0 {
            println!(
                "task: pid {} ends with {} probe step(s) in flight; their XOL slots go with its address space",
                pid, in_flight
            );
        }
        let tids: Vec<Tid> = self.threads.values().filter(|t| t.pid == pid).map(|t| t.tid).collect();
        let me = cores::this();
        let mut run_time = 0;
        for tid in tids {
            for (index, core) in self.cores.iter_mut().enumerate() {
                if core.fp_owner == Some(tid) {
                    core.fp_owner = None;
                }
                if core.current == Some(tid) {
                    // Running here (its trap ended it) or on another core, which
                    // is told to leave it now.
                    run_time += time::counter().saturating_sub(core.switched_in_at);
                    core.current = None;
                    on_core::call_scheduler_on(index);
                    if index != me {
                        cores::ask(index, cores::Request::Wake);
                    }
                }
            }
            self.reap(tid);
        }
        self.ready.retain(|tid| self.threads.contains_key(tid));
        let Some(process) = self.processes.remove(&pid) else { return };
        (self.hooks.process_ended)(pid);
        // Cores that hold its table leave it at their next pass through the
        // scheduler (this one below, others when told); the last to let go of
        // the shared process frees its address space, frames and ASID.
        for (index, core) in self.cores.iter().enumerate() {
            if index != me && core.active.as_ref().is_some_and(|active| active.pid == pid) {
                on_core::call_scheduler_on(index);
                cores::ask(index, cores::Request::Wake);
            }
        }
        if self.cores[me].active.as_ref().is_some_and(|active| active.pid == pid) {
            // Leave the process's table before it may be freed.
            address_space::activate_kernel();
            self.cores[me].active = None;
        }
        let (user_pages, writable_executable) = process.space.audit();
        self.audited_spaces += 1;
        self.audited_user_pages += user_pages;
        self.audited_writable_executable += writable_executable;
        let run_time = process.run_time + run_time;
        if self.stays_up {
            match &end {
                ProcessEnd::Exited(status) => {
                    println!("task: pid {} {} exited with status {}", pid, process.title(), status)
                }
                ProcessEnd::Killed(reason) => println!("task: pid {} {} killed ({})", pid, process.title(), reason),
            }
        }
        self.finished.push(Finished {
            pid,
            title: process.title(),
            end,
            expectation: process.expectation,
            threads: process.threads_created,
            run_time,
            ticks: process.ticks,
            preemptions: process.preemptions,
        });
    }

    // ---- switching (each on the core that calls it) ----

    fn resume(&mut self, interrupted: *mut Frame) -> *mut Frame {
        let me = cores::this();
        // SAFETY: `interrupted` is the frame `vectors.s` just saved on the current stack.
        let from_idle = self.cores[me].current.is_none() && !unsafe { &*interrupted }.came_from_user();
        if from_idle {
            // The idle loop always runs at the same stack depth, so its frame is
            // always saved at the same place.
            self.cores[me].idle_frame = interrupted;
        }
        // Sleeps end on time, not only at the next tick.
        self.wake_sleepers(time::counter());

        let frame = self.pick_for_this_core();
        let core = &mut self.cores[me];
        core.leaving = core.on_stack;
        core.on_stack = core.current.map(|tid| self.threads[&tid].kernel_stack);
        on_core::leaving(core.leaving.filter(|&stack| Some(stack) != core.on_stack));
        self.free_dead_stacks();
        frame
    }

    /// The frame this core returns to: its thread's, the next ready thread's,
    /// or its idle loop's.
    fn pick_for_this_core(&mut self) -> *mut Frame {
        let me = cores::this();
        if let Some(tid) = self.cores[me].current {
            let still_running = self.threads.get(&tid).is_some_and(|t| t.state == ThreadState::Running);
            if still_running && !self.cores[me].reschedule {
                return self.threads[&tid].frame();
            }
            self.switch_out(tid);
        }
        self.cores[me].reschedule = false;
        let ticked = self.cores[me].ticked.take();
        self.ready.retain(|tid| self.threads.get(tid).is_some_and(|t| t.state == ThreadState::Ready));
        if let Some(next) = self.next_ready_here() {
            if let Some(preempted) = ticked.filter(|&tid| tid != next) {
                self.count_preemption(preempted);
            }
            return self.switch_in(next);
        }
        if self.processes.is_empty() && !self.stays_up {
            self.finish();
        }
        // Nothing ready: idle until an interrupt. If a sleep ends before the
        // next tick, have the timer fire then instead.
        if let Some(earliest) = self.earliest_wake {
            time::fire_no_later_than(earliest);
        }
        self.cores[me].current = None;
        if self.cores[me].active.as_ref().is_some_and(|active| !self.processes.contains_key(&active.pid)) {
            // Its process has ended: leave its table before letting go of it.
            address_space::activate_kernel();
            self.cores[me].active = None;
        }
        drop(on_core::set_mine(None));
        self.cores[me].idle_frame
    }

    /// A tick took a core from `tid`, still able to run, for another thread.
    fn count_preemption(&mut self, tid: Tid) {
        let Some(thread) = self.threads.get(&tid).filter(|t| t.state == ThreadState::Ready) else { return };
        if let Some(process) = self.processes.get_mut(&thread.pid) {
            process.preemptions += 1;
        }
    }

    /// Take `tid` off this core: its FP/SIMD registers and thread pointer are
    /// saved, so any core may resume it.
    fn switch_out(&mut self, tid: Tid) {
        let me = cores::this();
        let now = time::counter();
        let switched_in_at = self.cores[me].switched_in_at;
        if let Some(thread) = self.threads.get_mut(&tid) {
            thread.thread_pointer = Machine::thread_pointer();
            if self.cores[me].fp_owner == Some(tid) {
                Machine::save_fp_state(&mut thread.fp);
            }
            if let Some(process) = self.processes.get_mut(&thread.pid) {
                process.run_time += now - switched_in_at;
            }
            if thread.state == ThreadState::Running {
                thread.state = ThreadState::Ready;
                self.make_ready(tid);
            }
        }
        self.cores[me].current = None;
    }

    fn switch_in(&mut self, tid: Tid) -> *mut Frame {
        let me = cores::this();
        let thread = self.threads.get_mut(&tid).expect("switching to a live thread");
        // This core's registers still hold the thread's FP/SIMD state only if
        // it last ran here and no other thread used them since.
        if self.cores[me].fp_owner != Some(tid) || thread.last_core != Some(me) {
            Machine::restore_fp_state(&thread.fp);
            self.cores[me].fp_owner = Some(tid);
        }
        thread.last_core = Some(me);
        thread.state = ThreadState::Running;
        // MDSCR_EL1.SS belongs to the core: match it to the thread we resume.
        Machine::set_core_single_step(thread.probes.lock().is_stepping());
        Machine::set_thread_pointer(thread.thread_pointer);
        let pid = thread.pid;
        let running = Running {
            tid,
            frame: thread.frame(),
            probes: Arc::clone(&thread.probes),
            process: Arc::clone(&self.processes[&pid].shared),
        };
        if self.cores[me].active.as_ref().is_none_or(|active| active.pid != pid) {
            running.process.space.activate();
            // The table it replaces is left now: the process may be let go of.
            self.cores[me].active = Some(Arc::clone(&running.process));
        }
        drop(on_core::set_mine(Some(running)));
        let core = &mut self.cores[me];
        core.current = Some(tid);
        core.switched_in_at = time::counter();
        if !self.entered_user_mode {
            self.entered_user_mode = true;
            // Under QEMU -icount shift=0 every guest instruction takes 1 ns of
            // virtual time, so CNTVCT * 10^9 / frequency is the number of
            // instructions executed since reset.
            println!(
                "boot: first {} instruction at {}={} ({} Hz)",
                <Machine as Cpu>::USER_MODE,
                <Machine as Timer>::COUNTER_NAME,
                self.cores[me].switched_in_at,
                time::frequency()
            );
        }
        self.threads[&tid].frame()
    }

    /// Free the kernel stacks of ended threads that no core runs on, nor has
    /// just left.
    fn free_dead_stacks(&mut self) {
        let cores = &self.cores;
        self.dead_stacks.retain(|&stack| {
            let in_use = cores.iter().any(|core| core.on_stack == Some(stack) || core.leaving == Some(stack));
            if !in_use {
                frames::free_contiguous(stack, KERNEL_STACK_PAGES);
            }
            in_use
        });
    }

    /// Every process has ended: report and power off.
    fn finish(&mut self) -> ! {
        let frequency = time::frequency().max(1);
        println!("tasks: all {} processes ended", self.finished.len());
        let mut failed_tests = 0;
        for done in &self.finished {
            let outcome = match &done.end {
                ProcessEnd::Exited(status) => format!("exited with status {}", status),
                ProcessEnd::Killed(reason) => format!("killed ({})", reason),
            };
            let verdict = match (done.expectation, &done.end) {
                (Expectation::Nothing, _) => "",
                (Expectation::ExitZero, ProcessEnd::Exited(0)) | (Expectation::Fault, ProcessEnd::Killed(_)) => {
                    ", test ok"
                }
                (Expectation::ExitZero, _) => ", test FAILED: expected exit status 0",
                (Expectation::Fault, _) => ", test FAILED: expected a fault",
            };
            if verdict.contains("FAILED") {
                failed_tests += 1;
            }
            println!(
                "  pid {} {}: {}, {} thread(s), ran {} ms, {} tick(s), preempted {} time(s){}",
                done.pid,
                done.title,
                outcome,
                done.threads,
                done.run_time * 1000 / frequency,
                done.ticks,
                done.preemptions,
                verdict
            );
        }
        println!(
            "wx-audit: {} address spaces, {} user pages, {} writable+executable mappings",
            self.audited_spaces, self.audited_user_pages, self.audited_writable_executable
        );
        if self.audited_writable_executable > 0 {
            failed_tests += 1;
        }
        (self.hooks.all_ended)();
        failed_tests += self.launch.failed_tests;
        if self.launch.not_started > 0 {
            println!("tasks: {} requested program(s) could not be started", self.launch.not_started);
        }
        println!("tasks: {} test failure(s)", failed_tests);
        power::exit(ExitStatus::of_tasks(failed_tests, self.launch.not_started))
    }
}

/// Thread stack slots per process, so stacks never reach the program image
/// (the loader keeps programs below the lowest slot's guard page).
pub(super) const MAX_THREADS: u64 = 64;

/// Map thread stack slot `slot` of `space`; returns its top. Each slot is
/// `STACK_SIZE` of zeroed read/write memory with an unmapped guard page below.
fn map_thread_stack(space: &mut address_space::AddressSpace, slot: u64) -> Result<u64, Error> {
    if slot >= MAX_THREADS {
        return Err(Error::OutOfMemory);
    }
    let top = layout::STACKS_TOP - slot * (layout::STACK_SIZE + layout::GUARD_SIZE);
    let bottom = top - layout::STACK_SIZE;
    space.map_zeroed(bottom as usize, layout::STACK_SIZE as usize, Access::UserReadWrite)?;
    Ok(top)
}

/// Where the symbols of the current process say `address` is (for reports).
pub fn describe_current(address: u64) -> String {
    with(|scheduler| {
        let Some(process) = scheduler.current_process() else { return format!("{:#x}", address) };
        let symbols: &Symbols = &process.symbols;
        format!("{}", symbols.locate(&process.name, address))
    })
}
