//! Probes on x86_64: the same brk path as the aarch64 kernel's `probe`
//! module, with the x86 trap, step and instruction handling. docs/brk-path.md
//! shows the two side by side.
//!
//! What is the same: the arch-neutral `probe_core` crate (registry, per-thread
//! breakpoint tree, XOL slot allocator with reuse, return stack, counters) and
//! the order of every step. What differs:
//!
//! | step | aarch64 | x86_64 (this file) |
//! | --- | --- | --- |
//! | plant | `brk #0x5` over the 4-byte instruction, cache maintenance | `int3` (0xCC) over the first byte; no maintenance (x86 keeps instruction fetch coherent) |
//! | trap | EC 0x3C, ELR = the `brk` | #BP (vector 3), RIP = the byte *after* the `int3` |
//! | which breakpoint | the `brk` immediate | the address: RIP - 1 (slot 0 of the XOL page is the trampoline) |
//! | step | MDSCR_EL1.SS + SPSR_EL1.SS, EC 0x32 | RFLAGS.TF in the saved frame, #DB (vector 1) |
//! | out of line | 4-byte slots, the instruction as is | 16-byte slots; RIP-relative operands rewritten to a scratch register |
//! | return probe | replace x30 | replace the return address at [RSP] |
//!
//! Locking: everything here runs in trap context with interrupts off on one
//! core (every IDT gate is an interrupt gate). The hit path touches only the
//! current thread's tree and its process's XOL slots; the global registry's
//! lock is taken on a tree miss, at registration and at unregistration.

mod glue;
#[path = "../../../src/probe/report.rs"]
mod report;
#[path = "../../../src/probe/user_memory.rs"]
mod user_memory;

use crate::{
    arch::exception::{ExceptionFrame, RFLAGS_TF},
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
use probe_core::{
    insn::x86_64::{self, Insn, Registers, StepFixup, XolImage, INT3, MAX_INSN_LEN},
    registry::Treatment,
    xol::{self, SlotContent},
    ActiveHit, Arch, BreakpointTree, Counters, ProbeId, ProbeKind, ProbeSpec, ReturnStack, SimulatePolicy,
    SlotIndex, SpaceId, TreeLookup, XolPolicy, XolSlots, X86_64,
};
use spin::{Mutex, Once};
use user_memory::CheckedUserMemory;

pub use report::print_report;

type Probe = probe_core::Probe<X86_64>;
type ProbeRegistry = probe_core::ProbeRegistry<X86_64>;

/// At most this many probes at once (as on aarch64: above the 10,000 the
/// benchmarks register, well within the kernel heap).
pub const PROBE_LIMIT: usize = 16_384;
static REGISTRY: Mutex<ProbeRegistry> = Mutex::new(ProbeRegistry::with_limit(PROBE_LIMIT));
/// Every probe ever registered, for the report (the registry forgets retired ones).
static EVERY_PROBE: Mutex<Vec<Arc<Probe>>> = Mutex::new(Vec::new());
pub static COUNTERS: Counters = Counters::new();
static OPTIONS: Once<ProbeOptions> = Once::new();
static REQUESTS: Once<Vec<ProbeRequest>> = Once::new();

/// `int 3` in its two-byte form (`CD 03`): the benchmarks' *null breakpoint*,
/// a #BP the kernel returns from at once, to measure the bare trap round trip
/// (aarch64's `brk #0x7`). A probe's `int3` is the one-byte `CC`.
const NULL_BREAKPOINT: [u8; 2] = [0xcd, 0x03];
/// The length of `int 0x80`, to run a system call again.
const SYSCALL_INSN_LEN: u64 = 2;

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
    tree: BreakpointTree<X86_64>,
    /// Pending return probes.
    returns: ReturnStack<X86_64>,
    /// Set between a hit's `int3` and its #DB.
    stepping: Option<Stepping>,
    /// An unregistration this thread started and waits to see finish.
    unregistering: Option<Arc<Probe>>,
}

/// A step in flight: what the #DB needs to finish it.
struct Stepping {
    hit: ActiveHit<X86_64>,
    slot: SlotIndex,
    breakpoint: u64,
    /// Length of the instruction (the same in the slot as at the breakpoint).
    len: u64,
    fixup: StepFixup,
    /// The task's own value of the scratch register a RIP-relative fixup borrowed.
    saved_scratch: u64,
}

