//! Branch trampolines, the kernel's half (`probe-mode=trampoline`): giving a
//! probe its trampoline at registration, planting and removing the branch
//! to it, and why a probe keeps its breakpoint instead. What a trampoline
//! holds and how the displaced instruction is relocated is
//! `probe_core::trampoline` and the architecture's relocator; where the
//! trampolines are is the process's `task::trampoline_area`; a hit through
//! one is the parent module's `on_trampoline_call`. docs/brk-path.md, "One
//! exception instead of two", tells the story.
//!
//! Planting goes original -> breakpoint -> branch, and removal branch ->
//! breakpoint -> original: the breakpoint and the branch are both in the set
//! of instructions the Arm ARM lets one instruction be changed into while
//! another core may execute it ("Concurrent modification and execution of
//! instructions", B2.2.5: B, BL, BRK, NOP, ISB, SVC, HVC, SMC), and a
//! thread that fetches the breakpoint in between is sent to the trampoline
//! by the breakpoint path. On x86_64 the branch is 5 bytes or more: the
//! first byte becomes `int3`, then the rest is written, then the first byte,
//! as Linux's `text_poke_bp` does (arch/x86/kernel/alternative.c). Every
//! write is made while the cores running the process are stopped
//! (`super::common::write_text`).

use super::{
    common::{write_text, REGISTRY},
    thread_state::{space_of, Isa, Probe},
};
use crate::{
    arch::{Machine, Probes},
    cores,
    task::{address_space::UserAccess, on_core, process::Process, trampoline_area::AREA_TRAMPOLINES},
};
use alloc::vec::Vec;
use core::fmt;
use probe_core::{
    trampoline::{BranchPatch, NotRelocatable, TrampolineImage, Trampolines},
    Arch,
};

/// Why a probe keeps its breakpoint instead of a trampoline. `Display`
/// gives the words after "no trampoline: ".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoTrampoline {
    /// The loader found no room for a trampoline area next to the program.
    NoArea,
    /// Every trampoline of the process's area is handed out.
    AreaFull,
    /// x86_64: no function symbol with a size covers the probe, so the jumps
    /// that might land inside the replaced bytes cannot be checked.
    NoFunction,
    /// No memory for the area's next page.
    OutOfMemory,
    /// The instruction cannot be relocated (or the branch cannot reach).
    NotRelocatable(NotRelocatable),
}

impl fmt::Display for NoTrampoline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoArea => write!(f, "no room for a trampoline area next to the program"),
            Self::AreaFull => {
                write!(f, "the process's {} trampolines are used up (a process never reuses one)", AREA_TRAMPOLINES)
            }
            Self::NoFunction => {
                write!(f, "no function symbol with a size covers it, so jumps into its bytes cannot be ruled out")
            }
            Self::OutOfMemory => write!(f, "no memory for another trampoline page"),
            Self::NotRelocatable(why) => write!(f, "{}", why),
        }
    }
}

impl From<NotRelocatable> for NoTrampoline {
    fn from(why: NotRelocatable) -> Self {
        Self::NotRelocatable(why)
    }
}

/// A trampoline written for a probe about to be registered.
pub struct Prepared {
    /// Its user address.
    pub address: u64,
    /// What goes over the probed instruction once the probe is registered.
    patch: BranchPatch,
}

