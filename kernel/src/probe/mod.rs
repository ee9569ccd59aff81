//! Probes: the brk path of this kernel, end to end.
//!
//! This module adapts the arch-neutral `probe_core` crate (registry, per-task
//! breakpoint tree, XOL slot allocator, return stack, classifier, counters) to
//! the machine: it plants and removes `brk`s in a process's text, handles the
//! `brk` and software-step exceptions, and reports. docs/brk-path.md tells the
//! story of one hit with links into this file.
//!
//! This file is the machine's half. The arch-neutral half (the registry and
//! its options, registration, the probe system calls, the tree-then-registry
//! lookup) is `common.rs`, which the x86_64 kernel compiles too, next to its
//! own machine half (`kernel/x86_64/src/probe/mod.rs`).
//!
//! Locking: everything here runs in exception context with interrupts masked on
//! one core. The hit path touches only the current thread's tree and its
//! process's XOL slots; the global registry's lock is taken on a tree miss, at
//! registration and at unregistration.
//!
//! Who calls whom: the exception dispatcher takes the scheduler's lock once and
//! hands [`on_brk`] and [`on_step`] the current thread and its process; they
//! return what the scheduler must do next (`task::scheduler::After`), and the
//! dispatcher has the scheduler do it. The probe code never takes the scheduler's lock on the hit path and the
//! scheduler never calls into this module: what it needs at a process's start
//! and end reaches it as the [`scheduler_hooks`] it is handed at init, and the
//! per-thread state it keeps is the leaf module [`thread_state`].

#[macro_use]
mod common;
mod glue;
mod report;
pub mod thread_state;
mod user_memory;

use crate::{
    arch::{
        debug::{self, PROBE_BRK_IMMEDIATE, TRAMPOLINE_BRK_IMMEDIATE},
        exception::ExceptionFrame,
    },
    println,
    task::{
        address_space::{AddressSpace, UserAccess},
        process::{Process, Thread},
        scheduler::After,
    },
};
use alloc::{format, string::String, sync::Arc, vec::Vec};
use brk_abi::Error;
use common::{find_probe, options, simulate_hit, xol_policy, COUNTERS};
use probe_core::{registry::Treatment, xol, Aarch64, ActiveHit, Arch, ProbeKind, SlotIndex, XolPolicy, XolSlots};
use thread_state::{slot_address, Stepping};

pub use common::{counters, init, scheduler_hooks, sys_register, sys_stats, sys_unregister};
pub use report::print_report;

/// The XOL slots of a new address space, as `xol-slots=N` asks.
pub fn new_xol_slots() -> XolSlots {
    match options().xol_slots {
        Some(step_slots) => XolSlots::new(step_slots + 1),
        None => XolSlots::full_page(),
    }
}

/// Read the instruction at user address `vaddr` (which must be readable text).
fn read_instruction(space: &AddressSpace, vaddr: u64) -> Option<u32> {
    let range = space.check(vaddr, 4, UserAccess::Read).ok()?;
    let mut bytes = Vec::new();
    space.read(range, &mut bytes);
    Some(u32::from_le_bytes(bytes[..4].try_into().ok()?))
}

// ---- the machine's side of registration (the rest is `common.rs`) ----

/// Check that a probe may go at `vaddr` in `process` and read the instruction there.
fn read_original(process: &Process, vaddr: u64, _symbol: &str) -> Result<u32, (Error, String)> {
    if !vaddr.is_multiple_of(Aarch64::INSN_ALIGN) {
        return Err((Error::InvalidArgument, format!("address {:#x} is not 4-byte aligned", vaddr)));
    }
    if process.space.check(vaddr, 4, UserAccess::Execute).is_err() {
        return Err((Error::InvalidArgument, format!("address {:#x} is not in {}'s text", vaddr, process.name)));
    }
    read_instruction(&process.space, vaddr)
        .ok_or_else(|| (Error::InvalidArgument, format!("address {:#x} is not readable", vaddr)))
}

/// Plant the probe's `brk` over the instruction at `vaddr`.
fn plant(space: &AddressSpace, vaddr: u64) {
    write_text(space, vaddr, Aarch64::breakpoint(PROBE_BRK_IMMEDIATE));
}

/// Put the original instruction back at `vaddr`.
fn restore(space: &AddressSpace, vaddr: u64, original: &u32) {
    write_text(space, vaddr, *original);
}

/// Make the thread execute its `svc` again (it is 4 bytes before ELR).
fn rewind_syscall(frame: &mut ExceptionFrame) {
    frame.elr -= 4;
}

/// Where the thread resumes: the saved ELR_EL1.
fn resume_address(frame: &ExceptionFrame) -> u64 {
    frame.elr
}

/// An instruction word as traces show it.
fn insn_text(insn: &u32) -> String {
    format!("{:#010x}", insn)
}

/// Write one instruction into the process's text through the kernel alias (EL0
/// sees the page read-only) and make it visible to instruction fetch.
fn write_text(space: &AddressSpace, vaddr: u64, instruction: u32) {
    space.write_as_kernel(vaddr, &instruction.to_le_bytes()).expect("probe address was checked to be mapped text");
}

// ---- the hit path ----

