//! Trap dispatch: what the kernel does with each exception and interrupt.
//!
//! `arch/x86_64/trap.s` saves the registers and calls [`dispatch`] with the
//! frame; this module decides. The PIT's IRQ goes to the tick; `int 0x80`
//! from ring 3 is a system call; `int3` (#BP) and single steps (#DB) from ring
//! 3 are offered to the probes first; any other exception from ring 3 kills
//! that process only; anything unexpected in ring 0 is reported in full and
//! ends the run with status 3. Every trap ends in the scheduler's `resume`,
//! which returns the frame `trap.s` restores: the same thread's or another's.

use crate::{
    arch::{
        self,
        exception::{ExceptionFrame, Vector},
        pic,
    },
    power::{self, ExitStatus},
    probe, selftest, syscall, task, time,
};

pub fn init() {
    arch::exception::init();
}

/// Handle one trap; returns the frame to resume (maybe another thread's).
pub fn dispatch(frame: &mut ExceptionFrame) -> *mut ExceptionFrame {
    let from_user = frame.came_from_user();
    match frame.class() {
        Vector::Irq(line) => handle_irq(line),
        Vector::Syscall if from_user => syscall::handle(frame),
        Vector::Breakpoint if from_user => {
            if !probe::on_breakpoint(frame) {
                task::fault(frame);
            }
        }
        Vector::Debug if from_user => {
            if !probe::on_debug(frame) {
                task::fault(frame);
            }
        }
        Vector::Breakpoint if selftest::is_kernel_int3(frame.rip) => selftest::record_kernel_int3(frame),
        // A machine check or an NMI is the machine's doing, whoever was running.
        Vector::MachineCheck | Vector::NonMaskableInterrupt | Vector::DoubleFault => fatal(frame),
        _ if from_user => task::fault(frame),
        _ => fatal(frame),
    }
    task::scheduler::resume(frame)
}

fn handle_irq(line: u8) {
    if pic::is_spurious(line) {
        return;
    }
    if time::is_tick(line) {
        time::on_tick();
    } else {
        crate::println!("irq: unexpected interrupt on PIC line {} ignored (no handler)", line);
    }
    pic::end_of_interrupt(line);
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
