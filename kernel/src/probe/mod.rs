//! Probes: the brk path of this kernel, end to end.
//!
//! This module adapts the arch-neutral `probe_core` crate (registry, per-task
//! breakpoint tree, XOL slot allocator, return stack, classifier, counters) to
//! the machine: it plants and removes `brk`s in a process's text, handles the
//! `brk` and software-step exceptions, and reports. docs/brk-path.md tells the
//! story of one hit with links into this file.
//!
//! Locking: everything here runs in exception context with interrupts masked on
//! one core. The hit path touches only the current thread's tree and its
//! process's XOL slots; the global registry's lock is taken on a tree miss, at
//! registration and at unregistration.

mod glue;
mod report;
mod user_memory;

use crate::{
    arch::{
        debug::{self, PROBE_BRK_IMMEDIATE, TRAMPOLINE_BRK_IMMEDIATE},
        exception::ExceptionFrame,
    },
    bootargs::{BootArgs, ProbeLocation, ProbeOptions, ProbeRequest},
    println,
    task::{
        address_space::{AddressSpace, UserAccess, XOL_SLOT_BYTES},
        process::{Process, Thread},
        scheduler,
    },
};
use alloc::{format, string::String, sync::Arc, vec::Vec};
use brk_abi::{layout, Error};
use user_memory::CheckedUserMemory;
use probe_core::{
    registry::Treatment, xol, ActiveHit, Aarch64, Arch, BreakpointTree, Counters, Probe, ProbeId, ProbeKind,
    ProbeRegistry, ProbeSpec, ReturnStack, SimulatePolicy, SlotIndex, SpaceId, TreeLookup, XolPolicy, XolSlots,
};
use spin::{Mutex, Once};

pub use report::print_report;

/// At most this many probes at once: well above the 10,000 the benchmarks
/// register, and well within the kernel heap, so a flood of registrations is
/// refused (`OutOfMemory`) long before an allocation could fail.
pub const PROBE_LIMIT: usize = 16_384;
static REGISTRY: Mutex<ProbeRegistry> = Mutex::new(ProbeRegistry::with_limit(PROBE_LIMIT));
/// Every probe ever registered, for the report (the registry forgets retired ones).
static EVERY_PROBE: Mutex<Vec<Arc<Probe>>> = Mutex::new(Vec::new());
pub static COUNTERS: Counters = Counters::new();
static OPTIONS: Once<ProbeOptions> = Once::new();
static REQUESTS: Once<Vec<ProbeRequest>> = Once::new();

fn options() -> ProbeOptions {
    OPTIONS.get().copied().unwrap_or_default()
}

fn xol_policy() -> XolPolicy {
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
        if options().trace {
            println!("trace: {}", format_args!($($arg)*));
        }
    };
}

/// Take the probe options and the command-line probes from the boot arguments.
pub fn init(args: &BootArgs) {
    OPTIONS.call_once(|| args.probe_options);
    REQUESTS.call_once(|| args.probes.clone());
}

/// The probe state of one thread.
pub struct ThreadProbes {
    /// Breakpoints this thread has hit: its private cache of the registry.
    tree: BreakpointTree,
    /// Pending return probes.
    returns: ReturnStack,
    /// Set between a hit's `brk` and its step exception.
    stepping: Option<Stepping>,
    /// An unregistration this thread started and waits to see finish.
    unregistering: Option<Arc<Probe>>,
}

struct Stepping {
    hit: ActiveHit,
    slot: SlotIndex,
    breakpoint: u64,
}

impl ThreadProbes {
    pub fn new(pid: u32) -> Self {
        Self {
            tree: BreakpointTree::new(space_of(pid)),
            // With the trampoline's address, the stack can tell a frame abandoned by
            // a non-local exit from a live one (see `probe_core::retstack`).
            returns: ReturnStack::with_trampoline(slot_address(SlotIndex::TRAMPOLINE)),
            stepping: None,
            unregistering: None,
        }
    }

