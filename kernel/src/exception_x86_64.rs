//! Trap dispatch: what the kernel does with each exception and interrupt.
//!
//! `arch/x86_64/trap.s` saves the registers and calls [`dispatch`] with the
//! frame; this module decides. The local APIC timer goes to the tick; a
//! spurious interrupt (the local APIC's spurious vector, an 8259's line 7 or
//! 15) is counted and ignored; any other interrupt vector is reported in one
//! line and ignored, so the kernel goes on; `int 0x80` from ring 3 is a
//! system call; `int3` (#BP) and single steps (#DB) from ring 3 are offered
//! to the probes first; any other exception from ring 3 kills
//! that process only; anything unexpected in ring 0 is reported in full and
//! ends the run with status 3. Every trap ends in the scheduler's `resume`,
//! which returns the frame `trap.s` restores: the same thread's or another's.
//!
//! As on aarch64, this is the top of the dependency graph: on a tick it calls
//! the timer and then the scheduler, and for a #BP or #DB from ring 3 it takes
//! the scheduler's lock once and hands the probes the current thread and
//! process ([`offer_to_probes`]); nothing it calls calls back up
//! (docs/modules.md).

use crate::{
    arch::expected_traps,
    arch::{
        self,
        exception::{ExceptionFrame, Vector, FIRST_INTERRUPT_VECTOR},
        lapic, pic,
    },
    power::{self, ExitStatus},
    probe, syscall,
    task::{
        self,
        process::{Process, Thread},
        scheduler::After,
    },
    time,
};
use core::sync::atomic::{AtomicU64, Ordering};

pub fn init() {
    arch::exception::init();
}

/// Called by `arch/x86_64/trap.s` with the saved frame; returns the frame to
/// resume. It is here rather than in the arch module so that the arch code
/// never calls up into the dispatcher.
#[no_mangle]
extern "sysv64" fn trap_entry(frame: &mut ExceptionFrame) -> *mut ExceptionFrame {
    dispatch(frame)
}

/// Handle one trap; returns the frame to resume (maybe another thread's).
fn dispatch(frame: &mut ExceptionFrame) -> *mut ExceptionFrame {
    let from_user = frame.came_from_user();
    match frame.class() {
        Vector::LocalApicTimer => {
            time::on_tick();
            task::scheduler::on_tick();
            lapic::end_of_interrupt();
        }
        // The local APIC marks no spurious interrupt in service: no EOI (SDM
        // vol. 3A, 11.9).
        Vector::LocalApicSpurious => count(&SPURIOUS_LOCAL_APIC),
        Vector::PicLine(line) => handle_pic_line(line),
        // An interrupt vector nobody handles, from a device or an `int n` in
        // ring 0 (from ring 3, `int n` to a DPL 0 gate is a #GP instead).
        Vector::Other(vector) if vector >= FIRST_INTERRUPT_VECTOR => unexpected_interrupt(vector),
        Vector::Syscall if from_user => syscall::handle(frame),
        Vector::Breakpoint if from_user => {
            if !offer_to_probes(frame, probe::on_breakpoint) {
                task::fault(frame);
            }
        }
        Vector::Debug if from_user => {
            if !offer_to_probes(frame, probe::on_step) {
                task::fault(frame);
            }
        }
        Vector::Breakpoint if expected_traps::is_kernel_int3(frame.rip) => {
            expected_traps::record_kernel_int3(frame.rip, frame.vector)
        }
        // A machine check or an NMI is the machine's doing, whoever was running.
        Vector::MachineCheck | Vector::NonMaskableInterrupt | Vector::DoubleFault => fatal(frame),
        _ if from_user => task::fault(frame),
        _ => fatal(frame),
    }
    task::scheduler::resume(frame)
}

/// Offer a trap from ring 3 to the probe code `handler` with the running
/// thread and its process, under one hold of the scheduler's lock, and do
/// what it asks of the scheduler. False if the trap is no probe's.
#[inline]
fn offer_to_probes(
    frame: &mut ExceptionFrame,
    handler: impl FnOnce(&mut ExceptionFrame, &mut Thread, &mut Process) -> Option<After>,
) -> bool {
    task::scheduler::with(|s| {
        let (thread, process) = s.current();
        handler(frame, thread, process).map(|after| s.carry_out(after)).is_some()
    })
}

/// Spurious interrupts seen, by source, and unexpected vectors reported.
static SPURIOUS_LOCAL_APIC: AtomicU64 = AtomicU64::new(0);
static SPURIOUS_PIC: AtomicU64 = AtomicU64::new(0);
static UNEXPECTED_VECTORS: AtomicU64 = AtomicU64::new(0);

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// How many spurious local APIC interrupts, spurious 8259 interrupts and
/// unexpected vectors have arrived so far.
pub fn interrupt_counts() -> (u64, u64, u64) {
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    (load(&SPURIOUS_LOCAL_APIC), load(&SPURIOUS_PIC), load(&UNEXPECTED_VECTORS))
}

/// Every 8259 line is masked, so only a spurious interrupt should come here;
/// anything else is reported and acknowledged so the PIC is not left stuck.
fn handle_pic_line(line: u8) {
    if pic::is_spurious(line) {
        count(&SPURIOUS_PIC);
        return;
    }
    count(&UNEXPECTED_VECTORS);
    crate::println!("irq: unexpected interrupt on 8259 PIC line {} ignored (every line is masked)", line);
    pic::end_of_interrupt(line);
}

fn unexpected_interrupt(vector: u8) {
    count(&UNEXPECTED_VECTORS);
    crate::println!("irq: unexpected vector {:#04x} ignored (no handler)", vector);
    // Delivered by the local APIC, it waits for an EOI, without which no
    // interrupt of its priority class or below would come again (11.8.3).
    if lapic::in_service(vector) {
        lapic::end_of_interrupt();
    }
}

/// A trap the kernel cannot continue after: report everything, power off.
fn fatal(frame: &ExceptionFrame) -> ! {
    arch::cpu::disable_interrupts();
    crate::console::print_on_the_way_down(format_args!(
        "unexpected exception: vector {} {} error code {:#x} CR2={:#018x} RIP={:#018x} in ring {}\n",
        frame.vector,
        frame.class(),
        frame.error_code,
        arch::exception::fault_address(),
        frame.rip,
        frame.cs & arch::exception::SELECTOR_RPL_MASK,
    ));
    let mut dump = alloc::string::String::new();
    let _ = frame.dump(&mut dump);
    crate::console::print_on_the_way_down(format_args!("{}", dump));
    power::exit(ExitStatus::UnexpectedException)
}
