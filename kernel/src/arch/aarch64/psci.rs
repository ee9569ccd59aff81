//! Arm PSCI (serves `power.rs`): SYSTEM_OFF through the conduit the device
//! tree names (`/psci` `method`: `hvc` or `smc`, read by `crate::devicetree`).
//! QEMU's exit status is always 0 this way, so PSCI is only the fallback when
//! semihosting is absent.

use crate::devicetree::PsciConduit;

/// PSCI 0.2+ function ID SYSTEM_OFF (PSCI spec DEN0022, 5.1).
const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;

/// Power the machine off. Returns only if the firmware refused.
pub fn system_off(conduit: PsciConduit) {
    // SAFETY: SYSTEM_OFF takes no memory arguments; the firmware either powers off
    // or returns an error code in x0, which we ignore (the caller halts anyway).
    unsafe {
        match conduit {
            PsciConduit::Hvc => core::arch::asm!("hvc #0", inout("x0") PSCI_SYSTEM_OFF => _, options(nostack)),
            PsciConduit::Smc => core::arch::asm!("smc #0", inout("x0") PSCI_SYSTEM_OFF => _, options(nostack)),
        }
    }
}
