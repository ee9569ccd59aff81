//! Tests of the uretprobe return stack: nesting, the depth limit, non-local
//! exits that skip probed returns, tail-call chains, a trampoline reached by
//! no return, and a property test against a model call stack with
//! `longjmp`s.

use super::*;
use crate::registry::ProbeKind;
use proptest::prelude::*;
use std::{vec, vec::Vec};

const TRAMPOLINE: u64 = 0x7000_0000;
const PUSH_FRAME: u32 = 0xa9bf_7bfd;

fn probe(id: u32) -> Arc<Probe> {
    Probe::for_test(id, 0x40_0000 + 0x100 * u64::from(id), ProbeKind::Uretprobe, PUSH_FRAME)
}

fn armed(outcome: PushOutcome) -> bool {
    matches!(outcome, PushOutcome::Armed { .. })
}

#[test]
fn nested_calls_return_innermost_first() {
    let counters = Counters::new();
    let mut stack = ReturnStack::with_trampoline(TRAMPOLINE);
    let (f, g) = (probe(1), probe(2));
    // f entered at SP 0x1000 from 0x40_1234; f calls g at SP 0xfc0.
    assert!(armed(stack.push(Arc::clone(&f), 0x40_1234, 0x1000, &counters)));
    assert!(armed(stack.push(Arc::clone(&g), 0x40_0104, 0xfc0, &counters)));
    let popped = stack.pop(0xfc0).unwrap();
    assert_eq!((popped.instance.probe.id, popped.instance.return_address, popped.abandoned), (g.id, 0x40_0104, 0));
    let popped = stack.pop(0x1000).unwrap();
    assert_eq!((popped.instance.probe.id, popped.instance.return_address), (f.id, 0x40_1234));
    assert!(stack.is_empty());
    assert_eq!((f.return_hits(), g.return_hits()), (1, 1));
}

#[test]
fn past_the_depth_limit_returns_are_not_armed_and_are_counted() {
    let counters = Counters::new();
    let mut stack = ReturnStack::with_trampoline(TRAMPOLINE);
    let f = probe(1);
    let mut sp = 0x10_0000;
    for depth in 0..RETURN_STACK_DEPTH + 3 {
        let outcome = stack.push(Arc::clone(&f), 0x40_0000 + depth as u64, sp, &counters);
        assert_eq!(armed(outcome), depth < RETURN_STACK_DEPTH, "depth {depth}");
        sp -= 0x20;
    }
    assert_eq!(stack.depth(), RETURN_STACK_DEPTH);
    assert_eq!(counters.snapshot().return_probes_skipped, 3);
    // The three unarmed frames return normally; the armed ones through the
    // trampoline, innermost first.
    for depth in (0..RETURN_STACK_DEPTH).rev() {
        let entry_sp = 0x10_0000 - 0x20 * depth as u64;
        let popped = stack.pop(entry_sp).unwrap();
        assert_eq!(popped.instance.return_address, 0x40_0000 + depth as u64);
    }
    assert_eq!(f.return_hits(), RETURN_STACK_DEPTH as u64);
}

/// A recursive function with a return probe: every call returns through
/// the trampoline once (issue 4's "counts exactly the calls").
#[test]
fn a_recursive_function_counts_every_return() {
    fn fib(n: u64, sp: u64, stack: &mut ReturnStack, probe: &Arc<Probe>, counters: &Counters) -> u64 {
        let armed = armed(stack.push(Arc::clone(probe), 0x40_0800, sp, counters));
        let result = if n < 2 {
            n
        } else {
            fib(n - 1, sp - 0x30, stack, probe, counters) + fib(n - 2, sp - 0x30, stack, probe, counters)
        };
        if armed {
            assert_eq!(stack.pop(sp).unwrap().instance.return_address, 0x40_0800);
        }
        result
    }
    let counters = Counters::new();
    let mut stack = ReturnStack::with_trampoline(TRAMPOLINE);
    let probe = probe(1);
    assert_eq!(fib(15, 0x8_0000, &mut stack, &probe, &counters), 610);
    // fib(15) makes 1973 calls.
    assert_eq!(probe.return_hits(), 1973);
    assert!(stack.is_empty());
}

