//! x86_64 traps (serves `crate::exception`): the IDT, the uniform register
//! frame every stub in `trap.s` builds, and the names of the vectors.
//!
//! Every gate is an interrupt gate, so the CPU clears RFLAGS.IF on entry: the
//! kernel itself is never interrupted (as on aarch64, where handlers run with
//! IRQs masked). Gates ring 3 may reach with a software interrupt have DPL 3:
//! `int 0x80` (system calls) and `int3` (#BP, vector 3). Vector 1 (#DB) needs
//! no DPL 3: single-step traps (RFLAGS.TF) are not software interrupts.

use super::gdt;
use core::fmt;
use spin::Once;
use x86_64::{registers::control::Cr2, structures::idt::InterruptDescriptorTable, PrivilegeLevel, VirtAddr};

core::arch::global_asm!(include_str!("trap.s"), trap_entry = sym trap_entry, tss = sym gdt::TSS, rsp0_offset = const gdt::TSS_RSP0_OFFSET);

/// The registers saved on every trap, in the order `trap.s` pushes them
/// (lowest address first). The last five are the CPU's own interrupt frame.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Which IDT vector this is.
    pub vector: u64,
    /// The CPU's error code, or 0 for vectors that push none.
    pub error_code: u64,
    /// Where the trap was taken: the faulting instruction for a fault, the next
    /// one for a trap (`int3`, `int 0x80`, a single step).
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// The generic code's name for the saved registers (the aarch64 kernel's word).
pub type ExceptionFrame = TrapFrame;

/// `trap.s` hard-codes the frame's shape; keep them in step.
const _: () = {
    assert!(core::mem::size_of::<TrapFrame>() == 22 * 8);
    assert!(core::mem::offset_of!(TrapFrame, r15) == 0);
    assert!(core::mem::offset_of!(TrapFrame, rax) == 14 * 8);
    assert!(core::mem::offset_of!(TrapFrame, vector) == 15 * 8);
    assert!(core::mem::offset_of!(TrapFrame, error_code) == 16 * 8);
    assert!(core::mem::offset_of!(TrapFrame, rip) == 17 * 8);
    assert!(core::mem::offset_of!(TrapFrame, ss) == 21 * 8);
    assert!(core::mem::size_of::<TrapFrame>().is_multiple_of(16)); // RSP stays 16-byte aligned
};

/// RFLAGS.IF (bit 9): interrupts enabled.
pub const RFLAGS_IF: u64 = 1 << 9;
/// RFLAGS bit 1 is reserved and always reads 1.
pub const RFLAGS_RESERVED_ONE: u64 = 1 << 1;
/// RFLAGS.TF (bit 8): trap after the next instruction (#DB). The probe code
/// sets it in a thread's frame to step an instruction out of line.
pub const RFLAGS_TF: u64 = 1 << 8;
/// The low two bits of a selector are its privilege level.
pub const SELECTOR_RPL_MASK: u64 = 0b11;

/// The vectors this kernel installs (SDM vol. 3A, 6.3.1 and table 6-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vector {
    DivideError,
    Debug,
    NonMaskableInterrupt,
    Breakpoint,
    Overflow,
    BoundRange,
    InvalidOpcode,
    DeviceNotAvailable,
    DoubleFault,
    InvalidTss,
    SegmentNotPresent,
    StackSegment,
    GeneralProtection,
    PageFault,
    X87FloatingPoint,
    AlignmentCheck,
    MachineCheck,
    SimdFloatingPoint,
    Virtualization,
    ControlProtection,
    /// One of the 16 PIC lines (0 = the PIT).
    Irq(u8),
    /// `int 0x80`.
    Syscall,
    Other(u8),
}

/// The first vector of the remapped master PIC (IRQ 0).
pub const IRQ_BASE: u8 = 0x20;
/// Lines of the two cascaded 8259s.
pub const IRQ_LINES: u8 = 16;
/// The system call vector.
pub const SYSCALL_VECTOR: u8 = 0x80;

impl Vector {
    pub fn of(vector: u64) -> Self {
        match vector as u8 {
            0 => Self::DivideError,
            1 => Self::Debug,
            2 => Self::NonMaskableInterrupt,
            3 => Self::Breakpoint,
            4 => Self::Overflow,
            5 => Self::BoundRange,
            6 => Self::InvalidOpcode,
            7 => Self::DeviceNotAvailable,
            8 => Self::DoubleFault,
            10 => Self::InvalidTss,
            11 => Self::SegmentNotPresent,
            12 => Self::StackSegment,
            13 => Self::GeneralProtection,
            14 => Self::PageFault,
            16 => Self::X87FloatingPoint,
            17 => Self::AlignmentCheck,
            18 => Self::MachineCheck,
            19 => Self::SimdFloatingPoint,
            20 => Self::Virtualization,
            21 => Self::ControlProtection,
            v if (IRQ_BASE..IRQ_BASE + IRQ_LINES).contains(&v) => Self::Irq(v - IRQ_BASE),
            SYSCALL_VECTOR => Self::Syscall,
            v => Self::Other(v),
        }
    }
}