impl ThreadProbes {
    pub fn new(pid: u32) -> Self {
        Self {
            tree: BreakpointTree::new(space_of(pid)),
            returns: ReturnStack::with_trampoline(slot_address(SlotIndex::TRAMPOLINE)),
            stepping: None,
            unregistering: None,
        }
    }

    /// Is this thread between a probe's `int3` and its #DB?
    pub fn is_stepping(&self) -> bool {
        self.stepping.is_some()
    }
}

/// The XOL slots of a new address space: 16-byte slots, as `xol-slots=N` asks.
pub fn new_xol_slots() -> XolSlots {
    let page = xol::slots_per_page::<X86_64>();
    match options().xol_slots {
        Some(step_slots) => XolSlots::new((step_slots + 1).min(page)),
        None => XolSlots::new(page),
    }
}

fn space_of(pid: u32) -> SpaceId {
    SpaceId(pid as u64)
}

/// The XOL page address of `slot`.
fn slot_address(slot: SlotIndex) -> u64 {
    layout::XOL_PAGE + slot.byte_offset::<X86_64>() as u64
}

/// Up to 15 bytes of user text at `vaddr`: as many as are readable and
/// executable from there (an instruction never runs past the end of text).
fn read_text(space: &AddressSpace, vaddr: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    for len in (1..=MAX_INSN_LEN as u64).rev() {
        if let Ok(range) = space.check(vaddr, len, UserAccess::Execute) {
            space.read(range, &mut bytes);
            break;
        }
    }
    bytes
}

/// The byte at user address `vaddr`, if the task could read it.
fn read_byte(space: &AddressSpace, vaddr: u64) -> Option<u8> {
    let range = space.check(vaddr, 1, UserAccess::Read).ok()?;
    let mut bytes = Vec::new();
    space.read(range, &mut bytes);
    bytes.first().copied()
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

/// Register a probe at `vaddr` in `process` and plant its `int3`.
///
/// x86 instructions have no alignment, so nothing here can tell the start of
/// an instruction from a byte in its middle: a probe in the middle of an
/// instruction decodes as whatever those bytes happen to be, and corrupts the
/// instruction it sits in (Linux has the same limit). Probes by symbol name
/// start at a function's first instruction.
fn register(process: &Process, vaddr: u64, kind: ProbeKind, symbol: String) -> Result<Arc<Probe>, (Error, String)> {
    if (layout::XOL_PAGE..layout::XOL_PAGE + 4096).contains(&vaddr) {
        return Err((Error::InvalidArgument, format!("address {:#x} is in the XOL page, not in {}'s text", vaddr, process.name)));
    }
    let text = read_text(&process.space, vaddr);
    if text.is_empty() {
        return Err((Error::InvalidArgument, format!("address {:#x} is not in {}'s text", vaddr, process.name)));
    }
    let original = Insn::decode(&text)
        .map_err(|why| (Error::Refused, format!("{} at {:#x}: cannot decode an instruction: {}", symbol, vaddr, why)))?;
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
    write_text(&process.space, vaddr, INT3);
    EVERY_PROBE.lock().push(Arc::clone(&probe));
    Ok(probe)
}

/// Write one byte of the process's text through the kernel alias (ring 3 sees
/// the page read-only). Nothing else: x86 snoops stores into code, and the
/// `iretq` back to ring 3 is serializing, so the next fetch sees the new byte.
fn write_text(space: &AddressSpace, vaddr: u64, byte: u8) {
    space
        .write_as_kernel(vaddr, &[byte])
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

/// Put the original first byte of the caller's probe `id` back, then retire
/// it. The order matters: a thread that trapped in between finds the probe
/// still live (retiring first would make it look like the program's own `int3`).
fn retire_and_restore(process: &Process, id: u64) -> Result<Arc<Probe>, Error> {
    let id = ProbeId(u32::try_from(id).map_err(|_| Error::InvalidArgument)?);
    let mut registry = REGISTRY.lock();
    let (vaddr, original) = match registry.get(id) {
        Some(probe) if probe.space == space_of(process.pid) => (probe.vaddr, probe.original),
        _ => return Err(Error::InvalidArgument),
    };
    write_text(&process.space, vaddr, original.bytes()[0]);
    let probe = registry.unregister(id).map_err(|_| Error::InvalidArgument)?;
    trace!("probe_unregister: {} retired, {:#04x} restored at {:#x}", probe.id, original.bytes()[0], probe.vaddr);
    Ok(probe)
}

/// `probe_unregister`: put the original byte back and retire the probe;
/// returns `None` while a thread is still stepping it (the caller's `int 0x80`
/// is executed again until then), `Some` when done.
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
        // A thread is between this probe's int3 and its #DB: let it finish first.
        trace!("probe_unregister: {} has a step in flight, waiting", probe.id);
        thread.probes.unregistering = Some(probe);
        frame.rip -= SYSCALL_INSN_LEN; // run the `int 0x80` again when we are scheduled next
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

/// #BP from ring 3: RIP is the byte after the `int3`. Returns false if it is
/// not a probe's (the caller reports the program's own `int3` and kills the
/// process).
pub fn on_breakpoint(frame: &mut ExceptionFrame) -> bool {
    let breakpoint = frame.rip.wrapping_sub(1);
    if breakpoint == slot_address(SlotIndex::TRAMPOLINE) {
        return on_trampoline(frame);
    }
    scheduler::with(|s| {
        let (thread, process) = s.current();
        trace!(
            "#BP (vector 3) with RIP {:#x}: int3 at {:#x} ({}), tid {}",
            frame.rip,
            breakpoint,
            process.symbols.locate(&process.name, breakpoint),
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
                    _ => return not_a_probe(frame, &process.space, breakpoint),
                }
            }
        };
        let after = handle_hit(frame, thread, process, hit, remembered, breakpoint);
        apply(s, after);
        true
    })
}

