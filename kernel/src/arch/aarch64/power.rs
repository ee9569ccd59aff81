//! Ending the run on aarch64, the contract's `Power` for this architecture:
//! first semihosting SYS_EXIT (`semihosting.rs`: under QEMU the host exits
//! with the kernel's status), then PSCI SYSTEM_OFF (`psci.rs`: the status is
//! lost) through the conduit the device tree named, if it named one.

use super::{psci, semihosting};
use crate::devicetree::PsciConduit;
use spin::Once;

/// How to reach PSCI, as the device tree says (`None`: it describes none).
static PSCI: Once<Option<PsciConduit>> = Once::new();

/// Remember how to reach PSCI (from the device tree), for powering off.
pub fn use_psci(conduit: Option<PsciConduit>) {
    PSCI.call_once(|| conduit);
}

/// Ending the run, as the contract's `Power` describes it.
impl crate::arch::Power for super::Machine {
    fn power_off(status: u32, say: &mut dyn FnMut(core::fmt::Arguments<'_>)) {
        semihosting::exit(status);
        if let Some(Some(conduit)) = PSCI.get() {
            say(format_args!("no semihosting host, PSCI SYSTEM_OFF"));
            psci::system_off(*conduit);
        }
        say(format_args!("no way to power off, halting"));
    }
}
