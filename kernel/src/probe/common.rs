//! The arch-neutral half of the kernel's probe module: the probe registry and
//! its options, registering command-line probes, the probe system calls, and
//! what happens to probes when processes end. The aarch64 kernel
//! and the x86_64 kernel both compile this file (x86_64 through `#[path]`);
//! everything that depends on the machine (reading and planting the
//! breakpoint, the trap, the step) is the parent module's, through:
//!
//! - `super::read_original(process, vaddr, symbol)`: check that a probe may go
//!   at `vaddr` and read the instruction there;
//! - `super::plant(space, vaddr)` and `super::restore(space, vaddr, original)`:
//!   write the breakpoint, or the original instruction back;
//! - `super::rewind_syscall(frame)`: make the thread run its system call again;
//! - `super::insn_text(insn)`: an instruction as traces show it;
//! - `super::resume_address(frame)`: where the thread resumes (ELR or RIP);
//! - `super::new_xol_slots()`: the XOL slots of a new address space;
//! - `super::thread_state`: the per-thread probe state (a leaf module), with
//!   `Isa`, `Probe`, `space_of` and `slot_address`.
//!
//! The scheduler does not call this module: [`scheduler_hooks`] hands it, at
//! init, the functions it calls when a process starts and ends and when the
//! run is over. That keeps the dependency one way (probe -> task) at no cost
//! on the hit path, which never goes through them.

use super::{
    thread_state::{space_of, Isa, Probe},
    user_memory::CheckedUserMemory,
};
use crate::{
    arch::exception::ExceptionFrame,
    bootargs::{BootArgs, ProbeLocation, ProbeOptions, ProbeRequest},
    println,
    task::{
        process::Process,
        scheduler::{self, After},
    },
};
use alloc::{format, string::String, sync::Arc, vec::Vec};
use brk_abi::{layout, Error};
use probe_core::{
    registry::Treatment, ActiveHit, Arch, BreakpointTree, Counters, ProbeId, ProbeKind, ProbeSpec, SimulatePolicy,
    SlotIndex, TreeLookup, XolPolicy,
};
use spin::{Mutex, Once};

type ProbeRegistry = probe_core::ProbeRegistry<Isa>;

/// At most this many probes at once: well above the 10,000 the benchmarks
/// register, and well within the kernel heap, so a flood of registrations is
/// refused (`OutOfMemory`) long before an allocation could fail.
pub const PROBE_LIMIT: usize = 16_384;
pub static REGISTRY: Mutex<ProbeRegistry> = Mutex::new(ProbeRegistry::with_limit(PROBE_LIMIT));
/// Every probe ever registered, for the report (the registry forgets retired ones).
static EVERY_PROBE: Mutex<Vec<Arc<Probe>>> = Mutex::new(Vec::new());
pub static COUNTERS: Counters = Counters::new();
static OPTIONS: Once<ProbeOptions> = Once::new();
static REQUESTS: Once<Vec<ProbeRequest>> = Once::new();
/// What became of each of `REQUESTS`, in the same order, for the final report.
static REQUEST_OUTCOMES: Mutex<Vec<RequestOutcome>> = Mutex::new(Vec::new());

/// What became of one command-line probe (`probe=`, `retprobe=`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RequestOutcome {
    /// No process of its program was started.
    #[default]
    ProgramNeverRan,
    /// Every process of its program refused it; the last reason.
    Refused(String),
    /// Installed in at least one process.
    Installed,
}

pub fn options() -> ProbeOptions {
    OPTIONS.get().copied().unwrap_or_default()
}

pub fn xol_policy() -> XolPolicy {
    if options().fresh_slots {
        XolPolicy::Fresh
    } else {
        XolPolicy::Reuse
    }
}

fn simulate_policy() -> SimulatePolicy {
    if options().simulate_branches_only {
        SimulatePolicy::Branches
    } else {
        SimulatePolicy::All
    }
}

/// `--trace`: one line per step of a hit.
macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::probe::common::options().trace {
            $crate::println!("trace: {}", format_args!($($arg)*));
        }
    };
}

