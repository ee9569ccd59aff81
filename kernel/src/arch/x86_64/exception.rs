//! x86_64 traps (serves `crate::exception` through the contract's `Traps`):
//! the IDT, the uniform register frame every stub in `trap.s` builds, the
//! kernel's vector assignment, the names of the vectors, and the decoding of a
//! trap by vector into the contract's [`Trap`], with the interrupt sources'
//! acknowledgement and their counts.
//!
//! All 256 gates are present, each leading to its own stub, so an interrupt
//! nobody expected is reported by the dispatcher instead of becoming a
//! #NP/#GP on a missing gate. Every gate is an interrupt gate, so the CPU clears RFLAGS.IF on entry: the
//! kernel itself is never interrupted (as on aarch64, where handlers run with
//! IRQs masked). Gates ring 3 may reach with a software interrupt have DPL 3:
//! `int 0x80` (system calls) and `int3` (#BP, vector 3). Vector 1 (#DB) needs
//! no DPL 3: single-step traps (RFLAGS.TF) are not software interrupts.
//!
//! The IDT is built once, by the boot core, and only read afterwards: every
//! core loads the same one (its gates name the same stubs; what differs per
//! core, the stacks, is in each core's own TSS).
//!
//! The interrupts: the local APIC timer is the tick; the cross-core interrupt
//! (a fixed IPI on vector 0xf0) is another core's request; a spurious interrupt (the
//! local APIC's spurious vector, an 8259's line 7 or 15) is counted and
//! ignored; any other interrupt vector is counted and reported in one line and
//! ignored, so the kernel goes on.

use super::{expected_traps, gdt, lapic, pic, Machine};
use crate::arch::{FaultDescription, Interrupt, SavedRegisters, Trap, Traps, UNARMED_TRAMPOLINE};
use alloc::format;
use core::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
};
use spin::Once;
use x86_64::{
    registers::{control::Cr2, rflags::RFlags},
    structures::idt::{Entry, HandlerFunc, InterruptDescriptorTable, PageFaultErrorCode},
    PrivilegeLevel, VirtAddr,
};

core::arch::global_asm!(
    include_str!("trap.s"),
    rsp0_offset = const gdt::RSP0_OFFSET,
    trampoline_vector = const TRAMPOLINE_VECTOR,
);

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

/// RFLAGS bit 1 is reserved and always reads 1 (`RFlags` has no name for it).
const RFLAGS_RESERVED_ONE: u64 = 1 << 1;
/// The low two bits of a selector are its privilege level.
const SELECTOR_RPL_MASK: u64 = 0b11;

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
    /// One of the 16 lines of the two 8259 PICs (all masked: only a spurious
    /// interrupt, line 7 or 15, is expected here).
    PicLine(u8),
    /// The local APIC timer: the tick.
    LocalApicTimer,
    /// The local APIC's spurious-interrupt vector.
    LocalApicSpurious,
    /// Another core's fixed IPI (`Cores::interrupt_core`).
    CrossCore,
    /// `int 0x80`.
    Syscall,
    /// `int 0x82`: a probe trampoline's entry.
    TrampolineCall,
    Other(u8),
}

