//! Processes and threads: what the scheduler keeps about each.

use super::{address_space::AddressSpace, symbols::Symbols};
use crate::{
    arch::{Cpu, Frame, Machine},
    bootargs::Expectation,
    probe::thread_state::ThreadProbes,
};
use alloc::string::String;

pub type Pid = u32;
pub type Tid = u32;

/// How a process ended.
#[derive(Clone, Debug)]
pub enum ProcessEnd {
    Exited(i64),
    /// Killed by the kernel; the one-line reason.
    Killed(String),
}

/// A process: an address space, its program's symbols, and its threads.
pub struct Process {
    pub pid: Pid,
    pub name: String,
    pub args: String,
    pub space: AddressSpace,
    pub symbols: Symbols,
    pub expectation: Expectation,
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
    /// The slots of the XOL page, shared by the process's threads.
    pub xol: probe_core::XolSlots,
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
    /// Breakpoint tree, return stack and step in progress.
    pub probes: ThreadProbes,
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
        // owns exclusively; the scheduler lock serialises access.
        unsafe { &mut *self.frame() }
    }
}
