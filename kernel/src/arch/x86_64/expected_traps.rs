//! Traps the kernel raises on purpose in ring 0 to test its own trap path (the
//! `int3-ring0` self-test): where the `int3` should resume, and where and on
//! which vector the trap decoding found it. A leaf module: the decoding
//! (`exception.rs`) records here and the self-test reads here, so neither
//! calls the other.

use core::sync::atomic::{AtomicU64, Ordering};

/// Where the self-test's `int3` resumes (the byte after it); 0 when none is expected.
pub static INT3_EXPECTED_RIP: AtomicU64 = AtomicU64::new(0);
/// The RIP and the vector the trap decoding found in the trap frame.
pub static INT3_TRAPPED_RIP: AtomicU64 = AtomicU64::new(0);
pub static INT3_VECTOR: AtomicU64 = AtomicU64::new(0);

/// Is this ring-0 #BP, resuming at `rip`, the self-test's own?
pub fn is_kernel_int3(rip: u64) -> bool {
    rip != 0 && rip == INT3_EXPECTED_RIP.load(Ordering::SeqCst)
}

/// The trap decoding took the self-test's `int3` at `rip` on `vector`: record it
/// (the trap then resumes where it was taken).
pub fn record_kernel_int3(rip: u64, vector: u64) {
    INT3_TRAPPED_RIP.store(rip, Ordering::SeqCst);
    INT3_VECTOR.store(vector, Ordering::SeqCst);
}
