//! The global probe registry: every registered probe, keyed by address space
//! and user address, and the life cycle of one probe: registered (classified,
//! counted), hit (an [`ActiveHit`] while the kernel handles it), retired
//! (unregistered: no new hit can start), quiescent (no hit in flight: the
//! kernel may let go of it).
//!
//! The kernel keeps the registry behind a spin lock and takes it only on
//! registration, unregistration, reports, and a task's first hit of a probe;
//! every later hit in that task is found in the task's own
//! [`BreakpointTree`](crate::tree::BreakpointTree) without the lock.
//!
//! # Unregistering, in order
//!
//! 1. Restore the original instruction over the `brk` (and do the cache
//!    maintenance). A thread that trapped on the `brk` just before is still
//!    served: the probe is not retired yet.
//! 2. [`ProbeRegistry::unregister`]: remove and retire. A thread that trapped
//!    before step 1 and looks up only now misses, sees that the instruction
//!    there is no longer a `brk`, and restarts it.
//! 3. Wait until [`Probe::is_quiescent`]: every hit that started has finished
//!    (its step, its counting). Then no hit of this probe will ever be
//!    counted again, and the last `Arc` may drop.
//!
//! Retiring before restoring would be wrong: a thread trapping in between
//! would find no probe and a `brk` still there, and be killed for a `brk` of
//! its own.

use crate::{
    insn::{aarch64::Aarch64, Arch, Classification, RejectReason, SimulatePolicy},
    sync::{self, Ordering},
};
use alloc::{collections::BTreeMap, string::String, sync::Arc, vec::Vec};
use core::{fmt, sync::atomic::AtomicU64};

/// An address space (a process), as the kernel numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpaceId(pub u64);

/// A probe's number: unique for the kernel's lifetime, never reused (a stale
/// id held by a user cannot name a newer probe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeId(pub u32);

impl fmt::Display for ProbeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "probe {}", self.0)
    }
}

/// Entry probe or return probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// Fires when the instruction at the address is about to run.
    Uprobe,
    /// Fires when the function starting at the address returns: the entry
    /// hit hijacks x30 to the trampoline (see [`crate::retstack`]).
    Uretprobe,
}

impl ProbeKind {
    /// The report's spelling: `"uprobe"`, `"uretprobe"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uprobe => "uprobe",
            Self::Uretprobe => "uretprobe",
        }
    }
}

/// What a registered probe does with its instruction on a hit (a rejected
/// instruction never gets this far).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Treatment<S> {
    Simulate(S),
    Step,
}

/// What the kernel knows when it asks to register a probe.
#[derive(Clone, Debug)]
pub struct ProbeSpec<A: Arch = Aarch64> {
    pub space: SpaceId,
    /// The user address of the probed instruction.
    pub vaddr: u64,
    pub kind: ProbeKind,
    /// The instruction at `vaddr`, read from the text before the `brk`
    /// goes in.
    pub original: A::Insn,
    /// For reports: the program's name and the symbol (with offset) the
    /// address came from, e.g. `"demo"`, `"compute+0x8"`.
    pub program: String,
    pub symbol: String,
    /// The user address of the probe's branch trampoline
    /// ([`crate::trampoline`]), if its instruction was relocated into one;
    /// `None`: the probe stays on the breakpoint path.
    pub trampoline: Option<u64>,
}

/// One registered probe, shared (via `Arc`) by the registry, every task tree
/// that cached it, and every hit in flight.
#[derive(Debug)]
pub struct Probe<A: Arch = Aarch64> {
    pub id: ProbeId,
    pub space: SpaceId,
    pub vaddr: u64,
    pub kind: ProbeKind,
    pub original: A::Insn,
    pub treatment: Treatment<A::Simulation>,
    pub program: String,
    pub symbol: String,
    /// As [`ProbeSpec::trampoline`].
    pub trampoline: Option<u64>,
    hits: AtomicU64,
    return_hits: AtomicU64,
    /// The retired flag ([`RETIRED`], set once, by unregistration) and, in
    /// the bits below it, the number of hits in flight ([`ActiveHit`]s
    /// alive). One word, so that a hit starting and the probe retiring are
    /// read-modify-writes of the same location: the hardware orders them, and
    /// exactly one of the two sees the other.
    state: sync::AtomicU32,
}

/// The retired bit of [`Probe::state`]; the bits below it count hits in flight.
const RETIRED: u32 = 1 << 31;

