//! Debug state of the core (serves `task::scheduler` and the probes).
//!
//! Single stepping on x86_64 is RFLAGS.TF, which lives in each thread's saved
//! `TrapFrame` and is restored by `iretq` with the rest of the thread: unlike
//! aarch64's MDSCR_EL1.SS, nothing about stepping belongs to the core, so a
//! thread switch has nothing to change here.

/// Match the core's single-step state to the thread about to run: on x86_64
/// the state travels in the thread's RFLAGS.TF, so there is nothing to do.
pub fn set_core_single_step(_stepping: bool) {}
