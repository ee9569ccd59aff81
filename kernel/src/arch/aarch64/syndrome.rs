//! The ESR_EL1 values the probe trace prints, decoded field by field: the
//! exception class, the instruction length and the ISS of the two exceptions
//! a probe hit takes (`brk` from EL0, software step from EL0). EC and IL are
//! aarch64-cpu's `ESR_EL1` fields; the ISS layouts, which it does not name,
//! are here, from the Arm ARM (DDI 0487), ESR_EL1, "ISS encoding for an
//! exception from a BRK instruction" and "ISS encoding for an exception from
//! a Software Step exception".

use aarch64_cpu::registers::ESR_EL1;
use core::fmt;
use tock_registers::{register_bitfields, LocalRegisterCopy};

register_bitfields! {u64,
    /// ESR_EL1.ISS of an exception from a BRK instruction (EC 0x3C).
    BRK_ISS [
        /// The instruction's immediate.
        COMMENT OFFSET(0) NUMBITS(16) []
    ],
    /// ESR_EL1.ISS of a Software Step exception (EC 0x32 from a lower EL).
    SOFTWARE_STEP_ISS [
        /// Instruction syndrome valid: EX holds information.
        ISV OFFSET(24) NUMBITS(1) [],
        /// With ISV: the stepped instruction was a load-exclusive.
        EX OFFSET(6) NUMBITS(1) [],
        /// Instruction fault status code.
        IFSC OFFSET(0) NUMBITS(6) [
            DebugException = 0b10_0010
        ]
    ]
}

/// An ESR_EL1 value taken by a `brk` from EL0:
/// `ESR_EL1=0xf2000005 (EC 0x3C brk from EL0, IL 1, ISS: comment #0x5)`.
pub struct BrkSyndrome(pub u64);

impl fmt::Display for BrkSyndrome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let iss = LocalRegisterCopy::<u64, BRK_ISS::Register>::new(self.0);
        write!(
            f,
            "ESR_EL1={:#010x} ({}, ISS: comment #{:#x})",
            self.0,
            ClassAndLength(self.0),
            iss.read(BRK_ISS::COMMENT)
        )
    }
}

/// An ESR_EL1 value taken by a software step from EL0:
/// `ESR_EL1=0xcb000022 (EC 0x32 software step from EL0, IL 1, ISS: ISV 1, EX 0 not a load-exclusive, IFSC 0x22 debug exception)`.
pub struct StepSyndrome(pub u64);

impl fmt::Display for StepSyndrome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let iss = LocalRegisterCopy::<u64, SOFTWARE_STEP_ISS::Register>::new(self.0);
        write!(f, "ESR_EL1={:#010x} ({}, ISS: ", self.0, ClassAndLength(self.0))?;
        if iss.is_set(SOFTWARE_STEP_ISS::ISV) {
            let ex = iss.is_set(SOFTWARE_STEP_ISS::EX);
            write!(f, "ISV 1, EX {} {}", u8::from(ex), if ex { "a load-exclusive" } else { "not a load-exclusive" })?;
        } else {
            write!(f, "ISV 0 (EX not valid)")?;
        }
        let ifsc = iss.read(SOFTWARE_STEP_ISS::IFSC);
        let status = match iss.read_as_enum(SOFTWARE_STEP_ISS::IFSC) {
            Some(SOFTWARE_STEP_ISS::IFSC::Value::DebugException) => "debug exception",
            None => "not the debug exception",
        };
        write!(f, ", IFSC {ifsc:#x} {status})")
    }
}

/// `EC 0x3C brk from EL0, IL 1`: the class and the instruction length.
struct ClassAndLength(u64);

impl fmt::Display for ClassAndLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ESR_EL1::EC::Value as Ec;
        let esr = LocalRegisterCopy::<u64, ESR_EL1::Register>::new(self.0);
        let class = match esr.read_as_enum(ESR_EL1::EC) {
            Some(Ec::Brk64) => "brk from EL0",
            Some(Ec::SoftwareStepLowerEL) => "software step from EL0",
            _ => "unexpected here",
        };
        write!(f, "EC 0x{:02X} {class}, IL {}", esr.read(ESR_EL1::EC), esr.read(ESR_EL1::IL))
    }
}
