//! Processes and threads: what the scheduler keeps about each, split by who
//! may touch it while threads run on several cores.
//!
//! A [`Process`] is what every core running one of its threads may read at
//! once, without the scheduler's lock (the probe hit path does): its name,
//! symbols, address space and XOL slots. It is shared (`Arc`) and never
//! handed out mutably once a thread of it exists; its address space changes
//! only while every other core is stopped ([`SharedSpace::get_mut`]). What
//! only the scheduler changes (thread counts, run time, ticks, the exit
//! status) is the [`ProcessEntry`] around it, under the scheduler's lock.
//! Likewise a thread's probe state is its own allocation behind its own lock
//! ([`Thread::probes`]): taken by the thread's hits, by its end, and by the
//! shell's inspection, never by another thread's hit.

use super::{address_space::AddressSpace, symbols::Symbols};
use crate::{
    arch::{Cpu, Frame, Machine},
    bootargs::Expectation,
    probe::thread_state::ThreadProbes,
};
use alloc::{string::String, sync::Arc};
use core::{cell::UnsafeCell, ops::Deref};
use spin::Mutex;

pub type Pid = u32;
pub type Tid = u32;

/// How a process ended.
#[derive(Clone, Debug)]
pub enum ProcessEnd {
    Exited(i64),
    /// Killed by the kernel; the one-line reason.
    Killed(String),
}

/// A process as every core may read it at once: an address space, its
/// program's symbols, and its XOL slots.
pub struct Process {
    pub pid: Pid,
    pub name: String,
    pub args: String,
    pub space: SharedSpace,
    pub symbols: Symbols,
    pub expectation: Expectation,
    /// The slots of the XOL page, shared by the process's threads: claimed
    /// and released atomically by threads on any core.
    pub xol: probe_core::XolSlots,
}

/// A process's address space, read by every core that runs one of its
/// threads; changed only while no other core runs ([`SharedSpace::get_mut`]).
pub struct SharedSpace(UnsafeCell<AddressSpace>);

// SAFETY: shared reads go through `Deref` (`&AddressSpace`, whose reading
// methods take `&self`); the one way to change it, `get_mut`, requires that
// no other core holds or uses a reference meanwhile (see there).
unsafe impl Sync for SharedSpace {}
// SAFETY: an `AddressSpace` owns its frames and table outright; moving it to
// another core moves that ownership.
unsafe impl Send for SharedSpace {}

impl SharedSpace {
    pub fn new(space: AddressSpace) -> Self {
        Self(UnsafeCell::new(space))
    }

    /// The address space, to map into it.
    ///
    /// # Safety
    ///
    /// No other reference to it may be in use: either the process is not yet
    /// shared (no thread of it exists), or every other core running one of
    /// its threads is stopped (`crate::cores::stop`) and the caller holds the
    /// scheduler's lock, without which no core switches to it and which every
    /// other path that maps takes.
    #[allow(clippy::mut_from_ref)] // the point: exclusive access proven by the caller
    pub unsafe fn get_mut(&self) -> &mut AddressSpace {
        // SAFETY: exclusive by the caller's contract.
        unsafe { &mut *self.0.get() }
    }
}

impl Deref for SharedSpace {
    type Target = AddressSpace;
    fn deref(&self) -> &AddressSpace {
        // SAFETY: no `&mut` exists while shared readers run (`get_mut`'s contract).
        unsafe { &*self.0.get() }
    }
}

/// A live process as the scheduler keeps it: the shared [`Process`] and what
/// only the scheduler changes, under its lock. Reads of the process go
/// through `Deref`.
pub struct ProcessEntry {
    pub shared: Arc<Process>,
    /// Threads not yet exited.
    pub live_threads: usize,
    /// Threads ever created (the next stack slot).
    pub threads_created: u64,
    /// Counter ticks spent running its threads.
    pub run_time: u64,
    /// Timer interrupts that arrived while one of its threads ran.
    pub ticks: u64,
    /// Involuntary switches: a tick took the CPU from one of its running threads
    /// and another thread ran next.
    pub preemptions: u64,
    /// Status given to `exit`, if it was called.
    pub exit_status: Option<i64>,
}

impl Deref for ProcessEntry {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.shared
    }
}

impl Process {
    /// "name" or "name args" for reports.
    pub fn title(&self) -> String {
        if self.args.is_empty() {
            self.name.clone()
        } else {
            alloc::format!("{} {}", self.name, self.args)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    Ready,
    Running,
    /// Until the counter reaches this value.
    Sleeping(u64),
    /// Waiting for that thread to end.
    Joining(Tid),
    /// Ended with a value, waiting to be joined.
    Exited(u64),
}

/// Size of each thread's kernel stack, in pages. Its saved EL0 frame sits at the top.
pub const KERNEL_STACK_PAGES: usize = 4;

/// A thread: a kernel stack with the saved EL0 registers on top, and its
/// FP/SIMD registers while another thread owns the CPU's.
pub struct Thread {
    pub tid: Tid,
    pub pid: Pid,
    pub state: ThreadState,
    /// Base of `KERNEL_STACK_PAGES` contiguous frames.
    pub kernel_stack: usize,
    pub fp: <Machine as Cpu>::FpState,
    /// The user thread pointer (thread-local storage: TPIDR_EL0 on aarch64,
    /// the FS base on x86_64) while the thread is not on the CPU.
    pub thread_pointer: u64,
    pub joined_by: Option<Tid>,
    /// The core whose FP/SIMD registers last held this thread's (they still
    /// do if that core's owner is this thread: no reload needed there).
    pub last_core: Option<usize>,
    /// The one core it may run on (`pin_to_core`), if pinned.
    pub pinned: Option<usize>,
    /// Breakpoint tree, return stack and step in progress: the thread's own
    /// allocation and lock, which the core running it holds on a hit.
    pub probes: Arc<Mutex<ThreadProbes>>,
}

impl Thread {
    /// Where `vectors.s` saves this thread's registers when it enters the kernel
    /// from EL0: always the top of its kernel stack, since the kernel itself is
    /// never preempted.
    pub fn frame(&self) -> *mut Frame {
        (self.kernel_stack + KERNEL_STACK_PAGES * crate::memory::PAGE_SIZE - core::mem::size_of::<Frame>())
            as *mut Frame
    }

    pub fn frame_mut(&mut self) -> &mut Frame {
        // SAFETY: the frame lies inside this thread's own kernel stack, which it
        // owns exclusively; the scheduler lock serialises access, and only the
        // core running the thread touches it without that lock (its trap).
        unsafe { &mut *self.frame() }
    }
}
