//! The contract's `Probes` trait: the machine half of probes: the breakpoint and single-step mechanism and the instruction set the probe core decodes.

/// The machine half of probes: the breakpoint and single-step mechanism and the instruction set the probe core decodes.
pub trait Probes {}
