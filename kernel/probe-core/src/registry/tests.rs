//! Tests of the registry and of a probe's life cycle; under `--cfg loom`, the
//! model of a hit racing an unregistration.

use super::*;

#[cfg(not(loom))]
mod sequential {
    use super::*;
    use crate::insn::aarch64::Simulation;
    use std::{string::ToString, vec::Vec};

    const ADD: u32 = 0x9100_0420; // add x0, x1, #1: stepped
    const NOP: u32 = 0xd503_201f;
    const LDXR: u32 = 0xc85f_7c20;

    fn spec(space: u64, vaddr: u64, original: u32) -> ProbeSpec {
        ProbeSpec {
            space: SpaceId(space),
            vaddr,
            kind: ProbeKind::Uprobe,
            original,
            program: "demo".into(),
            symbol: "compute+0x8".into(),
            trampoline: None,
        }
    }

    #[test]
    fn registration_classifies_and_numbers_the_probe() {
        let mut registry = ProbeRegistry::new();
        let stepped = registry.register(spec(1, 0x40_0100, ADD), SimulatePolicy::All).unwrap();
        let simulated = registry.register(spec(1, 0x40_0104, NOP), SimulatePolicy::All).unwrap();
        let stepped_nop = registry.register(spec(2, 0x40_0104, NOP), SimulatePolicy::Branches).unwrap();
        assert_eq!(stepped.treatment, Treatment::Step);
        assert_eq!(simulated.treatment, Treatment::Simulate(Simulation::Nop));
        assert_eq!(stepped_nop.treatment, Treatment::Step);
        assert_eq!([stepped.id, simulated.id, stepped_nop.id], [ProbeId(1), ProbeId(2), ProbeId(3)]);
        assert_eq!((stepped.program.as_str(), stepped.symbol.as_str()), ("demo", "compute+0x8"));
        assert_eq!(registry.len(), 3);
        assert!(Arc::ptr_eq(&registry.find(SpaceId(1), 0x40_0104).unwrap(), &simulated));
        assert!(registry.find(SpaceId(3), 0x40_0104).is_none());
        assert!(Arc::ptr_eq(registry.get(ProbeId(3)).unwrap(), &stepped_nop));
        // Reports walk by space, then address.
        let order: Vec<_> = registry.iter().map(|probe| probe.id).collect();
        assert_eq!(order, [ProbeId(1), ProbeId(2), ProbeId(3)]);
    }