/// The first vector of the remapped master PIC (IRQ 0); the slave's lines
/// follow it. Vectors 0-31 are the CPU's own (SDM vol. 3A, 6.2).
pub const PIC_BASE: u8 = 0x20;
/// Lines of the two cascaded 8259s.
pub const PIC_LINES: u8 = 16;
/// The local APIC timer's vector: above the PIC's, in priority class 3
/// (a local APIC ranks vectors by their upper four bits, SDM vol. 3A, 11.8.3).
pub const LOCAL_APIC_TIMER_VECTOR: u8 = 0x30;
/// The local APIC's spurious vector. Its low four bits are 1s, which the P6
/// and Pentium local APICs required (SDM vol. 3A, 11.9).
pub const LOCAL_APIC_SPURIOUS_VECTOR: u8 = 0xff;
/// The cross-core interrupt's vector: in the highest priority class (0xf),
/// below the spurious vector, so a request is taken before a tick (11.8.3).
pub const CROSS_CORE_VECTOR: u8 = 0xf0;
/// The system call vector.
pub const SYSCALL_VECTOR: u8 = 0x80;
/// The vector a probe's branch trampoline enters the kernel with
/// (`probe_core`'s x86_64 relocator writes `int 0x82`).
pub const TRAMPOLINE_VECTOR: u8 = probe_core::insn::x86_64::TRAMPOLINE_VECTOR;
const TRAMPOLINE_GATE: usize = TRAMPOLINE_VECTOR as usize;
/// #BP and #DF, whose gates differ from the rest (DPL 3; an IST stack).
const BREAKPOINT_VECTOR: usize = 3;
const DOUBLE_FAULT_VECTOR: usize = 8;
const SYSCALL_GATE: usize = SYSCALL_VECTOR as usize;
/// The first vector that is not one of the CPU's exceptions.
pub const FIRST_INTERRUPT_VECTOR: u8 = 32;

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
            v if (PIC_BASE..PIC_BASE + PIC_LINES).contains(&v) => Self::PicLine(v - PIC_BASE),
            LOCAL_APIC_TIMER_VECTOR => Self::LocalApicTimer,
            LOCAL_APIC_SPURIOUS_VECTOR => Self::LocalApicSpurious,
            CROSS_CORE_VECTOR => Self::CrossCore,
            SYSCALL_VECTOR => Self::Syscall,
            TRAMPOLINE_VECTOR => Self::TrampolineCall,
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
            Self::PicLine(line) => return write!(f, "8259 PIC line {}", line),
            Self::LocalApicTimer => "local APIC timer",
            Self::LocalApicSpurious => "local APIC spurious interrupt",
            Self::CrossCore => "cross-core interrupt",
            Self::Syscall => "int 0x80",
            Self::TrampolineCall => "int 0x82 (a probe trampoline's entry, not from the start of a trampoline)",
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
    pub fn class(&self) -> Vector {
        Vector::of(self.vector)
    }

    /// For a page fault: the error code decoded.
    pub fn page_fault_detail(&self) -> Option<PageFaultDetail> {
        if self.class() != Vector::PageFault {
            return None;
        }
        let code = PageFaultErrorCode::from_bits_retain(self.error_code);
        Some(PageFaultDetail {
            present: code.contains(PageFaultErrorCode::PROTECTION_VIOLATION),
            access: if code.contains(PageFaultErrorCode::INSTRUCTION_FETCH) {
                "execute"
            } else if code.contains(PageFaultErrorCode::CAUSED_BY_WRITE) {
                "write"
            } else {
                "read"
            },
            reserved_bit: code.contains(PageFaultErrorCode::MALFORMED_TABLE),
            protection_key: code.contains(PageFaultErrorCode::PROTECTION_KEY),
        })
    }
}

/// What generic code reads and writes of a frame (the contract's `SavedRegisters`).
impl SavedRegisters for TrapFrame {
    /// The frame that, restored by `trap.s` and `iretq`ed to, starts ring 3 at
    /// `entry` with `rsp` = `stack_top` and `rdi`, `rsi` = `args`, every other
    /// register 0 and RFLAGS = IF only (the x86_64 ABI in `brk_abi`'s documentation).
    fn new_user(entry: u64, stack_top: u64, args: [u64; 2]) -> Self {
        let (code, data) = gdt::user_selectors();
        Self {
            rip: entry,
            cs: code,
            rflags: RFlags::INTERRUPT_FLAG.bits() | RFLAGS_RESERVED_ONE,
            rsp: stack_top,
            ss: data,
            rdi: args[0],
            rsi: args[1],
            ..Self::default()
        }
    }

    /// Did this trap come from ring 3?
    fn came_from_user(&self) -> bool {
        self.cs & SELECTOR_RPL_MASK == PrivilegeLevel::Ring3 as u64
    }

    /// System call number and arguments (`int 0x80`: rax; rdi, rsi, rdx, r10, r8, r9).
    fn syscall_number(&self) -> u64 {
        self.rax
    }

