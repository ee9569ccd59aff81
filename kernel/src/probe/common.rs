//! The probe registry and what goes with it: the options, registering the
//! command-line probes, the probe system calls, planting and removing
//! breakpoints in a process's text, and what happens to probes when
//! processes start and end. The hit path is the parent module's; what the
//! shell asks at run time (adding, deleting, listing, tracing, the options)
//! is [`live`].
//!
//! The scheduler does not call this module: [`scheduler_hooks`] hands it, at
//! init, the functions it calls when a process starts and ends and when the
//! run is over. That keeps the dependency one way (probe -> task) at no cost
//! on the hit path, which never goes through them.

use super::{
    thread_state::{space_of, Isa, Probe},
    trampolines::{self, NoTrampoline},
    Frame,
};
use crate::{
    arch::{Machine, Probes},
    bootargs::{BootArgs, ProbeLocation, ProbeOptions, ProbeRequest},
    println,
    task::{
        self,
        address_space::{AddressSpace, UserAccess},
        process::Process,
        scheduler,
    },
};
use alloc::{format, string::String, sync::Arc, vec::Vec};
use brk_abi::{layout, Error};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use probe_core::{
    registry::Treatment, xol, Arch, Counters, ProbeId, ProbeKind, ProbeSpec, SimulatePolicy, SpaceId, XolPolicy,
    XolSlots,
};

pub mod live;
use spin::{Mutex, Once, RwLock};

type ProbeRegistry = probe_core::ProbeRegistry<Isa>;

/// At most this many probes at once: well above the 10,000 the benchmarks
/// register, and well within the kernel heap, so a flood of registrations is
/// refused (`OutOfMemory`) long before an allocation could fail.
pub const PROBE_LIMIT: usize = 16_384;
/// The registry: read by hits that miss their thread's tree (the read side,
/// which many cores hold at once), written at registration, unregistration
/// and a process's end.
pub static REGISTRY: RwLock<ProbeRegistry> = RwLock::new(ProbeRegistry::with_limit(PROBE_LIMIT));
/// Every probe ever registered, for the report (the registry forgets retired ones).
static EVERY_PROBE: Mutex<Vec<Arc<Probe>>> = Mutex::new(Vec::new());
/// The probes retired by `probe_unregister` (or the shell's `probe del`); every
/// other retired probe went with its process's address space.
static UNREGISTERED: Mutex<Vec<ProbeId>> = Mutex::new(Vec::new());
pub static COUNTERS: Counters = Counters::new();
/// Hits that found a lock they take held by another core (`lock_waits` of
/// the `probe_counters` call; the benchmark's contention per hit).
static LOCK_WAITS: AtomicU64 = AtomicU64::new(0);
/// `lookup=registry`: every hit looks its probe up in the registry under
/// its exclusive lock, skipping the thread's tree: the situation before the
/// per-thread tree, for the benchmark to compare against.
static REGISTRY_EVERY_HIT: AtomicBool = AtomicBool::new(false);
/// `preempt-steps`, read on every stepped hit: one load, not the `Once`.
static PREEMPT_STEPS: AtomicBool = AtomicBool::new(false);
/// The options the boot arguments gave; the three the shell changes at run
/// time are the atomics below, which [`options`] reads instead.
static OPTIONS: Once<ProbeOptions> = Once::new();
/// `trace` / `trace on|off`: every hit's steps.
static TRACE_ALL: AtomicBool = AtomicBool::new(false);
/// `xol-policy=fresh` / `policy fresh|reuse`.
static FRESH_SLOTS: AtomicBool = AtomicBool::new(false);
/// `simulate=branches` / `simulate all|branches` (for probes registered from then on).
static SIMULATE_BRANCHES_ONLY: AtomicBool = AtomicBool::new(false);
/// The probes that keep their breakpoint under `probe-mode=trampoline`, and why.
static NO_TRAMPOLINE: Mutex<Vec<(ProbeId, NoTrampoline)>> = Mutex::new(Vec::new());
/// The probes traced one by one (`trace on ID`): id, address space, address.
static TRACED: Mutex<Vec<(ProbeId, SpaceId, u64)>> = Mutex::new(Vec::new());
/// Whether [`TRACED`] has any: the hit path looks no further when not.
static ANY_TRACED: AtomicBool = AtomicBool::new(false);
/// Whether the `trace:` lines print now: [`TRACE_ALL`], or the hit being
/// handled is one of [`TRACED`]'s ([`select_trace`]). Kept as one flag, so
/// each `trace:` site on the hit path costs one load when nothing is traced.
static TRACE_NOW: AtomicBool = AtomicBool::new(false);
/// The probes asked for by the boot arguments and the shell, in order.
static REQUESTS: Mutex<Vec<Request>> = Mutex::new(Vec::new());