    /// Is this thread between a `brk` and its step exception? (The scheduler sets
    /// MDSCR_EL1.SS from this on every switch.)
    pub fn is_stepping(&self) -> bool {
        self.stepping.is_some()
    }
}

/// The XOL slots of a new address space, as `xol-slots=N` asks.
pub fn new_xol_slots() -> XolSlots {
    match options().xol_slots {
        Some(step_slots) => XolSlots::new(step_slots + 1),
        None => XolSlots::full_page(),
    }
}

fn space_of(pid: u32) -> SpaceId {
    SpaceId(pid as u64)
}

/// The XOL page address of `slot`.
fn slot_address(slot: SlotIndex) -> u64 {
    layout::XOL_PAGE + (slot.index() * XOL_SLOT_BYTES) as u64
}

/// Read the instruction at user address `vaddr` (which must be readable text).
fn read_instruction(space: &AddressSpace, vaddr: u64) -> Option<u32> {
    let range = space.check(vaddr, 4, UserAccess::Read).ok()?;
    let mut bytes = Vec::new();
    space.read(range, &mut bytes);
    Some(u32::from_le_bytes(bytes[..4].try_into().ok()?))
}

// ---- registration ----

/// Plant the command-line probes that name `process`'s program. Each failure
/// prints one line; the process runs anyway.
pub fn install_requested(process: &mut Process) {
    let Some(requests) = REQUESTS.get() else { return };
    for request in requests.iter().filter(|r| r.program == process.name) {
        let resolved = resolve(process, request);
        let result = resolved.and_then(|(vaddr, symbol)| {
            let kind = if request.return_probe { ProbeKind::Uretprobe } else { ProbeKind::Uprobe };
            register(process, vaddr, kind, symbol).map_err(|(_, why)| why)
        });
        match result {
            Ok(probe) => println!(
                "probe {}: {} at {:#x} in pid {} ({}; {})",
                request.spec,
                probe.kind.as_str(),
                probe.vaddr,
                process.pid,
                treatment_name(&probe),
                probe.id
            ),
            Err(why) => println!("probe {}: refused: {}", request.spec, why),
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
            Ok((vaddr, format!("{}:{}", process.name, if *offset == 0 { name.clone() } else { format!("{}+{:#x}", name, offset) })))
        }
    }
}

fn treatment_name(probe: &Probe) -> String {
    match &probe.treatment {
        Treatment::Simulate(simulation) => format!("simulate {}", simulation.mnemonic()),
        Treatment::Step => String::from("step out of line"),
    }
}

/// Register a probe at `vaddr` in `process` and plant its `brk`.
fn register(process: &Process, vaddr: u64, kind: ProbeKind, symbol: String) -> Result<Arc<Probe>, (Error, String)> {
    if !vaddr.is_multiple_of(Aarch64::INSN_ALIGN) {
        return Err((Error::InvalidArgument, format!("address {:#x} is not 4-byte aligned", vaddr)));
    }
    if (layout::XOL_PAGE..layout::XOL_PAGE + 4096).contains(&vaddr) {
        return Err((Error::InvalidArgument, format!("address {:#x} is in the XOL page, not in {}'s text", vaddr, process.name)));
    }
    if process.space.check(vaddr, 4, UserAccess::Execute).is_err() {
        return Err((Error::InvalidArgument, format!("address {:#x} is not in {}'s text", vaddr, process.name)));
    }
    let original = read_instruction(&process.space, vaddr)
        .ok_or_else(|| (Error::InvalidArgument, format!("address {:#x} is not readable", vaddr)))?;
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
    write_text(&process.space, vaddr, Aarch64::breakpoint(PROBE_BRK_IMMEDIATE));
    EVERY_PROBE.lock().push(Arc::clone(&probe));
    Ok(probe)
}

