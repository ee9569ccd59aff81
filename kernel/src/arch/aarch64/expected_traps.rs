//! Traps the kernel raises on purpose at EL1 to test its own exception path
//! (the `brk-el1` self-test): the `brk` immediate it uses, and the ESR_EL1
//! and ELR_EL1 the dispatcher found for it. A leaf module, as on x86_64: the
//! dispatcher records here and the self-test reads here, so neither calls
//! the other.

use super::exception::ExceptionFrame;
use core::sync::atomic::{AtomicU64, Ordering};
use tock_registers::interfaces::Readable;

/// The `brk` immediate the self-test uses at EL1 (probes use others).
pub const EL1_BRK_IMMEDIATE: u16 = 0x7e1;
/// ESR_EL1 and ELR_EL1 of the self-test's `brk`, as the dispatcher found them.
pub static BRK_ESR: AtomicU64 = AtomicU64::new(0);
pub static BRK_ELR: AtomicU64 = AtomicU64::new(0);

/// The dispatcher took the self-test's `brk`: record its syndrome and address
/// (the dispatcher then steps over it).
pub fn record_el1_brk(frame: &ExceptionFrame) {
    BRK_ESR.store(frame.esr.get(), Ordering::SeqCst);
    BRK_ELR.store(frame.elr, Ordering::SeqCst);
}
