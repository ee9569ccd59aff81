//! QEMU's isa-debug-exit device (serves `crate::power`): a write of `v` to its
//! port makes QEMU exit with host status `(v << 1) | 1`. On a real PC nothing
//! answers at that port and the write is lost.

use x86_64::instructions::port::Port;

/// The device's I/O port (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Added to the kernel's status so that no status gives QEMU's own exit codes
/// 0 and 1: the host sees `((0x10 + status) << 1) | 1` = 33 + 2 * status.
pub const DEBUG_EXIT_BIAS: u32 = 0x10;

/// Ask QEMU to exit with the kernel's `status`. Returns if nobody listened.
pub fn debug_exit(status: u32) {
    // SAFETY: port 0xf4 is unused on a PC; under QEMU the write ends the VM.
    unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(DEBUG_EXIT_BIAS + status) };
}

/// Ending the run, as the contract's `Power` describes it.
impl crate::arch::Power for super::Machine {}
