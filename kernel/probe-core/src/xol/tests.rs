//! Tests of the XOL slot allocator: unit tests, a property test against a
//! model, and loom models of threads sharing slots.

use super::*;

/// Unit and property tests use `core`'s atomics: under `--cfg loom` the
/// default word is loom's, which only works inside a model.
#[cfg(not(loom))]
mod sequential {
    use super::*;
    use proptest::prelude::*;
    use std::{collections::BTreeSet, vec::Vec};

    fn slot(index: usize) -> SlotIndex {
        SlotIndex::new(index).unwrap()
    }

    const NOP: u32 = 0xd503_201f;
    const ADD: u32 = 0x9100_0420; // add x0, x1, #1

    #[test]
    fn slot_content_records_the_bytes_and_their_length() {
        // x86's `add [rax], al` is `00 00`: with the length in the record it
        // still differs from a fresh page's all-zero record.
        assert_ne!(SlotContent::from_bytes(&[0, 0]), SlotContent::NEVER_WRITTEN);
        assert_ne!(SlotContent::from_bytes(&[0x90]), SlotContent::from_bytes(&[0x90, 0x00]));
        let longest = [0x66u8; 15];
        assert_eq!(SlotContent::from_bytes(&longest), SlotContent::from_bytes(&longest));
        assert_ne!(SlotContent::from_bytes(&longest), SlotContent::from_bytes(&longest[..14]));
        assert_eq!(SlotContent::from(0u32), SlotContent::NEVER_WRITTEN);
        assert_ne!(SlotContent::from(ADD), SlotContent::from(NOP));
    }

    #[test]
    fn an_x86_64_page_has_256_slots_with_two_word_records() {
        let slots = XolSlots::for_arch::<crate::X86_64>(SLOTS_PER_PAGE);
        assert_eq!(slots.slot_count(), 256);
        let mov = SlotContent::from_bytes(&[0x48, 0x8b, 0x81, 0xc9, 0x5e, 0, 0]);
        let counters = Counters::new();
        let first = choose_slot(&slots, XolPolicy::Reuse, None, mov, &counters).unwrap();
        assert!(first.must_write);
        slots.note_written(first.slot, mov);
        assert_eq!(slots.contents(first.slot), mov);
        slots.release(first.slot).unwrap();
        // Same first 8 bytes, different rest: a different content.
        let longer = SlotContent::from_bytes(&[0x48, 0x8b, 0x81, 0xc9, 0x5e, 0, 0, 0x90]);
        let other = choose_slot(&slots, XolPolicy::Reuse, None, longer, &counters).unwrap();
        assert!(other.must_write && other.slot != first.slot);
        let again = choose_slot(&slots, XolPolicy::Reuse, None, mov, &counters).unwrap();
        assert_eq!((again.slot, again.must_write), (first.slot, false));
    }

    #[test]
    #[should_panic(expected = "wider than this page's 1-word records")]
    fn an_a64_page_refuses_a_two_word_record() {
        let slots = XolSlots::new(4);
        let slot = slots.try_take(None).unwrap();
        slots.note_written(slot, SlotContent::from_bytes(&[0x90]));
    }

    #[test]
    fn slots_per_page_follows_the_slot_size() {
        assert_eq!(slots_per_page::<Aarch64>(), 1024);
        assert_eq!(slots_per_page::<Aarch64>(), SLOTS_PER_PAGE);
    }

    #[test]
    fn slot_zero_is_never_handed_out() {
        let slots = XolSlots::new(4);
        assert_eq!(slots.try_take(Some(SlotIndex::TRAMPOLINE)), Some(slot(1)));
        assert_eq!(slots.try_take(None), Some(slot(2)));
        assert_eq!(slots.try_take(None), Some(slot(3)));
        assert_eq!(slots.try_take(None), None);
        assert_eq!(slots.release(SlotIndex::TRAMPOLINE), Err(SlotNotHeld(SlotIndex::TRAMPOLINE)));
    }

