//! The contract's `Traps` trait: exceptions and interrupts: the saved frame,
//! and the decoding of a trap into what the generic dispatcher
//! (`crate::exception`) does with it.
//!
//! The assembly entry of each architecture saves a frame and calls the
//! dispatcher's one entry point with it and a number ([`Traps::decode`] says
//! which); a system call, breakpoint or step from user mode may take a fast
//! route instead, one dispatcher entry each, which the assembly chooses from
//! the trap's syndrome or vector ([`Traps::user_breakpoint`]). The architecture turns that into a [`Trap`], acknowledges and ends
//! interrupts around the dispatcher's handling of each ([`Interrupt`]), and
//! describes faults in the words of its own manual; what the kernel does about
//! each case is the dispatcher's.

use alloc::string::String;
use core::fmt;

/// What a trap is, as the architecture decoded it: every case the dispatcher
/// tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// One or more interrupts: the dispatcher takes them with
    /// [`Traps::take_interrupts`]. From user or kernel mode (the idle loop).
    Interrupt,
    /// A system call from user mode (aarch64 `svc`, x86_64 `int 0x80`).
    SystemCall,
    /// The entry instruction of a probe's branch trampoline from user mode
    /// (aarch64 `svc #0xb7e`, x86_64 `int 0x82`): a trampoline call if it came
    /// from the start of one of the process's trampolines, which the probe
    /// code checks; from anywhere else it is what
    /// [`Traps::TRAMPOLINE_ENTRY_ELSEWHERE`] says.
    TrampolineCall,
    /// A breakpoint instruction from user mode (aarch64 `brk`, x86_64
    /// `int3`): a probe's, or the program's own.
    Breakpoint,
    /// A single step of one user instruction has completed.
    Step,
    /// Any other exception from user mode (or one the machine raised while
    /// user code ran): the program's doing, reported with
    /// [`Traps::describe_fault`]; its process is killed, the others go on.
    UserFault,
    /// A trap the architecture has dealt with on its own, with nothing left
    /// for the kernel to do but resume (through the scheduler, as after any
    /// trap): aarch64's null breakpoint from user mode (`brk
    /// #NULL_BRK_IMMEDIATE`, the benchmarks' floor of a breakpoint round
    /// trip), already stepped over; x86_64's spurious interrupts, counted.
    /// (x86_64's null breakpoint, the two-byte `int 3`, cannot be told from
    /// the frame alone: it is a [`Trap::Breakpoint`] the probe code resolves.)
    Dismissed,
    /// A trap the kernel raised on purpose in kernel mode (a self-test's
    /// breakpoint, a semihosting call with no host to take it), which the
    /// architecture has recorded for the code that raised it and stepped over
    /// where needed: the kernel code resumes as it was, with no scheduling
    /// decision in the middle of it.
    Expected,
    /// A trap in kernel mode the kernel did not expect, or one the machine
    /// raised that nothing can continue after (x86_64: NMI, machine check,
    /// double fault): reported with [`Traps::describe_fatal`], and the run ends.
    Fatal,
}

/// One interrupt, as the architecture classified it, for the dispatcher to
/// handle between the architecture's acknowledge and its end of interrupt. A
/// spurious interrupt is none of these: the architecture drops it.
pub enum Interrupt<Source> {
    /// The tick timer: the dispatcher has time count it, then the scheduler.
    Tick,
    /// The console's UART received bytes (aarch64: the PL011's interrupt at
    /// the GIC; x86_64: COM1's IRQ 4): the dispatcher hands them to the shell.
    ConsoleInput,
    /// Another core asked something of this one (`Cores::interrupt_core`):
    /// the dispatcher has [`crate::cores`] read this core's mailbox.
    CrossCore,
    /// An interrupt no handler claims: reported as
    /// `irq: unexpected <source> ignored (<why>)`, and the kernel goes on.
    Unexpected {
        /// Where it came from, as the line names it (`interrupt 42`,
        /// `vector 0x41`, `interrupt on 8259 PIC line 3`).
        source: Source,
        /// Why nothing handles it (`no handler`).
        why: &'static str,
    },
}

