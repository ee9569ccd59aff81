//! One task's uretprobe return stack: for every armed return probe, where the
//! function would have returned to and the stack pointer it was entered with.
//!
//! How a return probe works: the entry hit (a `brk` on the function's first
//! instruction) saves x30, the return address, here and replaces it with the
//! address of the trampoline (slot 0 of the XOL page, a `brk` with its own
//! immediate). When the function returns, it returns into the trampoline,
//! which traps; the kernel pops the instance, counts the return, and sets the
//! PC to the saved return address.
//!
//! # Why the stack pointer, and which way round
//!
//! The A64 stack is *full descending*: it grows toward lower addresses and SP
//! points at the last item pushed. So a function called deeper in a chain is
//! entered with a lower (or, for a tail call, equal) SP than its callers, and
//! AAPCS64 makes SP callee-saved: when a function returns, SP is back to the
//! value it had at entry. Hence, at a trampoline hit with the current SP:
//!
//! - the returning function is the instance whose entry SP *equals* it;
//! - an instance whose entry SP is *below* it belongs to a frame that is
//!   already popped: that function can never return (a `longjmp` or an
//!   unwinder jumped over it). Such abandoned instances are discarded first;
//! - an instance whose entry SP is *above* it is a live caller: if the top of
//!   the stack is one, no probed function is returning here (the program
//!   jumped to the trampoline by itself), which is an error.
//!
//! The same reasoning at a function's entry discards abandoned instances
//! before the push, so a program that `longjmp`s out of probed functions in a
//! loop does not fill the stack. There the test is "at or below": a function
//! entered by a call at SP `S` cannot have a live probed caller that was
//! itself entered at `S` (a caller that makes a call has pushed at least its
//! return address, so its entry SP is higher). An instance entered at `S` is
//! therefore a dead one: typically the previous iteration of the same loop,
//! `longjmp`ed out of. (Linux's arm64 `arch_uretprobe_is_alive` draws the
//! same lines.)
//!
//! The one exception is a tail call from one return-probed function into
//! another: the callee is entered by a plain `b`, with the same SP and with
//! x30 already pointing at the trampoline. Its instance is *chained*: it saves
//! the trampoline as its return address and keeps the caller's instance at
//! the same SP (which is why the stack wants to know the trampoline's
//! address: [`ReturnStack::with_trampoline`]). At the return, [`ReturnStack::pop_chain`] pops it, sees the
//! trampoline, and pops the caller's too.

use crate::{
    counters::Counters,
    insn::{aarch64::Aarch64, Arch},
    registry::Probe,
};
use alloc::{sync::Arc, vec::Vec};
use core::fmt;

/// The most return instances one task holds; further return probes are not
/// armed (x30 left alone) and counted in `return_probes_skipped`.
pub const RETURN_STACK_DEPTH: usize = 64;

/// One armed return probe.
#[derive(Debug)]
pub struct ReturnInstance<A: Arch = Aarch64> {
    pub probe: Arc<Probe<A>>,
    /// The x30 the function was entered with: where it really returns to.
    pub return_address: u64,
    /// SP at the entry hit.
    pub entry_sp: u64,
}

/// The result of [`ReturnStack::push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Armed: the caller replaces x30 with the trampoline address.
    Armed { abandoned: usize },
    /// The stack was full: not armed; the caller must leave x30 alone.
    SkippedDepthLimit { abandoned: usize },
}

/// A trampoline hit resolved to the function that returned.
#[derive(Debug)]
pub struct Popped<A: Arch = Aarch64> {
    pub instance: ReturnInstance<A>,
    /// Instances discarded first, whose functions were skipped by a
    /// non-local exit.
    pub abandoned: usize,
}

/// A trampoline hit that no armed return probe explains. The kernel treats
/// it like any stray `brk`: report, kill the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnError {
    /// No instance at all.
    Empty,
    /// After discarding abandoned instances, the top one was entered with a
    /// higher SP than the current one: no probed function returns here.
    NoInstanceAt { sp: u64, top_entry_sp: u64 },
}

impl fmt::Display for ReturnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "trampoline reached with no return probe armed"),
            Self::NoInstanceAt { sp, top_entry_sp } => write!(
                f,
                "trampoline reached with SP {sp:#x}, but the innermost armed return probe was entered at SP {top_entry_sp:#x}"
            ),
        }
    }
}

/// The return stack of one task.
#[derive(Debug)]
pub struct ReturnStack<A: Arch = Aarch64> {
    instances: Vec<ReturnInstance<A>>,
    /// The user address of the trampoline (slot 0 of the task's XOL page),
    /// if known: it tells a tail-call chain from a fresh call at push time.
    trampoline: Option<u64>,
}

