//! The contract's `Timer` trait: the counter and the tick timer.

/// The counter and the tick timer.
pub trait Timer {}
