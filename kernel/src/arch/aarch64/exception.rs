//! AArch64 exceptions (serves `crate::exception` through the contract's
//! `Traps`): the vector table, the saved register frame, ESR_EL1 decoding,
//! the decoding of a trap by vector slot and class into the contract's
//! [`Trap`], and the GIC's acknowledge loop for interrupts.

use super::{debug, expected_traps, semihosting, smp, Machine};
use crate::{
    arch::{FaultDescription, Interrupt, SavedRegisters, Trap, Traps, UNARMED_TRAMPOLINE},
    drivers::gicv2,
};
use aarch64_cpu::registers::{ESR_EL1, SPSR_EL1, VBAR_EL1};
use alloc::format;
use core::fmt;
use probe_core::insn::aarch64::TRAMPOLINE_SVC_IMMEDIATE;
use tock_registers::{
    interfaces::{Readable, Writeable},
    registers::InMemoryRegister,
};

core::arch::global_asm!(include_str!("vectors.s"), trampoline_svc = const TRAMPOLINE_SVC_IMMEDIATE);

/// The registers saved on exception entry, in the order `vectors.s` stores them.
#[repr(C)]
pub struct ExceptionFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// The interrupted EL0 stack pointer.
    pub sp_el0: u64,
    /// Where the exception was taken (or, for `svc`, the instruction after it).
    pub elr: u64,
    pub spsr: InMemoryRegister<u64, SPSR_EL1::Register>,
    pub esr: InMemoryRegister<u64, ESR_EL1::Register>,
    pub far: u64,
}

/// `vectors.s` hard-codes the frame size and field offsets; keep them in step.
const _: () = {
    assert!(core::mem::size_of::<ExceptionFrame>() == 288);
    assert!(core::mem::offset_of!(ExceptionFrame, sp_el0) == 248);
    assert!(core::mem::offset_of!(ExceptionFrame, elr) == 256);
    assert!(core::mem::offset_of!(ExceptionFrame, esr) == 272);
    assert!(core::mem::size_of::<ExceptionFrame>().is_multiple_of(16)); // SP stays 16-byte aligned
};

/// The 16 vector slots, named after the Arm ARM's table (D1.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
pub enum VectorSlot {
    CurrentElSp0Synchronous,
    CurrentElSp0Irq,
    CurrentElSp0Fiq,
    CurrentElSp0Serror,
    CurrentElSpxSynchronous,
    CurrentElSpxIrq,
    CurrentElSpxFiq,
    CurrentElSpxSerror,
    LowerAarch64Synchronous,
    LowerAarch64Irq,
    LowerAarch64Fiq,
    LowerAarch64Serror,
    LowerAarch32Synchronous,
    LowerAarch32Irq,
    LowerAarch32Fiq,
    LowerAarch32Serror,
}

impl VectorSlot {
    /// The slots in table order: `vectors.s` passes an index into this.
    pub const ALL: [VectorSlot; 16] = [
        Self::CurrentElSp0Synchronous,
        Self::CurrentElSp0Irq,
        Self::CurrentElSp0Fiq,
        Self::CurrentElSp0Serror,
        Self::CurrentElSpxSynchronous,
        Self::CurrentElSpxIrq,
        Self::CurrentElSpxFiq,
        Self::CurrentElSpxSerror,
        Self::LowerAarch64Synchronous,
        Self::LowerAarch64Irq,
        Self::LowerAarch64Fiq,
        Self::LowerAarch64Serror,
        Self::LowerAarch32Synchronous,
        Self::LowerAarch32Irq,
        Self::LowerAarch32Fiq,
        Self::LowerAarch32Serror,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::CurrentElSp0Synchronous => "current_el_sp0_synchronous",
            Self::CurrentElSp0Irq => "current_el_sp0_irq",
            Self::CurrentElSp0Fiq => "current_el_sp0_fiq",
            Self::CurrentElSp0Serror => "current_el_sp0_serror",
            Self::CurrentElSpxSynchronous => "current_el_spx_synchronous",
            Self::CurrentElSpxIrq => "current_el_spx_irq",
            Self::CurrentElSpxFiq => "current_el_spx_fiq",
            Self::CurrentElSpxSerror => "current_el_spx_serror",
            Self::LowerAarch64Synchronous => "lower_aarch64_synchronous",
            Self::LowerAarch64Irq => "lower_aarch64_irq",
            Self::LowerAarch64Fiq => "lower_aarch64_fiq",
            Self::LowerAarch64Serror => "lower_aarch64_serror",
            Self::LowerAarch32Synchronous => "lower_aarch32_synchronous",
            Self::LowerAarch32Irq => "lower_aarch32_irq",
            Self::LowerAarch32Fiq => "lower_aarch32_fiq",
            Self::LowerAarch32Serror => "lower_aarch32_serror",
        }
    }
}