/// Write one instruction into the process's text through the kernel alias (EL0
/// sees the page read-only) and make it visible to instruction fetch.
fn write_text(space: &AddressSpace, vaddr: u64, instruction: u32) {
    space
        .write_as_kernel(vaddr, &instruction.to_le_bytes(), true)
        .expect("probe address was checked to be mapped text");
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
/// still live (retiring first would make it look like the program's own `brk`).
fn retire_and_restore(process: &Process, id: u64) -> Result<Arc<Probe>, Error> {
    let id = ProbeId(u32::try_from(id).map_err(|_| Error::InvalidArgument)?);
    let mut registry = REGISTRY.lock();
    let (vaddr, original) = match registry.get(id) {
        Some(probe) if probe.space == space_of(process.pid) => (probe.vaddr, probe.original),
        _ => return Err(Error::InvalidArgument),
    };
    write_text(&process.space, vaddr, original);
    let probe = registry.unregister(id).map_err(|_| Error::InvalidArgument)?;
    trace!("probe_unregister: {} retired, {:#010x} restored at {:#x}", probe.id, probe.original, probe.vaddr);
    Ok(probe)
}

/// `probe_unregister`: put the original instruction back and retire the probe;
/// returns `None` while a thread is still stepping it (the caller's `svc` is
/// re-executed until then), `Some` when done.
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
        // A thread is between this probe's brk and its step: let it finish first.
        trace!("probe_unregister: {} has a step in flight, waiting", probe.id);
        thread.probes.unregistering = Some(probe);
        frame.elr -= 4; // run the `svc` again when we are scheduled next
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
    }
}

// ---- the hit path ----

/// What the scheduler must do after a probe exception was handled.
enum After {
    /// Return to the thread (its frame says where).
    Resume,
    /// Let other threads run first (this one waits for an XOL slot).
    Yield,
    /// Kill the process, with this reason.
    Kill(String),
}

/// Apply `after` to the current thread.
fn apply(s: &mut scheduler::Scheduler, after: After) {
    match after {
        After::Resume => {}
        After::Yield => s.yield_now(),
        After::Kill(reason) => s.kill_current_process(reason),
    }
}

/// A `brk` from EL0. Returns false if it is not a probe's (the caller reports
/// the program's own `brk` and kills the process).
pub fn on_brk(frame: &mut ExceptionFrame) -> bool {
    let immediate = frame.brk_immediate();
    if immediate == TRAMPOLINE_BRK_IMMEDIATE && frame.elr == slot_address(SlotIndex::TRAMPOLINE) {
        return on_trampoline(frame);
    }
    if immediate != PROBE_BRK_IMMEDIATE {
        return false;
    }
    let breakpoint = frame.elr;
    scheduler::with(|s| {
        let (thread, process) = s.current();
        trace!(
            "brk #{:#x} at {:#x} ({}): ESR_EL1={:#010x}, EC 0x3C (brk from EL0), tid {}",
            immediate,
            breakpoint,
            process.symbols.locate(&process.name, breakpoint),
            tock_registers::interfaces::Readable::get(&frame.esr),
            thread.tid
        );
        // 1. This thread's own tree: no lock.
        let (hit, remembered) = match thread.probes.tree.lookup(breakpoint) {
            TreeLookup::Hit { hit, remembered_slot } => {
                trace!(
                    "tree hit: {}, slot last time: {}",
                    hit.probe().id,
                    remembered_slot.map_or(String::from("none"), |slot| format!("{}", slot.index()))
                );
                (hit, remembered_slot)
            }
            lookup => {
                if matches!(lookup, TreeLookup::StaleRemoved) {
                    trace!("tree entry was for a retired probe: dropped");
                }
                // 2. The registry (locked), then cache the answer in the tree.
                let found = REGISTRY.lock().find(space_of(process.pid), breakpoint);
                match found.map(|probe| thread.probes.tree.insert(probe)) {
                    Some(Ok(Some(hit))) => {
                        trace!("tree miss; registry: {} ({}), cached in tid {}'s tree", hit.probe().id, hit.probe().kind.as_str(), thread.tid);
                        (hit, None)
                    }
                    _ => {
                        // 3. No probe. Still a brk there? Then it is the program's own.
                        return match read_instruction(&process.space, breakpoint) {
                            Some(word) if Aarch64::breakpoint_immediate(word).is_some() => false,
                            _ => {
                                trace!("no probe and no brk at {:#x} any more (unregistered meanwhile): restart there", breakpoint);
                                true
                            }
                        };
                    }
                }
            }
        };
        let after = handle_hit(frame, thread, process, hit, remembered, breakpoint);
        apply(s, after);
        true
    })
}