/// A #BP no probe owns. The two-byte `int 3` is the null breakpoint: return.
/// A one-byte `int3` still there is the program's own: not ours. Otherwise the
/// probe was unregistered between the trap and now: run the original
/// instruction, which is back in place.
fn not_a_probe(frame: &mut ExceptionFrame, space: &AddressSpace, breakpoint: u64) -> bool {
    let null_start = frame.rip.wrapping_sub(NULL_BREAKPOINT.len() as u64);
    if read_byte(space, null_start) == Some(NULL_BREAKPOINT[0]) && read_byte(space, breakpoint) == Some(NULL_BREAKPOINT[1]) {
        return true;
    }
    match read_byte(space, breakpoint) {
        Some(INT3) => false,
        _ => {
            trace!("no probe and no int3 at {:#x} any more (unregistered meanwhile): restart there", breakpoint);
            frame.rip = breakpoint;
            true
        }
    }
}

fn handle_hit(
    frame: &mut ExceptionFrame,
    thread: &mut Thread,
    process: &mut Process,
    hit: ActiveHit<X86_64>,
    remembered: Option<SlotIndex>,
    breakpoint: u64,
) -> After {
    let probe = Arc::clone(hit.probe());
    // A step needs a slot first: without one, the thread waits and executes
    // the int3 again later (the hit is not counted twice: see below).
    let step = match probe.treatment {
        Treatment::Step => {
            let image = x86_64::xol_image(&probe.original);
            trace!("{} runs the same anywhere{}: step it out of line in an XOL slot", hex_bytes(probe.original.bytes()), fixup_note(&image.fixup));
            match xol::choose_slot(&process.xol, xol_policy(), remembered, SlotContent::from_bytes(image.bytes()), &COUNTERS) {
                Some(choice) => Some((choice, image)),
                None => {
                    trace!("every XOL slot is busy: tid {} waits and executes the int3 again later", thread.tid);
                    hit.retract();
                    frame.rip = breakpoint;
                    return After::Yield;
                }
            }
        }
        Treatment::Simulate(_) => None,
    };
    COUNTERS.bump(&COUNTERS.hits);

    if probe.kind == ProbeKind::Uretprobe {
        if let Err(reason) = arm_return_probe(frame, thread, process, &probe) {
            drop(hit);
            if let Some((choice, _)) = step {
                let _ = process.xol.release(choice.slot);
            }
            return After::Kill(reason);
        }
    }

    match (&probe.treatment, step) {
        (Treatment::Simulate(simulation), _) => {
            let result = X86_64::simulate(simulation, breakpoint, frame, &mut CheckedUserMemory(&process.space));
            drop(hit);
            match result {
                Ok(()) => {
                    COUNTERS.bump(&COUNTERS.simulated);
                    trace!("simulated {} ({}): resume at {:#x}, one exception in all", simulation.mnemonic(), simulation.why(), frame.rip);
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
        (Treatment::Step, Some((choice, image))) => {
            let slot = choice.slot;
            let address = slot_address(slot);
            let holds_it = slot_holds(&process.space, slot, &image);
            if choice.must_write == holds_it && xol_policy() == XolPolicy::Reuse {
                println!("probe: XOL slot {} record disagrees with the page; writing it", slot.index());
            }
            if choice.must_write || !holds_it {
                process.space.write_xol_slot(slot.index(), image.bytes());
                process.xol.note_written(slot, SlotContent::from_bytes(image.bytes()));
                trace!(
                    "slot {} ({:?}): written {} through the kernel alias {:#x}; no cache maintenance (x86 keeps instruction fetch coherent; iretq serializes)",
                    slot.index(),
                    choice.reason,
                    hex_bytes(image.bytes()),
                    process.space.xol_slot_kernel_address(slot.index())
                );
            } else {
                trace!("slot {} ({:?}): already holds {}: no write", slot.index(), choice.reason, hex_bytes(image.bytes()));
            }
            thread.probes.tree.remember_slot(breakpoint, slot);
            COUNTERS.bump(&COUNTERS.stepped);
            let len = image.len() as u64;
            let mut saved_scratch = 0;
            if let Some(scratch) = image.fixup.rip_relative_scratch {
                saved_scratch = frame.gpr(scratch);
                frame.set_gpr(scratch, breakpoint + len);
                trace!("RIP-relative operand: {} = {:#x} (the original next RIP) for the step", scratch.name(), breakpoint + len);
            }
            frame.rip = address;
            frame.rflags |= RFLAGS_TF;
            thread.probes.stepping = Some(Stepping { hit, slot, breakpoint, len, fixup: image.fixup, saved_scratch });
            trace!("iretq to slot {:#x} with RFLAGS.TF=1: one instruction, then #DB", address);
            if options().preempt_steps {
                // As if an interrupt arrived now: TF stays set in this thread's
                // saved RFLAGS and the step happens when it runs again.
                return After::Yield;
            }
            After::Resume
        }
        (Treatment::Step, None) => unreachable!("a step always has a slot here"),
    }
}

/// A return probe's entry hit: the return address is at [RSP] (the probe is
/// on the function's first instruction). Save it on the return stack and put
/// the trampoline's address there instead. The entry SP recorded is the SP
/// the caller will see after the return (RSP + 8), which is the SP at the
/// trampoline's #BP.
fn arm_return_probe(frame: &mut ExceptionFrame, thread: &mut Thread, process: &mut Process, probe: &Arc<Probe>) -> Result<(), String> {
    use probe_core::UserMemory;
    let mut memory = CheckedUserMemory(&process.space);
    let return_address = memory
        .read_u64(frame.rsp)
        .map_err(|fault| format!("return probe: reading the return address at RSP {:#x}: {}", frame.rsp, fault))?;
    let return_sp = frame.rsp + 8;
    match thread.probes.returns.push(Arc::clone(probe), return_address, return_sp, &COUNTERS) {
        probe_core::retstack::PushOutcome::Armed { abandoned } => {
            let trampoline = slot_address(SlotIndex::TRAMPOLINE);
            memory
                .write_u64(frame.rsp, trampoline)
                .map_err(|fault| format!("return probe: writing the trampoline address at RSP {:#x}: {}", frame.rsp, fault))?;
            trace!("return probe armed: [RSP] {:#x} -> trampoline {:#x} ({} abandoned frames dropped)", return_address, trampoline, abandoned);
        }
        probe_core::retstack::PushOutcome::SkippedDepthLimit { .. } => {
            trace!("return stack full ({} deep): this return is not probed", probe_core::RETURN_STACK_DEPTH);
        }
    }
    Ok(())
}

/// Whether XOL slot `slot` holds `image` now, read through the kernel alias.
fn slot_holds(space: &AddressSpace, slot: SlotIndex, image: &XolImage) -> bool {
    let start = space.xol_slot_kernel_address(slot.index()) as *const u8;
    // SAFETY: the slot lies inside the XOL frame the address space owns and the
    // kernel maps; the caller holds the slot, so nobody writes it meanwhile.
    let held = unsafe { core::slice::from_raw_parts(start, image.len()) };
    held == image.bytes()
}

/// #DB from ring 3. Returns false if this thread was not stepping a probe
/// (the caller reports it).
pub fn on_debug(frame: &mut ExceptionFrame) -> bool {
    scheduler::with(|s| {
        let (thread, process) = s.current();
        let Some(stepping) = thread.probes.stepping.as_ref() else { return false };
        let slot = slot_address(stepping.slot);
        if frame.rip == slot {
            // A `rep` string instruction traps after every iteration with RIP
            // still on itself: keep stepping until it is done.
            return true;
        }
        let stepping = thread.probes.stepping.take().expect("checked above");
        let _ = process.xol.release(stepping.slot);
        frame.rflags &= !RFLAGS_TF;
        if let Some(scratch) = stepping.fixup.rip_relative_scratch {
            frame.set_gpr(scratch, stepping.saved_scratch);
        }
        if frame.rip != slot + stepping.len {
            // The stepped instructions never branch, so this cannot happen; if it
            // did, resuming anywhere would be a guess.
            println!("probe: step from slot {:#x} ended at {:#x}, not past the instruction", slot, frame.rip);
            apply(s, After::Kill(String::from("single step left the XOL slot")));
            return true;
        }
        if stepping.fixup.pushes_flags && clear_pushed_trap_flag(&process.space, frame.rsp).is_err() {
            apply(s, After::Kill(format!("pushf fixup: the flags pushed at {:#x} are not writable", frame.rsp)));
            return true;
        }
        frame.rip = stepping.breakpoint + stepping.len;
        trace!(
            "#DB (vector 1, single step) at {:#x}: RIP = {:#x} + {}, TF cleared{}, slot {} released",
            slot + stepping.len,
            stepping.breakpoint,
            stepping.len,
            stepping.fixup.rip_relative_scratch.map_or(String::new(), |r| format!(", {} restored", r.name())),
            stepping.slot.index()
        );
        drop(stepping.hit);
        true
    })
}

/// After a stepped `pushf`: the copy of RFLAGS it stored at `rsp` has the
/// step's own TF in it; clear it. TF is bit 8, bit 0 of the byte at `rsp + 1`
/// for both the 8-byte `pushfq` and the 2-byte `66 9C`.
fn clear_pushed_trap_flag(space: &AddressSpace, rsp: u64) -> Result<(), Error> {
    const TF_IN_SECOND_BYTE: u8 = (RFLAGS_TF >> 8) as u8;
    let range = space.check(rsp + 1, 1, UserAccess::Write)?;
    let mut byte = Vec::new();
    space.read(range, &mut byte);
    space.write(range, &[byte[0] & !TF_IN_SECOND_BYTE]);
    Ok(())
}

/// The return trampoline in XOL slot 0: a probed function returned.
fn on_trampoline(frame: &mut ExceptionFrame) -> bool {
    scheduler::with(|s| {
        let (thread, _) = s.current();
        let trampoline = slot_address(SlotIndex::TRAMPOLINE);
        let result = thread.probes.returns.pop_chain(frame.rsp, trampoline, |instance, abandoned| {
            trace!("trampoline: return from {} to {:#x} ({} abandoned frames dropped)", instance.probe.id, instance.return_address, abandoned);
        });
        match result {
            Ok(address) => {
                frame.rip = address;
                true
            }
            // Ring 3 reached the trampoline without a pending return: its own doing.
            Err(_) => false,
        }
    })
}

/// A fault while a thread is stepping a probe (the process is killed for
/// it): the slot goes back, and the fault is reported at the probed address
/// if it happened in the slot. Returns that address.
pub fn abandon_step(thread: &mut Thread, process: &mut Process, fault_rip: u64) -> Option<u64> {
    let stepping = thread.probes.stepping.take()?;
    let _ = process.xol.release(stepping.slot);
    let slot = slot_address(stepping.slot);
    let in_slot = (slot..slot + XOL_SLOT_BYTES as u64).contains(&fault_rip);
    in_slot.then_some(stepping.breakpoint)
}

/// How many threads of `threads` are between a probe's `int3` and its #DB.
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

/// `48 8d 04 ff` for traces.
fn hex_bytes(bytes: &[u8]) -> String {
    let words: Vec<String> = bytes.iter().map(|b| format!("{:02x}", b)).collect();
    words.join(" ")
}

fn fixup_note(fixup: &StepFixup) -> String {
    match (fixup.rip_relative_scratch, fixup.pushes_flags) {
        (Some(scratch), _) => format!(" once its RIP-relative operand is rewritten to [{} + disp32]", scratch.name()),
        (None, true) => String::from(" (pushf: TF is cleared in the pushed copy afterwards)"),
        (None, false) => String::new(),
    }
}
