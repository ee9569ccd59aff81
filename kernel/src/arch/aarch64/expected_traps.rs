//! Traps the kernel raises on purpose at EL1 to test its own exception path
//! (the `brk-el1` self-test): the `brk` immediate it uses, and the ESR_EL1 and
//! ELR_EL1 the trap decoding found. A leaf module: the decoding
//! (`exception.rs`) records here and the self-test reads here.

use core::sync::atomic::{AtomicU64, Ordering};

/// The `brk` immediate the self-test uses at EL1 (probes use others).
pub const EL1_BRK_IMMEDIATE: u16 = 0x7e1;
/// ESR_EL1 and ELR_EL1 as the self-test's `brk` left them; 0 before it.
pub static BRK_ESR: AtomicU64 = AtomicU64::new(0);
pub static BRK_ELR: AtomicU64 = AtomicU64::new(0);

/// The decoding took the self-test's `brk`, with syndrome `esr`, at `elr`:
/// record it (the exception then resumes after the `brk`).
pub fn record_el1_brk(esr: u64, elr: u64) {
    BRK_ESR.store(esr, Ordering::SeqCst);
    BRK_ELR.store(elr, Ordering::SeqCst);
}