/// The exception classes the kernel tells apart, decoded from ESR_EL1.EC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionClass {
    Unknown,
    SvcAarch64,
    InstructionAbortLowerEl,
    InstructionAbortCurrentEl,
    PcAlignment,
    DataAbortLowerEl,
    DataAbortCurrentEl,
    SpAlignment,
    SoftwareStepLowerEl,
    SoftwareStepCurrentEl,
    BrkAarch64,
    /// Anything else, with its raw EC value.
    Other(u8),
}

impl ExceptionClass {
    pub fn of(esr: &InMemoryRegister<u64, ESR_EL1::Register>) -> Self {
        use ESR_EL1::EC::Value as Ec;
        match esr.read_as_enum(ESR_EL1::EC) {
            Some(Ec::Unknown) => Self::Unknown,
            Some(Ec::SVC64) => Self::SvcAarch64,
            Some(Ec::InstrAbortLowerEL) => Self::InstructionAbortLowerEl,
            Some(Ec::InstrAbortCurrentEL) => Self::InstructionAbortCurrentEl,
            Some(Ec::PCAlignmentFault) => Self::PcAlignment,
            Some(Ec::DataAbortLowerEL) => Self::DataAbortLowerEl,
            Some(Ec::DataAbortCurrentEL) => Self::DataAbortCurrentEl,
            Some(Ec::SPAlignmentFault) => Self::SpAlignment,
            Some(Ec::SoftwareStepLowerEL) => Self::SoftwareStepLowerEl,
            Some(Ec::SoftwareStepCurrentEL) => Self::SoftwareStepCurrentEl,
            Some(Ec::Brk64) => Self::BrkAarch64,
            _ => Self::Other(esr.read(ESR_EL1::EC) as u8),
        }
    }
}

impl fmt::Display for ExceptionClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => write!(f, "undefined instruction (EC 0x00)"),
            Self::SvcAarch64 => write!(f, "svc (EC 0x15)"),
            Self::InstructionAbortLowerEl => write!(f, "instruction abort from EL0 (EC 0x20)"),
            Self::InstructionAbortCurrentEl => write!(f, "instruction abort at EL1 (EC 0x21)"),
            Self::PcAlignment => write!(f, "PC alignment fault (EC 0x22)"),
            Self::DataAbortLowerEl => write!(f, "data abort from EL0 (EC 0x24)"),
            Self::DataAbortCurrentEl => write!(f, "data abort at EL1 (EC 0x25)"),
            Self::SpAlignment => write!(f, "SP alignment fault (EC 0x26)"),
            Self::SoftwareStepLowerEl => write!(f, "software step from EL0 (EC 0x32)"),
            Self::SoftwareStepCurrentEl => write!(f, "software step at EL1 (EC 0x33)"),
            Self::BrkAarch64 => write!(f, "brk (EC 0x3C)"),
            Self::Other(ec) => write!(f, "exception class {:#04x}", ec),
        }
    }
}

impl ExceptionFrame {
    /// For an abort: the fault status decoded (ESR_EL1.ISS, Arm ARM D19.2.40).
    pub fn abort_detail(&self) -> Option<AbortDetail> {
        let class = self.class();
        let is_data = matches!(class, ExceptionClass::DataAbortLowerEl | ExceptionClass::DataAbortCurrentEl);
        let is_instruction =
            matches!(class, ExceptionClass::InstructionAbortLowerEl | ExceptionClass::InstructionAbortCurrentEl);
        if !is_data && !is_instruction {
            return None;
        }
        let iss = self.esr.read(ESR_EL1::ISS);
        /// ISS.DFSC/IFSC, bits [5:0]: fault status code.
        const FSC_MASK: u64 = 0x3f;
        /// ISS.WnR, bit 6 (data aborts): the access was a write.
        const WNR: u64 = 1 << 6;
        let status = iss & FSC_MASK;
        Some(AbortDetail {
            kind: match status >> 2 {
                0b0001 => "translation fault",
                0b0010 => "access flag fault",
                0b0011 => "permission fault",
                _ if status == 0b10_0001 => "alignment fault",
                _ => "fault",
            },
            level: ((status >> 2) <= 0b0011).then_some((status & 0b11) as u8),
            access: if is_instruction {
                "execute"
            } else if iss & WNR != 0 {
                "write"
            } else {
                "read"
            },
        })
    }

