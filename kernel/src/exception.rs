//! Exception dispatch: what the kernel does with each trap and interrupt.
//!
//! The architecture's assembly entry saves the registers and calls
//! [`handle_exception`]; the architecture decodes the trap into the contract's
//! [`Trap`] and this module decides. Interrupts: the tick goes to the timer
//! and then the scheduler, the console's input to the shell; any other is
//! reported in one line and ignored. From user mode: a system call is carried out, a
//! breakpoint, a single step or a probe trampoline's entry is offered to the probes first, and any other
//! exception (or an unclaimed breakpoint or step) kills that process only.
//! A system call, trampoline call, breakpoint or step from user mode may also
//! arrive by a fast route of its own ([`handle_user_system_call`],
//! [`handle_user_trampoline_call`], [`handle_user_breakpoint`],
//! [`handle_user_step`]), which the
//! architecture's assembly entry takes after telling the trap's kind from its
//! syndrome (aarch64) or vector (x86_64), skipping the generic decoding.
//! The kernel's own expected traps (self-tests, semihosting without a host)
//! resume the kernel code that took them; anything else unexpected in kernel
//! mode is reported in full and ends the run with a failure status. Every
//! other trap ends in the scheduler's `resume`, which returns the frame to
//! restore: the same thread's or another's.
//!
//! This is the top of the kernel's dependency graph: it calls the timer and
//! then the scheduler on a tick, and for a breakpoint or a step from user mode
//! it hands the probes the thread this core runs and its process, found
//! without the scheduler's lock ([`offer_to_probes`]); nothing it calls calls
//! back up (docs/modules.md).

use crate::{
    arch::{Frame, Interrupt, Machine, SavedRegisters, Trap, Traps},
    cores,
    power::{self, ExitStatus},
    probe::{on_breakpoint, on_step, on_trampoline_call, thread_state::HitThread},
    shell, syscall,
    task::{self, on_core::Here, process::Process, scheduler::After},
    time,
};

pub fn init() {
    Machine::init_traps();
}

/// The kernel's one trap entry, called by the architecture's assembly
/// (`arch/aarch64/vectors.s`, `arch/x86_64/trap.s`) with the saved frame and
/// the number [`Traps::decode`] reads; returns the frame to resume. It is here
/// rather than in the arch code so that the arch code never calls up into the
/// dispatcher.
#[no_mangle]
extern "C" fn handle_exception(frame: &mut Frame, entry: u64) -> *mut Frame {
    // This trap's frame is on the stack this core restored last: whatever
    // stack it was leaving before, it has left.
    task::on_core::off_the_old_stack();
    match Machine::decode(frame, entry) {
        Trap::Interrupt => Machine::take_interrupts(frame, handle_interrupt),
        Trap::SystemCall => syscall::handle(Here::now(), frame),
        Trap::TrampolineCall => trampoline_call(Here::now(), frame),
        Trap::Breakpoint => {
            if !offer_to_probes(frame, on_breakpoint) {
                task::fault(frame);
            }
        }
        Trap::Step => {
            if !offer_to_probes(frame, on_step) {
                task::fault(frame);
            }
        }
        Trap::UserFault => task::fault(frame),
        Trap::Dismissed => {}
        // The kernel's own traps (a self-test's breakpoint, the semihosting
        // `hlt` on a board without a debugger) resume the kernel code that took
        // them, as it was: no scheduling decision belongs in the middle of it.
        // (Through the scheduler, the `hlt` in `power::exit` on a real Pi 4
        // found no process left and printed the task report a second time
        // before halting.)
        Trap::Expected => return frame,
        Trap::Fatal => fatal(frame, entry),
    }
    task::scheduler::resume(frame)
}

/// The fast route of a system call from user mode: the architecture's
/// assembly entry has told it from every other trap (aarch64: ESR_EL1.EC of
/// a synchronous exception from EL0; x86_64: vector 0x80 from ring 3) and
/// comes here without [`Traps::decode`]. What it does is the dispatcher's
/// `Trap::SystemCall` arm, and nothing else.
#[no_mangle]
extern "C" fn handle_user_system_call(frame: &mut Frame) -> *mut Frame {
    let here = Here::now();
    here.off_the_old_stack();
    syscall::handle(here, frame);
    task::scheduler::resume_on(here, frame)
}

