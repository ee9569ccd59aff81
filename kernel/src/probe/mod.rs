//! Probes: the breakpoint path of this kernel, end to end, one hit path for
//! every architecture.
//!
//! This module adapts the arch-neutral `probe_core` crate (registry, per-thread
//! breakpoint tree, XOL slot allocator, return stack, classifier, counters) to
//! the kernel: it handles the breakpoint and single-step traps and the
//! branch trampolines' calls, and reports. docs/brk-path.md tells the story
//! of one hit with links into this file. The registry, the probe system calls
//! and planting breakpoints are `common.rs`; giving a probe its branch
//! trampoline and planting the branch, `trampolines.rs`; what the machine does (what a breakpoint looks like, how a
//! step is armed, what an XOL slot holds) is the contract's `Probes`,
//! implemented by `crate::arch::Machine`. The hit path is generic over the
//! machine's instruction set and compiled once per architecture: no
//! indirect call, allocation or lock is added by the contract.
//!
//! Locking: everything here runs in trap context with interrupts masked on
//! one core. The hit path touches only the current thread's tree and its
//! process's XOL slots (a trampoline call, its process's trampoline area);
//! the global registry's lock is taken on a tree miss, at registration and at
//! unregistration.
//!
//! Who calls whom: the exception dispatcher finds the current thread and its
//! process without the scheduler's lock and hands them to [`on_breakpoint`],
//! [`on_step`] and [`on_trampoline_call`];
//! they return what the scheduler must do next (`task::scheduler::After`), and
//! the dispatcher has the scheduler do it. The probe code never takes the
//! scheduler's lock on the hit path and the scheduler never calls into this
//! module: what it needs at a process's start and end reaches it as the
//! [`scheduler_hooks`] it is handed at init, and the per-thread state it keeps
//! is the leaf module [`thread_state`].

#[macro_use]
mod common;
mod report;
pub mod thread_state;
mod trampolines;
mod user_memory;

use crate::{
    arch::{BreakpointTrap, Frame, Machine, Probes},
    println,
    task::{
        address_space::{AddressSpace, UserAccess},
        process::Process,
        scheduler::After,
    },
};
use alloc::{format, string::String, sync::Arc};
use common::{xol_policy, COUNTERS};
use probe_core::{
    registry::Treatment, retstack::PushOutcome, trampoline::Trampolines, xol, ActiveHit, Arch, BreakpointTree,
    ProbeKind, SlotIndex, TreeLookup, XolPolicy,
};
use thread_state::{slot_address, space_of, HitThread, Isa, Probe, Stepping};
use user_memory::CheckedUserMemory;

/// What the shell asks of the probes at run time (`crate::shell`).
pub use common::live;
pub use common::{counters, init, lock_counting_waits, scheduler_hooks, sys_register, sys_stats, sys_unregister};
pub use report::print_report;

/// A breakpoint trap from user mode by `thread` of `process` (the running
/// ones). Returns what the scheduler must do next, or `None` if it is not a
/// probe's (the caller reports the program's own breakpoint and kills the
/// process).
pub fn on_breakpoint(frame: &mut Frame, thread: &mut HitThread, process: &Process) -> Option<After> {
    let breakpoint = match Machine::breakpoint_trap(frame, |address, bytes| read_user(&process.space, address, bytes))?
    {
        BreakpointTrap::Planted { address } => address,
        BreakpointTrap::Trampoline => return on_trampoline(frame, thread),
        BreakpointTrap::Null { resume } => {
            Machine::set_resume_address(frame, resume);
            return Some(After::Resume);
        }
    };
    common::select_trace(process.pid, breakpoint);
    trace!(
        "{}, tid {}",
        Machine::breakpoint_trace(frame, breakpoint, process.symbols.locate(&process.name, breakpoint)),
        thread.tid
    );
    // 1. and 2.: this thread's own tree, then the registry.
    let Some((hit, remembered)) = find_probe(&mut thread.probes.tree, process.pid, thread.tid, breakpoint) else {
        return not_a_probe(frame, &process.space, breakpoint);
    };
    Some(handle_hit(frame, thread, process, hit, remembered, breakpoint))
}