    fn syscall_arg(&self, index: usize) -> u64 {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9][index]
    }

    fn set_syscall_result(&mut self, value: u64) {
        self.rax = value;
    }

    /// The second result (`clock`'s frequency, `join`'s value) goes in rdx.
    fn set_syscall_second_result(&mut self, value: u64) {
        self.rdx = value;
    }

    /// Print every saved register, four to a line.
    fn dump(&self, out: &mut dyn fmt::Write) -> fmt::Result {
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
fn fault_address() -> u64 {
    Cr2::read_raw()
}

extern "C" {
    /// The first of `trap.s`'s 256 stubs, one every [`STUB_SIZE`] bytes.
    static trap_stubs: u8;
}
/// The size `trap.s` pads every stub to.
const STUB_SIZE: u64 = 16;
/// Gates in the IDT: one per vector.
const VECTORS: usize = 256;

/// The IDT the `x86_64` crate lays out: 256 16-byte gates in vector order.
/// Its typed fields leave out the reserved vectors (15, 22-27, 31), so
/// `init_traps` fills the gates through this view of the same memory instead.
type RawIdt = [Entry<HandlerFunc>; VECTORS];
const _: () = assert!(core::mem::size_of::<InterruptDescriptorTable>() == core::mem::size_of::<RawIdt>());

static IDT: Once<InterruptDescriptorTable> = Once::new();

/// The IDT's address as loaded now, and ours (self-test).
pub fn idt_addresses() -> (u64, u64) {
    let loaded = x86_64::instructions::tables::sidt().base.as_u64();
    (loaded, IDT.get().map_or(0, |idt| idt as *const _ as u64))
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

/// Spurious interrupts seen, by source, and unexpected vectors reported.
static SPURIOUS_LOCAL_APIC: AtomicU64 = AtomicU64::new(0);
static SPURIOUS_PIC: AtomicU64 = AtomicU64::new(0);
static UNEXPECTED_VECTORS: AtomicU64 = AtomicU64::new(0);
/// Cross-core interrupts taken on any core.
static CROSS_CORE_INTERRUPTS: AtomicU64 = AtomicU64::new(0);

/// How many cross-core interrupts all cores have taken so far (self-test).
pub fn cross_core_interrupts() -> u64 {
    CROSS_CORE_INTERRUPTS.load(Ordering::Relaxed)
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// How many spurious local APIC interrupts, spurious 8259 interrupts and
/// unexpected vectors have arrived so far.
pub fn interrupt_counts() -> (u64, u64, u64) {
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    (load(&SPURIOUS_LOCAL_APIC), load(&SPURIOUS_PIC), load(&UNEXPECTED_VECTORS))
}

/// Where an interrupt no handler claims came from.
pub enum UnclaimedInterrupt {
    /// An 8259 line (every one is masked, so only a spurious one should come).
    PicLine(u8),
    /// Any other interrupt vector, from a device or an `int n` in ring 0
    /// (from ring 3, `int n` to a DPL 0 gate is a #GP instead).
    Vector(u8),
}

impl fmt::Display for UnclaimedInterrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PicLine(line) => write!(f, "interrupt on 8259 PIC line {}", line),
            Self::Vector(vector) => write!(f, "vector {:#04x}", vector),
        }
    }
}

/// Exceptions and interrupts, as the contract's `Traps` describes them.
impl Traps for Machine {
    type Frame = TrapFrame;
    type InterruptSource = UnclaimedInterrupt;

    const TRAMPOLINE_ENTRY_ELSEWHERE: Trap = Trap::UserFault;

    /// Build and load the IDT: a present interrupt gate for every vector, each to
    /// its own stub. Needs the GDT (the gates name the current CS).
    fn init_traps() {
        let first_stub = core::ptr::addr_of!(trap_stubs) as u64;
        let idt = IDT.call_once(|| {
            let mut idt = InterruptDescriptorTable::new();
            // SAFETY: `InterruptDescriptorTable` is `#[repr(C)]`, 256 gate entries
            // of 16 bytes each in vector order and nothing else (the size check
            // above); `Entry<F>` has the same layout for every handler type `F`,
            // which only records what the handler expects.
            let gates = unsafe { &mut *(&mut idt as *mut InterruptDescriptorTable).cast::<RawIdt>() };
            for (vector, gate) in gates.iter_mut().enumerate() {
                // SAFETY: the address is the `trap.s` stub of exactly this vector,
                // which saves a full frame, calls `handle_exception` and returns with
                // `iretq`, as a gate handler must.
                let options = unsafe { gate.set_handler_addr(VirtAddr::new(first_stub + vector as u64 * STUB_SIZE)) };
                match vector {
                    // Ring 3 may raise these three with `int3` / `int 0x80` /
                    // `int 0x82` (a probe trampoline's entry); every other gate
                    // keeps DPL 0, so an `int n` from ring 3 to it is a #GP.
                    BREAKPOINT_VECTOR | SYSCALL_GATE | TRAMPOLINE_GATE => {
                        options.set_privilege_level(PrivilegeLevel::Ring3);
                    }
                    // SAFETY: IST slot DOUBLE_FAULT_IST_INDEX holds a stack of its
                    // own (gdt::init_this_core).
                    DOUBLE_FAULT_VECTOR => unsafe {
                        options.set_stack_index(gdt::DOUBLE_FAULT_IST_INDEX);
                    },
                    _ => {}
                }
            }
            idt
        });
        idt.load();
    }

    /// `entry` is the vector, as `frame.vector` holds it too.
    #[inline(always)]
    fn decode(frame: &mut TrapFrame, _: u64) -> Trap {
        let from_user = frame.came_from_user();
        match frame.class() {
            // The local APIC marks no spurious interrupt in service: no EOI (SDM
            // vol. 3A, 11.9).
            Vector::LocalApicSpurious => {
                count(&SPURIOUS_LOCAL_APIC);
                Trap::Dismissed
            }
            Vector::PicLine(line) if pic::is_spurious(line) => {
                count(&SPURIOUS_PIC);
                Trap::Dismissed
            }
            Vector::LocalApicTimer | Vector::CrossCore | Vector::PicLine(_) => Trap::Interrupt,
            Vector::Other(vector) if vector >= FIRST_INTERRUPT_VECTOR => Trap::Interrupt,
            Vector::Syscall if from_user => Trap::SystemCall,
            Vector::TrampolineCall if from_user => Trap::TrampolineCall,
            Vector::Breakpoint if from_user => Trap::Breakpoint,
            Vector::Debug if from_user => Trap::Step,
            Vector::Breakpoint if expected_traps::is_kernel_int3(frame.rip) => {
                expected_traps::record_kernel_int3(frame.rip, frame.vector);
                Trap::Expected
            }
            // A machine check or an NMI is the machine's doing, whoever was running.
            Vector::MachineCheck | Vector::NonMaskableInterrupt | Vector::DoubleFault => Trap::Fatal,
            _ if from_user => Trap::UserFault,
            _ => Trap::Fatal,
        }
    }