/// Take the probe options and the command-line probes from the boot arguments.
pub fn init(args: &BootArgs) {
    OPTIONS.call_once(|| args.probe_options);
    REQUESTS.call_once(|| args.probes.clone());
    *REQUEST_OUTCOMES.lock() = alloc::vec![RequestOutcome::default(); args.probes.len()];
}

/// The command-line probes that were never installed, each with why: its
/// program never ran, or every process of it refused the probe.
pub fn requests_not_installed() -> Vec<(String, String)> {
    let Some(requests) = REQUESTS.get() else { return Vec::new() };
    let outcomes = REQUEST_OUTCOMES.lock();
    requests
        .iter()
        .zip(outcomes.iter())
        .filter_map(|(request, outcome)| match outcome {
            RequestOutcome::Installed => None,
            RequestOutcome::ProgramNeverRan => {
                Some((request.spec.clone(), format!("no process of {} was started", request.program)))
            }
            RequestOutcome::Refused(why) => Some((request.spec.clone(), format!("refused: {}", why))),
        })
        .collect()
}

// ---- registration ----

/// Plant the command-line probes that name `process`'s program. Each failure
/// prints one line; the process runs anyway.
fn install_requested(process: &mut Process) {
    let Some(requests) = REQUESTS.get() else { return };
    for (index, request) in requests.iter().enumerate().filter(|(_, r)| r.program == process.name) {
        let resolved = resolve(process, request);
        let result = resolved.and_then(|(vaddr, symbol)| {
            let kind = if request.return_probe { ProbeKind::Uretprobe } else { ProbeKind::Uprobe };
            register(process, vaddr, kind, symbol).map_err(|(_, why)| why)
        });
        let mut outcomes = REQUEST_OUTCOMES.lock();
        let outcome = &mut outcomes[index];
        match result {
            Ok(probe) => {
                println!(
                    "probe {}: {} at {:#x} in pid {} ({}; {})",
                    request.spec,
                    probe.kind.as_str(),
                    probe.vaddr,
                    process.pid,
                    treatment_name(&probe),
                    probe.id
                );
                *outcome = RequestOutcome::Installed;
            }
            Err(why) => {
                println!("probe {}: refused: {}", request.spec, why);
                if *outcome != RequestOutcome::Installed {
                    *outcome = RequestOutcome::Refused(why);
                }
            }
        }
    }
}

/// The address and report name of a command-line probe location.
fn resolve(process: &Process, request: &ProbeRequest) -> Result<(u64, String), String> {
    match &request.location {
        ProbeLocation::Address(vaddr) => Ok((*vaddr, format!("{}", process.symbols.locate(&process.name, *vaddr)))),
        ProbeLocation::Symbol { name, offset } => {
            let start = process
                .symbols
                .address_of(name)
                .ok_or_else(|| format!("{} has no function named '{}'", process.name, name))?;
            let vaddr = start.checked_add(*offset).ok_or_else(|| String::from("offset overflows"))?;
            Ok((
                vaddr,
                format!(
                    "{}:{}",
                    process.name,
                    if *offset == 0 { name.clone() } else { format!("{}+{:#x}", name, offset) }
                ),
            ))
        }
    }
}

pub fn treatment_name(probe: &Probe) -> String {
    match &probe.treatment {
        Treatment::Simulate(simulation) => format!("simulate {}", simulation.mnemonic()),
        Treatment::Step => String::from("step out of line"),
    }
}

/// Register a probe at `vaddr` in `process` and plant its breakpoint.
fn register(process: &Process, vaddr: u64, kind: ProbeKind, symbol: String) -> Result<Arc<Probe>, (Error, String)> {
    if (layout::XOL_PAGE..layout::XOL_PAGE + 4096).contains(&vaddr) {
        return Err((
            Error::InvalidArgument,
            format!("address {:#x} is in the XOL page, not in {}'s text", vaddr, process.name),
        ));
    }
    let original = super::read_original(process, vaddr, &symbol)?;
    let spec = ProbeSpec {
        space: space_of(process.pid),
        vaddr,
        kind,
        original,
        program: process.name.clone(),
        symbol: symbol.split_once(':').map_or(symbol.clone(), |(_, s)| String::from(s)),
    };
    let probe = REGISTRY.lock().register(spec, simulate_policy()).map_err(|error| {
        let code = match error {
            probe_core::RegisterError::Rejected(_) => Error::Refused,
            probe_core::RegisterError::Duplicate { .. } => Error::AlreadyExists,
            probe_core::RegisterError::Full { .. } => Error::OutOfMemory,
            probe_core::RegisterError::Unaligned { .. } => Error::InvalidArgument,
        };
        (code, format!("{} at {:#x}: {}", symbol, vaddr, error))
    })?;
    super::plant(&process.space, vaddr);
    EVERY_PROBE.lock().push(Arc::clone(&probe));
    Ok(probe)
}

