//! Tests of the per-task breakpoint tree: caching, staleness, removal while
//! walking, and a property test of the whole find path (tree, then registry)
//! against a model, with probes registered and unregistered between hits.

use super::*;
use crate::{
    insn::SimulatePolicy,
    registry::{ProbeId, ProbeKind, ProbeRegistry, ProbeSpec},
};
use proptest::prelude::*;
use std::{collections::BTreeMap, string::String, vec, vec::Vec};

const ADD: u32 = 0x9100_0420;
const SPACE: SpaceId = SpaceId(1);

fn slot(index: usize) -> SlotIndex {
    SlotIndex::new(index).unwrap()
}

fn probe(id: u32, vaddr: u64) -> Arc<Probe> {
    Probe::for_test(id, vaddr, ProbeKind::Uprobe, ADD)
}

#[test]
fn a_miss_then_a_cached_hit_that_remembers_its_slot() {
    let mut tree = BreakpointTree::new(SPACE);
    assert!(matches!(tree.lookup(0x100), TreeLookup::Miss));
    let p = probe(1, 0x100);
    let hit = tree.insert(Arc::clone(&p)).unwrap().unwrap();
    assert!(Arc::ptr_eq(hit.probe(), &p));
    drop(hit);
    tree.remember_slot(0x100, slot(7));
    match tree.lookup(0x100) {
        TreeLookup::Hit { hit, remembered_slot } => {
            assert!(Arc::ptr_eq(hit.probe(), &p));
            assert_eq!(remembered_slot, Some(slot(7)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.hits(), 2);
    assert!(p.is_quiescent());
    // Remembering for an address the tree does not hold is harmless.
    tree.remember_slot(0x200, slot(3));
    assert_eq!(tree.len(), 1);
}

#[test]
fn a_retired_entry_is_removed_on_lookup_and_never_used() {
    let mut tree = BreakpointTree::new(SPACE);
    let old = probe(1, 0x100);
    drop(tree.insert(Arc::clone(&old)).unwrap());
    old.retire_for_test();
    assert!(matches!(tree.lookup(0x100), TreeLookup::StaleRemoved));
    assert_eq!(old.hits(), 1, "the stale lookup did not count a hit");
    assert!(tree.is_empty());
    assert!(matches!(tree.lookup(0x100), TreeLookup::Miss));
    // A new probe at the same address replaces it.
    let new = probe(2, 0x100);
    drop(tree.insert(Arc::clone(&new)).unwrap());
    let TreeLookup::Hit { hit, remembered_slot } = tree.lookup(0x100) else { panic!() };
    assert_eq!((hit.probe().id, remembered_slot), (ProbeId(2), None));
}

#[test]
fn inserting_a_retired_probe_caches_nothing() {
    let mut tree = BreakpointTree::new(SPACE);
    let p = probe(1, 0x100);
    p.retire_for_test();
    assert!(tree.insert(p).unwrap().is_none());
    assert!(tree.is_empty());
}

#[test]
fn a_probe_of_another_space_is_refused() {
    let mut tree = BreakpointTree::<crate::Aarch64>::new(SpaceId(9));
    let error = tree.insert(probe(1, 0x100)).unwrap_err();
    assert_eq!(error, WrongSpace { tree: SpaceId(9), probe: SPACE });
}

/// The seed patch erased a node and then asked it for its successor. Here:
/// retire runs of neighbours (first, last, consecutive, all) and check that
/// exactly the live ones stay.
#[test]
fn pruning_while_walking_removes_exactly_the_retired_entries() {
    let patterns: [fn(u64) -> bool; 5] =
        [|i| i % 2 == 0, |i| !(10..=90).contains(&i), |i| (30..70).contains(&i), |_| true, |i| i == 0 || i == 99];
    for retired in patterns {
        let mut tree = BreakpointTree::new(SPACE);
        let probes: Vec<_> = (0..100).map(|i| probe(i as u32 + 1, 0x1000 + 4 * i)).collect();
        for p in &probes {
            drop(tree.insert(Arc::clone(p)).unwrap());
        }
        let mut expected_removed = 0;
        for (i, p) in probes.iter().enumerate() {
            if retired(i as u64) {
                p.retire_for_test();
                expected_removed += 1;
            }
        }
        assert_eq!(tree.prune_retired(), expected_removed);
        let left: Vec<_> = tree.iter().map(|(vaddr, _, _)| vaddr).collect();
        let expected: Vec<_> = (0..100).filter(|&i| !retired(i)).map(|i| 0x1000 + 4 * i).collect();
        assert_eq!(left, expected);
        assert!(tree.iter().all(|(_, p, _)| !p.is_retired()));
    }
}

#[test]
fn clearing_returns_the_remembered_slots() {
    let mut tree = BreakpointTree::new(SPACE);
    for (i, vaddr) in [0x100, 0x104, 0x108].into_iter().enumerate() {
        let p = probe(i as u32 + 1, vaddr);
        drop(tree.insert(p).unwrap());
    }
    tree.remember_slot(0x100, slot(5));
    tree.remember_slot(0x108, slot(9));
    assert_eq!(tree.clear(), vec![slot(5), slot(9)]);
    assert!(tree.is_empty());
    assert!(tree.clear().is_empty());
}

// ---- The find path against a model -------------------------------------------

#[derive(Clone, Debug)]
enum Action {
    Register(usize),
    Unregister(usize),
    Hit { task: usize, address: usize },
    Prune(usize),
    Exit(usize),
}

const ADDRESSES: usize = 6;
const TASKS: usize = 3;

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => (0..ADDRESSES).prop_map(Action::Register),
        2 => (0..ADDRESSES).prop_map(Action::Unregister),
        6 => (0..TASKS, 0..ADDRESSES).prop_map(|(task, address)| Action::Hit { task, address }),
        1 => (0..TASKS).prop_map(Action::Prune),
        1 => (0..TASKS).prop_map(Action::Exit),
    ]
}

/// What a hit on `vaddr` resolves to, the way the kernel's brk handler does
/// it: the task's tree, then on a miss the registry, caching the answer.
fn find(tree: &mut BreakpointTree, registry: &ProbeRegistry, vaddr: u64) -> Option<ActiveHit> {
    match tree.lookup(vaddr) {
        TreeLookup::Hit { hit, .. } => Some(hit),
        TreeLookup::Miss | TreeLookup::StaleRemoved => {
            let probe = registry.find(SPACE, vaddr)?;
            tree.insert(probe).unwrap()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random registrations, unregistrations and hits from several tasks:
    /// every hit resolves to the probe the model says is live at that
    /// address (never a retired one), a hit with no live probe finds
    /// nothing, and every probe's hit count matches the model's.
    #[test]
    fn hits_resolve_only_to_live_probes(actions in proptest::collection::vec(action(), 1..120)) {
        let mut registry = ProbeRegistry::new();
        let mut trees: Vec<BreakpointTree> = (0..TASKS).map(|_| BreakpointTree::new(SPACE)).collect();
        let mut live: BTreeMap<usize, ProbeId> = BTreeMap::new();
        let mut expected_hits: BTreeMap<ProbeId, u64> = BTreeMap::new();
        let mut all: Vec<Arc<Probe>> = Vec::new();
        let vaddr = |address: usize| 0x40_0000 + 4 * address as u64;
        for action in actions {
            match action {
                Action::Register(address) => {
                    let spec = ProbeSpec {
                        space: SPACE,
                        vaddr: vaddr(address),
                        kind: ProbeKind::Uprobe,
                        original: ADD,
                        program: String::new(),
                        symbol: String::new(),
                        trampoline: None,
                    };
                    match registry.register(spec, SimulatePolicy::All) {
                        Ok(probe) => {
                            prop_assert!(live.insert(address, probe.id).is_none());
                            expected_hits.insert(probe.id, 0);
                            all.push(probe);
                        }
                        Err(_) => prop_assert!(live.contains_key(&address)),
                    }
                }
                Action::Unregister(address) => {
                    let result = registry.unregister_at(SPACE, vaddr(address));
                    prop_assert_eq!(result.is_ok(), live.remove(&address).is_some());
                    if let Ok(probe) = result {
                        prop_assert!(probe.is_quiescent());
                    }
                }
                Action::Hit { task, address } => {
                    let hit = find(&mut trees[task], &registry, vaddr(address));
                    match (hit, live.get(&address)) {
                        (Some(hit), Some(&id)) => {
                            prop_assert_eq!(hit.probe().id, id);
                            prop_assert!(!hit.probe().is_retired());
                            *expected_hits.get_mut(&id).unwrap() += 1;
                        }
                        (None, None) => {}
                        (hit, expected) => prop_assert!(false, "hit {:?}, expected {:?}", hit.map(|h| h.probe().id), expected),
                    }
                }
                Action::Prune(task) => {
                    trees[task].prune_retired();
                    prop_assert!(trees[task].iter().all(|(_, probe, _)| !probe.is_retired()));
                }
                Action::Exit(task) => {
                    trees[task].clear();
                }
            }
        }
        for probe in &all {
            prop_assert_eq!(probe.hits(), expected_hits[&probe.id]);
            prop_assert!(probe.is_quiescent());
        }
    }
}