impl fmt::Display for Vector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::DivideError => "divide error (#DE)",
            Self::Debug => "debug (#DB)",
            Self::NonMaskableInterrupt => "non-maskable interrupt (NMI)",
            Self::Breakpoint => "breakpoint (int3)",
            Self::Overflow => "overflow (#OF)",
            Self::BoundRange => "bound range exceeded (#BR)",
            Self::InvalidOpcode => "invalid opcode (#UD)",
            Self::DeviceNotAvailable => "device not available (#NM, x87 is off)",
            Self::DoubleFault => "double fault (#DF)",
            Self::InvalidTss => "invalid TSS (#TS)",
            Self::SegmentNotPresent => "segment not present (#NP)",
            Self::StackSegment => "stack segment fault (#SS)",
            Self::GeneralProtection => "general protection (#GP)",
            Self::PageFault => "page fault",
            Self::X87FloatingPoint => "x87 floating point (#MF)",
            Self::AlignmentCheck => "alignment check (#AC)",
            Self::MachineCheck => "machine check (#MC)",
            Self::SimdFloatingPoint => "SIMD floating point (#XM)",
            Self::Virtualization => "virtualization exception (#VE)",
            Self::ControlProtection => "control protection (#CP)",
            Self::Irq(line) => return write!(f, "IRQ {}", line),
            Self::Syscall => "int 0x80",
            Self::Other(v) => return write!(f, "vector {:#04x}", v),
        };
        f.write_str(name)
    }
}

/// A page fault's error code decoded (SDM vol. 3A, 4.7).
pub struct PageFaultDetail {
    pub present: bool,
    pub access: &'static str,
    pub reserved_bit: bool,
    pub protection_key: bool,
}

/// Page-fault error code bits.
const PF_PRESENT: u64 = 1 << 0;
const PF_WRITE: u64 = 1 << 1;
const PF_RESERVED: u64 = 1 << 3;
const PF_INSTRUCTION: u64 = 1 << 4;
const PF_PROTECTION_KEY: u64 = 1 << 5;

impl fmt::Display for PageFaultDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.reserved_bit {
            "reserved bit set in a paging entry"
        } else if self.protection_key {
            "protection key violation"
        } else if self.present {
            "protection violation"
        } else {
            "not present"
        };
        write!(f, "{} on {}", kind, self.access)
    }
}

impl TrapFrame {
    /// The frame that, restored by `trap.s` and `iretq`ed to, starts ring 3 at
    /// `entry` with `rsp` = `stack_top` and `rdi`, `rsi` = `args`, every other
    /// register 0 and RFLAGS = IF only (the x86_64 ABI in `brk_abi`'s documentation).
    pub fn new_user(entry: u64, stack_top: u64, args: [u64; 2]) -> Self {
        let (code, data) = gdt::user_selectors();
        Self {
            rip: entry,
            cs: code,
            rflags: RFLAGS_IF | RFLAGS_RESERVED_ONE,
            rsp: stack_top,
            ss: data,
            rdi: args[0],
            rsi: args[1],
            ..Self::default()
        }
    }

    /// Did this trap come from ring 3?
    pub fn came_from_user(&self) -> bool {
        self.cs & SELECTOR_RPL_MASK == PrivilegeLevel::Ring3 as u64
    }

    /// The same in the shared scheduler's (aarch64) words: ring 3 is EL0.
    pub fn came_from_el0(&self) -> bool {
        self.came_from_user()
    }

    pub fn class(&self) -> Vector {
        Vector::of(self.vector)
    }

    /// System call number and arguments (`int 0x80`: rax; rdi, rsi, rdx, r10, r8, r9).
    pub fn syscall_number(&self) -> u64 {
        self.rax
    }
    pub fn syscall_arg(&self, index: usize) -> u64 {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9][index]
    }
    pub fn set_syscall_result(&mut self, value: u64) {
        self.rax = value;
    }
    /// The second result (`clock`'s frequency, `join`'s value) goes in rdx.
    pub fn set_syscall_second_result(&mut self, value: u64) {
        self.rdx = value;
    }

    /// For a page fault: the error code decoded.
    pub fn page_fault_detail(&self) -> Option<PageFaultDetail> {
        if self.class() != Vector::PageFault {
            return None;
        }
        let code = self.error_code;
        Some(PageFaultDetail {
            present: code & PF_PRESENT != 0,
            access: if code & PF_INSTRUCTION != 0 {
                "execute"
            } else if code & PF_WRITE != 0 {
                "write"
            } else {
                "read"
            },
            reserved_bit: code & PF_RESERVED != 0,
            protection_key: code & PF_PROTECTION_KEY != 0,
        })
    }

    /// Print every saved register, four to a line.
    pub fn dump(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let registers = [
            ("rax", self.rax),
            ("rbx", self.rbx),
            ("rcx", self.rcx),
            ("rdx", self.rdx),
            ("rsi", self.rsi),
            ("rdi", self.rdi),
            ("rbp", self.rbp),
            ("rsp", self.rsp),
            ("r8", self.r8),
            ("r9", self.r9),
            ("r10", self.r10),
            ("r11", self.r11),
            ("r12", self.r12),
            ("r13", self.r13),
            ("r14", self.r14),
            ("r15", self.r15),
        ];
        for (i, (name, value)) in registers.iter().enumerate() {
            write!(out, "  {:<3}={:#018x}", name, value)?;
            if i % 4 == 3 {
                writeln!(out)?;
            }
        }
        writeln!(out, "  rip={:#018x} rflags={:#018x} cs={:#x} ss={:#x}", self.rip, self.rflags, self.cs, self.ss)
    }
}