    #[test]
    fn the_preferred_slot_is_taken_when_free_else_any_free_slot() {
        let slots = XolSlots::full_page();
        assert_eq!(slots.try_take(Some(slot(700))), Some(slot(700)));
        assert_eq!(slots.try_take(Some(slot(700))), Some(slot(1)));
        slots.release(slot(700)).unwrap();
        assert_eq!(slots.try_take(Some(slot(700))), Some(slot(700)));
        // Past the slots in use, the preference is ignored.
        let small = XolSlots::new(8);
        assert_eq!(small.try_take(Some(slot(9))), Some(slot(1)));
    }

    #[test]
    fn a_full_page_hands_out_1023_slots_then_waits() {
        let slots = XolSlots::full_page();
        let taken: BTreeSet<_> = (1..SLOTS_PER_PAGE).map(|_| slots.try_take(None).unwrap()).collect();
        assert_eq!(taken.len(), SLOTS_PER_PAGE - 1);
        assert!(!slots.has_free_slot());
        assert_eq!(slots.try_take(None), None);
        slots.release(slot(1000)).unwrap();
        assert!(slots.has_free_slot());
        assert_eq!(slots.try_take(None), Some(slot(1000)));
    }

    #[test]
    fn releasing_a_slot_nobody_holds_is_an_error() {
        let slots = XolSlots::new(4);
        assert_eq!(slots.release(slot(2)), Err(SlotNotHeld(slot(2))));
        let taken = slots.try_take(None).unwrap();
        assert_eq!(slots.release(taken), Ok(()));
        assert_eq!(slots.release(taken), Err(SlotNotHeld(taken)));
        assert_eq!(slots.release(slot(900)), Err(SlotNotHeld(slot(900))));
    }

    #[test]
    fn slot_addresses_are_four_bytes_apart() {
        assert_eq!(slot(0).byte_offset::<Aarch64>(), 0);
        assert_eq!(slot(5).byte_offset::<Aarch64>(), 20);
        assert_eq!(slot(1023).byte_offset::<Aarch64>(), 4092);
        assert_eq!(SlotIndex::new(1024), None);
    }

    /// One thread hitting one stepped probe `hits` times: take, write if
    /// told to, release, remember.
    fn hit_repeatedly(policy: XolPolicy, hits: usize) -> Snapshot {
        let slots = XolSlots::full_page();
        let counters = Counters::new();
        let mut remembered = None;
        for _ in 0..hits {
            let choice = choose_slot(&slots, policy, remembered, ADD, &counters).unwrap();
            if choice.must_write {
                slots.note_written(choice.slot, ADD);
            }
            assert_eq!(slots.contents(choice.slot), SlotContent::from(ADD));
            slots.release(choice.slot).unwrap();
            remembered = Some(choice.slot);
        }
        counters.snapshot()
    }

    use crate::counters::Snapshot;

    #[test]
    fn reuse_writes_the_slot_once_for_many_hits() {
        let counts = hit_repeatedly(XolPolicy::Reuse, 1000);
        assert_eq!((counts.slot_written, counts.slot_reused, counts.slot_waits), (1, 999, 0));
    }

    /// Two probes hit in turn by one task (a loop calling two probed
    /// functions): each keeps a slot of its own, so after the first two hits
    /// nothing is written again. (Handing out the lowest free slot every time
    /// would make them share slot 1 and rewrite it on every hit.)
    #[test]
    fn two_probes_hit_in_turn_keep_their_own_slots() {
        let slots = XolSlots::full_page();
        let counters = Counters::new();
        let mut remembered = [None, None];
        for round in 0..100 {
            for (probe, insn) in [ADD, NOP].into_iter().enumerate() {
                let choice = choose_slot(&slots, XolPolicy::Reuse, remembered[probe], insn, &counters).unwrap();
                if choice.must_write {
                    slots.note_written(choice.slot, insn);
                }
                slots.release(choice.slot).unwrap();
                remembered[probe] = Some(choice.slot);
                if round > 0 {
                    assert_eq!(choice.reason, SlotReason::Remembered);
                }
            }
        }
        assert_eq!(counters.snapshot().slot_written, 2);
        assert_eq!(counters.snapshot().slot_reused, 198);
    }

