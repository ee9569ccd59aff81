//! The probe state of one thread on x86_64: its breakpoint tree, its pending
//! return probes, the step it may be in the middle of, an unregistration it
//! waits for, and the slot images of the probes it has stepped.
//! `task::process::Thread` (the aarch64 kernel's file, compiled here through
//! `#[path]`) holds one of these.
//!
//! This is a leaf module, as the aarch64 kernel's `probe/thread_state.rs`: it
//! depends on `probe_core` and `brk_abi`'s layout only, never on the rest of
//! `probe` or on `task`, so the task records can hold probe state without
//! `task` depending on the probe code. What the scheduler does with a thread's
//! probe state when the thread ends or faults is here too, as methods.

use alloc::{collections::BTreeMap, sync::Arc};
use brk_abi::layout;
use probe_core::{
    insn::x86_64::{StepFixup, XolImage},
    ActiveHit, Arch, BreakpointTree, ProbeId, ReturnStack, SlotIndex, SpaceId, XolSlots, X86_64,
};

/// This kernel's instruction set, as the probe core knows it.
pub type Isa = X86_64;
/// A registered probe of this kernel's instruction set.
pub type Probe = probe_core::Probe<Isa>;

/// The probe state of one thread.
pub struct ThreadProbes {
    /// Breakpoints this thread has hit: its private cache of the registry.
    pub(super) tree: BreakpointTree<X86_64>,
    /// Pending return probes.
    pub(super) returns: ReturnStack<X86_64>,
    /// Set between a hit's `int3` and its #DB.
    pub(super) stepping: Option<Stepping>,
    /// An unregistration this thread started and waits to see finish.
    pub(super) unregistering: Option<Arc<Probe>>,
    /// The slot image of every stepped probe this thread has hit: decoding the
    /// instruction again for its register use on every hit would cost more
    /// than the rest of the hit. A probe's image never changes (nor does its
    /// id get reused), so an entry is never stale.
    pub(super) images: BTreeMap<ProbeId, XolImage>,
}

/// A step in flight: what the #DB needs to finish it.
pub(super) struct Stepping {
    pub(super) hit: ActiveHit<X86_64>,
    pub(super) slot: SlotIndex,
    pub(super) breakpoint: u64,
    /// Length of the instruction (the same in the slot as at the breakpoint).
    pub(super) len: u64,
    pub(super) fixup: StepFixup,
    /// The task's own value of the scratch register a RIP-relative fixup borrowed.
    pub(super) saved_scratch: u64,
}

impl ThreadProbes {
    pub fn new(pid: u32) -> Self {
        Self {
            tree: BreakpointTree::new(space_of(pid)),
            returns: ReturnStack::with_trampoline(slot_address(SlotIndex::TRAMPOLINE)),
            stepping: None,
            unregistering: None,
            images: BTreeMap::new(),
        }
    }

    /// Is this thread between a probe's `int3` and its #DB?
    pub fn is_stepping(&self) -> bool {
        self.stepping.is_some()
    }

    /// A fault while this thread is stepping a probe (the process is killed
    /// for it): the slot goes back to `xol` (its process's), and the fault is
    /// reported at the probed address if it happened in the slot. Returns
    /// that address.
    pub fn abandon_step(&mut self, xol: &mut XolSlots, fault_rip: u64) -> Option<u64> {
        let stepping = self.stepping.take()?;
        let _ = xol.release(stepping.slot);
        let slot = slot_address(stepping.slot);
        let in_slot = (slot..slot + X86_64::XOL_SLOT_BYTES as u64).contains(&fault_rip);
        in_slot.then_some(stepping.breakpoint)
    }

    /// The thread ends: give back the slot it may hold to `xol` (its
    /// process's) and forget its breakpoints, pending returns and images.
    pub fn end(&mut self, xol: &mut XolSlots) {
        if let Some(stepping) = self.stepping.take() {
            let _ = xol.release(stepping.slot);
        }
        self.tree.clear();
        self.returns.clear();
        self.images.clear();
    }
}

/// The probe core's name for the address space of process `pid`.
pub fn space_of(pid: u32) -> SpaceId {
    SpaceId(pid as u64)
}

/// The XOL page address of `slot`.
pub fn slot_address(slot: SlotIndex) -> u64 {
    layout::XOL_PAGE + slot.byte_offset::<X86_64>() as u64
}
