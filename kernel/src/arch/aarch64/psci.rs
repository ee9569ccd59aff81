//! Arm PSCI (serves `crate::power`): SYSTEM_OFF through the conduit the device
//! tree names (`/psci` `method`: `hvc` or `smc`). QEMU's exit status is always 0
//! this way, so PSCI is only the fallback when semihosting is absent.

/// PSCI 0.2+ function ID SYSTEM_OFF (PSCI spec DEN0022, 5.1).
const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    Hvc,
    Smc,
}

/// Power the machine off. Returns only if the firmware refused.
pub fn system_off(conduit: Conduit) {
    // SAFETY: SYSTEM_OFF takes no memory arguments; the firmware either powers off
    // or returns an error code in x0, which we ignore (the caller halts anyway).
    unsafe {
        match conduit {
            Conduit::Hvc => core::arch::asm!("hvc #0", inout("x0") PSCI_SYSTEM_OFF => _, options(nostack)),
            Conduit::Smc => core::arch::asm!("smc #0", inout("x0") PSCI_SYSTEM_OFF => _, options(nostack)),
        }
    }
}