    /// Every slot already written (a long run with many probes): two new
    /// probes hit in turn still end up with a slot each, because the fallback
    /// goes round robin instead of always to the lowest free slot.
    #[test]
    fn on_a_full_page_two_new_probes_stop_evicting_each_other() {
        let slots = XolSlots::new(5);
        let counters = Counters::new();
        for (i, insn) in [0x1000_0001u32, 0x1000_0002, 0x1000_0003, 0x1000_0004].into_iter().enumerate() {
            let choice = choose_slot(&slots, XolPolicy::Reuse, None, insn, &counters).unwrap();
            assert_eq!(choice.slot.index(), i + 1);
            slots.note_written(choice.slot, insn);
            slots.release(choice.slot).unwrap();
        }
        let mut remembered = [None, None];
        let mut writes_per_round = [0u64; 20];
        for writes in writes_per_round.iter_mut() {
            let before = counters.snapshot().slot_written;
            for (probe, insn) in [ADD, NOP].into_iter().enumerate() {
                let choice = choose_slot(&slots, XolPolicy::Reuse, remembered[probe], insn, &counters).unwrap();
                if choice.must_write {
                    slots.note_written(choice.slot, insn);
                }
                slots.release(choice.slot).unwrap();
                remembered[probe] = Some(choice.slot);
            }
            *writes = counters.snapshot().slot_written - before;
        }
        assert_eq!(writes_per_round[0], 2, "the first round writes both");
        assert!(writes_per_round[1..].iter().all(|&w| w == 0), "then nothing: {writes_per_round:?}");
    }

    /// A breakpoint new to this task finds the slot another task of the same
    /// address space already filled with its instruction.
    #[test]
    fn a_slot_holding_the_instruction_is_found_without_remembering_it() {
        let slots = XolSlots::full_page();
        let counters = Counters::new();
        let first = choose_slot(&slots, XolPolicy::Reuse, None, NOP, &counters).unwrap();
        slots.note_written(first.slot, NOP);
        slots.release(first.slot).unwrap();
        let other = choose_slot(&slots, XolPolicy::Reuse, None, ADD, &counters).unwrap();
        slots.note_written(other.slot, ADD);
        slots.release(other.slot).unwrap();
        let second_task = choose_slot(&slots, XolPolicy::Reuse, None, NOP, &counters).unwrap();
        assert_eq!(
            (second_task.slot, second_task.must_write, second_task.reason),
            (first.slot, false, SlotReason::HoldsInstruction)
        );
    }

    #[test]
    fn fresh_writes_the_slot_on_every_hit() {
        let counts = hit_repeatedly(XolPolicy::Fresh, 1000);
        assert_eq!((counts.slot_written, counts.slot_reused), (1000, 0));
    }

    #[test]
    fn reuse_rewrites_a_remembered_slot_that_another_probe_overwrote() {
        // One usable slot, so the second probe has to take the first one's.
        let slots = XolSlots::new(2);
        let counters = Counters::new();
        let first = choose_slot(&slots, XolPolicy::Reuse, None, ADD, &counters).unwrap();
        assert_eq!((first.slot, first.must_write, first.reason), (slot(1), true, SlotReason::NeverWritten));
        slots.note_written(first.slot, ADD);
        slots.release(first.slot).unwrap();
        // Another probe (NOP) steps in slot 1 and leaves its instruction there.
        let other = choose_slot(&slots, XolPolicy::Reuse, None, NOP, &counters).unwrap();
        assert_eq!((other.slot, other.must_write, other.reason), (slot(1), true, SlotReason::NoneRemembered));
        slots.note_written(other.slot, NOP);
        slots.release(other.slot).unwrap();
        let again = choose_slot(&slots, XolPolicy::Reuse, Some(slot(1)), ADD, &counters).unwrap();
        assert_eq!((again.slot, again.must_write, again.reason), (slot(1), true, SlotReason::Remembered));
    }