impl<A: Arch> Default for ReturnStack<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Arch> ReturnStack<A> {
    /// An empty stack for a task whose return probes return to `trampoline`.
    /// Prefer this to [`new`](Self::new).
    pub const fn with_trampoline(trampoline: u64) -> Self {
        Self { instances: Vec::new(), trampoline: Some(trampoline) }
    }

    /// An empty stack that does not know the trampoline's address. It cannot
    /// tell a tail-call chain from a fresh call at push time, so it keeps
    /// instances entered at the same SP as the new one (a chain needs them);
    /// dead ones of that kind are then only dropped when an enclosing
    /// function returns, and a loop that `longjmp`s out of a probed function
    /// can fill the stack up to its limit.
    pub const fn new() -> Self {
        Self { instances: Vec::new(), trampoline: None }
    }

    pub fn depth(&self) -> usize {
        self.instances.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// Drop the instances on top that are dead: entered below `sp`, or at
    /// `sp` too when `equal_is_dead`. The stack is ordered by entry SP
    /// (deeper calls on top), so the dead ones are all on top.
    fn discard_abandoned(&mut self, sp: u64, equal_is_dead: bool) -> usize {
        let alive =
            |instance: &ReturnInstance<A>| instance.entry_sp > sp || (instance.entry_sp == sp && !equal_is_dead);
        let live = self.instances.iter().rposition(alive).map_or(0, |top| top + 1);
        let abandoned = self.instances.len() - live;
        self.instances.truncate(live);
        abandoned
    }

    /// At a return probe's entry hit: remember `return_address` (the current
    /// x30; the trampoline itself for a tail call from another return-probed
    /// function) and `entry_sp` (the current SP). On `SkippedDepthLimit` the
    /// caller does not hijack x30, and `return_probes_skipped` is counted.
    pub fn push(
        &mut self,
        probe: Arc<Probe<A>>,
        return_address: u64,
        entry_sp: u64,
        counters: &Counters,
    ) -> PushOutcome {
        // Without the trampoline's address, any call may be a chain.
        let fresh_call = self.trampoline.is_some_and(|trampoline| return_address != trampoline);
        let abandoned = self.discard_abandoned(entry_sp, fresh_call);
        if self.instances.len() >= RETURN_STACK_DEPTH {
            counters.bump(&counters.return_probes_skipped);
            return PushOutcome::SkippedDepthLimit { abandoned };
        }
        self.instances.push(ReturnInstance { probe, return_address, entry_sp });
        PushOutcome::Armed { abandoned }
    }

    /// At a trampoline hit with SP = `current_sp`: discard abandoned
    /// instances, then pop the one that returned and count its return.
    pub fn pop(&mut self, current_sp: u64) -> Result<Popped<A>, ReturnError> {
        // EXERCISE BREAKAGE (docs/exercises.md, exercise 5): the feature keeps the abandoned frames.
        #[cfg(feature = "exercise-keep-abandoned-return-frames")]
        let abandoned = 0;
        #[cfg(not(feature = "exercise-keep-abandoned-return-frames"))]
        let abandoned = self.discard_abandoned(current_sp, false);
        let top = self.instances.last().ok_or(ReturnError::Empty)?;
        if top.entry_sp != current_sp {
            return Err(ReturnError::NoInstanceAt { sp: current_sp, top_entry_sp: top.entry_sp });
        }
        let instance = self.instances.pop().ok_or(ReturnError::Empty)?;
        instance.probe.count_return();
        Ok(Popped { instance, abandoned })
    }

    /// A whole trampoline hit: pop, and keep popping while the popped
    /// instance's return address is the trampoline itself (a chain of tail
    /// calls). `on_return` sees every instance that returned, innermost
    /// first; the result is the address to resume at.
    pub fn pop_chain(
        &mut self,
        current_sp: u64,
        trampoline: u64,
        mut on_return: impl FnMut(&ReturnInstance<A>, usize),
    ) -> Result<u64, ReturnError> {
        loop {
            let Popped { instance, abandoned } = self.pop(current_sp)?;
            on_return(&instance, abandoned);
            if instance.return_address != trampoline {
                return Ok(instance.return_address);
            }
        }
    }

    /// Forget everything (the task exits or execs).
    pub fn clear(&mut self) {
        self.instances.clear();
    }

    /// The armed instances, outermost first.
    pub fn iter(&self) -> impl Iterator<Item = &ReturnInstance<A>> {
        self.instances.iter()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