/// A trampoline call from user mode by `thread` of `process` (the running
/// ones): the entry instruction at the start of a probe's branch trampoline
/// (docs/brk-path.md, "One exception instead of two"). Returns what the
/// scheduler must do next, or `None` if the trap did not come from the start
/// of one of the process's trampolines (then it is not a trampoline call).
/// The thread resumes in the trampoline, at the displaced instruction.
#[inline(always)]
pub fn on_trampoline_call(frame: &mut Frame, thread: &mut HitThread, process: &Process) -> Option<After> {
    let start = Machine::resume_address(frame).wrapping_sub(Isa::ENTRY_BYTES);
    // The probe the trampoline was written for, recorded beside it: no
    // tree walk (the trampoline and its probe go together for good).
    let probe = process.space.trampolines()?.probe_at(start)?;
    common::select_trace(process.pid, probe.vaddr);
    trace!(
        "{} from the trampoline at {:#x}: {} at {:#x} ({}), tid {}",
        Machine::TRAMPOLINE_ENTRY_NAME,
        start,
        probe.id,
        probe.vaddr,
        process.symbols.locate(&process.name, probe.vaddr),
        thread.tid
    );
    let Some(hit) = probe.enter_borrowed() else {
        trace!("{} was unregistered meanwhile: run the displaced instruction, count nothing", probe.id);
        return Some(After::Resume);
    };
    Some(trampoline_hit(frame, thread, process, probe, hit, start))
}

/// A hit of a probe with a trampoline, through its breakpoint: only while its
/// branch is being planted or removed. Out of line: the breakpoint path's
/// own hits never come here.
#[cold]
#[inline(never)]
fn breakpoint_of_a_trampoline(
    frame: &mut Frame,
    thread: &mut HitThread,
    process: &Process,
    hit: ActiveHit<Isa>,
    trampoline: u64,
) -> After {
    trace!("the probe's branch to its trampoline is being planted or removed: go there");
    let probe = Arc::clone(hit.probe());
    trampoline_hit(frame, thread, process, &probe, hit, trampoline)
}

/// A hit of `probe`, which has a trampoline at `trampoline`, from its
/// trampoline's entry or (while the branch is being planted) from its
/// breakpoint: count it, arm a return probe, and resume at the displaced
/// instruction in the trampoline. One exception in all; the hit (an
/// `ActiveHit` or a `BorrowedHit`) ends here.
#[inline(always)]
fn trampoline_hit<Hit>(
    frame: &mut Frame,
    thread: &mut HitThread,
    process: &Process,
    probe: &Arc<Probe>,
    hit: Hit,
    trampoline: u64,
) -> After {
    COUNTERS.bump(&COUNTERS.hits);
    if probe.kind == ProbeKind::Uretprobe {
        if let Err(reason) = arm_return_probe(frame, thread, process, probe) {
            return After::kill(reason);
        }
    }
    COUNTERS.bump(&COUNTERS.trampolined);
    let displaced = trampoline + Isa::ENTRY_BYTES;
    Machine::set_resume_address(frame, displaced);
    trace!(
        "{} runs displaced at {:#x} in the trampoline, which branches back after it: one exception in all",
        Machine::instruction_text(&probe.original),
        displaced
    );
    // The hit ends here: the displaced instruction runs in user mode, after.
    drop(hit);
    After::Resume
}

/// `bytes.len()` bytes of user memory at `address` into `bytes`, if the
/// thread could read them.
fn read_user(space: &AddressSpace, address: u64, bytes: &mut [u8]) -> bool {
    space.read_checked(address, bytes).is_ok()
}

