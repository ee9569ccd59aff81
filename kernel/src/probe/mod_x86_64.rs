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
//! | return probe | replace x30 | replace the return address at \[RSP\] |
//!
//! Locking: everything here runs in trap context with interrupts off on one
//! core (every IDT gate is an interrupt gate). The hit path touches only the
//! current thread's tree and its process's XOL slots; the global registry's
//! lock is taken on a tree miss, at registration and at unregistration.
//!
//! Who calls whom, as on aarch64: the trap dispatcher takes the scheduler's
//! lock once and hands [`on_breakpoint`] and [`on_debug`] the current thread
//! and its process; they return what the scheduler must do next
//! (`task::scheduler::After`). The scheduler never calls into this module
//! except through the [`scheduler_hooks`] it is handed at init, and the
//! per-thread state it keeps is the leaf module [`thread_state`].

#[macro_use]
mod common;
#[path = "glue_x86_64.rs"]
mod glue;
mod report;
#[path = "thread_state_x86_64.rs"]
pub mod thread_state;
mod user_memory;

use crate::{
    arch::exception::ExceptionFrame,
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
use probe_core::{
    insn::x86_64::{self, Insn, Registers, StepFixup, INT3, MAX_INSN_LEN},
    registry::Treatment,
    xol::{self, SlotContent},
    ActiveHit, ProbeKind, SlotIndex, XolPolicy, XolSlots, X86_64,
};
// `::x86_64`: the crate, not the probe core's `insn::x86_64` imported above.
use ::x86_64::registers::rflags::RFlags;
use user_memory::CheckedUserMemory;

pub use common::{counters, init, scheduler_hooks, sys_register, sys_stats, sys_unregister};
pub use report::print_report;
use thread_state::{slot_address, Probe, Stepping};

/// `int 3` in its two-byte form (`CD 03`): the benchmarks' *null breakpoint*,
/// a #BP the kernel returns from at once, to measure the bare trap round trip
/// (aarch64's `brk #0x7`). A probe's `int3` is the one-byte `CC`.
const NULL_BREAKPOINT: [u8; 2] = [0xcd, 0x03];
/// Bytes in a page, for "do these bytes share a page".
const PAGE_BYTES: u64 = 4096;
/// The length of `int 0x80`, to run a system call again.
const SYSCALL_INSN_LEN: u64 = 2;

/// The XOL slots of a new address space: 16-byte slots, as `xol-slots=N` asks.
pub fn new_xol_slots() -> XolSlots {
    let page = xol::slots_per_page::<X86_64>();
    XolSlots::for_arch::<X86_64>(options().xol_slots.map_or(page, |step_slots| step_slots + 1))
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
    let mut byte = [0];
    space.read_exact(range, &mut byte);
    Some(byte[0])
}

// ---- the machine's side of registration (the rest is `common.rs`) ----

/// Check that a probe may go at `vaddr` in `process` and decode the
/// instruction there.
///
/// x86 instructions have no alignment, so nothing here can tell the start of
/// an instruction from a byte in its middle: a probe in the middle of an
/// instruction decodes as whatever those bytes happen to be, and corrupts the
/// instruction it sits in (Linux has the same limit). Probes by symbol name
/// start at a function's first instruction.
fn read_original(process: &Process, vaddr: u64, symbol: &str) -> Result<Insn, (Error, String)> {
    let text = read_text(&process.space, vaddr);
    if text.is_empty() {
        return Err((Error::InvalidArgument, format!("address {:#x} is not in {}'s text", vaddr, process.name)));
    }
    Insn::decode(&text)
        .map_err(|why| (Error::Refused, format!("{} at {:#x}: cannot decode an instruction: {}", symbol, vaddr, why)))
}

/// Plant the probe's `int3` over the first byte of the instruction at `vaddr`.
fn plant(space: &AddressSpace, vaddr: u64) {
    write_text(space, vaddr, INT3);
}

/// Put the instruction's original first byte back at `vaddr`.
fn restore(space: &AddressSpace, vaddr: u64, original: &Insn) {
    write_text(space, vaddr, original.bytes()[0]);
}

/// Make the thread execute its `int 0x80` again (RIP is past it).
fn rewind_syscall(frame: &mut ExceptionFrame) {
    frame.rip -= SYSCALL_INSN_LEN;
}

/// Where the thread resumes: the saved RIP.
fn resume_address(frame: &ExceptionFrame) -> u64 {
    frame.rip
}

/// An instruction as traces show it: its bytes.
fn insn_text(insn: &Insn) -> String {
    hex_bytes(insn.bytes())
}

/// Write one byte of the process's text through the kernel alias (ring 3 sees
/// the page read-only). Nothing else: x86 snoops stores into code, and the
/// `iretq` back to ring 3 is serializing, so the next fetch sees the new byte.
fn write_text(space: &AddressSpace, vaddr: u64, byte: u8) {
    space.write_as_kernel(vaddr, &[byte]).expect("probe address was checked to be mapped text");
}

// ---- the hit path ----

/// #BP from ring 3 by `thread` of `process` (the running ones): RIP is the
/// byte after the `int3`. Returns what the scheduler must do next, or `None`
/// if it is not a probe's (the caller reports the program's own `int3` and
/// kills the process).
pub fn on_breakpoint(frame: &mut ExceptionFrame, thread: &mut Thread, process: &mut Process) -> Option<After> {
    let breakpoint = frame.rip.wrapping_sub(1);
    if breakpoint == slot_address(SlotIndex::TRAMPOLINE) {
        return on_trampoline(frame, thread);
    }
    // The null breakpoint first: its `03` byte cannot be a probe's `int3`
    // (that would be a `CC`), so nothing else needs looking at.
    if is_null_breakpoint(&process.space, frame.rip) {
        return Some(After::Resume);
    }
    trace!(
        "#BP (vector 3) with RIP {:#x}: int3 at {:#x} ({}), tid {}",
        frame.rip,
        breakpoint,
        process.symbols.locate(&process.name, breakpoint),
        thread.tid
    );
    // This thread's own tree, then the registry.
    let Some((hit, remembered)) = find_probe(&mut thread.probes.tree, process.pid, thread.tid, breakpoint) else {
        return not_a_probe(frame, &process.space, breakpoint);
    };
    Some(handle_hit(frame, thread, process, hit, remembered, breakpoint))
}

/// Did the #BP with this RIP come from the two-byte `int 3` (`CD 03`), the
/// null breakpoint?
///
/// `int3` has no immediate to tell the kinds of breakpoint apart, so this
/// reads the task's text; it is on every #BP's path, so it reads through the
/// kernel alias of the page (one table walk, no copy) rather than the general
/// checked copy. Both bytes lie in the page of `rip - 1`, or the answer is no.
fn is_null_breakpoint(space: &AddressSpace, rip: u64) -> bool {
    let start = rip.wrapping_sub(NULL_BREAKPOINT.len() as u64);
    let same_page = start / PAGE_BYTES == rip.wrapping_sub(1) / PAGE_BYTES;
    let Some(alias) = space.kernel_alias(start).filter(|_| same_page) else { return false };
    // SAFETY: `kernel_alias` gives the kernel's identity-mapped view of a user
    // page the task can reach, valid to the end of that page, and both bytes
    // are in it (checked above).
    let bytes = unsafe { core::slice::from_raw_parts(alias as *const u8, NULL_BREAKPOINT.len()) };
    bytes == NULL_BREAKPOINT
}

/// A #BP no probe owns. A one-byte `int3` still there is the program's own:
/// not ours (`None`). Otherwise the probe was unregistered between the trap
/// and now: run the original instruction, which is back in place.
fn not_a_probe(frame: &mut ExceptionFrame, space: &AddressSpace, breakpoint: u64) -> Option<After> {
    match read_byte(space, breakpoint) {
        Some(INT3) => None,
        _ => {
            trace!("no probe and no int3 at {:#x} any more (unregistered meanwhile): restart there", breakpoint);
            frame.rip = breakpoint;
            Some(After::Resume)
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
            let image = *thread.probes.images.entry(probe.id).or_insert_with(|| x86_64::xol_image(&probe.original));
            trace!(
                "{} runs the same anywhere{}: step it out of line in an XOL slot",
                hex_bytes(probe.original.bytes()),
                fixup_note(&image.fixup)
            );
            match xol::choose_slot(
                &process.xol,
                xol_policy(),
                remembered,
                SlotContent::from_bytes(image.bytes()),
                &COUNTERS,
            ) {
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
            return After::kill(reason);
        }
    }

    match (&probe.treatment, step) {
        (Treatment::Simulate(simulation), _) => simulate_hit(simulation, breakpoint, frame, process, hit),
        (Treatment::Step, Some((choice, image))) => {
            let slot = choice.slot;
            let address = slot_address(slot);
            let holds_it = process.space.xol_slot_holds(slot.index(), image.bytes());
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
                trace!(
                    "slot {} ({:?}): already holds {}: no write",
                    slot.index(),
                    choice.reason,
                    hex_bytes(image.bytes())
                );
            }
            thread.probes.tree.remember_slot(breakpoint, slot);
            COUNTERS.bump(&COUNTERS.stepped);
            let len = image.len() as u64;
            let mut saved_scratch = 0;
            if let Some(scratch) = image.fixup.rip_relative_scratch {
                saved_scratch = frame.gpr(scratch);
                frame.set_gpr(scratch, breakpoint + len);
                trace!(
                    "RIP-relative operand: {} = {:#x} (the original next RIP) for the step",
                    scratch.name(),
                    breakpoint + len
                );
            }
            frame.rip = address;
            frame.rflags |= RFlags::TRAP_FLAG.bits();
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

/// A return probe's entry hit: the return address is at \[RSP\] (the probe is
/// on the function's first instruction). Save it on the return stack and put
/// the trampoline's address there instead. The entry SP recorded is the SP
/// the caller will see after the return (RSP + 8), which is the SP at the
/// trampoline's #BP.
fn arm_return_probe(
    frame: &mut ExceptionFrame,
    thread: &mut Thread,
    process: &mut Process,
    probe: &Arc<Probe>,
) -> Result<(), String> {
    use probe_core::UserMemory;
    let mut memory = CheckedUserMemory(&process.space);
    let return_address = memory
        .read_u64(frame.rsp)
        .map_err(|fault| format!("return probe: reading the return address at RSP {:#x}: {}", frame.rsp, fault))?;
    let return_sp = frame.rsp + 8;
    match thread.probes.returns.push(Arc::clone(probe), return_address, return_sp, &COUNTERS) {
        probe_core::retstack::PushOutcome::Armed { abandoned } => {
            let trampoline = slot_address(SlotIndex::TRAMPOLINE);
            memory.write_u64(frame.rsp, trampoline).map_err(|fault| {
                format!("return probe: writing the trampoline address at RSP {:#x}: {}", frame.rsp, fault)
            })?;
            trace!(
                "return probe armed: [RSP] {:#x} -> trampoline {:#x} ({} abandoned frames dropped)",
                return_address,
                trampoline,
                abandoned
            );
        }
        probe_core::retstack::PushOutcome::SkippedDepthLimit { .. } => {
            trace!("return stack full ({} deep): this return is not probed", probe_core::RETURN_STACK_DEPTH);
        }
    }
    Ok(())
}

/// #DB from ring 3, taken by `thread` of `process`. Returns what the
/// scheduler must do next, or `None` if this thread was not stepping a probe
/// (the caller reports it).
pub fn on_debug(frame: &mut ExceptionFrame, thread: &mut Thread, process: &mut Process) -> Option<After> {
    let stepping = thread.probes.stepping.as_ref()?;
    let slot = slot_address(stepping.slot);
    if frame.rip == slot {
        // A `rep` string instruction traps after every iteration with RIP
        // still on itself: keep stepping until it is done.
        return Some(After::Resume);
    }
    let stepping = thread.probes.stepping.take().expect("checked above");
    let _ = process.xol.release(stepping.slot);
    frame.rflags &= !RFlags::TRAP_FLAG.bits();
    if let Some(scratch) = stepping.fixup.rip_relative_scratch {
        frame.set_gpr(scratch, stepping.saved_scratch);
    }
    if frame.rip != slot + stepping.len {
        // The stepped instructions never branch, so this cannot happen; if it
        // did, resuming anywhere would be a guess.
        println!("probe: step from slot {:#x} ended at {:#x}, not past the instruction", slot, frame.rip);
        return Some(After::kill("single step left the XOL slot"));
    }
    if stepping.fixup.pushes_flags && clear_pushed_trap_flag(&process.space, frame.rsp).is_err() {
        return Some(After::kill(format!("pushf fixup: the flags pushed at {:#x} are not writable", frame.rsp)));
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
    Some(After::Resume)
}

/// After a stepped `pushf`: the copy of RFLAGS it stored at `rsp` has the
/// step's own TF in it; clear it. TF is bit 8, bit 0 of the byte at `rsp + 1`
/// for both the 8-byte `pushfq` and the 2-byte `66 9C`.
fn clear_pushed_trap_flag(space: &AddressSpace, rsp: u64) -> Result<(), Error> {
    const TF_IN_SECOND_BYTE: u8 = (RFlags::TRAP_FLAG.bits() >> 8) as u8;
    let range = space.check(rsp + 1, 1, UserAccess::Write)?;
    let mut byte = [0];
    space.read_exact(range, &mut byte);
    space.write(range, &[byte[0] & !TF_IN_SECOND_BYTE]);
    Ok(())
}

/// The return trampoline in XOL slot 0: a probed function returned.
fn on_trampoline(frame: &mut ExceptionFrame, thread: &mut Thread) -> Option<After> {
    let trampoline = slot_address(SlotIndex::TRAMPOLINE);
    let result = thread.probes.returns.pop_chain(frame.rsp, trampoline, |instance, abandoned| {
        trace!(
            "trampoline: return from {} to {:#x} ({} abandoned frames dropped)",
            instance.probe.id,
            instance.return_address,
            abandoned
        );
    });
    // No pending return: ring 3 reached the trampoline on its own (`None`: its own doing).
    frame.rip = result.ok()?;
    Some(After::Resume)
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