/// One probe asked for in every process of a program, and what became of it.
struct Request {
    request: ProbeRequest,
    /// Asked for by the shell's `probe add`, not the boot arguments.
    from_shell: bool,
    outcome: RequestOutcome,
    /// The probes it planted, in every process.
    planted: Vec<ProbeId>,
    /// `probe del` removed one of its probes: later processes no longer get it.
    withdrawn: bool,
}

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

/// The options in force: the boot arguments', with the shell's changes.
pub fn options() -> ProbeOptions {
    ProbeOptions {
        trace: TRACE_ALL.load(Ordering::Relaxed),
        fresh_slots: FRESH_SLOTS.load(Ordering::Relaxed),
        simulate_branches_only: SIMULATE_BRANCHES_ONLY.load(Ordering::Relaxed),
        ..OPTIONS.get().copied().unwrap_or_default()
    }
}

/// Lock `lock`, counting a wait if another core holds it.
#[inline(always)]
pub fn lock_counting_waits<T>(lock: &Mutex<T>) -> spin::MutexGuard<'_, T> {
    lock.try_lock().unwrap_or_else(|| {
        LOCK_WAITS.fetch_add(1, Ordering::Relaxed);
        lock.lock()
    })
}

/// The registry's probe at `(space, vaddr)`, read under its shared lock (or,
/// with `lookup=registry`, its exclusive one), counting a wait if a writer
/// (or, exclusive, anyone) holds it.
#[inline]
pub fn registry_find(space: SpaceId, vaddr: u64) -> Option<Arc<Probe>> {
    if REGISTRY_EVERY_HIT.load(Ordering::Relaxed) {
        let registry = REGISTRY.try_write().unwrap_or_else(|| {
            LOCK_WAITS.fetch_add(1, Ordering::Relaxed);
            REGISTRY.write()
        });
        return registry.find(space, vaddr);
    }
    let registry = REGISTRY.try_read().unwrap_or_else(|| {
        LOCK_WAITS.fetch_add(1, Ordering::Relaxed);
        REGISTRY.read()
    });
    registry.find(space, vaddr)
}

/// `lookup=registry`: skip the thread's tree on every hit.
#[inline(always)]
pub fn registry_every_hit() -> bool {
    REGISTRY_EVERY_HIT.load(Ordering::Relaxed)
}

pub fn xol_policy() -> XolPolicy {
    if FRESH_SLOTS.load(Ordering::Relaxed) {
        XolPolicy::Fresh
    } else {
        XolPolicy::Reuse
    }
}

fn simulate_policy() -> SimulatePolicy {
    if SIMULATE_BRANCHES_ONLY.load(Ordering::Relaxed) {
        SimulatePolicy::Branches
    } else {
        SimulatePolicy::All
    }
}

/// Whether the `trace:` lines are printed now: for every hit, or for this
/// one's probe ([`select_trace`]).
pub fn tracing() -> bool {
    TRACE_NOW.load(Ordering::Relaxed)
}

/// Trace every hit's steps, or stop (the per-probe traces stay as they are).
fn set_trace_all(on: bool) {
    TRACE_ALL.store(on, Ordering::Relaxed);
    TRACE_NOW.store(on, Ordering::Relaxed);
}

/// Whether the boot arguments asked for `preempt-steps` (a test's knob: the
/// step is left armed and the thread yields, as if an interrupt came).
pub fn preempt_steps() -> bool {
    PREEMPT_STEPS.load(Ordering::Relaxed)
}