    #[test]
    fn registration_refuses_what_it_must() {
        let mut registry = ProbeRegistry::with_limit(2);
        assert_eq!(
            registry.register(spec(1, 0x40_0102, ADD), SimulatePolicy::All).unwrap_err(),
            RegisterError::Unaligned { vaddr: 0x40_0102 }
        );
        let first = registry.register(spec(1, 0x40_0100, ADD), SimulatePolicy::All).unwrap();
        assert_eq!(
            registry.register(spec(1, 0x40_0100, NOP), SimulatePolicy::All).unwrap_err(),
            RegisterError::Duplicate { existing: first.id }
        );
        let rejected = registry.register(spec(1, 0x40_0200, LDXR), SimulatePolicy::All).unwrap_err();
        assert!(matches!(rejected, RegisterError::Rejected(RejectReason::Exclusive { mnemonic: "ldxr" })));
        assert_eq!(rejected.to_string(), "exclusive load/store (ldxr) cannot be stepped out of line");
        registry.register(spec(1, 0x40_0300, ADD), SimulatePolicy::All).unwrap();
        assert_eq!(
            registry.register(spec(1, 0x40_0400, ADD), SimulatePolicy::All).unwrap_err(),
            RegisterError::Full { limit: 2 }
        );
        // Refusals consumed no id and left nothing behind.
        assert_eq!(registry.len(), 2);
        assert_eq!(registry.iter().map(|p| p.id.0).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn unregistration_retires_and_ids_are_never_reused() {
        let mut registry = ProbeRegistry::new();
        let probe = registry.register(spec(1, 0x40_0100, ADD), SimulatePolicy::All).unwrap();
        let gone = registry.unregister(probe.id).unwrap();
        assert!(Arc::ptr_eq(&gone, &probe));
        assert!(probe.is_retired());
        assert!(registry.find(SpaceId(1), 0x40_0100).is_none());
        assert_eq!(registry.unregister(probe.id).unwrap_err(), NotRegistered);
        assert_eq!(registry.unregister_at(SpaceId(1), 0x40_0100).unwrap_err(), NotRegistered);
        let again = registry.register(spec(1, 0x40_0100, ADD), SimulatePolicy::All).unwrap();
        assert_eq!(again.id, ProbeId(2));
        assert!(!again.is_retired());
        let by_address = registry.unregister_at(SpaceId(1), 0x40_0100).unwrap();
        assert!(Arc::ptr_eq(&by_address, &again));
        assert!(registry.is_empty());
    }

    #[test]
    fn retiring_a_space_takes_only_its_probes() {
        let mut registry = ProbeRegistry::new();
        for (space, vaddr) in [(1, 0x100), (2, 0x100), (2, 0x104), (3, 0x100)] {
            registry.register(spec(space, vaddr, ADD), SimulatePolicy::All).unwrap();
        }
        let gone = registry.retire_space(SpaceId(2));
        assert_eq!(gone.len(), 2);
        assert!(gone.iter().all(|probe| probe.is_retired() && probe.space == SpaceId(2)));
        assert_eq!(registry.len(), 2);
        assert!(registry.find(SpaceId(1), 0x100).is_some() && registry.find(SpaceId(3), 0x100).is_some());
    }

    #[test]
    fn a_hit_counts_and_holds_off_quiescence_until_it_ends() {
        let mut registry = ProbeRegistry::new();
        let probe = registry.register(spec(1, 0x40_0100, ADD), SimulatePolicy::All).unwrap();
        let first = probe.enter().unwrap();
        let second = probe.enter().unwrap();
        assert_eq!(probe.hits(), 2);
        assert!(!probe.is_quiescent());
        registry.unregister(probe.id).unwrap();
        // Retired: no new hit starts, and it is not counted.
        assert!(probe.enter().is_none());
        assert_eq!(probe.hits(), 2);
        assert!(!probe.is_quiescent(), "two hits are still in flight");
        drop(first);
        assert!(!probe.is_quiescent());
        drop(second);
        assert!(probe.is_quiescent());
        assert!(probe.is_retired());
    }

    #[test]
    fn a_retracted_hit_is_not_counted() {
        let probe = Probe::<Aarch64>::for_test(1, 0x100, ProbeKind::Uprobe, ADD);
        let hit = probe.enter().unwrap();
        assert_eq!(probe.hits(), 1);
        // No XOL slot was free: the task will execute the brk again later.
        hit.retract();
        assert_eq!(probe.hits(), 0);
        assert!(probe.is_quiescent());
    }

    #[test]
    fn retiring_reports_the_hits_in_flight() {
        let probe = Probe::<Aarch64>::for_test(1, 0x100, ProbeKind::Uprobe, ADD);
        let hit = probe.enter().unwrap();
        assert_eq!(probe.retire_for_test(), 1);
        drop(hit);
        assert_eq!(probe.retire_for_test(), 0);
    }

    #[test]
    fn errors_read_as_one_line() {
        assert_eq!(RegisterError::Unaligned { vaddr: 0x401 }.to_string(), "address 0x401 is not instruction-aligned");
        assert_eq!(RegisterError::Duplicate { existing: ProbeId(7) }.to_string(), "address already probed by probe 7");
        assert_eq!(RegisterError::Full { limit: 3 }.to_string(), "too many probes (the limit is 3)");
        assert_eq!(ProbeKind::Uretprobe.as_str(), "uretprobe");
    }
}

/// `RUSTFLAGS="--cfg loom" cargo test -p probe-core --release loom`
#[cfg(loom)]
mod models {
    use super::*;
    use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};

    /// A thread hitting the probe races the kernel unregistering it (retire,
    /// then wait until quiescent). Whatever the interleaving, a hit that
    /// started is counted before unregistration returns, and no hit is live
    /// after it.
    #[test]
    fn loom_no_hit_outlives_unregistration() {
        loom::model(|| {
            let probe = Probe::<Aarch64>::for_test(1, 0x100, ProbeKind::Uprobe, 0x9100_0420);
            let unregistered = alloc::sync::Arc::new(AtomicBool::new(false));
            let hitter = {
                let probe = Arc::clone(&probe);
                let unregistered = alloc::sync::Arc::clone(&unregistered);
                loom::thread::spawn(move || {
                    if let Some(hit) = probe.enter() {
                        assert!(!unregistered.load(SeqCst), "a hit ran after unregistration returned");
                        drop(hit);
                        true
                    } else {
                        false
                    }
                })
            };
            probe.retire_for_test();
            while !probe.is_quiescent() {
                loom::thread::yield_now();
            }
            let hits_at_return = probe.hits();
            unregistered.store(true, SeqCst);
            let hit = hitter.join().unwrap();
            assert_eq!(probe.hits(), u64::from(hit));
            assert_eq!(hits_at_return, probe.hits(), "a hit was counted after unregistration returned");
        });
    }
}