/// Step 3: a breakpoint trap no probe owns. A breakpoint still there is the
/// program's own: not ours (`None`). Otherwise the probe was unregistered
/// between the trap and now: run the original instruction, which is back in
/// place. Out of the hit path's way.
#[cold]
#[inline(never)]
fn not_a_probe(frame: &mut Frame, space: &AddressSpace, breakpoint: u64) -> Option<After> {
    let mut text = [0; Machine::PROBE_BREAKPOINT.len()];
    let still_there = read_user(space, breakpoint, &mut text)
        && Machine::decode_instruction(&text).is_ok_and(|insn| Isa::breakpoint_immediate(insn).is_some());
    if still_there {
        return None;
    }
    trace!(
        "no probe and no {} at {:#x} any more (unregistered meanwhile): restart there",
        Machine::BREAKPOINT_NAME,
        breakpoint
    );
    Machine::set_resume_address(frame, breakpoint);
    Some(After::Resume)
}

/// Find the probe a thread of process `pid` hit at `breakpoint`: first in the
/// thread's own `tree` (no lock, no other thread involved), then in the
/// registry (locked), whose answer is cached in the tree. A tree entry whose
/// probe was retired is dropped, never used. Returns the hit and the slot this
/// breakpoint used last time, or `None` if no live probe is there.
#[inline(always)]
fn find_probe(
    tree: &mut BreakpointTree<Isa>,
    pid: u32,
    tid: u32,
    breakpoint: u64,
) -> Option<(ActiveHit<Isa>, Option<SlotIndex>)> {
    if common::registry_every_hit() {
        // The comparison case: no tree, the registry's exclusive lock on every hit.
        let hit = common::registry_find(space_of(pid), breakpoint)?.enter()?;
        trace!("registry (lookup=registry): {}", hit.probe().id);
        return Some((hit, None));
    }
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
            let found = common::registry_find(space_of(pid), breakpoint);
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

/// Steps 4 to 6: a live probe was hit. Claim an XOL slot if the instruction is
/// stepped, arm a return probe, then simulate the instruction or step it
/// out of line.
fn handle_hit(
    frame: &mut Frame,
    thread: &mut HitThread,
    process: &Process,
    hit: ActiveHit<Isa>,
    remembered: Option<SlotIndex>,
    breakpoint: u64,
) -> After {
    if let Some(trampoline) = hit.probe().trampoline {
        return breakpoint_of_a_trampoline(frame, thread, process, hit, trampoline);
    }
    // Borrowed from the hit, which holds the probe: no reference count moves.
    let probe = hit.probe();
    // A step needs a slot first: without one, the thread waits and the
    // breakpoint is executed again later (the hit is not counted twice: see below).
    let step = match probe.treatment {
        Treatment::Step => {
            let image = Machine::slot_image(&mut thread.probes.slot_images, probe);
            trace!(
                "{} runs the same anywhere{}: step it out of line in an XOL slot",
                Machine::instruction_text(&hit.probe().original),
                Machine::image_note(&image)
            );
            match xol::choose_slot(&process.xol, xol_policy(), remembered, Machine::slot_content(&image), &COUNTERS) {
                Some(choice) => Some((choice, image)),
                None => {
                    trace!(
                        "every XOL slot is busy: tid {} waits and executes the {} again later",
                        thread.tid,
                        Machine::BREAKPOINT_NAME
                    );
                    hit.retract();
                    Machine::set_resume_address(frame, breakpoint);
                    return After::Yield;
                }
            }
        }
        Treatment::Simulate(_) => None,
    };
    COUNTERS.bump(&COUNTERS.hits);

    if probe.kind == ProbeKind::Uretprobe {
        if let Err(reason) = arm_return_probe(frame, thread, process, probe) {
            drop(hit);
            if let Some((choice, _)) = step {
                let _ = process.xol.release(choice.slot);
            }
            return After::kill(reason);
        }
    }

    match (&probe.treatment, step) {
        (Treatment::Simulate(simulation), _) => {
            let after = simulate_hit(simulation, breakpoint, frame, process, &hit);
            drop(hit); // the hit ends
            after
        }
        (Treatment::Step, Some((choice, image))) => {
            let slot = choice.slot;
            let address = slot_address(slot);
            // Compare through the kernel alias: what the page really holds.
            let holds_it = process.space.xol_slot_holds(slot.index(), Machine::image_bytes(&image));
            if choice.must_write == holds_it && xol_policy() == XolPolicy::Reuse {
                println!("probe: XOL slot {} record disagrees with the page; writing it", slot.index());
            }
            if choice.must_write || !holds_it {
                let lines = process.space.write_xol_slot(slot.index(), Machine::image_bytes(&image));
                process.xol.note_written(slot, Machine::slot_content(&image));
                COUNTERS.add_maintenance(lines);
                let alias = process.space.xol_slot_kernel_address(slot.index());
                trace!(
                    "slot {} ({:?}): written {} through the kernel alias {:#x}; {}",
                    slot.index(),
                    choice.reason,
                    Machine::image_text(&image),
                    alias,
                    Machine::slot_write_trace(alias, lines)
                );
            } else {
                trace!(
                    "slot {} ({:?}): already holds {}: {}",
                    slot.index(),
                    choice.reason,
                    Machine::image_text(&image),
                    Machine::SLOT_UNCHANGED
                );
            }
            if remembered != Some(slot) {
                thread.probes.tree.remember_slot(breakpoint, slot);
            }
            COUNTERS.bump(&COUNTERS.stepped);
            let stepping = thread.probes.stepping.insert(Stepping {
                hit,
                slot,
                breakpoint,
                machine: Machine::arm_step(frame, &image, breakpoint, address),
            });
            if let Some(fixup) = Machine::step_fixup_trace(&stepping.machine, breakpoint) {
                trace!("{}", fixup);
            }
            trace!("{}", Machine::step_armed_trace(address));
            if common::preempt_steps() {
                // As if an interrupt arrived now: the step stays armed in this
                // thread's saved frame and resumes when it runs again.
                return After::Yield;
            }
            After::Resume
        }
        (Treatment::Step, None) => unreachable!("a step always has a slot here"),
    }
}

/// Step 5 for a return probe, at its entry hit: save where the function returns to on the
/// thread's return stack and make it return to the trampoline instead.
fn arm_return_probe(
    frame: &mut Frame,
    thread: &mut HitThread,
    process: &Process,
    probe: &Arc<Probe>,
) -> Result<(), String> {
    let mut memory = CheckedUserMemory(&process.space);
    let site = Machine::return_site(frame, &mut memory)?;
    match thread.probes.returns.push(Arc::clone(probe), site.address, site.stack_pointer, &COUNTERS) {
        PushOutcome::Armed { abandoned } => {
            let trampoline = slot_address(SlotIndex::TRAMPOLINE);
            Machine::set_return_address(frame, &mut memory, trampoline)?;
            trace!(
                "return probe armed: {} {:#x} -> trampoline {:#x} ({} abandoned frames dropped)",
                Machine::RETURN_ADDRESS_NAME,
                site.address,
                trampoline,
                abandoned
            );
        }
        PushOutcome::SkippedDepthLimit { .. } => {
            trace!("return stack full ({} deep): this return is not probed", probe_core::RETURN_STACK_DEPTH);
        }
    }
    Ok(())
}

/// Step 6 for a simulated instruction: do what it would have done, on the saved
/// registers and (through the checked path) the task's memory, and resume
/// past it: one exception per hit. A memory access the task itself could not
/// have made kills the process, reported at the probed address. The caller
/// ends the hit afterwards.
fn simulate_hit(
    simulation: &<Isa as Arch>::Simulation,
    breakpoint: u64,
    frame: &mut Frame,
    process: &Process,
    hit: &ActiveHit<Isa>,
) -> After {
    let result =
        Isa::simulate(simulation, breakpoint, Machine::registers(frame), &mut CheckedUserMemory(&process.space));
    match result {
        Ok(()) => {
            COUNTERS.bump(&COUNTERS.simulated);
            trace!(
                "simulated {0} ({1}): {3}resume at {2:#x}, one exception in all",
                Machine::instruction_text(&hit.probe().original),
                simulation.why(),
                Machine::resume_address(frame),
                BranchTrace { simulation, registers: Machine::registers(frame) }
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

/// A simulated conditional branch's decision as the trace says it before
/// "resume at": `b.gt taken: ...; ` (nothing for any other instruction).
/// Decided when displayed, from the registers the branch left (it changes
/// none the decision reads).
struct BranchTrace<'a> {
    simulation: &'a <Isa as Arch>::Simulation,
    registers: &'a <Isa as Arch>::Registers,
}

impl core::fmt::Display for BranchTrace<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match Isa::branch_decision(self.simulation, self.registers) {
            Some(decision) => write!(f, "{decision}; "),
            None => Ok(()),
        }
    }
}

/// Step 7: the step trap after an out-of-line instruction, taken by `thread` of
/// `process`. Returns what the scheduler must do next, or `None` if this
/// thread was not stepping a probe (the caller reports it).
pub fn on_step(frame: &mut Frame, thread: &mut HitThread, process: &Process) -> Option<After> {
    let stepping = thread.probes.stepping.take()?;
    common::select_trace(process.pid, stepping.breakpoint);
    let slot = slot_address(stepping.slot);
    if Machine::step_repeats(frame, slot) {
        thread.probes.stepping = Some(stepping);
        return Some(After::Resume);
    }
    let _ = process.xol.release(stepping.slot);
    Machine::disarm_step(frame, &stepping.machine);
    let length = Machine::step_length(&stepping.machine);
    let stepped_to = slot + length;
    if Machine::resume_address(frame) != stepped_to {
        // The stepped instructions never branch, so this cannot happen; if it
        // did, resuming anywhere would be a guess.
        println!(
            "probe: step from slot {:#x} ended at {:#x}, {}",
            slot,
            Machine::resume_address(frame),
            Machine::STEP_LEFT_SLOT
        );
        return Some(After::kill("single step left the XOL slot"));
    }
    let fixed =
        Machine::finish_step(frame, &stepping.machine, |address, bits| clear_user_bits(&process.space, address, bits));
    if let Err(why) = fixed {
        return Some(After::kill(why));
    }
    Machine::set_resume_address(frame, stepping.breakpoint + length);
    trace!(
        "{}, slot {} released",
        Machine::step_done_trace(frame, &stepping.machine, stepped_to, stepping.breakpoint),
        stepping.slot.index()
    );
    drop(stepping.hit);
    Some(After::Resume)
}

/// Clear `bits` in the user byte at `address`, if the thread could write it.
fn clear_user_bits(space: &AddressSpace, address: u64, bits: u8) -> bool {
    let Ok(range) = space.check(address, 1, UserAccess::Write) else { return false };
    let mut byte = [0];
    space.read_exact(range, &mut byte);
    space.write(range, &[byte[0] & !bits]);
    true
}

/// Step 8: the return trampoline in XOL slot 0: a probed function returned.
fn on_trampoline(frame: &mut Frame, thread: &mut HitThread) -> Option<After> {
    let trampoline = slot_address(SlotIndex::TRAMPOLINE);
    let result = thread.probes.returns.pop_chain(Machine::stack_pointer(frame), trampoline, |instance, abandoned| {
        trace!(
            "trampoline: return from {} to {:#x} ({} abandoned frames dropped)",
            instance.probe.id,
            instance.return_address,
            abandoned
        );
    });
    // No pending return: user mode reached the trampoline on its own (`None`: its own doing).
    Machine::set_resume_address(frame, result.ok()?);
    Some(After::Resume)
}
