//! The contract between the generic kernel and an architecture: one trait
//! per concern, each item documented with what generic code may rely on.
//! [`crate::arch::Machine`] implements every one of them for the architecture
//! being built.

mod cores;
mod cpu;
mod paging;
mod power;
mod probes;
mod timer;
mod traps;

pub use cores::*;
pub use cpu::*;
pub use paging::*;
pub use power::*;
pub use probes::*;
pub use timer::*;
pub use traps::*;