/// A fault from user mode as the architecture describes it, for the one line
/// `task::fault` prints:
/// `fault: <what> (pid ...):[ <address register>=0x...] <pc register>=0x... at ...`.
pub struct FaultDescription {
    /// What happened, in the manual's words, with what the architecture
    /// decoded of it (`data abort from EL0 (EC 0x24): translation fault
    /// (level 3) on write`, `page fault: not present on read`).
    pub what: String,
    /// The fault address register's name and value, when it means something
    /// for this fault (aarch64 `FAR` for aborts, x86_64 `CR2` for page faults).
    pub fault_address: Option<(&'static str, u64)>,
    /// The name of the register the faulting PC is shown as (`ELR`, `RIP`).
    pub pc_register: &'static str,
    /// Its value: where the fault was taken.
    pub pc: u64,
}

/// What a [`FaultDescription`] says of a breakpoint in XOL slot 0, the
/// return-probe trampoline, that no armed return probe was waiting for.
pub const UNARMED_TRAMPOLINE: &str = "the return-probe trampoline, reached with no return probe armed";

/// The registers a trap saved, as this architecture lays them out
/// (`Machine`'s [`Traps::Frame`]).
pub type Frame = <crate::arch::Machine as Traps>::Frame;

/// What generic code reads and writes of a trap's saved registers (the
/// scheduler, the system calls, the fatal report); the probe code's view of
/// them is the contract's `Probes`.
pub trait SavedRegisters {
    /// The frame that, restored by the trap exit, starts user mode at `entry`
    /// with its stack pointer at `stack_top` and the first two argument
    /// registers (aarch64 `x0`, `x1`; x86_64 `rdi`, `rsi`) holding `args`,
    /// every other register zero and interrupts enabled.
    fn new_user(entry: u64, stack_top: u64, args: [u64; 2]) -> Self;

    /// Did this trap come from user mode?
    fn came_from_user(&self) -> bool;

    /// The system call's number (`brk_abi`'s convention: aarch64 `x8`,
    /// x86_64 `rax`).
    fn syscall_number(&self) -> u64;

    /// The system call's argument `index` (0-5).
    fn syscall_arg(&self, index: usize) -> u64;

    /// Set the system call's result register (aarch64 `x0`, x86_64 `rax`).
    fn set_syscall_result(&mut self, value: u64);

    /// Set the system call's second result register (aarch64 `x1`, x86_64
    /// `rdx`: `clock`'s frequency, `join`'s value).
    fn set_syscall_second_result(&mut self, value: u64);

    /// Write every saved register to `out`, four to a line (the fatal report).
    fn dump(&self, out: &mut dyn fmt::Write) -> fmt::Result;
}

/// Exceptions and interrupts: the saved frame, and the decoding of a trap
/// into what the generic dispatcher does with it.
pub trait Traps {
    /// The registers the assembly entry saves on every trap and restores on
    /// the way out; a thread's frame is its user state while it does not run.
    /// What generic code reads and writes of it is [`SavedRegisters`].
    type Frame: SavedRegisters;

    /// What an unexpected interrupt's line names as its source.
    type InterruptSource: fmt::Display;

    /// What a [`Trap::TrampolineCall`] that did not come from the start of a
    /// trampoline is: on aarch64 an ordinary system call (`svc`'s immediate
    /// is otherwise ignored), on x86_64 a fault (`int 0x82` is no system call).
    const TRAMPOLINE_ENTRY_ELSEWHERE: Trap;

    /// Install the trap entry (aarch64: the vector table in VBAR_EL1; x86_64:
    /// the IDT, which needs the GDT loaded first).
    fn init_traps();

    /// Decode the trap the assembly entry saved in `frame`; `entry` is the
    /// number it passed along (aarch64: the vector table slot, 0-15; x86_64:
    /// the IDT vector). Traps that are the architecture's business alone
    /// (the ones [`Trap::Expected`] and [`Trap::Dismissed`] describe) are
    /// finished here.
    fn decode(frame: &mut Self::Frame, entry: u64) -> Trap;

    /// A breakpoint trap from user mode that the assembly entry routed to
    /// the dispatcher's fast route (`handle_user_breakpoint`) without
    /// [`Traps::decode`]: [`Trap::Dismissed`] if it is the architecture's own
    /// null breakpoint, finished here as `decode` would (aarch64: `brk
    /// #NULL_BRK_IMMEDIATE`, stepped over), otherwise [`Trap::Breakpoint`].
    fn user_breakpoint(frame: &mut Self::Frame) -> Trap;

    /// For a [`Trap::Interrupt`] in `frame`: acknowledge each pending
    /// interrupt, have `handle` deal with it, then end it (signal the end of
    /// interrupt where the controller expects one). Spurious interrupts are
    /// not handed to `handle`.
    fn take_interrupts(frame: &Self::Frame, handle: impl FnMut(Interrupt<Self::InterruptSource>));

    /// Describe the [`Trap::UserFault`] (or the unclaimed breakpoint or step)
    /// in `frame` for the fault report.
    fn describe_fault(frame: &Self::Frame) -> FaultDescription;

    /// Describe the [`Trap::Fatal`] in `frame`, taken through `entry` (as
    /// [`Traps::decode`] got it), in one line: what it was, the registers
    /// that say why, and where (`fatal` prints it after `unexpected
    /// exception: `, then the frame's `dump`).
    fn describe_fatal(frame: &Self::Frame, entry: u64) -> impl fmt::Display + '_;
}