impl<A: Arch> Probe<A> {
    /// Start a hit: `None` if the probe is retired. The hit is counted here,
    /// and lasts until the returned [`ActiveHit`] is dropped (after the step,
    /// or when the task dies).
    ///
    /// The count goes up and the retired bit is read in one `fetch_add`, and
    /// retirement sets the bit and reads the count in one `fetch_or`: every
    /// read-modify-write of one location happens in a single total order, so
    /// either this hit comes first (and unregistration waits for it) or the
    /// retirement does (and this hit sees the bit and backs out). The loom
    /// model `loom_no_hit_outlives_unregistration` checks every interleaving.
    pub fn enter(self: &Arc<Self>) -> Option<ActiveHit<A>> {
        if self.state.fetch_add(1, Ordering::Acquire) & RETIRED != 0 {
            self.state.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(ActiveHit { probe: Arc::clone(self) })
    }

    /// [`Probe::enter`] for a hit that ends before the caller's borrow of
    /// the probe does (a trampoline call, finished within one trap): the
    /// same count and retirement check, without a reference count of its
    /// own (two fewer atomic operations per hit).
    pub fn enter_borrowed(&self) -> Option<BorrowedHit<'_, A>> {
        if self.state.fetch_add(1, Ordering::Acquire) & RETIRED != 0 {
            self.state.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(BorrowedHit { probe: self })
    }

    pub fn is_retired(&self) -> bool {
        self.state.load(Ordering::Relaxed) & RETIRED != 0
    }

    /// No hit in flight. Once the probe is retired and this is true, no hit
    /// of it will start or be counted again. `Acquire`: everything the last
    /// hit did (its counting) happens before the caller goes on.
    pub fn is_quiescent(&self) -> bool {
        self.state.load(Ordering::Acquire) & !RETIRED == 0
    }

    /// Hits started so far (the report's `hits`).
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Returns seen through the trampoline (the report's `return_hits`).
    pub fn return_hits(&self) -> u64 {
        self.return_hits.load(Ordering::Relaxed)
    }

    pub(crate) fn count_return(&self) {
        self.return_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Set the retired bit; returns the hits in flight at that moment.
    fn retire(&self) -> u32 {
        self.state.fetch_or(RETIRED, Ordering::AcqRel) & !RETIRED
    }

    /// A probe outside any registry, for tests of the tree and return stack.
    #[cfg(test)]
    pub(crate) fn for_test(id: u32, vaddr: u64, kind: ProbeKind, original: A::Insn) -> Arc<Self> {
        let treatment = match A::classify(original, SimulatePolicy::All) {
            Classification::Simulate(s) => Treatment::Simulate(s),
            _ => Treatment::Step,
        };
        Arc::new(Self::new(
            ProbeId(id),
            SpaceId(1),
            vaddr,
            kind,
            original,
            treatment,
            String::new(),
            String::new(),
            None,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        id: ProbeId,
        space: SpaceId,
        vaddr: u64,
        kind: ProbeKind,
        original: A::Insn,
        treatment: Treatment<A::Simulation>,
        program: String,
        symbol: String,
        trampoline: Option<u64>,
    ) -> Self {
        Self {
            id,
            space,
            vaddr,
            kind,
            original,
            treatment,
            program,
            symbol,
            trampoline,
            hits: AtomicU64::new(0),
            return_hits: AtomicU64::new(0),
            state: sync::AtomicU32::new(0),
        }
    }

    /// Retire outside a registry (tests).
    #[cfg(test)]
    pub(crate) fn retire_for_test(&self) -> u32 {
        self.retire()
    }
}

/// A hit in progress. While one is alive its probe is not quiescent, so
/// unregistration waits for it. The kernel keeps it in the thread's state
/// from the `brk` until the step completes (or the thread dies: dropping the
/// thread drops it).
#[derive(Debug)]
pub struct ActiveHit<A: Arch = Aarch64> {
    probe: Arc<Probe<A>>,
}

impl<A: Arch> ActiveHit<A> {
    pub fn probe(&self) -> &Arc<Probe<A>> {
        &self.probe
    }

    /// Take the hit back: it could not go on (no XOL slot was free), and the
    /// task will execute the `brk` again later, when it will be counted.
    pub fn retract(self) {
        self.probe.hits.fetch_sub(1, Ordering::Relaxed);
        // Dropping `self` ends the in-flight count as usual.
    }
}

impl<A: Arch> Drop for ActiveHit<A> {
    fn drop(&mut self) {
        // `Release`: the hit's work happens before a waiter sees the count drop.
        self.probe.state.fetch_sub(1, Ordering::Release);
    }
}

/// A hit in progress that borrows its probe ([`Probe::enter_borrowed`]):
/// like [`ActiveHit`], unregistration waits for it.
#[derive(Debug)]
pub struct BorrowedHit<'a, A: Arch = Aarch64> {
    probe: &'a Probe<A>,
}

impl<A: Arch> Drop for BorrowedHit<'_, A> {
    fn drop(&mut self) {
        // `Release`: the hit's work happens before a waiter sees the count drop.
        self.probe.state.fetch_sub(1, Ordering::Release);
    }
}

/// Why a registration was refused. `Display` is the one-line error the user
/// sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// Not on an instruction boundary.
    Unaligned { vaddr: u64 },
    /// That address already has a probe (of either kind).
    Duplicate { existing: ProbeId },
    /// The classifier refused the instruction.
    Rejected(RejectReason),
    /// The registry holds its limit of probes (the guard against exhausting
    /// the kernel heap by registration).
    Full { limit: usize },
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unaligned { vaddr } => write!(f, "address {vaddr:#x} is not instruction-aligned"),
            Self::Duplicate { existing } => write!(f, "address already probed by {existing}"),
            Self::Rejected(reason) => write!(f, "{reason}"),
            Self::Full { limit } => write!(f, "too many probes (the limit is {limit})"),
        }
    }
}