// ---- the probe system calls ----

pub fn sys_register(kind: u64, vaddr: u64) -> Result<u64, Error> {
    let kind = match brk_abi::ProbeKind::from_number(kind).ok_or(Error::InvalidArgument)? {
        brk_abi::ProbeKind::Uprobe => ProbeKind::Uprobe,
        brk_abi::ProbeKind::Uretprobe => ProbeKind::Uretprobe,
    };
    scheduler::with(|s| {
        let process = s.current_process();
        let symbol = format!("{}", process.symbols.locate(&process.name, vaddr));
        match register(process, vaddr, kind, symbol) {
            Ok(probe) => {
                trace!("probe_register: {} at {:#x} ({})", probe.id, vaddr, treatment_name(&probe));
                Ok(probe.id.0 as u64)
            }
            Err((code, why)) => {
                trace!("probe_register refused: {}", why);
                Err(code)
            }
        }
    })
}

/// Put the original instruction of the caller's probe `id` back, then retire
/// it. The order matters: a thread that trapped in between finds the probe
/// still live (retiring first would make it look like the program's own
/// breakpoint).
fn retire_and_restore(process: &Process, id: u64) -> Result<Arc<Probe>, Error> {
    let id = ProbeId(u32::try_from(id).map_err(|_| Error::InvalidArgument)?);
    let mut registry = REGISTRY.lock();
    let (vaddr, original) = match registry.get(id) {
        Some(probe) if probe.space == space_of(process.pid) => (probe.vaddr, probe.original),
        _ => return Err(Error::InvalidArgument),
    };
    super::restore(&process.space, vaddr, &original);
    let probe = registry.unregister(id).map_err(|_| Error::InvalidArgument)?;
    trace!(
        "probe_unregister: {} retired, {} restored at {:#x}",
        probe.id,
        super::insn_text(&probe.original),
        probe.vaddr
    );
    Ok(probe)
}

/// `probe_unregister`: put the original instruction back and retire the probe;
/// returns `None` while a thread is still stepping it (the caller's system
/// call is executed again until then), `Some` when done.
pub fn sys_unregister(frame: &mut ExceptionFrame, id: u64) -> Option<Result<u64, Error>> {
    scheduler::with(|s| {
        let (thread, process) = s.current();
        let probe = match thread.probes.unregistering.take() {
            Some(waiting) if waiting.id.0 as u64 == id => waiting,
            _ => match retire_and_restore(process, id) {
                Ok(probe) => probe,
                Err(error) => return Some(Err(error)),
            },
        };
        if probe.is_quiescent() {
            return Some(Ok(0));
        }
        // A thread is between this probe's breakpoint and its step: let it finish first.
        trace!("probe_unregister: {} has a step in flight, waiting", probe.id);
        thread.probes.unregistering = Some(probe);
        super::rewind_syscall(frame); // run the system call again when we are scheduled next
        s.yield_now();
        None
    })
}

pub fn sys_stats(id: u64) -> Result<brk_abi::ProbeStats, Error> {
    let pid = scheduler::with(|s| s.current_process().pid);
    let id = u32::try_from(id).map_err(|_| Error::InvalidArgument)?;
    EVERY_PROBE
        .lock()
        .iter()
        .find(|probe| probe.id.0 == id && probe.space == space_of(pid))
        .map(|probe| brk_abi::ProbeStats { hits: probe.hits(), return_hits: probe.return_hits() })
        .ok_or(Error::InvalidArgument)
}