fn handle_hit(
    frame: &mut ExceptionFrame,
    thread: &mut Thread,
    process: &mut Process,
    hit: ActiveHit,
    remembered: Option<SlotIndex>,
    breakpoint: u64,
) -> After {
    let probe = Arc::clone(hit.probe());
    // A step needs a slot first: without one, the thread waits and the brk is
    // executed again later (the hit is not counted twice: see below).
    let choice = match probe.treatment {
        Treatment::Step => {
            trace!("{:#010x} runs the same anywhere: step it out of line in an XOL slot", probe.original);
            match xol::choose_slot(&process.xol, xol_policy(), remembered, probe.original, &COUNTERS) {
                Some(choice) => Some(choice),
                None => {
                    trace!("every XOL slot is busy: tid {} waits and executes the brk again later", thread.tid);
                    hit.retract();
                    return After::Yield;
                }
            }
        }
        Treatment::Simulate(_) => None,
    };
    COUNTERS.bump(&COUNTERS.hits);

    if probe.kind == ProbeKind::Uretprobe {
        let return_address = frame.x[30];
        match thread.probes.returns.push(Arc::clone(&probe), return_address, frame.sp_el0, &COUNTERS) {
            probe_core::retstack::PushOutcome::Armed { abandoned } => {
                frame.x[30] = slot_address(SlotIndex::TRAMPOLINE);
                trace!("return probe armed: x30 {:#x} -> trampoline {:#x} ({} abandoned frames dropped)", return_address, frame.x[30], abandoned);
            }
            probe_core::retstack::PushOutcome::SkippedDepthLimit { .. } => {
                trace!("return stack full ({} deep): this return is not probed", probe_core::RETURN_STACK_DEPTH);
            }
        }
    }

    match (&probe.treatment, choice) {
        (Treatment::Simulate(simulation), _) => {
            let result = Aarch64::simulate(simulation, breakpoint, frame, &mut CheckedUserMemory(&process.space));
            drop(hit);
            match result {
                Ok(()) => {
                    COUNTERS.bump(&COUNTERS.simulated);
                    trace!("simulated {} ({}): resume at {:#x}, one exception in all", simulation.mnemonic(), simulation.why(), frame.elr);
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
                    After::Kill(format!("simulated {}: {}", simulation.mnemonic(), fault))
                }
            }
        }
        (Treatment::Step, Some(choice)) => {
            let slot = choice.slot;
            let address = slot_address(slot);
            // Compare through the kernel alias: what the page really holds.
            let holds_it = process.space.read_xol_slot(slot.index()) == probe.original;
            if choice.must_write == holds_it && xol_policy() == XolPolicy::Reuse {
                println!("probe: XOL slot {} record disagrees with the page; writing it", slot.index());
            }
            if choice.must_write || !holds_it {
                let lines = process.space.write_xol_slot(slot.index(), probe.original);
                process.xol.note_written(slot, probe.original);
                COUNTERS.add_maintenance(lines);
                let alias = process.space.xol_slot_kernel_address(slot.index());
                let geometry = crate::arch::cache::geometry();
                trace!(
                    "slot {} ({:?}): written {:#010x} through the kernel alias {:#x}; DC CVAU {} line(s) at {:#x}, DSB ISH, IC IVAU {} line(s) at {:#x}, DSB ISH, ISB",
                    slot.index(),
                    choice.reason,
                    probe.original,
                    alias,
                    lines.dc_cvau_lines,
                    alias & !(geometry.dcache_line - 1),
                    lines.ic_ivau_lines,
                    alias & !(geometry.icache_line - 1)
                );
            } else {
                trace!("slot {} ({:?}): already holds {:#010x}: no write, no cache maintenance", slot.index(), choice.reason, probe.original);
            }
            thread.probes.tree.remember_slot(breakpoint, slot);
            COUNTERS.bump(&COUNTERS.stepped);
            frame.elr = address;
            debug::arm_single_step(frame);
            thread.probes.stepping = Some(Stepping { hit, slot, breakpoint });
            trace!("eret to slot {:#x} with MDSCR_EL1.SS=1 and SPSR_EL1.SS=1: one instruction, then a step exception", address);
            if options().preempt_steps {
                // As if an interrupt arrived now: the step stays armed in this
                // thread's saved SPSR and resumes when it runs again.
                return After::Yield;
            }
            After::Resume
        }
        (Treatment::Step, None) => unreachable!("a step always has a slot here"),
    }
}

