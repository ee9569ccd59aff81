//! The arch-neutral heart of the brk path: everything about a user-space
//! breakpoint that can be decided without touching hardware, as a `no_std`
//! library the kernel links on aarch64 and the host tests with `#[test]`,
//! `proptest` and `loom`.
//!
//! The kernel adapts this crate to the machine (exception frames, page tables,
//! `asm!` for the cache instructions); it does not contain it. README.md beside
//! this file follows one breakpoint hit through every module.
//!
//! | module | owns |
//! | --- | --- |
//! | [`insn`] | which instructions can be probed and how: simulate, step out of line, or reject (A64 in [`insn::aarch64`]) |
//! | [`cache`] | the `DC CVAU` / `DSB` / `IC IVAU` / `DSB` / `ISB` sequence that makes written instructions visible |
//! | [`xol`] | the execute-out-of-line slots of one address space, with reuse |
//! | [`registry`] | the global table of probes and their retirement |
//! | [`tree`] | one task's cache of the probes it has hit |
//! | [`retstack`] | one task's stack of pending uretprobe returns |
//! | [`trampoline`] | branch trampolines: the displaced instruction relocated, one exception per hit |
//! | [`counters`] | the counters every step of a hit increments |

#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod cache;
pub mod counters;
pub mod insn;
pub mod registry;
pub mod retstack;
pub mod trampoline;
pub mod tree;
pub mod xol;

mod sync;

pub use counters::{Counters, Snapshot};
pub use insn::aarch64::TRAMPOLINE_SVC_IMMEDIATE;
pub use insn::x86_64::TRAMPOLINE_VECTOR;
pub use insn::x86_64::X86_64;
pub use insn::{aarch64::Aarch64, Arch, Classification, RejectReason, SimulatePolicy, SimulationFault, UserMemory};
pub use registry::{ActiveHit, Probe, ProbeId, ProbeKind, ProbeRegistry, ProbeSpec, RegisterError, SpaceId};
pub use retstack::{ReturnInstance, ReturnStack, RETURN_STACK_DEPTH};
pub use trampoline::{BranchPatch, NotRelocatable, TrampolineImage, Trampolines};
pub use tree::{BreakpointTree, TreeLookup};
pub use xol::{SlotChoice, SlotIndex, XolPolicy, XolSlots};
