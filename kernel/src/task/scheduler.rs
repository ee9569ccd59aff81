//! The scheduler: round-robin over ready threads, switched on the timer tick,
//! on `yield`, and whenever the running thread blocks or ends.
//!
//! Every exception ends in [`resume`], which returns the register frame that
//! `vectors.s` restores: the interrupted thread's own, or another's (a context
//! switch: a different kernel stack, address space and FP/SIMD state), or the
//! idle loop's. The kernel is not preemptible: handlers run with interrupts
//! masked, so one lock around the scheduler's state is never contended.
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
    process::*,
    symbols::Symbols,
};
use crate::{
    arch::{Access, Cpu, Frame, Machine, Probes, SavedRegisters, Timer},
    bootargs::Expectation,
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
    vec::Vec,
};
use brk_abi::{layout, Error};
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

pub struct Scheduler {
    processes: BTreeMap<Pid, Process>,
    threads: BTreeMap<Tid, Thread>,
    ready: VecDeque<Tid>,
    /// The thread on the CPU; `None` while idling.
    current: Option<Tid>,
    /// Where the idle loop's registers were saved when a thread was switched in.
    idle_frame: *mut Frame,
    /// Whose FP/SIMD state is in the registers.
    fp_owner: Option<Tid>,
    /// Whose table is in TTBR0.
    active_pid: Option<Pid>,
    /// Set by the tick and `yield`: pick another thread at the next `resume`.
    reschedule: bool,
    /// The thread a tick interrupted: if `resume` then runs another thread, that
    /// was a preemption of it.
    ticked: Option<Tid>,
    /// When the current thread was switched in (counter value).
    switched_in_at: u64,
    /// Kernel stacks of ended threads, freed once nothing runs on them.
    dead_stacks: Vec<usize>,
    finished: Vec<Finished>,
    audited_spaces: usize,
    audited_user_pages: usize,
    audited_writable_executable: usize,
    next_pid: Pid,
    next_tid: Tid,
    /// Whether any thread has run yet (for the boot-time line).
    entered_user_mode: bool,
    /// The earliest counter value a sleeping thread waits for.
    earliest_wake: Option<u64>,
    /// What could not be started at boot, for the final report and status.
    launch: super::launch::Launched,
    hooks: Hooks,
    /// The shell runs: when the last process ends, idle and wait for its
    /// commands instead of powering off ([`Scheduler::stay_up`]).
    stays_up: bool,
}

// SAFETY: the raw frame pointer refers to the boot stack, which lives as long as
// the kernel; the scheduler is only touched under its lock on one core.
unsafe impl Send for Scheduler {}

static SCHEDULER: Mutex<Option<Scheduler>> = Mutex::new(None);

/// Run `f` on the scheduler, which must exist.
pub fn with<R>(f: impl FnOnce(&mut Scheduler) -> R) -> R {
    f(SCHEDULER.lock().as_mut().expect("scheduler used before init"))
}

