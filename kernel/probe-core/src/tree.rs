//! One task's breakpoint tree: the probes this task has hit, by user
//! address, each with the XOL slot the task stepped it in last time. It is
//! the hit path's first stop and takes no lock: only the task itself (on its
//! own exceptions) touches it.
//!
//! It is a cache of the global registry, and a cache can go stale: a probe
//! may be unregistered (and even a new one registered at the same address)
//! while this task still holds the old entry. So every lookup checks the
//! probe's retired flag; a retired entry is dropped on the spot and the
//! lookup reports a miss, which sends the kernel to the registry. (The seed
//! patch kept its per-task entries until the task exited and used them
//! unchecked.)

use crate::{
    insn::{aarch64::Aarch64, Arch},
    registry::{ActiveHit, Probe, SpaceId},
    xol::SlotIndex,
};
use alloc::{collections::BTreeMap, sync::Arc, vec::Vec};

/// What one task remembers about one breakpoint.
#[derive(Debug)]
struct CachedBreakpoint<A: Arch> {
    probe: Arc<Probe<A>>,
    /// The slot this task stepped the probe in last time: the first choice
    /// next time (`XolPolicy::Reuse`).
    slot: Option<SlotIndex>,
}

/// The answer of a tree lookup.
#[derive(Debug)]
pub enum TreeLookup<A: Arch = Aarch64> {
    /// A live probe: the hit has started (see [`Probe::enter`]).
    Hit { hit: ActiveHit<A>, remembered_slot: Option<SlotIndex> },
    /// Nothing cached for this address: ask the registry.
    Miss,
    /// A cached probe that has been retired: the entry is gone now; ask the
    /// registry (a newer probe may sit at the same address).
    StaleRemoved,
}

/// The tree for one task of address space `space`.
#[derive(Debug)]
pub struct BreakpointTree<A: Arch = Aarch64> {
    space: SpaceId,
    entries: BTreeMap<u64, CachedBreakpoint<A>>,
}

/// A probe of another address space offered to a task's tree (a kernel bug,
/// refused rather than cached).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrongSpace {
    pub tree: SpaceId,
    pub probe: SpaceId,
}

impl<A: Arch> BreakpointTree<A> {
    pub const fn new(space: SpaceId) -> Self {
        Self { space, entries: BTreeMap::new() }
    }

    pub fn space(&self) -> SpaceId {
        self.space
    }

    /// Look up the breakpoint at `vaddr` and start the hit if it is live.
    /// Inlined into the kernel's hit path: out of line, its call and its
    /// result through memory cost a hit about 17 instructions.
    #[inline]
    pub fn lookup(&mut self, vaddr: u64) -> TreeLookup<A> {
        let Some(entry) = self.entries.get(&vaddr) else {
            return TreeLookup::Miss;
        };
        match entry.probe.enter() {
            Some(hit) => TreeLookup::Hit { hit, remembered_slot: entry.slot },
            None => {
                // EXERCISE BREAKAGE (docs/exercises.md, exercise 3): the feature keeps the stale entry.
                #[cfg(not(feature = "exercise-keep-retired-tree-entries"))]
                self.entries.remove(&vaddr);
                TreeLookup::StaleRemoved
            }
        }
    }

    /// Cache `probe` (the registry's answer to a miss) and start the hit.
    /// `Ok(None)` if the probe was retired in between (nothing is cached);
    /// an entry already there for the address is replaced.
    pub fn insert(&mut self, probe: Arc<Probe<A>>) -> Result<Option<ActiveHit<A>>, WrongSpace> {
        if probe.space != self.space {
            return Err(WrongSpace { tree: self.space, probe: probe.space });
        }
        let Some(hit) = probe.enter() else {
            return Ok(None);
        };
        self.entries.insert(probe.vaddr, CachedBreakpoint { probe, slot: None });
        Ok(Some(hit))
    }

    /// Remember the slot the breakpoint at `vaddr` was just stepped in. A
    /// no-op if the entry is gone.
    pub fn remember_slot(&mut self, vaddr: u64, slot: SlotIndex) {
        if let Some(entry) = self.entries.get_mut(&vaddr) {
            entry.slot = Some(slot);
        }
    }

    /// Drop every entry whose probe is retired; returns how many. `retain`
    /// decides for each entry while it walks, so removing one never loses
    /// the walk's place (the seed patch erased a node and then asked the
    /// erased node for its successor).
    pub fn prune_retired(&mut self) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, entry| !entry.probe.is_retired());
        before - self.entries.len()
    }

    /// Empty the tree (the task exits, or execs a new program) and return
    /// the slots it remembered, for the trace. The slots themselves are not
    /// held (a slot is released at the end of each step), so there is nothing
    /// to free: other threads of the address space may still reuse them.
    pub fn clear(&mut self) -> Vec<SlotIndex> {
        core::mem::take(&mut self.entries).into_values().filter_map(|entry| entry.slot).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached entries: (address, probe, remembered slot).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Arc<Probe<A>>, Option<SlotIndex>)> {
        self.entries.iter().map(|(vaddr, entry)| (*vaddr, &entry.probe, entry.slot))
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
