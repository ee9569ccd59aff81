//! Ending the run on a PC, the contract's `Power` for this architecture, in
//! this order:
//!
//! 1. under a hypervisor, QEMU's isa-debug-exit device: a write of `v` to its
//!    port makes QEMU exit with host status `(v << 1) | 1`, so the host sees
//!    `33 + 2 * status`. On a real PC the kernel does not write it: nothing is
//!    known to answer at port 0xf4.
//! 2. the firmware's ResetSystem(EfiResetShutdown) runtime service (UEFI 2.10,
//!    8.5.1), which stays callable after ExitBootServices because the kernel
//!    maps the firmware's runtime code read-only and executable, as its memory
//!    attributes table describes it (`firmware::runtime_code`,
//!    `memory::paging_init`); OVMF and PC firmware implement it with the ACPI
//!    sleep state S5. The call is the board's (`board/uefi_pc/firmware.rs`).
//! 3. if neither worked, the kernel says so, and the caller halts.
//!
//! ACPI's own way, writing `\_S5`'s SLP_TYP to PM1a_CNT, needs the `\_S5`
//! package from the DSDT's AML; the maintained AML interpreters (`aml` 0.16,
//! `acpi` 6) need a nightly compiler, and this project builds with stable Rust.

use super::{cpu, timer};
use crate::board::uefi_pc::firmware;
use x86_64::instructions::port::Port;

/// The device's I/O port (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Added to the kernel's status so that no status gives QEMU's own exit codes
/// 0 and 1: the host sees `((0x10 + status) << 1) | 1` = 33 + 2 * status.
const DEBUG_EXIT_BIAS: u32 = 0x10;

/// Ask QEMU to exit with the kernel's `status`. Returns if nobody listened.
fn debug_exit(status: u32) {
    // SAFETY: port 0xf4 is unused on a PC; under QEMU the write ends the VM.
    unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(DEBUG_EXIT_BIAS + status) };
}

/// Ending the run, as the contract's `Power` describes it.
impl crate::arch::Power for super::Machine {
    fn power_off(status: u32, say: &mut dyn FnMut(core::fmt::Arguments<'_>)) {
        if cpu::under_a_hypervisor() {
            debug_exit(status);
            // QEMU ends the run shortly after the write, not at once: give it a
            // second before concluding that nobody listened.
            timer::delay_ms(1000);
        }
        match firmware::runtime_services_callable() {
            Some(true) => {
                say(format_args!(
                    "asking the firmware to power the machine off (ResetSystem, EfiResetShutdown)"
                ));
                // The firmware's code may use SSE, which the kernel switched off for itself.
                cpu::enable_sse_for_the_firmware();
                firmware::shut_down()
            }
            None => say(format_args!(
                "the firmware's runtime code is not mapped yet, so ResetSystem cannot be called: halted, power the machine off"
            )),
            Some(false) => say(format_args!(
                "the firmware's runtime code could not be mapped (see the paging: line), so ResetSystem cannot be called: halted, power the machine off"
            )),
        }
    }
}
