//! The contract's `Cpu` trait: the processor itself: interrupts on and off, waiting, halting, identification, the user thread pointer.

/// The processor itself: interrupts on and off, waiting, halting, identification, the user thread pointer.
pub trait Cpu {}