/// A `brk` from EL0 by `thread` of `process` (the running ones). Returns what
/// the scheduler must do next, or `None` if it is not a probe's (the caller
/// reports the program's own `brk` and kills the process).
pub fn on_brk(frame: &mut ExceptionFrame, thread: &mut Thread, process: &mut Process) -> Option<After> {
    let immediate = frame.brk_immediate();
    if immediate == TRAMPOLINE_BRK_IMMEDIATE && frame.elr == slot_address(SlotIndex::TRAMPOLINE) {
        return on_trampoline(frame, thread);
    }
    if immediate != PROBE_BRK_IMMEDIATE {
        return None;
    }
    let breakpoint = frame.elr;
    trace!(
        "brk #{:#x} at {:#x} ({}): ESR_EL1={:#010x}, EC 0x3C (brk from EL0), tid {}",
        immediate,
        breakpoint,
        process.symbols.locate(&process.name, breakpoint),
        tock_registers::interfaces::Readable::get(&frame.esr),
        thread.tid
    );
    // 1. and 2.: this thread's own tree, then the registry.
    let Some((hit, remembered)) = find_probe(&mut thread.probes.tree, process.pid, thread.tid, breakpoint) else {
        // 3. No probe. Still a brk there? Then it is the program's own.
        return match read_instruction(&process.space, breakpoint) {
            Some(word) if Aarch64::breakpoint_immediate(word).is_some() => None,
            _ => {
                trace!("no probe and no brk at {:#x} any more (unregistered meanwhile): restart there", breakpoint);
                Some(After::Resume)
            }
        };
    };
    Some(handle_hit(frame, thread, process, hit, remembered, breakpoint))
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
                trace!(
                    "return probe armed: x30 {:#x} -> trampoline {:#x} ({} abandoned frames dropped)",
                    return_address,
                    frame.x[30],
                    abandoned
                );
            }
            probe_core::retstack::PushOutcome::SkippedDepthLimit { .. } => {
                trace!("return stack full ({} deep): this return is not probed", probe_core::RETURN_STACK_DEPTH);
            }
        }
    }

    match (&probe.treatment, choice) {
        (Treatment::Simulate(simulation), _) => simulate_hit(simulation, breakpoint, frame, process, hit),
        (Treatment::Step, Some(choice)) => {
            let slot = choice.slot;
            let address = slot_address(slot);
            // Compare through the kernel alias: what the page really holds.
            let holds_it = process.space.xol_slot_holds(slot.index(), &probe.original.to_le_bytes());
            if choice.must_write == holds_it && xol_policy() == XolPolicy::Reuse {
                println!("probe: XOL slot {} record disagrees with the page; writing it", slot.index());
            }
            if choice.must_write || !holds_it {
                let lines = process.space.write_xol_slot(slot.index(), &probe.original.to_le_bytes());
                process.xol.note_written(slot, probe.original);
                COUNTERS.add_maintenance(lines);
                let alias = process.space.xol_slot_kernel_address(slot.index());
                let geometry = crate::arch::cache::geometry();
                if lines.ic_iallu > 0 {
                    trace!(
                        "slot {} ({:?}): written {:#010x} through the kernel alias {:#x}; DC CVAU {} line(s) at {:#x}, DSB ISH, IC IALLUIS (the I-cache may alias: the user's line is not indexed by the kernel's address), DSB ISH, ISB",
                        slot.index(),
                        choice.reason,
                        probe.original,
                        alias,
                        lines.dc_cvau_lines,
                        alias & !(geometry.dcache_line - 1)
                    );
                } else {
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
                }
            } else {
                trace!(
                    "slot {} ({:?}): already holds {:#010x}: no write, no cache maintenance",
                    slot.index(),
                    choice.reason,
                    probe.original
                );
            }
            thread.probes.tree.remember_slot(breakpoint, slot);
            COUNTERS.bump(&COUNTERS.stepped);
            frame.elr = address;
            debug::arm_single_step(frame);
            thread.probes.stepping = Some(Stepping { hit, slot, breakpoint });
            trace!(
                "eret to slot {:#x} with MDSCR_EL1.SS=1 and SPSR_EL1.SS=1: one instruction, then a step exception",
                address
            );
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

/// The software-step exception after an out-of-line instruction, taken by
/// `thread` of `process`. Returns what the scheduler must do next, or `None`
/// if this thread was not stepping a probe (the caller reports it).
pub fn on_step(frame: &mut ExceptionFrame, thread: &mut Thread, process: &mut Process) -> Option<After> {
    let stepping = thread.probes.stepping.take()?;
    debug::set_core_single_step(false);
    let slot = slot_address(stepping.slot);
    let _ = process.xol.release(stepping.slot);
    if frame.elr != slot + 4 {
        // The stepped instructions never branch, so this cannot happen; if it
        // did, resuming anywhere would be a guess.
        println!("probe: step from slot {:#x} ended at {:#x}, not the next slot address", slot, frame.elr);
        return Some(After::kill("single step left the XOL slot"));
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
    Some(After::Resume)
}

/// The return trampoline in XOL slot 0: a probed function returned.
fn on_trampoline(frame: &mut ExceptionFrame, thread: &mut Thread) -> Option<After> {
    let trampoline = slot_address(SlotIndex::TRAMPOLINE);
    let result = thread.probes.returns.pop_chain(frame.sp_el0, trampoline, |instance, abandoned| {
        trace!(
            "trampoline: return from {} to {:#x} ({} abandoned frames dropped)",
            instance.probe.id,
            instance.return_address,
            abandoned
        );
    });
    // No pending return: EL0 reached the trampoline on its own (`None`: its own doing).
    frame.elr = result.ok()?;
    Some(After::Resume)
}
