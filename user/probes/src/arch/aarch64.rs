//! The aarch64 half of `probes`: the probed function and the undefined
//! instruction that `die-stepping` commits.

/// The probed function. Its first instruction is an ALU instruction, which the
/// kernel steps out of line.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn probe_target(x: u64) -> u64 {
    x.wrapping_mul(0x9e37_79b9).rotate_left(13) ^ 0x5555
}

/// Executes `udf #0`: the kernel kills the process there.
#[inline(always)]
pub fn commit_undefined_instruction() {
    // SAFETY: `udf` raises an undefined-instruction exception; the kernel
    // kills the process there, so nothing after it runs.
    unsafe { core::arch::asm!("udf #0", options(nomem, nostack)) };
}
