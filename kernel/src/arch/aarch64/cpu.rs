//! AArch64 CPU identity (for the banner), interrupt masking, waiting and
//! halting, and EL0's thread pointer: the contract's `Cpu` for this
//! architecture.

use aarch64_cpu::registers::{DAIF, MIDR_EL1, TPIDR_EL0};
use core::fmt;
use tock_registers::interfaces::{Readable, Writeable};

/// What MIDR_EL1 says this core is.
pub struct CpuIdentity {
    pub midr: u64,
    pub implementer: u8,
    pub part: u16,
    pub variant: u8,
    pub revision: u8,
}

pub fn identify() -> CpuIdentity {
    let midr = MIDR_EL1.get();
    CpuIdentity {
        midr,
        implementer: MIDR_EL1.read(MIDR_EL1::Implementer) as u8,
        part: MIDR_EL1.read(MIDR_EL1::PartNum) as u16,
        variant: MIDR_EL1.read(MIDR_EL1::Variant) as u8,
        revision: MIDR_EL1.read(MIDR_EL1::Revision) as u8,
    }
}

/// MIDR_EL1.Implementer value for Arm Limited.
const IMPLEMENTER_ARM: u8 = 0x41;

impl CpuIdentity {
    /// The core's name, from the part numbers Arm publishes in each TRM ("MIDR_EL1").
    pub fn name(&self) -> Option<&'static str> {
        if self.implementer != IMPLEMENTER_ARM {
            return None;
        }
        Some(match self.part {
            0xd03 => "Cortex-A53",
            0xd04 => "Cortex-A35",
            0xd05 => "Cortex-A55",
            0xd07 => "Cortex-A57",
            0xd08 => "Cortex-A72",
            0xd09 => "Cortex-A73",
            0xd0a => "Cortex-A75",
            0xd0b => "Cortex-A76",
            0xd0c => "Neoverse-N1",
            0xd0d => "Cortex-A77",
            0xd40 => "Neoverse-V1",
            0xd41 => "Cortex-A78",
            0xd49 => "Neoverse-N2",
            _ => return None,
        })
    }
}

impl fmt::Display for CpuIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Arm {} r{}p{}", name, self.variant, self.revision)?,
            None => write!(
                f,
                "unknown core (implementer {:#04x}, part {:#05x}) r{}p{}",
                self.implementer, self.part, self.variant, self.revision
            )?,
        }
        write!(f, " (MIDR_EL1 {:#010x})", self.midr)
    }
}

/// Let IRQs in at EL1.
pub fn enable_interrupts() {
    DAIF.write(DAIF::I::Unmasked);
}

/// Keep IRQs out (on the way down).
pub fn disable_interrupts() {
    DAIF.write(DAIF::I::Masked + DAIF::F::Masked);
}

/// Sleep until an interrupt arrives.
pub fn wait_for_interrupt() {
    aarch64_cpu::asm::wfi();
}

/// Stop this core for good (events wake it, and it sleeps again).
pub fn halt() -> ! {
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// TPIDR_EL0: EL0's thread pointer, which EL0 may write at will, so it is part
/// of a thread's state and is switched with it.
pub fn thread_pointer() -> u64 {
    TPIDR_EL0.get()
}

pub fn set_thread_pointer(value: u64) {
    TPIDR_EL0.set(value);
}

/// The processor, as the contract's `Cpu` describes it.
impl crate::arch::Cpu for super::Machine {
    const USER_MODE: &'static str = "EL0";

    fn enable_interrupts() {
        enable_interrupts();
    }

    fn disable_interrupts() {
        disable_interrupts();
    }

    fn wait_for_interrupt() {
        wait_for_interrupt();
    }

    fn halt() -> ! {
        halt()
    }

    fn thread_pointer() -> u64 {
        thread_pointer()
    }

    fn set_thread_pointer(value: u64) {
        set_thread_pointer(value);
    }

    type FpState = super::fpsimd::FpState;

    fn new_fp_state() -> Self::FpState {
        super::fpsimd::FpState::new()
    }

    fn save_fp_state(state: &mut Self::FpState) {
        state.save();
    }

    fn restore_fp_state(state: &Self::FpState) {
        state.restore();
    }
}
