//! The contract's `Power` trait: ending the run: powering off with a status
//! the host can read.

/// Ending the run: powering off with a status the host can read.
pub trait Power {
    /// Try each way this machine has of powering off, in its own order,
    /// handing the host `status` (docs/kernel-contract.md) where a way can.
    /// Interrupts are off. Before a way that needs saying, and when none is
    /// left, one line is passed to `say` (which prints it on the way down,
    /// with its `power off:` label and line break). Returns only if the
    /// machine is still running after every way was tried; the caller halts.
    fn power_off(status: u32, say: &mut dyn FnMut(core::fmt::Arguments<'_>));
}
