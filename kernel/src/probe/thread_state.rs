//! The probe state of one thread: its breakpoint tree, its pending return
//! probes, the step it may be in the middle of, an unregistration it waits
//! for, and the machine's cache of slot images. `task::process::Thread` holds
//! one of these.
//!
//! This is a leaf module: it depends on `probe_core`, `brk_abi`'s layout and
//! the machine's `Probes` contract, never on the rest of `probe` or on
//! `task`, so the task records can hold probe state without `task` depending
//! on the probe code (the probe code depends on `task`, not the other way
//! round). What the scheduler does with a thread's probe state when the
//! thread ends or faults (give back its XOL slot, empty its tree) is here
//! too, as methods.

use crate::arch::{Machine, Probes};
use alloc::sync::Arc;
use brk_abi::layout;
use probe_core::{ActiveHit, Arch, BreakpointTree, ReturnStack, SlotIndex, SpaceId, XolSlots};

/// This machine's instruction set, as the probe core knows it.
pub type Isa = <Machine as Probes>::Isa;
/// A registered probe of this machine's instruction set.
pub type Probe = probe_core::Probe<Isa>;

/// The probe state of one thread.
pub struct ThreadProbes {
    /// Breakpoints this thread has hit: its private cache of the registry.
    pub(super) tree: BreakpointTree<Isa>,
    /// Pending return probes.
    pub(super) returns: ReturnStack<Isa>,
    /// Set between a hit's breakpoint trap and its step trap.
    pub(super) stepping: Option<Stepping>,
    /// An unregistration this thread started and waits to see finish.
    pub(super) unregistering: Option<Arc<Probe>>,
    /// The slot images of the probes this thread has stepped, as the machine keeps them.
    pub(super) slot_images: <Machine as Probes>::SlotImages,
}

/// The running thread as one of its traps sees it on the hit path: its id
/// and its probe state, held under the thread's own lock for the trap (no
/// other thread's hit ever takes that lock).
pub struct HitThread<'a> {
    pub tid: u32,
    pub probes: &'a mut ThreadProbes,
}

/// A step in flight: what the step trap needs to finish it.
pub(super) struct Stepping {
    pub(super) hit: ActiveHit<Isa>,
    pub(super) slot: SlotIndex,
    pub(super) breakpoint: u64,
    /// The machine's part: what it changed to arm the step.
    pub(super) machine: <Machine as Probes>::StepState,
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
            slot_images: Default::default(),
        }
    }

    /// Is this thread between a breakpoint and its step trap? (On aarch64 the
    /// scheduler sets MDSCR_EL1.SS from this on every switch.)
    pub fn is_stepping(&self) -> bool {
        self.stepping.is_some()
    }

    /// A fault while this thread is stepping a probe (the process is killed
    /// for it): the slot goes back to `xol` (its process's), and the fault is
    /// reported at the probed address if it happened in the slot. Returns
    /// that address.
    pub fn abandon_step(&mut self, xol: &XolSlots, fault_pc: u64) -> Option<u64> {
        let stepping = self.stepping.take()?;
        Machine::set_core_single_step(false);
        let _ = xol.release(stepping.slot);
        let slot = slot_address(stepping.slot);
        let in_slot = (slot..slot + Isa::XOL_SLOT_BYTES as u64).contains(&fault_pc);
        in_slot.then_some(stepping.breakpoint)
    }

    /// The thread ends: give back the slot it may hold to `xol` (its
    /// process's) and forget its breakpoints, pending returns and slot images.
    pub fn end(&mut self, xol: &XolSlots) {
        if let Some(stepping) = self.stepping.take() {
            let _ = xol.release(stepping.slot);
        }
        self.tree.clear();
        self.returns.clear();
        self.slot_images = Default::default();
    }
}

/// The probe core's name for the address space of process `pid`.
pub fn space_of(pid: u32) -> SpaceId {
    SpaceId(pid as u64)
}

/// The XOL page address of `slot`.
pub fn slot_address(slot: SlotIndex) -> u64 {
    layout::XOL_PAGE + slot.byte_offset::<Isa>() as u64
}
