//! The contract's `Traps` trait: exceptions and interrupts: the saved frame, and the decoding of a trap into what the generic dispatcher does with it.

/// Exceptions and interrupts: the saved frame, and the decoding of a trap into what the generic dispatcher does with it.
pub trait Traps {}
