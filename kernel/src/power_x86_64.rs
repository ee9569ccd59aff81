//! Powering off with a status the host can read, and powering a real PC off.
//!
//! In order: under a hypervisor, QEMU's isa-debug-exit port, which ends the run
//! with host status `33 + 2 * status` (on a real PC the kernel does not write
//! it: nothing is known to answer at port 0xf4); then the firmware's
//! ResetSystem(EfiResetShutdown) runtime service (UEFI 2.10, 8.5.1), which
//! stays callable after ExitBootServices because the kernel maps the
//! firmware's runtime code read-only and executable, as its memory attributes
//! table describes it (`firmware::runtime_code`, `memory::paging_init`); OVMF
//! and PC firmware implement it with the ACPI sleep state S5. Last, if neither
//! worked, the kernel says so and halts.
//!
//! ACPI's own way, writing `\_S5`'s SLP_TYP to PM1a_CNT, needs the `\_S5`
//! package from the DSDT's AML; the maintained AML interpreters (`aml` 0.16,
//! `acpi` 6) need a nightly compiler, and this project builds with stable Rust.

use crate::{arch, console, time};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

#[path = "power/exit_status.rs"]
mod exit_status;

pub use exit_status::ExitStatus;

static EXITING: AtomicBool = AtomicBool::new(false);

/// Whether the firmware's runtime code is mapped so that ResetSystem can run:
/// 0 not yet known (before paging), 1 yes, 2 no.
static RUNTIME_CALLABLE: AtomicU8 = AtomicU8::new(0);

/// Record whether `memory::paging_init` mapped the firmware's runtime code.
pub fn set_runtime_services_callable(callable: bool) {
    RUNTIME_CALLABLE.store(if callable { 1 } else { 2 }, Ordering::SeqCst);
}

/// Stop the machine with `status`. Never returns.
pub fn exit(status: ExitStatus) -> ! {
    arch::cpu::disable_interrupts();
    if EXITING.swap(true, Ordering::SeqCst) {
        // A fault while exiting: do not recurse, just stop.
        arch::cpu::halt();
    }
    console::print_on_the_way_down(format_args!("power off: status {} ({})\n", status as u32, status.describe()));
    if arch::cpu::under_a_hypervisor() {
        arch::poweroff::debug_exit(status as u32);
        // QEMU ends the run shortly after the write, not at once: give it a
        // second before concluding that nobody listened.
        time::delay_ms(1000);
    }
    match RUNTIME_CALLABLE.load(Ordering::SeqCst) {
        1 => {
            console::print_on_the_way_down(format_args!(
                "power off: asking the firmware to power the machine off (ResetSystem, EfiResetShutdown)\n"
            ));
            // The firmware's code may use SSE, which the kernel switched off for itself.
            arch::cpu::enable_sse_for_the_firmware();
            uefi::runtime::reset(uefi::runtime::ResetType::SHUTDOWN, uefi::Status::SUCCESS, None)
        }
        0 => console::print_on_the_way_down(format_args!(
            "power off: the firmware's runtime code is not mapped yet, so ResetSystem cannot be called: halted, power the machine off\n"
        )),
        _ => console::print_on_the_way_down(format_args!(
            "power off: the firmware's runtime code could not be mapped (see the paging: line), so ResetSystem cannot be called: halted, power the machine off\n"
        )),
    }
    arch::cpu::halt()
}
