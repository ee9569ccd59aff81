//! The contract's `Power` trait: ending the run: powering off with a status the host can read, or halting.

/// Ending the run: powering off with a status the host can read, or halting.
pub trait Power {}
