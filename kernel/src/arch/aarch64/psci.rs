//! Arm PSCI (serves `power.rs` and the boot order's bring-up of the other
//! cores): SYSTEM_OFF and CPU_ON through the conduit the device tree names
//! (`/psci` `method`: `hvc` or `smc`, read by `crate::devicetree`). QEMU's
//! exit status is always 0 through SYSTEM_OFF, so PSCI is only the fallback
//! for powering off when semihosting is absent.
//!
//! Function IDs and return codes: Arm DEN0022 "Arm Power State Coordination
//! Interface", 5.1 (function IDs) and 5.2.2 (return codes); calls follow the
//! SMC Calling Convention (DEN0028): arguments in x0-x3, the result in x0,
//! and x4-x17 may come back changed from an SMCCC v1.0 firmware.

use crate::devicetree::PsciConduit;
use core::fmt;

/// PSCI 0.2+ function ID SYSTEM_OFF (DEN0022, 5.1).
const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
/// PSCI 0.2+ function ID CPU_ON, SMC64 form (DEN0022, 5.1.4: x1 = target
/// MPIDR, x2 = entry point's physical address, x3 = context id).
const PSCI_CPU_ON_64: u64 = 0xC400_0003;

/// What a PSCI call that failed returned (DEN0022, 5.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciError {
    NotSupported,
    InvalidParameters,
    Denied,
    AlreadyOn,
    OnPending,
    InternalFailure,
    NotPresent,
    Disabled,
    InvalidAddress,
    /// A value the specification does not define.
    Other(i32),
}

impl PsciError {
    fn from_code(code: i32) -> Self {
        match code {
            -1 => Self::NotSupported,
            -2 => Self::InvalidParameters,
            -3 => Self::Denied,
            -4 => Self::AlreadyOn,
            -5 => Self::OnPending,
            -6 => Self::InternalFailure,
            -7 => Self::NotPresent,
            -8 => Self::Disabled,
            -9 => Self::InvalidAddress,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for PsciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSupported => write!(f, "NOT_SUPPORTED"),
            Self::InvalidParameters => write!(f, "INVALID_PARAMETERS"),
            Self::Denied => write!(f, "DENIED"),
            Self::AlreadyOn => write!(f, "ALREADY_ON"),
            Self::OnPending => write!(f, "ON_PENDING"),
            Self::InternalFailure => write!(f, "INTERNAL_FAILURE"),
            Self::NotPresent => write!(f, "NOT_PRESENT"),
            Self::Disabled => write!(f, "DISABLED"),
            Self::InvalidAddress => write!(f, "INVALID_ADDRESS"),
            Self::Other(code) => write!(f, "{}", code),
        }
    }
}

/// One PSCI call with up to three arguments; returns x0.
fn call(conduit: PsciConduit, function: u64, arguments: [u64; 3]) -> i64 {
    let mut x0 = function;
    // SAFETY: a PSCI call passes values only (no pointer the firmware writes
    // through); every register SMCCC lets the firmware change is declared
    // clobbered (`clobber_abi("C")`: x0-x17 and the SIMD caller-saved ones).
    unsafe {
        match conduit {
            PsciConduit::Hvc => core::arch::asm!(
                "hvc #0",
                inout("x0") x0,
                inout("x1") arguments[0] => _,
                inout("x2") arguments[1] => _,
                inout("x3") arguments[2] => _,
                clobber_abi("C"),
                options(nostack),
            ),
            PsciConduit::Smc => core::arch::asm!(
                "smc #0",
                inout("x0") x0,
                inout("x1") arguments[0] => _,
                inout("x2") arguments[1] => _,
                inout("x3") arguments[2] => _,
                clobber_abi("C"),
                options(nostack),
            ),
        }
    }
    x0 as i64
}

/// Power the machine off. Returns only if the firmware refused.
pub fn system_off(conduit: PsciConduit) {
    // The firmware either powers off or returns an error code, which we ignore
    // (the caller halts anyway).
    call(conduit, PSCI_SYSTEM_OFF, [0; 3]);
}

/// Start the core whose MPIDR affinity is `target` at physical address
/// `entry` (DEN0022, 5.1.4 CPU_ON: the core starts at the caller's
/// exception level or the one above it, with its MMU and caches off and
/// `x0` = `context`).
pub fn cpu_on(conduit: PsciConduit, target: u64, entry: usize, context: u64) -> Result<(), PsciError> {
    match call(conduit, PSCI_CPU_ON_64, [target, entry as u64, context]) {
        0 => Ok(()),
        code => Err(PsciError::from_code(code as i32)),
    }
}