/// Give the probe about to be registered at `vaddr` of `process`, over
/// `original`, its trampoline: check the branch may go there, claim the
/// area's next trampoline, map its page if it is the page's first, and write
/// it. The caller holds the scheduler's lock (no other registration runs,
/// no core switches to the process).
pub fn prepare(process: &Process, vaddr: u64, original: <Isa as Arch>::Insn) -> Result<Prepared, NoTrampoline> {
    let area = process.space.trampolines().ok_or(NoTrampoline::NoArea)?;
    if Machine::TRAMPOLINE_CHECKS_FUNCTION {
        let (start, function) = function_text(process, vaddr).ok_or(NoTrampoline::NoFunction)?;
        Isa::check_function(original, vaddr, &function, start)?;
    }
    let address = area.next().ok_or(NoTrampoline::AreaFull)?;
    let image = Isa::trampoline_image(original, vaddr, address.address)?;
    let patch = Isa::branch_to_trampoline(original, vaddr, address.address)?;
    let claimed = area.claim().ok_or(NoTrampoline::AreaFull)?;
    debug_assert_eq!(claimed, address, "only registration claims, under the scheduler's lock");
    if claimed.needs_page {
        // SAFETY: the cores running the process are stopped for the mapping
        // and the caller holds the scheduler's lock (`SharedSpace::get_mut`).
        cores::stop(on_core::cores_running(process.pid), || unsafe {
            process.space.get_mut().map_trampoline_page(claimed.address)
        })
        .map_err(|_| NoTrampoline::OutOfMemory)?;
    }
    process.space.write_trampoline(claimed.address, &image).map_err(|_| NoTrampoline::OutOfMemory)?;
    trace!("trampoline at {:#x} for {:#x}: {}", claimed.address, vaddr, TrampolineCode(&image));
    Ok(Prepared { address: claimed.address, patch })
}

/// A trampoline's instructions as traces show them, `; ` between them: its
/// code bytes decoded one instruction after the other, up to the first fill
/// breakpoint.
struct TrampolineCode<'a>(&'a TrampolineImage);

impl fmt::Display for TrampolineCode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut at = 0;
        while at < Isa::CODE_BYTES {
            let Ok(insn) = Machine::decode_instruction(&self.0[at..Isa::CODE_BYTES]) else { break };
            if at > 0 && Isa::breakpoint_immediate(insn).is_some() {
                break;
            }
            write!(f, "{}{}", if at > 0 { "; " } else { "" }, Machine::instruction_text(&insn))?;
            at += Machine::instruction_bytes(&insn).as_ref().len();
        }
        Ok(())
    }
}

/// The bytes of the function holding `vaddr`, with every probe's original
/// instruction in place of its breakpoint or branch, and the function's start.
fn function_text(process: &Process, vaddr: u64) -> Option<(u64, Vec<u8>)> {
    let (start, size) = process.symbols.function_bounds(vaddr)?;
    let range = process.space.check(start, size, UserAccess::Execute).ok()?;
    let mut text = Vec::new();
    process.space.read(range, &mut text);
    for probe in REGISTRY.read().probes_in(space_of(process.pid), start..start + size) {
        let offset = (probe.vaddr - start) as usize;
        let original = Machine::instruction_bytes(&probe.original);
        let original = original.as_ref();
        let end = (offset + original.len()).min(text.len());
        text[offset..end].copy_from_slice(&original[..end - offset]);
    }
    Some((start, text))
}

/// Send the just-registered probe at `vaddr` to its trampoline: breakpoint,
/// then the branch (the rest of its bytes first, then the first ones).
pub fn plant(process: &Process, vaddr: u64, prepared: &Prepared) {
    write_text(process, vaddr, Machine::PROBE_BREAKPOINT);
    let patch = prepared.patch.bytes();
    let head = Machine::PROBE_BREAKPOINT.len();
    if patch.len() > head {
        write_text(process, vaddr + head as u64, &patch[head..]);
    }
    write_text(process, vaddr, &patch[..head]);
}

/// Put `probe`'s original instruction back in place of its branch:
/// breakpoint, the rest of the bytes, then the first ones. Its trampoline
/// stays as it is (a thread may be inside it).
pub fn remove(process: &Process, probe: &Probe) {
    write_text(process, probe.vaddr, Machine::PROBE_BREAKPOINT);
    let original = Machine::instruction_bytes(&probe.original);
    let original = original.as_ref();
    let head = Machine::PROBE_BREAKPOINT.len();
    if original.len() > head {
        write_text(process, probe.vaddr + head as u64, &original[head..]);
    }
    write_text(process, probe.vaddr, &original[..head]);
}