    #[test]
    fn a_busy_remembered_slot_falls_back_and_a_full_page_counts_a_wait() {
        let slots = XolSlots::new(3);
        let counters = Counters::new();
        let held = slots.try_take(Some(slot(1))).unwrap();
        let choice = choose_slot(&slots, XolPolicy::Reuse, Some(held), ADD, &counters).unwrap();
        assert_eq!((choice.slot, choice.reason), (slot(2), SlotReason::NeverWritten));
        assert_eq!(choose_slot(&slots, XolPolicy::Reuse, Some(held), ADD, &counters), None);
        assert_eq!(choose_slot(&slots, XolPolicy::Fresh, None, ADD, &counters), None);
        assert_eq!(counters.snapshot().slot_waits, 2);
    }

    #[derive(Clone, Debug)]
    enum Action {
        Take(Option<usize>),
        /// Release the n-th held slot (modulo), or a slot nobody holds.
        Release(usize),
        ReleaseUnheld(usize),
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            3 => proptest::option::of(0usize..20).prop_map(Action::Take),
            2 => any::<usize>().prop_map(Action::Release),
            1 => (0usize..20).prop_map(Action::ReleaseUnheld),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// The allocator against a set of held slots: the preferred slot when
        /// free, otherwise the lowest free slot, `None` only when all are
        /// busy, never a slot twice, never slot 0.
        #[test]
        fn allocator_matches_a_model(slot_count in 2usize..18, actions in proptest::collection::vec(action(), 1..80)) {
            let slots = XolSlots::new(slot_count);
            let mut held: BTreeSet<usize> = BTreeSet::new();
            for action in actions {
                match action {
                    Action::Take(preferred) => {
                        let taken = slots.try_take(preferred.and_then(SlotIndex::new));
                        let free: Vec<usize> = (1..slot_count).filter(|s| !held.contains(s)).collect();
                        let expected = match preferred {
                            Some(p) if p != 0 && p < slot_count && !held.contains(&p) => Some(p),
                            _ => free.first().copied(),
                        };
                        prop_assert_eq!(taken.map(SlotIndex::index), expected);
                        if let Some(taken) = taken {
                            prop_assert!(held.insert(taken.index()));
                        }
                    }
                    Action::Release(n) => {
                        if held.is_empty() {
                            continue;
                        }
                        let victim = *held.iter().nth(n % held.len()).unwrap();
                        prop_assert_eq!(slots.release(slot(victim)), Ok(()));
                        held.remove(&victim);
                    }
                    Action::ReleaseUnheld(s) => {
                        if !held.contains(&s) {
                            prop_assert!(slots.release(slot(s)).is_err());
                        }
                    }
                }
                prop_assert_eq!(slots.has_free_slot(), held.len() < slot_count - 1);
                for s in 0..slot_count {
                    prop_assert_eq!(slots.is_held(slot(s)), s == 0 || held.contains(&s));
                }
            }
        }
    }
}

/// Loom models: threads of one address space stepping in shared slots.
mod models {
    use super::*;
    use loom::sync::{
        atomic::{AtomicU32, AtomicU64, AtomicUsize},
        Arc,
    };

    type LoomSlots = XolSlots<AtomicU64>;

    /// The XOL page as the threads see it, and who holds each slot, tracked
    /// outside the allocator so the model can check it.
    struct AddressSpace {
        slots: LoomSlots,
        page: [AtomicU32; 3],
        holders: [AtomicUsize; 3],
        counters: crate::Counters,
    }

    impl AddressSpace {
        fn new(slot_count: usize) -> Self {
            Self {
                slots: LoomSlots::with_atomic_words(slot_count),
                page: core::array::from_fn(|_| AtomicU32::new(0)),
                holders: core::array::from_fn(|_| AtomicUsize::new(0)),
                counters: crate::Counters::new(),
            }
        }

