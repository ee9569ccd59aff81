//! The architecture layer: one folder per architecture (`aarch64/`,
//! `x86_64/`), and the contract between them and the generic kernel
//! ([`contract`]).
//!
//! The contract is a set of traits; each architecture has one type,
//! [`Machine`], that implements all of them, so an item missing from an
//! architecture, or with another signature, is a compile error in that
//! architecture's `impl` (and a trait `Machine` does not implement at all is
//! one below). Generic code (everything outside `arch/`, `board/` and
//! `start/`) reaches the machine only through `Machine` and these traits; the
//! module-graph test (`xtask/src/module_graph.rs`) fails if it names an
//! architecture's module directly. The boards and each architecture's boot
//! order (`start/`) are architecture code and may.

pub mod contract;
pub use contract::*;

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::Machine;

#[cfg(target_arch = "x86_64")]
pub mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use self::x86_64::Machine;

#[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
compile_error!("the kernel builds for aarch64-unknown-none-softfloat and x86_64-unknown-uefi");

/// Every trait of the contract is implemented by this architecture's
/// [`Machine`] (a missing `impl` fails here, by name).
const _: fn() = || {
    fn implements_the_contract<M: Cores + Cpu + Traps + Paging + Probes + Timer + Power>() {}
    implements_the_contract::<Machine>();
};