    /// `int3` from ring 3, which `trap.s` routes by its vector. The null
    /// breakpoint (the two-byte `int 3`) cannot be told from the frame: the
    /// probe code resolves it.
    #[inline(always)]
    fn user_breakpoint(_: &mut TrapFrame) -> Trap {
        Trap::Breakpoint
    }

    /// One vector is one interrupt (a spurious one never comes here, `decode`
    /// dismissed it): count an unexpected one, have `handle` deal with it, and
    /// send the end of interrupt its source waits for.
    #[inline]
    fn take_interrupts(frame: &TrapFrame, mut handle: impl FnMut(Interrupt<UnclaimedInterrupt>)) {
        match frame.class() {
            Vector::LocalApicTimer => {
                handle(Interrupt::Tick);
                lapic::end_of_interrupt();
            }
            // Another core's request. Raised from ring 0 with `int 0xf0` it is
            // not in service at the local APIC, and wants no EOI.
            Vector::CrossCore => {
                count(&CROSS_CORE_INTERRUPTS);
                handle(Interrupt::CrossCore);
                if lapic::in_service(CROSS_CORE_VECTOR) {
                    lapic::end_of_interrupt();
                }
            }
            // The serial console's line, opened for the shell.
            Vector::PicLine(line) if pic::is_console(line) => {
                handle(Interrupt::ConsoleInput);
                pic::end_of_interrupt(line);
            }
            // Every other 8259 line is masked, so only a spurious interrupt
            // should come; anything else is reported and acknowledged so the
            // PIC is not left stuck.
            Vector::PicLine(line) => {
                count(&UNEXPECTED_VECTORS);
                let source = UnclaimedInterrupt::PicLine(line);
                handle(Interrupt::Unexpected { source, why: "every line is masked" });
                pic::end_of_interrupt(line);
            }
            _ => {
                let vector = frame.vector as u8;
                count(&UNEXPECTED_VECTORS);
                handle(Interrupt::Unexpected { source: UnclaimedInterrupt::Vector(vector), why: "no handler" });
                // Delivered by the local APIC, it waits for an EOI, without which no
                // interrupt of its priority class or below would come again (11.8.3).
                if lapic::in_service(vector) {
                    lapic::end_of_interrupt();
                }
            }
        }
    }

    fn describe_fault(frame: &TrapFrame) -> FaultDescription {
        let class = frame.class();
        let what = match (class, frame.page_fault_detail()) {
            (_, Some(detail)) => format!("{}: {}", class, detail),
            // RIP is past the `int3`: slot 0 of the XOL page is the trampoline.
            (Vector::Breakpoint, None) if frame.rip.wrapping_sub(1) == brk_abi::layout::XOL_PAGE => {
                format!("{}: {}", class, UNARMED_TRAMPOLINE)
            }
            (Vector::Breakpoint, None) => format!("{} not placed by a probe", class),
            (Vector::GeneralProtection | Vector::StackSegment | Vector::SegmentNotPresent, None)
                if frame.error_code != 0 =>
            {
                format!("{}: selector error code {:#x}", class, frame.error_code)
            }
            _ => format!("{}", class),
        };
        // CR2 is meaningful for page faults only; elsewhere it holds a stale value.
        let fault_address = (class == Vector::PageFault).then(|| ("CR2", fault_address()));
        FaultDescription { what, fault_address, pc_register: "RIP", pc: frame.rip }
    }

    fn describe_fatal(frame: &TrapFrame, _: u64) -> impl fmt::Display + '_ {
        Fatal { frame, fault_address: fault_address() }
    }
}

/// A trap the kernel cannot continue after, as `fatal` reports it.
struct Fatal<'a> {
    frame: &'a TrapFrame,
    /// CR2 when the report was made.
    fault_address: u64,
}

impl fmt::Display for Fatal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = self.frame;
        write!(
            f,
            "vector {} {} error code {:#x} CR2={:#018x} RIP={:#018x} in ring {}",
            frame.vector,
            frame.class(),
            frame.error_code,
            self.fault_address,
            frame.rip,
            frame.cs & SELECTOR_RPL_MASK,
        )
    }
}