/// A hit (or its step) at `vaddr` in process `pid` begins: trace it if its
/// probe is traced on its own (`trace on ID`). One load when none is.
pub fn select_trace(pid: u32, vaddr: u64) {
    if ANY_TRACED.load(Ordering::Relaxed) {
        let traced = TRACED.lock().iter().any(|&(_, space, at)| space == space_of(pid) && at == vaddr);
        TRACE_NOW.store(traced || TRACE_ALL.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// `--trace` (or `trace on [ID]` in the shell): one line per step of a hit.
macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::probe::common::tracing() {
            $crate::println!("trace: {}", format_args!($($arg)*));
        }
    };
}

/// Take the probe options and the command-line probes from the boot arguments.
pub fn init(args: &BootArgs) {
    let options = OPTIONS.call_once(|| args.probe_options);
    set_trace_all(options.trace);
    FRESH_SLOTS.store(options.fresh_slots, Ordering::Relaxed);
    SIMULATE_BRANCHES_ONLY.store(options.simulate_branches_only, Ordering::Relaxed);
    REGISTRY_EVERY_HIT.store(options.registry_every_hit, Ordering::Relaxed);
    PREEMPT_STEPS.store(options.preempt_steps, Ordering::Relaxed);
    *REQUESTS.lock() = args
        .probes
        .iter()
        .map(|request| Request {
            request: request.clone(),
            from_shell: false,
            outcome: RequestOutcome::default(),
            planted: Vec::new(),
            withdrawn: false,
        })
        .collect();
}

/// The command-line probes that were never installed, each with why: its
/// program never ran, or every process of it refused the probe.
pub fn requests_not_installed() -> Vec<(String, String)> {
    REQUESTS
        .lock()
        .iter()
        .filter(|asked| !asked.from_shell)
        .filter_map(|Request { request, outcome, .. }| match outcome {
            RequestOutcome::Installed => None,
            RequestOutcome::ProgramNeverRan => {
                Some((request.spec.clone(), format!("no process of {} was started", request.program)))
            }
            RequestOutcome::Refused(why) => Some((request.spec.clone(), format!("refused: {}", why))),
        })
        .collect()
}

// ---- the text of a process ----

/// The XOL slots of a new address space, as `xol-slots=N` asks.
fn new_xol_slots() -> XolSlots {
    let page = xol::slots_per_page::<Isa>();
    XolSlots::for_arch::<Isa>(options().xol_slots.map_or(page, |step_slots| step_slots + 1))
}

/// Up to one instruction's bytes of user text at `vaddr`: as many as are
/// readable and executable from there (an instruction never runs past the
/// end of text).
fn read_text(space: &AddressSpace, vaddr: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    for len in (1..=Machine::LONGEST_INSTRUCTION as u64).rev() {
        if let Ok(range) = space.check(vaddr, len, UserAccess::Execute) {
            space.read(range, &mut bytes);
            break;
        }
    }
    bytes
}

/// Check that a probe may go at `vaddr` in `process` and decode the
/// instruction there.
fn read_original(process: &Process, vaddr: u64, symbol: &str) -> Result<<Isa as Arch>::Insn, (Error, String)> {
    if !vaddr.is_multiple_of(Isa::INSN_ALIGN) {
        return Err((Error::InvalidArgument, format!("address {:#x} is not {}-byte aligned", vaddr, Isa::INSN_ALIGN)));
    }
    let text = read_text(&process.space, vaddr);
    if text.is_empty() {
        return Err((Error::InvalidArgument, format!("address {:#x} is not in {}'s text", vaddr, process.name)));
    }
    Machine::decode_instruction(&text)
        .map_err(|why| (Error::Refused, format!("{} at {:#x}: cannot decode an instruction: {}", symbol, vaddr, why)))
}

/// Write `bytes` into the process's text at `vaddr` through the kernel alias
/// (user mode sees the page read-only) and make them visible to instruction
/// fetch.
/// Write `bytes` over the instruction at `vaddr` of `process` (planting or
/// removing a breakpoint) while every other core running that process is
/// stopped in the kernel, so no core executes the instruction while it
/// changes (no other core can: the text is the process's own): the Arm ARM allows that only
/// between B, BL, BRK, NOP, ISB, SVC, HVC and SMC ("Concurrent modification
/// and execution of instructions"), and a probe swaps any instruction for a
/// BRK. The cache maintenance that makes the bytes visible to instruction
/// fetch (`Paging::sync_instructions`) is done by this core and reaches every
/// core (inner shareable); each stopped core returns to its program through
/// an exception return, which is context synchronising, so it fetches the
/// new bytes. docs/brk-path.md explains the choice.
pub(super) fn write_text(process: &Process, vaddr: u64, bytes: &[u8]) {
    // Exact: the callers hold the scheduler's lock, so no core starts running
    // this process meanwhile.
    crate::cores::stop(task::on_core::cores_running(process.pid), || {
        process.space.write_as_kernel(vaddr, bytes).expect("probe address was checked to be mapped text")
    });
}

// ---- registration ----

/// Plant the probes asked for in every process of `process`'s program (the
/// boot arguments' and the shell's). Each failure prints one line; the
/// process runs anyway.
fn install_requested(process: &mut Process) {
    // Planting stops the other cores while this is held.
    let mut requests = crate::cores::lock_answering_stops(&REQUESTS);
    for asked in requests.iter_mut().filter(|asked| asked.request.program == process.name && !asked.withdrawn) {
        install(process, asked);
    }
}

/// Plant `asked`'s probe in `process`, and say so in one line.
fn install(process: &Process, asked: &mut Request) {
    let request = &asked.request;
    let resolved = resolve(process, request);
    let result = resolved.and_then(|(vaddr, symbol)| {
        let kind = if request.return_probe { ProbeKind::Uretprobe } else { ProbeKind::Uprobe };
        register(process, vaddr, kind, symbol).map_err(|(_, why)| why)
    });
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
            asked.planted.push(probe.id);
            asked.outcome = RequestOutcome::Installed;
        }
        Err(why) => {
            println!("probe {}: refused: {}", request.spec, why);
            if asked.outcome != RequestOutcome::Installed {
                asked.outcome = RequestOutcome::Refused(why);
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

/// How a probe's hits run the original instruction, as the registration
/// line and `probe list` say it: `simulate nop`, `step out of line`,
/// `trampoline at 0x4000ff0020`, or under `probe-mode=trampoline` why not
/// (`simulate b, no trampoline: ...`).
pub fn treatment_name(probe: &Probe) -> String {
    if let Some(trampoline) = probe.trampoline {
        return format!("trampoline at {:#x}", trampoline);
    }
    let treatment = match &probe.treatment {
        Treatment::Simulate(simulation) => format!("simulate {}", simulation.mnemonic()),
        Treatment::Step => String::from("step out of line"),
    };
    match no_trampoline(probe) {
        Some(why) => format!("{}, no trampoline: {}", treatment, why),
        None => treatment,
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
    let original = read_original(process, vaddr, &symbol)?;
    let trampoline = trampoline_for(process, vaddr, original);
    let spec = ProbeSpec {
        space: space_of(process.pid),
        vaddr,
        kind,
        original,
        program: process.name.clone(),
        symbol: symbol.split_once(':').map_or(symbol.clone(), |(_, s)| String::from(s)),
        trampoline: trampoline.as_ref().ok().map(|prepared| prepared.address),
    };
    let probe = REGISTRY.write().register(spec, simulate_policy()).map_err(|error| {
        let code = match error {
            probe_core::RegisterError::Rejected(_) => Error::Refused,
            probe_core::RegisterError::Duplicate { .. } => Error::AlreadyExists,
            probe_core::RegisterError::Full { .. } => Error::OutOfMemory,
            probe_core::RegisterError::Unaligned { .. } => Error::InvalidArgument,
        };
        (code, format!("{} at {:#x}: {}", symbol, vaddr, error))
    })?;
    match &trampoline {
        Ok(prepared) => {
            if let Some(area) = process.space.trampolines() {
                area.set_probe(prepared.address, Arc::clone(&probe));
            }
            trampolines::plant(process, vaddr, prepared)
        }
        Err(why) => {
            write_text(process, vaddr, Machine::PROBE_BREAKPOINT);
            if let Some(why) = why {
                NO_TRAMPOLINE.lock().push((probe.id, *why));
            }
        }
    }
    EVERY_PROBE.lock().push(Arc::clone(&probe));
    Ok(probe)
}

/// The trampoline of a probe about to be registered at `vaddr` over
/// `original`, written and ready for its branch; `Err(None)` under
/// `probe-mode=brk` or for an instruction no probe may sit on (registration
/// refuses it), `Err(Some(why))` when it keeps its breakpoint for a reason.
fn trampoline_for(
    process: &Process,
    vaddr: u64,
    original: <Isa as Arch>::Insn,
) -> Result<trampolines::Prepared, Option<NoTrampoline>> {
    let registered = || REGISTRY.read().find(space_of(process.pid), vaddr).is_some();
    if options().breakpoints_only || Isa::classify(original, simulate_policy()).is_reject() || registered() {
        return Err(None);
    }
    trampolines::prepare(process, vaddr, original).map_err(Some)
}

/// Why a probe keeps its breakpoint under `probe-mode=trampoline`, if it does.
pub fn no_trampoline(probe: &Probe) -> Option<NoTrampoline> {
    NO_TRAMPOLINE.lock().iter().find(|(id, _)| *id == probe.id).map(|(_, why)| *why)
}

/// How a probe's hits run, as the report's `mode` says it: `"trampoline"` or `"brk"`.
pub fn mode_name(probe: &Probe) -> &'static str {
    if probe.trampoline.is_some() {
        "trampoline"
    } else {
        "brk"
    }
}

// ---- the probe system calls ----

pub fn sys_register(kind: u64, vaddr: u64) -> Result<u64, Error> {
    let kind = match brk_abi::ProbeKind::from_number(kind).ok_or(Error::InvalidArgument)? {
        brk_abi::ProbeKind::Uprobe => ProbeKind::Uprobe,
        brk_abi::ProbeKind::Uretprobe => ProbeKind::Uretprobe,
    };
    scheduler::with(|s| {
        let process = s.current_process().ok_or(Error::NoSuchThread)?;
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
    let registered = REGISTRY.read().get(id).cloned();
    let probe = match registered {
        Some(probe) if probe.space == space_of(process.pid) => probe,
        _ => return Err(Error::InvalidArgument),
    };
    // Not under the registry's lock: the other cores are stopped for the
    // write, and one of them may be waiting for that lock on a hit.
    if probe.trampoline.is_some() {
        trampolines::remove(process, &probe);
    } else {
        write_text(process, probe.vaddr, Machine::covered_bytes(&probe.original).as_ref());
    }
    let probe = REGISTRY.write().unregister(id).map_err(|_| Error::InvalidArgument)?;
    UNREGISTERED.lock().push(probe.id);
    trace!(
        "probe_unregister: {} retired, {} restored at {:#x}",
        probe.id,
        Machine::instruction_text(&probe.original),
        probe.vaddr
    );
    Ok(probe)
}

/// Why a probe was retired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retirement {
    /// By `probe_unregister` or the shell's `probe del`: its text restored.
    Unregistered,
    /// With its process's address space, when the process ended.
    ProcessEnded,
}

impl Retirement {
    /// As the report's probe line says it: `retired (unregistered)`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Unregistered => "unregistered",
            Self::ProcessEnded => "its process ended",
        }
    }

    /// As the JSON report's `retired_by` says it.
    pub fn json_name(self) -> &'static str {
        match self {
            Self::Unregistered => "unregister",
            Self::ProcessEnded => "process end",
        }
    }
}

/// Why `probe` is retired; `None` while it is live.
pub fn retirement(probe: &Probe) -> Option<Retirement> {
    if !probe.is_retired() {
        None
    } else if UNREGISTERED.lock().contains(&probe.id) {
        Some(Retirement::Unregistered)
    } else {
        Some(Retirement::ProcessEnded)
    }
}

/// `probe_unregister`: put the original instruction back and retire the probe;
/// returns `None` while a thread is still stepping it (the caller's system
/// call is executed again until then), `Some` when done.
pub fn sys_unregister(frame: &mut Frame, id: u64) -> Option<Result<u64, Error>> {
    scheduler::with(|s| {
        let (thread, process) = s.current()?;
        let probe = match thread.probes.lock().unregistering.take() {
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
        thread.probes.lock().unregistering = Some(probe);
        Machine::restart_system_call(frame); // run the system call again when we are scheduled next
        s.yield_now();
        None
    })
}

pub fn sys_stats(id: u64) -> Result<brk_abi::ProbeStats, Error> {
    let pid = scheduler::with(|s| s.current_process().map(|process| process.pid)).ok_or(Error::NoSuchThread)?;
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
        lock_waits: LOCK_WAITS.load(Ordering::Relaxed),
        trampolined: s.trampolined,
    }
}

// ---- when processes end ----

/// A process ends: its probes go with its address space.
fn on_process_end(pid: u32) {
    REGISTRY.write().retire_space(space_of(pid));
}

/// What the scheduler calls into the probes for, handed to it at init: the
/// XOL slots of a new process, planting the command-line probes in it, its
/// probes' end with it, and the report once every process has ended.
pub fn scheduler_hooks() -> scheduler::Hooks {
    scheduler::Hooks {
        new_xol_slots,
        process_loaded: install_requested,
        process_ended: on_process_end,
        all_ended: super::report::print_report,
    }
}

pub fn every_probe() -> Vec<Arc<Probe>> {
    EVERY_PROBE.lock().clone()
}
