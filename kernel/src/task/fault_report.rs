//! The one line a fault in user mode is reported with, and killing the
//! faulting process (every other process goes on). Both kernels compile this
//! file (the x86_64 one through `#[path]`); each decides what to call the
//! fault and which registers to show.

use super::scheduler;
use crate::println;
use alloc::{format, string::String};

/// Report a fault of the current thread and kill its process:
///
/// `fault: <what> (pid <pid> <title>, tid <tid>):<address> <pc_name>=0x... at <program>:<function>+0x...; process killed`
///
/// `address` is the fault-address field with its leading space, or empty.
/// A fault in an instruction stepped out of line is the probed instruction's:
/// it is reported at the probed address, not in the XOL page.
pub fn report_and_kill(mut what: String, address: String, pc_name: &str, pc: u64) {
    let pc = scheduler::with(|s| {
        let (thread, process) = s.current();
        match thread.probes.abandon_step(&mut process.xol, pc) {
            Some(probed) => {
                what = format!("{} (stepping a probed instruction out of line)", what);
                probed
            }
            None => pc,
        }
    });
    let location = scheduler::describe_current(pc);
    scheduler::with(|s| {
        let (thread, process) = s.current();
        println!(
            "fault: {} (pid {} {}, tid {}):{} {}={:#x} at {}; process killed",
            what,
            process.pid,
            process.title(),
            thread.tid,
            address,
            pc_name,
            pc,
            location
        );
        s.kill_current_process(what);
    });
}