/// Unregistration of a probe that is not registered (never was, or already
/// gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotRegistered;

impl fmt::Display for NotRegistered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no such probe")
    }
}

/// Every registered probe.
pub struct ProbeRegistry<A: Arch = Aarch64> {
    by_address: BTreeMap<(SpaceId, u64), Arc<Probe<A>>>,
    by_id: BTreeMap<ProbeId, (SpaceId, u64)>,
    next_id: u32,
    limit: usize,
}

impl<A: Arch> Default for ProbeRegistry<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Arch> ProbeRegistry<A> {
    /// The default limit on registered probes.
    pub const DEFAULT_LIMIT: usize = 4096;

    /// Empty; `const` so the kernel can put it in a `static` spin lock.
    pub const fn new() -> Self {
        Self::with_limit(Self::DEFAULT_LIMIT)
    }

    pub const fn with_limit(limit: usize) -> Self {
        Self { by_address: BTreeMap::new(), by_id: BTreeMap::new(), next_id: 1, limit }
    }

    /// Classify the instruction under `policy` and register the probe.
    /// Refuses an unaligned address, a second probe on one address, a
    /// rejected instruction, and registration past the limit. The caller
    /// installs the `brk` only after this succeeds.
    pub fn register(&mut self, spec: ProbeSpec<A>, policy: SimulatePolicy) -> Result<Arc<Probe<A>>, RegisterError> {
        if !spec.vaddr.is_multiple_of(A::INSN_ALIGN) {
            return Err(RegisterError::Unaligned { vaddr: spec.vaddr });
        }
        if let Some(existing) = self.by_address.get(&(spec.space, spec.vaddr)) {
            return Err(RegisterError::Duplicate { existing: existing.id });
        }
        let treatment = match A::classify(spec.original, policy) {
            Classification::Simulate(simulation) => Treatment::Simulate(simulation),
            Classification::Step => Treatment::Step,
            Classification::Reject(reason) => return Err(RegisterError::Rejected(reason)),
        };
        if self.by_address.len() >= self.limit || self.next_id == u32::MAX {
            return Err(RegisterError::Full { limit: self.limit });
        }
        let id = ProbeId(self.next_id);
        self.next_id += 1;
        let probe = Arc::new(Probe::new(
            id,
            spec.space,
            spec.vaddr,
            spec.kind,
            spec.original,
            treatment,
            spec.program,
            spec.symbol,
            spec.trampoline,
        ));
        self.by_address.insert((spec.space, spec.vaddr), Arc::clone(&probe));
        self.by_id.insert(id, (spec.space, spec.vaddr));
        Ok(probe)
    }

    /// Remove and retire probe `id`; the caller restored the text first and
    /// now waits for [`Probe::is_quiescent`] (see the module doc).
    pub fn unregister(&mut self, id: ProbeId) -> Result<Arc<Probe<A>>, NotRegistered> {
        let key = self.by_id.remove(&id).ok_or(NotRegistered)?;
        let probe = self.by_address.remove(&key).ok_or(NotRegistered)?;
        probe.retire();
        Ok(probe)
    }

    /// Remove and retire the probe at `(space, vaddr)`.
    pub fn unregister_at(&mut self, space: SpaceId, vaddr: u64) -> Result<Arc<Probe<A>>, NotRegistered> {
        let id = self.by_address.get(&(space, vaddr)).ok_or(NotRegistered)?.id;
        self.unregister(id)
    }

    /// Remove and retire every probe of an address space that is going away
    /// (its process exited). Returned so the kernel can still report them.
    pub fn retire_space(&mut self, space: SpaceId) -> Vec<Arc<Probe<A>>> {
        let keys: Vec<_> = self.by_address.range((space, 0)..=(space, u64::MAX)).map(|(key, _)| *key).collect();
        keys.into_iter().filter_map(|(space, vaddr)| self.unregister_at(space, vaddr).ok()).collect()
    }

    /// The live probe at `(space, vaddr)`, if any (a task's tree miss).
    pub fn find(&self, space: SpaceId, vaddr: u64) -> Option<Arc<Probe<A>>> {
        self.by_address.get(&(space, vaddr)).cloned()
    }

    /// The probes of `space` at addresses in `range`, in address order.
    pub fn probes_in(&self, space: SpaceId, range: core::ops::Range<u64>) -> impl Iterator<Item = &Arc<Probe<A>>> {
        self.by_address.range((space, range.start)..(space, range.end)).map(|(_, probe)| probe)
    }

    pub fn get(&self, id: ProbeId) -> Option<&Arc<Probe<A>>> {
        self.by_id.get(&id).and_then(|key| self.by_address.get(key))
    }

    /// Every registered probe, by address space then address (reports).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Probe<A>>> {
        self.by_address.values()
    }

    pub fn len(&self) -> usize {
        self.by_address.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }
}

#[cfg(test)]
mod tests;