#[test]
fn a_longjmp_over_probed_frames_discards_them_at_the_next_return() {
    let counters = Counters::new();
    let mut stack = ReturnStack::with_trampoline(TRAMPOLINE);
    let (a, b, c) = (probe(1), probe(2), probe(3));
    stack.push(Arc::clone(&a), 0x40_1000, 0x1000, &counters);
    stack.push(Arc::clone(&b), 0x40_2000, 0xf00, &counters);
    stack.push(Arc::clone(&c), 0x40_3000, 0xe00, &counters);
    // c longjmps to a setjmp in a: b and c never return. a then returns.
    let popped = stack.pop(0x1000).unwrap();
    assert_eq!((popped.instance.probe.id, popped.abandoned), (a.id, 2));
    assert_eq!((a.return_hits(), b.return_hits(), c.return_hits()), (1, 0, 0));
    assert!(stack.is_empty());
}

#[test]
fn a_longjmp_over_probed_frames_discards_them_at_the_next_call() {
    let counters = Counters::new();
    let mut stack = ReturnStack::with_trampoline(TRAMPOLINE);
    let (a, b, d) = (probe(1), probe(2), probe(4));
    stack.push(Arc::clone(&a), 0x40_1000, 0x1000, &counters);
    stack.push(Arc::clone(&b), 0x40_2000, 0xe00, &counters);
    // b longjmps back into a (SP 0xf80), and a calls d at SP 0xf80: b's
    // frame (entered at 0xe00) is below, so it is dead.
    assert_eq!(stack.push(Arc::clone(&d), 0x40_4000, 0xf80, &counters), PushOutcome::Armed { abandoned: 1 });
    assert_eq!(stack.depth(), 2);
    assert_eq!(stack.pop(0xf80).unwrap().instance.probe.id, d.id);
    assert_eq!(stack.pop(0x1000).unwrap().instance.probe.id, a.id);
}

#[test]
fn abandoned_frames_do_not_fill_the_stack() {
    // A loop running at SP 0x1000 calls probed f (entered at 0x1000), which
    // calls probed g (entered at 0xfc0), which longjmps back to the loop.
    // Both instances are dead; the next call of f, entered at 0x1000 again,
    // finds them: g's below its SP, f's at it.
    let counters = Counters::new();
    let mut stack = ReturnStack::with_trampoline(TRAMPOLINE);
    let (f, g) = (probe(1), probe(2));
    for iteration in 0..1000 {
        let outcome = stack.push(Arc::clone(&f), 0x40_0010, 0x1000, &counters);
        let expected_abandoned = if iteration == 0 { 0 } else { 2 };
        assert_eq!(outcome, PushOutcome::Armed { abandoned: expected_abandoned });
        assert!(armed(stack.push(Arc::clone(&g), 0x40_0020, 0xfc0, &counters)));
    }
    assert_eq!(counters.snapshot().return_probes_skipped, 0);
    assert_eq!(stack.depth(), 2);

    // Without the trampoline's address the stack cannot tell this from a
    // tail-call chain, keeps f's dead instances, and fills up...
    let mut blind = ReturnStack::new();
    for _ in 0..100 {
        blind.push(Arc::clone(&f), 0x40_0010, 0x1000, &counters);
        blind.push(Arc::clone(&g), 0x40_0020, 0xfc0, &counters);
    }
    assert_eq!(blind.depth(), RETURN_STACK_DEPTH);
    // ...until a function entered higher up shows them all dead.
    blind.push(Arc::clone(&f), 0x40_0030, 0x1040, &counters);
    assert_eq!(blind.depth(), 1);
}

#[test]
fn a_tail_call_chain_returns_through_every_instance() {
    let counters = Counters::new();
    let mut stack = ReturnStack::with_trampoline(TRAMPOLINE);
    let (f, g) = (probe(1), probe(2));
    // f entered at SP 0x1000 returning to 0x40_1234; it restores its frame
    // and tail-calls g (b g): g is entered with the same SP and with x30
    // already the trampoline.
    stack.push(Arc::clone(&f), 0x40_1234, 0x1000, &counters);
    stack.push(Arc::clone(&g), TRAMPOLINE, 0x1000, &counters);
    let mut returned = Vec::new();
    let resume = stack.pop_chain(0x1000, TRAMPOLINE, |instance, _| returned.push(instance.probe.id)).unwrap();
    assert_eq!(resume, 0x40_1234);
    assert_eq!(returned, vec![g.id, f.id]);
    assert!(stack.is_empty());
}

