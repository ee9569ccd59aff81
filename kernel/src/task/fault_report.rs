//! The one line a fault in user mode is reported with, and killing the
//! faulting process (every other process goes on). The architecture says what
//! to call the fault and which registers to show (`arch::FaultDescription`).

use super::scheduler;
use crate::{arch::FaultDescription, println};
use alloc::{format, string::String};

/// Report a fault of the current thread and kill its process:
///
/// `fault: <what> (pid <pid> <title>, tid <tid>):<address> <pc_name>=0x... at <program>:<function>+0x...; process killed`
///
/// The fault-address field is there only when the architecture names one.
/// A fault in an instruction stepped out of line, or displaced into its
/// probe's branch trampoline, is the probed instruction's: it is reported at
/// the probed address, not in the XOL page or the trampoline area.
pub fn report_and_kill(fault: FaultDescription) {
    let FaultDescription { mut what, fault_address, pc_register, pc } = fault;
    let address = match fault_address {
        Some((register, value)) => format!(" {}={:#x}", register, value),
        None => String::new(),
    };
    let pc = scheduler::with(|s| {
        let (thread, process) = s.current()?;
        let displaced = process.space.trampolines().and_then(|area| area.trampoline_holding(pc));
        let displaced = displaced.and_then(|start| process.space.trampolines()?.probe_address(start));
        Some(match (thread.probes.lock().abandon_step(&process.xol, pc), displaced) {
            (Some(probed), _) => {
                what = format!("{} (stepping a probed instruction out of line)", what);
                probed
            }
            (None, Some(probed)) => {
                what = format!("{} (in a probed instruction displaced to its trampoline at {:#x})", what, pc);
                probed
            }
            (None, None) => pc,
        })
    });
    // Another core ended the process since the fault: nothing left to report.
    let Some(pc) = pc else { return };
    let location = scheduler::describe_current(pc);
    scheduler::with(|s| {
        let Some((thread, process)) = s.current() else { return };
        println!(
            "fault: {} (pid {} {}, tid {}):{} {}={:#x} at {}; process killed",
            what,
            process.pid,
            process.title(),
            thread.tid,
            address,
            pc_register,
            pc,
            location
        );
        s.kill_current_process(what);
    });
}
