//! Exception dispatch: what the kernel does with each trap and interrupt.
//!
//! The architecture code saves the registers and names the vector slot; this
//! module decides. Today: IRQs go to the interrupt controller and the tick,
//! kernel self-test `brk`s are stepped over, and anything unexpected at EL1 is
//! reported in full and ends the run with a failure status.
//!
//! This is the top of the kernel's dependency graph: it calls the timer and
//! then the scheduler on a tick, and for a `brk` or a step from EL0 it takes the
//! scheduler's lock once and hands the probes the current thread and process
//! ([`offer_to_probes`]); nothing it calls calls back up
//! (docs/modules.md).

use crate::{
    arch::{
        self,
        exception::{ExceptionClass, ExceptionFrame, VectorSlot},
    },
    drivers::gicv2,
    power::{self, ExitStatus},
    probe, selftest, syscall,
    task::{
        self,
        process::{Process, Thread},
        scheduler::After,
    },
    time,
};
use tock_registers::interfaces::Readable;

pub fn init() {
    arch::exception::init();
}

/// Called from `arch/aarch64/vectors.s` with the saved frame and the number of
/// the vector slot taken; returns the frame to resume. It is here rather than
/// in the arch module so that the arch code never calls up into the dispatcher.
#[no_mangle]
extern "C" fn handle_exception(frame: &mut ExceptionFrame, slot: u64) -> *mut ExceptionFrame {
    dispatch(frame, VectorSlot::ALL[slot as usize & 0xf])
}

/// Handle one exception; returns the frame to resume (maybe another thread's).
fn dispatch(frame: &mut ExceptionFrame, slot: VectorSlot) -> *mut ExceptionFrame {
    match slot {
        VectorSlot::CurrentElSpxIrq | VectorSlot::LowerAarch64Irq => handle_irq(),
        // The kernel's own traps (a self-test `brk`, the semihosting `hlt` on a
        // board without a debugger) resume the kernel code that took them, as it
        // was: no scheduling decision belongs in the middle of it. (Through the
        // scheduler, the `hlt` in `power::exit` on a real Pi 4 found no process
        // left and printed the task report a second time before halting.)
        VectorSlot::CurrentElSpxSynchronous => {
            handle_el1_synchronous(frame, slot);
            return frame;
        }
        VectorSlot::LowerAarch64Synchronous => match frame.class() {
            ExceptionClass::SvcAarch64 => syscall::handle(frame),
            ExceptionClass::BrkAarch64 if frame.brk_immediate() == crate::arch::debug::NULL_BRK_IMMEDIATE => {
                frame.elr += 4; // the null breakpoint: the floor of a brk round trip
            }
            ExceptionClass::BrkAarch64 if offer_to_probes(frame, probe::on_breakpoint) => {}
            ExceptionClass::SoftwareStepLowerEl if offer_to_probes(frame, probe::on_step) => {}
            _ => task::fault(frame),
        },
        // SError and FIQ from EL0 are the program's (or the machine's) doing, not ours.
        VectorSlot::LowerAarch64Serror | VectorSlot::LowerAarch64Fiq => task::fault(frame),
        _ => fatal(frame, slot),
    }
    task::scheduler::resume(frame)
}

/// Offer a trap from EL0 to the probe code `handler` with the running thread
/// and its process, under one hold of the scheduler's lock, and do what it
/// asks of the scheduler. False if the trap is no probe's.
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

fn handle_irq() {
    loop {
        let intid = gicv2::acknowledge();
        if intid >= gicv2::SPURIOUS {
            break;
        }
        if time::is_tick(intid) {
            time::on_tick();
            task::scheduler::on_tick();
        } else {
            crate::println!("irq: unexpected interrupt {} ignored (no handler)", intid);
        }
        gicv2::end_of_interrupt(intid);
    }
}

fn handle_el1_synchronous(frame: &mut ExceptionFrame, slot: VectorSlot) {
    match frame.class() {
        ExceptionClass::BrkAarch64 if frame.brk_immediate() == selftest::EL1_BRK_IMMEDIATE => {
            selftest::record_el1_brk(frame);
            frame.elr += 4; // ELR points at the brk itself: step over it.
        }
        ExceptionClass::Unknown if arch::semihosting::is_semihosting_trap(frame.elr) => {
            frame.elr += 4; // No semihosting host: skip the hlt, power::exit goes on.
        }
        _ => fatal(frame, slot),
    }
}

/// An exception the kernel cannot continue after: report everything, power off.
fn fatal(frame: &ExceptionFrame, slot: VectorSlot) -> ! {
    arch::cpu::disable_interrupts();
    crate::console::print_on_the_way_down(format_args!(
        "unexpected exception: {} {} ESR_EL1={:#010x} FAR_EL1={:#018x} ELR_EL1={:#018x}\n",
        slot.name(),
        frame.class(),
        frame.esr.get(),
        frame.far,
        frame.elr,
    ));
    let mut dump = alloc::string::String::new();
    let _ = frame.dump(&mut dump);
    crate::console::print_on_the_way_down(format_args!("{}", dump));
    power::exit(ExitStatus::UnexpectedException)
}