#[test]
fn a_trampoline_hit_that_no_return_explains_is_an_error() {
    let counters = Counters::new();
    let mut stack = ReturnStack::with_trampoline(TRAMPOLINE);
    assert!(matches!(stack.pop(0x1000), Err(ReturnError::Empty)));
    stack.push(probe(1), 0x40_1234, 0x1000, &counters);
    // Reached from deeper than the function's entry SP: the program jumped
    // to the trampoline itself.
    assert_eq!(stack.pop(0xf00).unwrap_err(), ReturnError::NoInstanceAt { sp: 0xf00, top_entry_sp: 0x1000 });
    assert_eq!(stack.depth(), 1, "the live instance stays");
    // Reached from above every instance: they are all abandoned.
    assert_eq!(stack.pop(0x2000).unwrap_err(), ReturnError::Empty);
    assert!(stack.is_empty());
}

// ---- Against a model call stack ---------------------------------------------

#[derive(Clone, Debug)]
enum Step {
    /// Call a function (probed or not) that allocates `frame` 16-byte units.
    Call {
        probed: bool,
        frame: u64,
    },
    Return,
    /// Unwind `frames` frames without returning through them.
    LongJmp {
        frames: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (any::<bool>(), 1u64..8).prop_map(|(probed, frame)| Step::Call { probed, frame }),
        4 => Just(Step::Return),
        1 => (1usize..6).prop_map(|frames| Step::LongJmp { frames }),
    ]
}

#[derive(Debug)]
struct Frame {
    entry_sp: u64,
    /// SP inside the function, after its prologue.
    body_sp: u64,
    /// The return address, unique per call, if the return probe was armed.
    armed: Option<u64>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every armed return resolves to its own call, whatever `longjmp`s
    /// happened in between; skipped arms happen only at the depth limit.
    #[test]
    fn returns_resolve_to_their_calls(steps in proptest::collection::vec(step(), 1..300)) {
        let counters = Counters::new();
        let mut stack = ReturnStack::with_trampoline(TRAMPOLINE);
        let f = probe(1);
        let top_sp = 0x100_0000u64;
        let mut frames: Vec<Frame> = Vec::new();
        let mut next_return_address = 0x40_0000u64;
        let mut skipped = 0;
        for step in steps {
            let sp = frames.last().map_or(top_sp, |frame| frame.body_sp);
            match step {
                Step::Call { probed, frame } => {
                    next_return_address += 4;
                    let armed = if probed {
                        match stack.push(Arc::clone(&f), next_return_address, sp, &counters) {
                            PushOutcome::Armed { .. } => Some(next_return_address),
                            PushOutcome::SkippedDepthLimit { .. } => {
                                skipped += 1;
                                prop_assert_eq!(stack.depth(), RETURN_STACK_DEPTH);
                                None
                            }
                        }
                    } else {
                        None
                    };
                    frames.push(Frame { entry_sp: sp, body_sp: sp - 16 * frame, armed });
                }
                Step::Return => {
                    let Some(frame) = frames.pop() else { continue };
                    if let Some(return_address) = frame.armed {
                        let popped = stack.pop(frame.entry_sp).unwrap();
                        prop_assert_eq!(popped.instance.return_address, return_address);
                        prop_assert_eq!(popped.instance.entry_sp, frame.entry_sp);
                    }
                }
                Step::LongJmp { frames: count } => {
                    let keep = frames.len().saturating_sub(count);
                    frames.truncate(keep);
                }
            }
            // Every live armed frame is still on the stack, in order.
            let live: Vec<u64> = frames.iter().filter_map(|frame| frame.armed).collect();
            let mut on_stack = stack.iter().map(|instance| instance.return_address);
            for address in &live {
                prop_assert!(on_stack.any(|a| a == *address), "{:#x} lost", address);
            }
            prop_assert!(live.len() <= RETURN_STACK_DEPTH);
        }
        prop_assert_eq!(counters.snapshot().return_probes_skipped, skipped);
    }
}