/// The software-step exception after an out-of-line instruction. Returns false
/// if this thread was not stepping a probe (the caller reports it).
pub fn on_step(frame: &mut ExceptionFrame) -> bool {
    scheduler::with(|s| {
        let (thread, process) = s.current();
        let Some(stepping) = thread.probes.stepping.take() else { return false };
        debug::set_core_single_step(false);
        let slot = slot_address(stepping.slot);
        let _ = process.xol.release(stepping.slot);
        if frame.elr != slot + 4 {
            // The stepped instructions never branch, so this cannot happen; if it
            // did, resuming anywhere would be a guess.
            println!("probe: step from slot {:#x} ended at {:#x}, not the next slot address", slot, frame.elr);
            apply(s, After::Kill(String::from("single step left the XOL slot")));
            return true;
        }
        frame.elr = stepping.breakpoint + 4;
        trace!(
            "step exception ESR_EL1={:#010x} (EC 0x32) at {:#x}: PC = {:#x} + 4, MDSCR_EL1.SS cleared, slot {} released",
            tock_registers::interfaces::Readable::get(&frame.esr),
            slot + 4,
            stepping.breakpoint,
            stepping.slot.index()
        );
        drop(stepping.hit);
        true
    })
}

/// The return trampoline in XOL slot 0: a probed function returned.
fn on_trampoline(frame: &mut ExceptionFrame) -> bool {
    scheduler::with(|s| {
        let (thread, _) = s.current();
        let trampoline = slot_address(SlotIndex::TRAMPOLINE);
        let mut resumed = None;
        let result = thread.probes.returns.pop_chain(frame.sp_el0, trampoline, |instance, abandoned| {
            trace!("trampoline: return from {} to {:#x} ({} abandoned frames dropped)", instance.probe.id, instance.return_address, abandoned);
        });
        if let Ok(address) = result {
            resumed = Some(address);
        }
        match resumed {
            Some(address) => {
                frame.elr = address;
                true
            }
            // EL0 reached the trampoline without a pending return: its own doing.
            None => false,
        }
    })
}

/// A fault while a thread is stepping a probe: the slot goes back and the fault
/// is reported at the probed address. Returns that address.
pub fn abandon_step(thread: &mut Thread, process: &mut Process, fault_elr: u64) -> Option<u64> {
    let stepping = thread.probes.stepping.take()?;
    debug::set_core_single_step(false);
    let _ = process.xol.release(stepping.slot);
    let in_slot = fault_elr == slot_address(stepping.slot);
    in_slot.then_some(stepping.breakpoint)
}

/// How many threads of `threads` are between a probe's `brk` and its step.
pub fn steps_in_flight<'a>(threads: impl Iterator<Item = &'a Thread>) -> usize {
    threads.filter(|thread| thread.probes.is_stepping()).count()
}

/// A thread ends: give back the slot it may hold.
pub fn on_thread_end(thread: &mut Thread, process: &mut Process) {
    if let Some(stepping) = thread.probes.stepping.take() {
        let _ = process.xol.release(stepping.slot);
    }
    thread.probes.tree.clear();
    thread.probes.returns.clear();
}

/// A process ends: its probes go with its address space.
pub fn on_process_end(pid: u32) {
    REGISTRY.lock().retire_space(space_of(pid));
}

fn every_probe() -> Vec<Arc<Probe>> {
    EVERY_PROBE.lock().clone()
}