    pub fn class(&self) -> ExceptionClass {
        ExceptionClass::of(&self.esr)
    }

    /// The `brk` immediate (ISS\[15:0\]) of a brk exception.
    pub fn brk_immediate(&self) -> u16 {
        self.esr.read(ESR_EL1::ISS) as u16
    }

    /// The `svc` immediate (ISS\[15:0\]) of an svc exception (Arm ARM D24.2.41,
    /// ESR_ELx, "ISS encoding for an exception from an SVC instruction").
    pub fn svc_immediate(&self) -> u16 {
        self.esr.read(ESR_EL1::ISS) as u16
    }
}

/// What generic code reads and writes of a frame (the contract's `SavedRegisters`).
impl SavedRegisters for ExceptionFrame {
    /// The frame that, restored by `vectors.s` and `eret`ed to, starts EL0 at
    /// `entry` with stack `stack_top` and `x0`, `x1` = `args`.
    fn new_user(entry: u64, stack_top: u64, args: [u64; 2]) -> Self {
        let frame = Self {
            x: [0; 31],
            sp_el0: stack_top,
            elr: entry,
            spsr: InMemoryRegister::new(0),
            esr: InMemoryRegister::new(0),
            far: 0,
        };
        // EL0 with interrupts (IRQ, FIQ, SError) taken; debug exceptions masked
        // only matter for same-EL debug, so they stay masked as at EL1.
        frame.spsr.write(
            SPSR_EL1::M::EL0t
                + SPSR_EL1::D::Masked
                + SPSR_EL1::A::Unmasked
                + SPSR_EL1::I::Unmasked
                + SPSR_EL1::F::Unmasked,
        );
        let mut frame = frame;
        frame.x[0] = args[0];
        frame.x[1] = args[1];
        frame
    }

    /// Did this exception come from user mode (EL0)?
    fn came_from_user(&self) -> bool {
        self.spsr.matches_all(SPSR_EL1::M::EL0t)
    }

    /// `svc` arguments and number (`brk_abi`'s convention).
    fn syscall_number(&self) -> u64 {
        self.x[8]
    }

    fn syscall_arg(&self, index: usize) -> u64 {
        self.x[index]
    }

    fn set_syscall_result(&mut self, value: u64) {
        self.x[0] = value;
    }

    fn set_syscall_second_result(&mut self, value: u64) {
        self.x[1] = value;
    }

    /// Print every saved register, four to a line.
    fn dump(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        for (i, value) in self.x.iter().enumerate() {
            write!(out, "  x{:<2}={:#018x}", i, value)?;
            if i % 4 == 3 {
                writeln!(out)?;
            }
        }
        writeln!(out, "  sp_el0={:#018x}", self.sp_el0)?;
        writeln!(out, "  ELR_EL1={:#018x} SPSR_EL1={:#018x}", self.elr, self.spsr.get())
    }
}

/// A decoded instruction or data abort.
pub struct AbortDetail {
    pub kind: &'static str,
    /// The translation table level the fault was found at, when there is one.
    pub level: Option<u8>,
    pub access: &'static str,
}

impl fmt::Display for AbortDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(level) = self.level {
            write!(f, " (level {})", level)?;
        }
        write!(f, " on {}", self.access)
    }
}

/// An interrupt no handler claims, by its GIC INTID (`interrupt 42`).
pub struct UnclaimedInterrupt(u32);

impl fmt::Display for UnclaimedInterrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "interrupt {}", self.0)
    }
}

/// The width of every A64 instruction: what stepping over one adds to ELR.
const INSTRUCTION_BYTES: u64 = 4;

/// Exceptions and interrupts, as the contract's `Traps` describes them.
impl Traps for Machine {
    type Frame = ExceptionFrame;
    type InterruptSource = UnclaimedInterrupt;

    const TRAMPOLINE_ENTRY_ELSEWHERE: Trap = Trap::SystemCall;

    /// Install the vector table.
    fn init_traps() {
        extern "C" {
            static exception_vector_table: u8;
        }
        // Only the symbol's address is taken: the 2 KiB aligned table in vectors.s.
        let table = core::ptr::addr_of!(exception_vector_table) as u64;
        VBAR_EL1.set(table);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    }

