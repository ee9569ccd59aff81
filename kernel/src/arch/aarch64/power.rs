//! Ending the run on aarch64: the contract's `Power` for this architecture,
//! through semihosting (`semihosting.rs`) and PSCI (`psci.rs`).

/// Ending the run, as the contract's `Power` describes it.
impl crate::arch::Power for super::Machine {}