/// The fast route of a probe trampoline's entry from user mode (aarch64 `svc
/// #0xb7e`, x86_64 `int 0x82`; see [`handle_user_system_call`]).
#[no_mangle]
extern "C" fn handle_user_trampoline_call(frame: &mut Frame) -> *mut Frame {
    let here = Here::now();
    here.off_the_old_stack();
    trampoline_call(here, frame);
    task::scheduler::resume_on(here, frame)
}

/// A probe trampoline's entry instruction: a trampoline call if it came from
/// the start of one of the process's trampolines (the probes say), else what
/// the architecture says it is (an ordinary system call, or a fault).
#[inline(always)]
fn trampoline_call(here: Here, frame: &mut Frame) {
    if !offer_to_probes_on(here, frame, on_trampoline_call) {
        match Machine::TRAMPOLINE_ENTRY_ELSEWHERE {
            Trap::SystemCall => syscall::handle(here, frame),
            _ => task::fault(frame),
        }
    }
}

/// The fast route of a breakpoint from user mode (see
/// [`handle_user_system_call`]): the architecture finishes its own null
/// breakpoint ([`Traps::user_breakpoint`]), the probes get the others.
#[no_mangle]
extern "C" fn handle_user_breakpoint(frame: &mut Frame) -> *mut Frame {
    let here = Here::now();
    here.off_the_old_stack();
    if Machine::user_breakpoint(frame) == Trap::Breakpoint && !offer_to_probes_on(here, frame, on_breakpoint) {
        task::fault(frame);
    }
    task::scheduler::resume_on(here, frame)
}

/// The fast route of a completed single step from user mode (see
/// [`handle_user_system_call`]).
#[no_mangle]
extern "C" fn handle_user_step(frame: &mut Frame) -> *mut Frame {
    let here = Here::now();
    here.off_the_old_stack();
    if !offer_to_probes_on(here, frame, on_step) {
        task::fault(frame);
    }
    task::scheduler::resume_on(here, frame)
}

/// Offer a trap from user mode to the probe code `handler` with the thread
/// this core runs and its process, as this core found them without the
/// scheduler's lock (`task::on_core`): only the thread's own probe state is
/// locked, which no other thread's hit takes. The scheduler's lock is taken
/// only if the probes ask something of it (wait for a slot, kill the
/// process). False if the trap is no probe's.
#[inline(always)]
fn offer_to_probes(
    frame: &mut Frame,
    handler: impl FnOnce(&mut Frame, &mut HitThread, &Process) -> Option<After>,
) -> bool {
    offer_to_probes_on(Here::now(), frame, handler)
}

/// [`offer_to_probes`] on this core, `here`.
#[inline(always)]
fn offer_to_probes_on(
    here: Here,
    frame: &mut Frame,
    handler: impl FnOnce(&mut Frame, &mut HitThread, &Process) -> Option<After>,
) -> bool {
    let after = here.with_mine(|running| {
        let running = running?;
        let mut probes = crate::probe::lock_counting_waits(&running.probes);
        let mut thread = HitThread { tid: running.tid, probes: &mut probes };
        handler(frame, &mut thread, &running.process)
    });
    match after {
        None => false,
        Some(After::Resume) => true,
        Some(after) => {
            task::scheduler::with(|s| s.carry_out(after));
            true
        }
    }
}

/// One interrupt, between the architecture's acknowledge and its end.
fn handle_interrupt(interrupt: Interrupt<<Machine as Traps>::InterruptSource>) {
    match interrupt {
        Interrupt::Tick => {
            time::on_tick();
            task::scheduler::on_tick();
        }
        Interrupt::ConsoleInput => shell::on_console_input(),
        Interrupt::CrossCore => cores::handle_requests(),
        Interrupt::Unexpected { source, why } => crate::println!("irq: unexpected {} ignored ({})", source, why),
    }
}

/// A trap the kernel cannot continue after: report everything, power off.
/// (Interrupts are off, as in every handler: the CPU masks them on entry.)
fn fatal(frame: &Frame, entry: u64) -> ! {
    crate::console::print_on_the_way_down(format_args!(
        "unexpected exception: {}\n",
        Machine::describe_fatal(frame, entry)
    ));
    let mut dump = alloc::string::String::new();
    let _ = frame.dump(&mut dump);
    crate::console::print_on_the_way_down(format_args!("{}", dump));
    power::exit(ExitStatus::UnexpectedException)
}