    /// `entry` is the vector slot `vectors.s` took.
    #[inline(always)]
    fn decode(frame: &mut ExceptionFrame, entry: u64) -> Trap {
        match VectorSlot::ALL[entry as usize & 0xf] {
            VectorSlot::CurrentElSpxIrq | VectorSlot::LowerAarch64Irq => Trap::Interrupt,
            VectorSlot::CurrentElSpxSynchronous => match frame.class() {
                ExceptionClass::BrkAarch64 if frame.brk_immediate() == expected_traps::EL1_BRK_IMMEDIATE => {
                    expected_traps::record_el1_brk(frame.esr.get(), frame.elr);
                    frame.elr += INSTRUCTION_BYTES; // ELR points at the brk itself: step over it.
                    Trap::Expected
                }
                ExceptionClass::Unknown if semihosting::is_semihosting_trap(frame.elr) => {
                    frame.elr += INSTRUCTION_BYTES; // No semihosting host: skip the hlt, power::exit goes on.
                    Trap::Expected
                }
                _ => Trap::Fatal,
            },
            VectorSlot::LowerAarch64Synchronous => match frame.class() {
                ExceptionClass::SvcAarch64 if frame.svc_immediate() == TRAMPOLINE_SVC_IMMEDIATE => Trap::TrampolineCall,
                ExceptionClass::SvcAarch64 => Trap::SystemCall,
                ExceptionClass::BrkAarch64 => Self::user_breakpoint(frame),
                ExceptionClass::SoftwareStepLowerEl => Trap::Step,
                _ => Trap::UserFault,
            },
            // SError and FIQ from EL0 are the program's (or the machine's) doing, not ours.
            VectorSlot::LowerAarch64Serror | VectorSlot::LowerAarch64Fiq => Trap::UserFault,
            _ => Trap::Fatal,
        }
    }

    /// `vectors.s` routes a `brk` from EL0 here by its exception class.
    #[inline(always)]
    fn user_breakpoint(frame: &mut ExceptionFrame) -> Trap {
        if frame.brk_immediate() == debug::NULL_BRK_IMMEDIATE {
            frame.elr += INSTRUCTION_BYTES; // the null breakpoint: the floor of a brk round trip
            Trap::Dismissed
        } else {
            Trap::Breakpoint
        }
    }

    /// Acknowledge (GICC_IAR) and end (GICC_EOIR) every pending interrupt in
    /// turn, until the GIC has none left.
    #[inline]
    fn take_interrupts(_: &ExceptionFrame, mut handle: impl FnMut(Interrupt<UnclaimedInterrupt>)) {
        loop {
            let acknowledged = gicv2::acknowledge();
            let intid = acknowledged.intid();
            if intid >= gicv2::SPURIOUS {
                break;
            }
            handle(if gicv2::is_tick(intid) {
                Interrupt::Tick
            } else if intid == smp::CROSS_CORE_SGI {
                smp::note_cross_core_arrival();
                Interrupt::CrossCore
            } else if gicv2::is_console(intid) {
                Interrupt::ConsoleInput
            } else {
                Interrupt::Unexpected { source: UnclaimedInterrupt(intid), why: "no handler" }
            });
            gicv2::end_of_interrupt(acknowledged);
        }
    }

    fn describe_fault(frame: &ExceptionFrame) -> FaultDescription {
        let class = frame.class();
        let mut what = format!("{}", class);
        // FAR_EL1 is only meaningful for aborts; elsewhere it holds a stale value.
        let mut fault_address = None;
        if let Some(detail) = frame.abort_detail() {
            what = format!("{}: {}", what, detail);
            fault_address = Some(("FAR", frame.far));
        }
        if class == ExceptionClass::BrkAarch64 {
            what = if frame.brk_immediate() == debug::TRAMPOLINE_BRK_IMMEDIATE && frame.elr == brk_abi::layout::XOL_PAGE
            {
                format!("{}: {}", what, UNARMED_TRAMPOLINE)
            } else {
                format!("{}: brk #{:#x}, which no probe owns", what, frame.brk_immediate())
            };
        }
        FaultDescription { what, fault_address, pc_register: "ELR", pc: frame.elr }
    }

    fn describe_fatal(frame: &ExceptionFrame, entry: u64) -> impl fmt::Display + '_ {
        Fatal { frame, slot: VectorSlot::ALL[entry as usize & 0xf] }
    }
}

/// An exception the kernel cannot continue after, as `fatal` reports it.
struct Fatal<'a> {
    frame: &'a ExceptionFrame,
    slot: VectorSlot,
}

impl fmt::Display for Fatal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ESR_EL1={:#010x} FAR_EL1={:#018x} ELR_EL1={:#018x}",
            self.slot.name(),
            self.frame.class(),
            self.frame.esr.get(),
            self.frame.far,
            self.frame.elr,
        )
    }
}