pub fn counters() -> brk_abi::ProbeCounters {
    let s = COUNTERS.snapshot();
    brk_abi::ProbeCounters {
        hits: s.hits,
        simulated: s.simulated,
        stepped: s.stepped,
        slot_reused: s.slot_reused,
        slot_written: s.slot_written,
        dc_cvau_lines: s.dc_cvau_lines,
        ic_ivau_lines: s.ic_ivau_lines,
        slot_waits: s.slot_waits,
        return_probes_skipped: s.return_probes_skipped,
        ic_iallu: s.ic_iallu,
    }
}

// ---- the hit path ----

/// Find the probe a thread of process `pid` hit at `breakpoint`: first in the
/// thread's own `tree` (no lock, no other thread involved), then in the
/// registry (locked), whose answer is cached in the tree. A tree entry whose
/// probe was retired is dropped, never used. Returns the hit and the slot this
/// breakpoint used last time, or `None` if no live probe is there.
#[inline]
pub fn find_probe(
    tree: &mut BreakpointTree<Isa>,
    pid: u32,
    tid: u32,
    breakpoint: u64,
) -> Option<(ActiveHit<Isa>, Option<SlotIndex>)> {
    match tree.lookup(breakpoint) {
        TreeLookup::Hit { hit, remembered_slot } => {
            trace!(
                "tree hit: {}, slot last time: {}",
                hit.probe().id,
                remembered_slot.map_or(String::from("none"), |slot| format!("{}", slot.index()))
            );
            Some((hit, remembered_slot))
        }
        lookup => {
            if matches!(lookup, TreeLookup::StaleRemoved) {
                trace!("tree entry was for a retired probe: dropped");
            }
            let found = REGISTRY.lock().find(space_of(pid), breakpoint);
            match found.map(|probe| tree.insert(probe)) {
                Some(Ok(Some(hit))) => {
                    trace!(
                        "tree miss; registry: {} ({}), cached in tid {}'s tree",
                        hit.probe().id,
                        hit.probe().kind.as_str(),
                        tid
                    );
                    Some((hit, None))
                }
                _ => None,
            }
        }
    }
}

/// Step 5 for a simulated instruction: do what it would have done, on the
/// saved registers and (through the checked path) the task's memory, and
/// resume past it: one exception per hit. A memory access the task itself
/// could not have made kills the process, reported at the probed address.
pub fn simulate_hit(
    simulation: &<Isa as Arch>::Simulation,
    breakpoint: u64,
    frame: &mut ExceptionFrame,
    process: &Process,
    hit: ActiveHit<Isa>,
) -> After {
    let result = Isa::simulate(simulation, breakpoint, frame, &mut CheckedUserMemory(&process.space));
    drop(hit);
    match result {
        Ok(()) => {
            COUNTERS.bump(&COUNTERS.simulated);
            trace!(
                "simulated {} ({}): resume at {:#x}, one exception in all",
                simulation.mnemonic(),
                simulation.why(),
                super::resume_address(frame)
            );
            After::Resume
        }
        Err(fault) => {
            println!(
                "fault: simulated {} at {:#x} ({}): {}; process killed",
                simulation.mnemonic(),
                breakpoint,
                process.symbols.locate(&process.name, breakpoint),
                fault
            );
            After::kill(format!("simulated {}: {}", simulation.mnemonic(), fault))
        }
    }
}

// ---- when processes end ----

/// A process ends: its probes go with its address space.
fn on_process_end(pid: u32) {
    REGISTRY.lock().retire_space(space_of(pid));
}

/// What the scheduler calls into the probes for, handed to it at init: the
/// XOL slots of a new process, planting the command-line probes in it, its
/// probes' end with it, and the report once every process has ended.
pub fn scheduler_hooks() -> scheduler::Hooks {
    scheduler::Hooks {
        new_xol_slots: super::new_xol_slots,
        process_loaded: install_requested,
        process_ended: on_process_end,
        all_ended: super::report::print_report,
    }
}

pub fn every_probe() -> Vec<Arc<Probe>> {
    EVERY_PROBE.lock().clone()
}