        /// One stepped hit: choose, write if needed, "execute", release.
        /// Returns the slot used, or `None` if the thread would have waited.
        fn hit(&self, insn: u32, remembered: Option<SlotIndex>) -> Option<SlotIndex> {
            let choice = choose_slot(&self.slots, XolPolicy::Reuse, remembered, insn, &self.counters)?;
            let index = choice.slot.index();
            assert_eq!(self.holders[index].fetch_add(1, Ordering::Relaxed), 0, "{} handed to two holders", choice.slot);
            // The content record the decision was made on matches the page.
            let page = SlotContent::from(self.page[index].load(Ordering::Relaxed));
            assert!(
                self.slots.holds(choice.slot, &page),
                "{} record {:?}, page {:?}",
                choice.slot,
                self.slots.contents(choice.slot),
                page
            );
            if choice.must_write {
                self.page[index].store(insn, Ordering::Relaxed);
                self.slots.note_written(choice.slot, insn);
            }
            // The step: the slot must hold our instruction, whether reused or
            // written, with no other thread rewriting it under us.
            loom::thread::yield_now();
            assert_eq!(self.page[index].load(Ordering::Relaxed), insn, "{} rewritten while held", choice.slot);
            self.holders[index].fetch_sub(1, Ordering::Relaxed);
            self.slots.release(choice.slot).unwrap();
            Some(choice.slot)
        }
    }

    const ADD: u32 = 0x9100_0420;
    const SUB: u32 = 0xd100_0420;

    /// Two threads, two probes, both remembering slot 1, two usable slots:
    /// each always gets a slot, never the same one at once.
    fn two_threads_share_a_preferred_slot(iterations: usize) {
        loom::model(move || {
            let space = Arc::new(AddressSpace::new(3));
            let other = Arc::clone(&space);
            let thread = loom::thread::spawn(move || {
                for _ in 0..iterations {
                    assert!(other.hit(SUB, SlotIndex::new(1)).is_some());
                }
            });
            for _ in 0..iterations {
                assert!(space.hit(ADD, SlotIndex::new(1)).is_some());
            }
            thread.join().unwrap();
            let counts = space.counters.snapshot();
            assert_eq!(counts.slot_written + counts.slot_reused, 2 * iterations as u64);
            assert_eq!(counts.slot_waits, 0);
        });
    }

    /// One usable slot, two threads with the same instruction: a thread may
    /// have to wait, and a slot written by one is reused by the other.
    fn two_threads_one_slot() {
        loom::model(|| {
            let space = Arc::new(AddressSpace::new(2));
            let other = Arc::clone(&space);
            let thread = loom::thread::spawn(move || other.hit(ADD, None).is_some());
            let mine = space.hit(ADD, None).is_some();
            let theirs = thread.join().unwrap();
            assert!(mine || theirs, "a slot was free for one of them");
            let counts = space.counters.snapshot();
            assert_eq!(counts.slot_waits, u64::from(!mine) + u64::from(!theirs));
            if mine && theirs {
                // The second holder found the first one's instruction.
                assert_eq!((counts.slot_written, counts.slot_reused), (1, 1));
            }
        });
    }

    /// The small models run in every `cargo test`.
    #[test]
    #[cfg(not(loom))]
    fn loom_two_threads_share_a_preferred_slot() {
        two_threads_share_a_preferred_slot(1);
    }

    #[test]
    #[cfg(not(loom))]
    fn loom_two_threads_one_slot() {
        two_threads_one_slot();
    }

    /// The larger models: `RUSTFLAGS="--cfg loom" cargo test -p probe-core --release loom`.
    #[test]
    #[cfg(loom)]
    fn loom_two_threads_share_a_preferred_slot_repeatedly() {
        two_threads_share_a_preferred_slot(2);
    }

    #[test]
    #[cfg(loom)]
    fn loom_two_threads_one_slot_full() {
        two_threads_one_slot();
    }

    #[test]
    #[cfg(loom)]
    fn loom_three_threads_two_slots() {
        loom::model(|| {
            let space = Arc::new(AddressSpace::new(3));
            let threads: std::vec::Vec<_> = [ADD, SUB]
                .into_iter()
                .map(|insn| {
                    let space = Arc::clone(&space);
                    loom::thread::spawn(move || space.hit(insn, SlotIndex::new(1)))
                })
                .collect();
            let mine = space.hit(ADD, SlotIndex::new(2));
            let results: std::vec::Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            let waited = results.iter().chain([&mine]).filter(|r| r.is_none()).count() as u64;
            assert_eq!(space.counters.snapshot().slot_waits, waited);
        });
    }
}