/// Create the scheduler, which calls `hooks` when processes start and end.
pub fn init(hooks: Hooks) {
    *SCHEDULER.lock() = Some(Scheduler {
        processes: BTreeMap::new(),
        threads: BTreeMap::new(),
        ready: VecDeque::new(),
        current: None,
        idle_frame: core::ptr::null_mut(),
        fp_owner: None,
        active_pid: None,
        reschedule: false,
        ticked: None,
        switched_in_at: 0,
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
pub fn resume(interrupted: *mut Frame) -> *mut Frame {
    match SCHEDULER.lock().as_mut() {
        Some(scheduler) => scheduler.resume(interrupted),
        None => interrupted, // before tasks exist (self-tests): just return
    }
}

/// The timer tick: wake sleepers, count the tick against the process it
/// interrupted, and let the next thread run.
pub fn on_tick() {
    if let Some(scheduler) = SCHEDULER.lock().as_mut() {
        scheduler.wake_sleepers(time::counter());
        scheduler.reschedule = true;
        scheduler.ticked = scheduler.current;
        if let Some(process) = scheduler.current.and_then(|tid| scheduler.threads.get(&tid)).map(|t| t.pid) {
            scheduler.processes.get_mut(&process).expect("a running thread's process").ticks += 1;
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
            space: loaded.space,
            symbols: loaded.symbols,
            expectation: launch.expectation,
            live_threads: 0,
            threads_created: 0,
            run_time: 0,
            ticks: 0,
            preemptions: 0,
            exit_status: None,
            xol: (self.hooks.new_xol_slots)(),
        };
        let stack_top = map_thread_stack(&mut process).map_err(|e| format!("{}: stack: {}", launch.name, e.name()))?;
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
        self.processes.insert(pid, process);
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
            probes: ThreadProbes::new(pid),
        };
        // SAFETY: the frame slot lies inside the stack we just allocated and own.
        unsafe { thread.frame().write(frame) };
        self.threads.insert(tid, thread);
        self.ready.push_back(tid);
        let process = self.processes.get_mut(&pid).expect("thread for a live process");
        process.live_threads += 1;
        Ok(tid)
    }

    /// The running thread and its process (during a syscall or fault).
    pub fn current(&mut self) -> (&mut Thread, &mut Process) {
        let tid = self.current.expect("no current thread");
        let thread = self.threads.get_mut(&tid).expect("current thread exists");
        let process = self.processes.get_mut(&thread.pid).expect("current process exists");
        (thread, process)
    }

    pub fn current_process(&self) -> &Process {
        let thread = &self.threads[&self.current.expect("no current thread")];
        &self.processes[&thread.pid]
    }

    // ---- the shell: what it reads and asks ----

    /// Keep running when the last process has ended (the shell's `poweroff`
    /// ends the run), and say in one line how each process ends.
    pub fn stay_up(&mut self) {
        self.stays_up = true;
    }

    /// Every live process, by pid.
    pub fn processes(&self) -> impl Iterator<Item = &Process> {
        self.processes.values()
    }

    pub fn process(&self, pid: Pid) -> Option<&Process> {
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

    pub fn spawn_thread(&mut self, entry: u64, args: [u64; 2]) -> Result<u64, Error> {
        let (thread, process) = self.current();
        let pid = thread.pid;
        process.space.check(entry, 4, UserAccess::Execute).map_err(|_| Error::InvalidArgument)?;
        let stack_top = map_thread_stack(process)?;
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
        self.reschedule = true;
    }

    pub fn sleep(&mut self, nanoseconds: u64) {
        let ticks = (nanoseconds as u128 * time::frequency() as u128 / 1_000_000_000) as u64;
        let until = time::counter().saturating_add(ticks);
        let (thread, _) = self.current();
        thread.state = ThreadState::Sleeping(until);
        self.earliest_wake = Some(self.earliest_wake.map_or(until, |earliest| earliest.min(until)));
    }

    /// Make every thread whose sleep is over ready, and note the next deadline.
    fn wake_sleepers(&mut self, now: u64) {
        if self.earliest_wake.is_none_or(|earliest| earliest > now) {
            return;
        }
        let mut earliest = None;
        for thread in self.threads.values_mut() {
            if let ThreadState::Sleeping(until) = thread.state {
                if now >= until {
                    thread.state = ThreadState::Ready;
                    self.ready.push_back(thread.tid);
                } else {
                    earliest = Some(earliest.map_or(until, |e: u64| e.min(until)));
                }
            }
        }
        self.earliest_wake = earliest;
    }

    /// `join`: `Ok(Some(value))` at once, `Ok(None)` when the caller now waits
    /// (the value is delivered into its frame when the target ends).
    pub fn join(&mut self, target: u64) -> Result<Option<u64>, Error> {
        let (me, _) = self.current();
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
        Ok(None)
    }

    /// `thread_exit`: end the calling thread.
    pub fn exit_thread(&mut self, value: u64) {
        let tid = self.current.expect("no current thread");
        self.end_thread(tid, value);
    }

    /// `exit`: end the whole process with `status`.
    pub fn exit_process(&mut self, status: i64) {
        let pid = self.current().1.pid;
        self.end_process(pid, ProcessEnd::Exited(status));
    }

    /// Kill the current thread's process (a fault), with a one-line reason.
    pub fn kill_current_process(&mut self, reason: String) {
        let pid = self.current().1.pid;
        self.end_process(pid, ProcessEnd::Killed(reason));
    }

    // ---- endings ----

    fn end_thread(&mut self, tid: Tid, value: u64) {
        let thread = self.threads.get_mut(&tid).expect("ending a live thread");
        let pid = thread.pid;
        thread.state = ThreadState::Exited(value);
        if let Some(process) = self.processes.get_mut(&pid) {
            thread.probes.end(&mut process.xol);
        }
        if self.fp_owner == Some(tid) {
            self.fp_owner = None;
        }
        if let Some(joiner) = thread.joined_by {
            let waiting = self.threads.get_mut(&joiner).expect("joiner exists");
            waiting.frame_mut().set_syscall_result(0);
            waiting.frame_mut().set_syscall_second_result(value);
            waiting.state = ThreadState::Ready;
            self.ready.push_back(joiner);
            self.reap(tid);
        }
        let process = self.processes.get_mut(&pid).expect("thread's process");
        process.live_threads -= 1;
        if process.live_threads == 0 {
            let status = process.exit_status.unwrap_or(0);
            self.end_process(pid, ProcessEnd::Exited(status));
        }
    }

    /// Forget an ended thread; its kernel stack is freed once nothing runs on it.
    fn reap(&mut self, tid: Tid) {
        if let Some(thread) = self.threads.remove(&tid) {
            self.dead_stacks.push(thread.kernel_stack);
        }
    }

    fn end_process(&mut self, pid: Pid, end: ProcessEnd) {
        let in_flight = self.threads.values().filter(|t| t.pid == pid && t.probes.is_stepping()).count();
        if in_flight > 0 {
            println!(
                "task: pid {} ends with {} probe step(s) in flight; their XOL slots go with its address space",
                pid, in_flight
            );
        }
        let tids: Vec<Tid> = self.threads.values().filter(|t| t.pid == pid).map(|t| t.tid).collect();
        for tid in tids {
            if self.fp_owner == Some(tid) {
                self.fp_owner = None;
            }
            self.reap(tid);
        }
        self.ready.retain(|tid| self.threads.contains_key(tid));
        let Some(process) = self.processes.remove(&pid) else { return };
        (self.hooks.process_ended)(pid);
        if self.active_pid == Some(pid) {
            // Leave the process's table before it is freed.
            address_space::activate_kernel();
            self.active_pid = None;
        }
        let (user_pages, writable_executable) = process.space.audit();
        self.audited_spaces += 1;
        self.audited_user_pages += user_pages;
        self.audited_writable_executable += writable_executable;
        let mut run_time = process.run_time;
        if self.current.is_some_and(|tid| !self.threads.contains_key(&tid)) {
            run_time += time::counter() - self.switched_in_at;
            self.current = None;
        }
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
        // Dropping the process frees its address space, frames and ASID.
    }

    // ---- switching ----

    fn resume(&mut self, interrupted: *mut Frame) -> *mut Frame {
        // SAFETY: `interrupted` is the frame `vectors.s` just saved on the current stack.
        let from_idle = self.current.is_none() && !unsafe { &*interrupted }.came_from_user();
        if from_idle {
            // The idle loop always runs at the same stack depth, so its frame is
            // always saved at the same place.
            self.idle_frame = interrupted;
        }
        self.free_dead_stacks(interrupted as usize);
        // Sleeps end on time, not only at the next tick.
        self.wake_sleepers(time::counter());

        if let Some(tid) = self.current {
            let still_running = self.threads.get(&tid).is_some_and(|t| t.state == ThreadState::Running);
            if still_running && !self.reschedule {
                return self.threads[&tid].frame();
            }
            self.switch_out(tid);
        }
        self.reschedule = false;
        let ticked = self.ticked.take();
        while let Some(next) = self.ready.pop_front() {
            if self.threads.get(&next).is_some_and(|t| t.state == ThreadState::Ready) {
                if let Some(preempted) = ticked.filter(|&tid| tid != next) {
                    self.count_preemption(preempted);
                }
                return self.switch_in(next);
            }
        }
        if self.processes.is_empty() && !self.stays_up {
            self.finish();
        }
        // Nothing ready: idle until an interrupt. If a sleep ends before the
        // next tick, have the timer fire then instead.
        if let Some(earliest) = self.earliest_wake {
            time::fire_no_later_than(earliest);
        }
        self.current = None;
        self.idle_frame
    }

    /// A tick took the CPU from `tid`, still able to run, for another thread.
    fn count_preemption(&mut self, tid: Tid) {
        let Some(thread) = self.threads.get(&tid).filter(|t| t.state == ThreadState::Ready) else { return };
        if let Some(process) = self.processes.get_mut(&thread.pid) {
            process.preemptions += 1;
        }
    }

    fn switch_out(&mut self, tid: Tid) {
        let now = time::counter();
        if let Some(thread) = self.threads.get_mut(&tid) {
            thread.thread_pointer = Machine::thread_pointer();
            if let Some(process) = self.processes.get_mut(&thread.pid) {
                process.run_time += now - self.switched_in_at;
            }
            if thread.state == ThreadState::Running {
                thread.state = ThreadState::Ready;
                self.ready.push_back(tid);
            }
        }
        self.current = None;
    }

    fn switch_in(&mut self, tid: Tid) -> *mut Frame {
        if self.fp_owner != Some(tid) {
            if let Some(owner) = self.fp_owner.and_then(|owner| self.threads.get_mut(&owner)) {
                Machine::save_fp_state(&mut owner.fp);
            }
            Machine::restore_fp_state(&self.threads[&tid].fp);
            self.fp_owner = Some(tid);
        }
        let thread = self.threads.get_mut(&tid).expect("switching to a live thread");
        thread.state = ThreadState::Running;
        // MDSCR_EL1.SS belongs to the core: match it to the thread we resume.
        Machine::set_core_single_step(thread.probes.is_stepping());
        Machine::set_thread_pointer(thread.thread_pointer);
        let pid = thread.pid;
        if self.active_pid != Some(pid) {
            self.processes[&pid].space.activate();
            self.active_pid = Some(pid);
        }
        self.current = Some(tid);
        self.switched_in_at = time::counter();
        if !self.entered_user_mode {
            self.entered_user_mode = true;
            // Under QEMU -icount shift=0 every guest instruction takes 1 ns of
            // virtual time, so CNTVCT * 10^9 / frequency is the number of
            // instructions executed since reset.
            println!(
                "boot: first {} instruction at {}={} ({} Hz)",
                <Machine as Cpu>::USER_MODE,
                <Machine as Timer>::COUNTER_NAME,
                self.switched_in_at,
                time::frequency()
            );
        }
        self.threads[&tid].frame()
    }

    fn free_dead_stacks(&mut self, running_on: usize) {
        let pages = KERNEL_STACK_PAGES * crate::memory::PAGE_SIZE;
        self.dead_stacks.retain(|&stack| {
            let in_use = (stack..stack + pages).contains(&running_on);
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

/// Map the next thread stack slot of `process`; returns its top. Each slot is
/// `STACK_SIZE` of zeroed read/write memory with an unmapped guard page below.
fn map_thread_stack(process: &mut Process) -> Result<u64, Error> {
    if process.threads_created >= MAX_THREADS {
        return Err(Error::OutOfMemory);
    }
    let slot = process.threads_created;
    let top = layout::STACKS_TOP - slot * (layout::STACK_SIZE + layout::GUARD_SIZE);
    let bottom = top - layout::STACK_SIZE;
    process.space.map_zeroed(bottom as usize, layout::STACK_SIZE as usize, Access::UserReadWrite)?;
    process.threads_created += 1;
    Ok(top)
}

/// Where the symbols of the current process say `address` is (for reports).
pub fn describe_current(address: u64) -> String {
    with(|scheduler| {
        let process = scheduler.current_process();
        let symbols: &Symbols = &process.symbols;
        format!("{}", symbols.locate(&process.name, address))
    })
}
