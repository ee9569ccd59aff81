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

#[macro_use]
mod common;
mod glue;
mod report;
mod user_memory;

use crate::{
    arch::{
        debug::{self, PROBE_BRK_IMMEDIATE, TRAMPOLINE_BRK_IMMEDIATE},
        exception::ExceptionFrame,
    },
    println,
    task::{
        address_space::{AddressSpace, UserAccess, XOL_SLOT_BYTES},
        process::{Process, Thread},
        scheduler,
    },
};
use alloc::{format, string::String, sync::Arc, vec::Vec};
use brk_abi::{layout, Error};
use common::{apply, find_probe, options, simulate_hit, space_of, xol_policy, After, Probe, COUNTERS};
use probe_core::{
    registry::Treatment, xol, ActiveHit, Aarch64, Arch, BreakpointTree, ProbeKind, ReturnStack, SlotIndex,
    XolPolicy, XolSlots,
};

pub use common::{counters, init, install_requested, on_process_end, steps_in_flight, sys_register, sys_stats, sys_unregister};
pub use report::print_report;

/// This kernel's instruction set, as the probe core knows it.
pub type Isa = Aarch64;

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

// ---- the machine's side of registration (the rest is `common.rs`) ----

/// Check that a probe may go at `vaddr` in `process` and read the instruction there.
fn read_original(process: &Process, vaddr: u64, _symbol: &str) -> Result<u32, (Error, String)> {
    if !vaddr.is_multiple_of(Aarch64::INSN_ALIGN) {
        return Err((Error::InvalidArgument, format!("address {:#x} is not 4-byte aligned", vaddr)));
    }
    if process.space.check(vaddr, 4, UserAccess::Execute).is_err() {
        return Err((Error::InvalidArgument, format!("address {:#x} is not in {}'s text", vaddr, process.name)));
    }
    read_instruction(&process.space, vaddr).ok_or_else(|| (Error::InvalidArgument, format!("address {:#x} is not readable", vaddr)))
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
    space
        .write_as_kernel(vaddr, &instruction.to_le_bytes(), true)
        .expect("probe address was checked to be mapped text");
}

// ---- the hit path ----

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
        // 1. and 2.: this thread's own tree, then the registry.
        let Some((hit, remembered)) = find_probe(&mut thread.probes.tree, process.pid, thread.tid, breakpoint) else {
            // 3. No probe. Still a brk there? Then it is the program's own.
            return match read_instruction(&process.space, breakpoint) {
                Some(word) if Aarch64::breakpoint_immediate(word).is_some() => false,
                _ => {
                    trace!("no probe and no brk at {:#x} any more (unregistered meanwhile): restart there", breakpoint);
                    true
                }
            };
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
        (Treatment::Simulate(simulation), _) => simulate_hit(simulation, breakpoint, frame, process, hit),
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

/// A thread ends: give back the slot it may hold.
pub fn on_thread_end(thread: &mut Thread, process: &mut Process) {
    if let Some(stepping) = thread.probes.stepping.take() {
        let _ = process.xol.release(stepping.slot);
    }
    thread.probes.tree.clear();
    thread.probes.returns.clear();
}
