//! Arm semihosting (serves `power.rs`): how the kernel tells QEMU to exit
//! with a status, so that a failing run is a failing test on the host.
//!
//! Semihosting for AArch64, "SYS_EXIT (0x18)": w0 = 0x18, x1 points to the pair
//! {reason, subcode}; reason ADP_Stopped_ApplicationExit makes the host exit with
//! `subcode`. The trap is `hlt #0xf000`. Without `-semihosting` (or on a real
//! board) that instruction is undefined: the exception handler recognises it
//! through [`is_semihosting_trap`], steps over it, and `exit` returns so the
//! caller can try the next way down.

use core::sync::atomic::{AtomicBool, Ordering};

const SYS_EXIT: u64 = 0x18;
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;
/// The encoding of `hlt #0xf000`.
const HLT_SEMIHOSTING: u32 = 0xd45e_0000;

static ATTEMPTING: AtomicBool = AtomicBool::new(false);

/// Ask the host to exit with `status`. Returns only if no semihosting host is there.
pub fn exit(status: u32) {
    let block: [u64; 2] = [ADP_STOPPED_APPLICATION_EXIT, status as u64];
    ATTEMPTING.store(true, Ordering::SeqCst);
    // SAFETY: the semihosting call reads the two-word block and, with a host, ends
    // the machine. Without one the `hlt` raises an undefined-instruction exception
    // that `is_semihosting_trap` identifies and the handler skips.
    unsafe {
        core::arch::asm!(
            "hlt #0xf000",
            in("x0") SYS_EXIT,
            in("x1") block.as_ptr(),
            options(nostack)
        );
    }
    ATTEMPTING.store(false, Ordering::SeqCst);
}

/// Is the instruction at `pc` our semihosting `hlt`, executed on purpose?
pub fn is_semihosting_trap(pc: u64) -> bool {
    // SAFETY: `pc` is the ELR of an exception taken at EL1, so it points into
    // kernel text, which is mapped and readable.
    ATTEMPTING.load(Ordering::SeqCst) && unsafe { core::ptr::read_volatile(pc as *const u32) } == HLT_SEMIHOSTING
}