/// CR2: the linear address of the last page fault.
pub fn fault_address() -> u64 {
    Cr2::read_raw()
}

extern "C" {
    /// The stub addresses of `trap.s`, vectors 0..=47 then 0x80.
    static trap_stub_table: [u64; STUB_COUNT];
}
const STUB_COUNT: usize = 49;
/// The index of `int 0x80` in `trap_stub_table`.
const SYSCALL_STUB: usize = 48;

static IDT: Once<InterruptDescriptorTable> = Once::new();

/// Build and load the IDT. Needs the GDT (the gates name the current CS).
pub fn init() {
    // SAFETY: `trap_stub_table` is a read-only table of 49 addresses in trap.s.
    let stubs = unsafe { &*core::ptr::addr_of!(trap_stub_table) };
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        let address = |vector: usize| VirtAddr::new(stubs[vector]);
        macro_rules! gate {
            ($entry:expr, $vector:expr) => {
                // SAFETY: the address is the `trap.s` stub of exactly that vector,
                // which saves a full frame, calls `trap_entry` and returns with
                // `iretq`, as a gate handler must.
                unsafe { $entry.set_handler_addr(address($vector)) }
            };
        }
        gate!(idt.divide_error, 0);
        gate!(idt.debug, 1);
        gate!(idt.non_maskable_interrupt, 2);
        gate!(idt.breakpoint, 3).set_privilege_level(PrivilegeLevel::Ring3);
        gate!(idt.overflow, 4);
        gate!(idt.bound_range_exceeded, 5);
        gate!(idt.invalid_opcode, 6);
        gate!(idt.device_not_available, 7);
        let double_fault = gate!(idt.double_fault, 8);
        // SAFETY: IST slot DOUBLE_FAULT_IST_INDEX holds a stack of its own (gdt::init).
        unsafe { double_fault.set_stack_index(gdt::DOUBLE_FAULT_IST_INDEX) };
        gate!(idt[9], 9);
        gate!(idt.invalid_tss, 10);
        gate!(idt.segment_not_present, 11);
        gate!(idt.stack_segment_fault, 12);
        gate!(idt.general_protection_fault, 13);
        gate!(idt.page_fault, 14);
        gate!(idt[16], 16);
        gate!(idt.alignment_check, 17);
        gate!(idt.machine_check, 18);
        gate!(idt.simd_floating_point, 19);
        gate!(idt.virtualization, 20);
        gate!(idt.cp_protection_exception, 21);
        gate!(idt.hv_injection_exception, 28);
        gate!(idt.vmm_communication_exception, 29);
        gate!(idt.security_exception, 30);
        for line in 0..IRQ_LINES {
            let vector = (IRQ_BASE + line) as usize;
            gate!(idt[IRQ_BASE + line], vector);
        }
        gate!(idt[SYSCALL_VECTOR], SYSCALL_STUB).set_privilege_level(PrivilegeLevel::Ring3);
        idt
    });
    idt.load();
}

/// The IDT's address as loaded now, and ours (self-test).
pub fn idt_addresses() -> (u64, u64) {
    let loaded = x86_64::instructions::tables::sidt().base.as_u64();
    (loaded, IDT.get().map_or(0, |idt| idt as *const _ as u64))
}

/// Called by `trap.s` with the saved frame; returns the frame to resume.
extern "sysv64" fn trap_entry(frame: &mut TrapFrame) -> *mut TrapFrame {
    crate::exception::dispatch(frame)
}

extern "sysv64" {
    /// `trap.s`: switch to the stack `top` and call `entry(argument)` there.
    fn run_on_stack(top: u64, entry: extern "sysv64" fn(u64) -> !, argument: u64) -> !;
}

/// Leave the current (firmware's) stack for `top` and continue in `entry`.
///
/// # Safety
///
/// `top` must be the 16-byte aligned top of a mapped, otherwise unused stack;
/// nothing on the old stack may be used again.
pub unsafe fn switch_stack(top: u64, entry: extern "sysv64" fn(u64) -> !, argument: u64) -> ! {
    // SAFETY: forwarded to the caller.
    unsafe { run_on_stack(top, entry, argument) }
}
