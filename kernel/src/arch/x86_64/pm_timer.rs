//! The ACPI power-management timer (serves `timer`, which measures the TSC
//! against it): a free-running counter at 3.579545 MHz, 24 or 32 bits wide.
//! ACPI Specification 6.5, 4.8.3.3 "Power Management Timer (PM_TMR)"; its
//! address is the FADT's X_PM_TMR_BLK or PM_TMR_BLK, its width the FADT's
//! TMR_VAL_EXT flag (5.2.9, table 5.10 "Fixed ACPI Description Table Fixed
//! Feature Flags").

use super::tsc::ReferenceClock;
use acpi::address::AddressSpace;
use alloc::{format, string::String};
use x86_64::instructions::port::Port;

/// The timer's fixed rate (4.8.3.3).
const PM_TIMER_HZ: u64 = 3_579_545;
const MASK_24_BITS: u64 = (1 << 24) - 1;
const MASK_32_BITS: u64 = (1 << 32) - 1;

/// Where the timer's 32-bit register is.
#[derive(Clone, Copy)]
enum Register {
    Io(u16),
    Memory(u64),
}

pub struct PmTimer {
    register: Register,
    mask: u64,
}

impl PmTimer {
    /// The timer the FADT describes, if it has one the kernel can read.
    pub fn from_fadt(fadt: &acpi::fadt::Fadt) -> Result<Self, String> {
        let block = fadt
            .pm_timer_block()
            .map_err(|e| format!("the FADT's PM timer block is unreadable: {:?}", e))?
            .ok_or_else(|| String::from("the FADT lists no ACPI PM timer"))?;
        let register = match block.address_space {
            AddressSpace::SystemIo => Register::Io(
                u16::try_from(block.address)
                    .map_err(|_| format!("the ACPI PM timer's port {:#x} is not a port", block.address))?,
            ),
            AddressSpace::SystemMemory => Register::Memory(block.address),
            other => {
                return Err(format!(
                    "the ACPI PM timer is in address space {:?}, which the kernel does not read",
                    other
                ))
            }
        };
        // A copy: the FADT is packed, and the flags sit unaligned in it.
        let flags = { fadt.flags };
        let mask = if flags.pm_timer_is_32_bit() { MASK_32_BITS } else { MASK_24_BITS };
        Ok(Self { register, mask })
    }
}

impl ReferenceClock for PmTimer {
    fn name(&self) -> String {
        let bits = if self.mask == MASK_32_BITS { 32 } else { 24 };
        match self.register {
            Register::Io(port) => format!("the ACPI PM timer at port {:#x} ({} bits)", port, bits),
            Register::Memory(address) => format!("the ACPI PM timer at {:#x} ({} bits)", address, bits),
        }
    }
    fn hz(&self) -> u64 {
        PM_TIMER_HZ
    }
    fn mask(&self) -> u64 {
        self.mask
    }
    fn read(&self) -> u64 {
        let value = match self.register {
            // SAFETY: the FADT names this port as the PM timer's register;
            // reading it has no side effect.
            Register::Io(port) => unsafe { Port::<u32>::new(port).read() },
            // SAFETY: the FADT names this identity-mapped address as the PM
            // timer's 32-bit register; reading it has no side effect.
            Register::Memory(address) => unsafe { core::ptr::read_volatile(address as *const u32) },
        };
        u64::from(value) & self.mask
    }
}
