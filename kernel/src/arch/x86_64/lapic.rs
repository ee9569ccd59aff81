//! The local APIC of each processor (serves `crate::time`, `crate::exception`
//! and `crate::cores`): its enabling, its id, the end of an interrupt, the
//! in-service and request registers, its timer, in TSC-deadline or one-shot
//! mode, and the interrupt command register that sends INIT, STARTUP and the
//! cross-core interrupt to another processor.
//!
//! Every processor's local APIC answers at the same address; each reaches its
//! own there (11.4.1).
//!
//! Intel SDM vol. 3A, chapter 11 "Advanced Programmable Interrupt Controller
//! (APIC)" (chapter 10 in editions before 2023); section numbers below are
//! that chapter's. The kernel uses the xAPIC interface: 32-bit registers in a
//! 4 KiB page whose physical address IA32_APIC_BASE gives (11.4.4), reached
//! through the kernel's identity map. Firmware marks that page uncacheable in
//! the MTRRs, which is what the local APIC needs (11.4.1).

use core::{
    arch::x86_64::__cpuid,
    ptr,
    sync::atomic::{AtomicU64, Ordering},
};
use x86_64::registers::model_specific::{ApicBase, ApicBaseFlags, Msr};

/// Register offsets from the base (11.4.1, table 11-1 "Local APIC Register
/// Address Map").
const LOCAL_APIC_ID: u64 = 0x020;
const TASK_PRIORITY: u64 = 0x080;
const END_OF_INTERRUPT: u64 = 0x0b0;
const SPURIOUS_INTERRUPT_VECTOR: u64 = 0x0f0;
/// The in-service (ISR) and request (IRR) registers: 256 bits each, as eight
/// 32-bit registers 16 bytes apart, vector N in bit N % 32 of register N / 32
/// (11.8.4).
const IN_SERVICE_0: u64 = 0x100;
const INTERRUPT_REQUEST_0: u64 = 0x200;
const BIT_REGISTER_STRIDE: u64 = 0x10;
/// The interrupt command register, low and high halves (11.6.1, figure
/// 11-12): writing the low half sends the IPI.
const INTERRUPT_COMMAND_LOW: u64 = 0x300;
const INTERRUPT_COMMAND_HIGH: u64 = 0x310;
const LVT_TIMER: u64 = 0x320;
const LVT_LINT0: u64 = 0x350;
const TIMER_INITIAL_COUNT: u64 = 0x380;
const TIMER_CURRENT_COUNT: u64 = 0x390;
const TIMER_DIVIDE_CONFIGURATION: u64 = 0x3e0;

/// Spurious-interrupt vector register (11.9, figure 11-23): the vector in
/// bits \[7:0\], APIC software enable in bit 8.
const SVR_APIC_SOFTWARE_ENABLE: u32 = 1 << 8;
/// Local vector table entries (11.5.1, figure 11-8): the vector in bits
/// \[7:0\], the mask in bit 16, the timer mode in bits \[18:17\].
const LVT_MASKED: u32 = 1 << 16;
/// A LINT entry's delivery mode ExtINT (0b111 in bits \[10:8\]): the vector
/// comes from an 8259-compatible controller.
const LVT_DELIVERY_EXTINT: u32 = 0b111 << 8;
const LVT_TIMER_MODE_ONE_SHOT: u32 = 0b00 << 17;
const LVT_TIMER_MODE_TSC_DEADLINE: u32 = 0b10 << 17;
/// Divide configuration (11.5.4, figure 11-10): bits 3, 1, 0 = 0b1_11 divide
/// by 1, so the timer counts at the local APIC's own clock.
const DIVIDE_BY_1: u32 = 0b1011;
/// Task priority 0: accept every vector (11.8.3.1).
const ACCEPT_ALL_PRIORITIES: u32 = 0;
/// A value written to EOI is ignored; 0 is what the SDM writes (11.8.5).
const EOI_VALUE: u32 = 0;

/// The xAPIC id in bits \[31:24\] of the local APIC id register (11.4.6).
const APIC_ID_SHIFT: u32 = 24;
/// The destination field of the ICR's high half, bits \[63:56\] of the ICR
/// (11.6.1): an xAPIC id, physical destination mode.
const ICR_DESTINATION_SHIFT: u32 = 24;
/// ICR low half (11.6.1, figure 11-12): delivery mode in bits \[10:8\]
/// (fixed 0b000, INIT 0b101, STARTUP 0b110), delivery status in bit 12 (1:
/// send pending), level in bit 14 (1: assert). Destination mode (bit 11) 0 is
/// physical, trigger mode (bit 15) 0 is edge, and the shorthand (bits
/// \[19:18\]) 0 means the destination field names the target.
const ICR_DELIVERY_FIXED: u32 = 0b000 << 8;
const ICR_DELIVERY_INIT: u32 = 0b101 << 8;
const ICR_DELIVERY_STARTUP: u32 = 0b110 << 8;
const ICR_SEND_PENDING: u32 = 1 << 12;
const ICR_LEVEL_ASSERT: u32 = 1 << 14;
/// How many times a sender polls the delivery status before it calls the
/// local APIC stuck: a bound on the processor's own work (an accepted IPI
/// clears the bit within microseconds), not a time.
const SEND_PENDING_POLLS: u32 = 1 << 24;

/// IA32_TSC_DEADLINE (SDM vol. 4, table 2-2; vol. 3A, 11.5.4.1).
const IA32_TSC_DEADLINE: u32 = 0x6e0;
/// CPUID leaf 1: EDX bit 9 "APIC on chip", ECX bit 24 "TSC-deadline".
const CPUID_LEAF_FEATURES: u32 = 1;
const CPUID_1_EDX_APIC: u32 = 1 << 9;
const CPUID_1_ECX_TSC_DEADLINE: u32 = 1 << 24;

/// The xAPIC base address once [`init`] enabled it; 0 before.
static BASE: AtomicU64 = AtomicU64::new(0);

/// Does this processor have a local APIC at all?
pub fn present() -> bool {
    __cpuid(CPUID_LEAF_FEATURES).edx & CPUID_1_EDX_APIC != 0
}

/// Can its timer count down to a TSC value (TSC-deadline mode, 11.5.4.1)?
pub fn has_tsc_deadline() -> bool {
    __cpuid(CPUID_LEAF_FEATURES).ecx & CPUID_1_ECX_TSC_DEADLINE != 0
}

/// The xAPIC's physical (= identity-mapped) base address, as IA32_APIC_BASE
/// says now (firmware may have moved it from the reset value 0xfee00000).
pub fn base_address() -> u64 {
    ApicBase::read().0.start_address().as_u64()
}

fn read(offset: u64) -> u32 {
    let base = BASE.load(Ordering::Relaxed);
    debug_assert!(base != 0, "the local APIC is read before init");
    // SAFETY: `init` stored the xAPIC page's address, identity mapped, and
    // every offset is one of table 11-1's 32-bit, 16-byte aligned registers.
    unsafe { ptr::read_volatile((base + offset) as *const u32) }
}

fn write(offset: u64, value: u32) {
    let base = BASE.load(Ordering::Relaxed);
    debug_assert!(base != 0, "the local APIC is written before init");
    // SAFETY: as in `read`; writes to these registers only program the
    // local APIC.
    unsafe { ptr::write_volatile((base + offset) as *mut u32, value) }
}

/// Enable the local APIC in xAPIC mode with `spurious_vector`, every priority
/// accepted, LINT0 (the 8259's virtual wire, 11.5.1) and the timer masked.
pub fn init(spurious_vector: u8) -> Result<(), &'static str> {
    if !present() {
        return Err("this processor has no local APIC (CPUID.01H:EDX[9] is clear)");
    }
    let (frame, flags) = ApicBase::read();
    let xapic = (flags - ApicBaseFlags::X2APIC_ENABLE) | ApicBaseFlags::LAPIC_ENABLE;
    if flags.contains(ApicBaseFlags::X2APIC_ENABLE) {
        // x2APIC to xAPIC is only allowed through the disabled state (11.12.5,
        // figure 11-27 "Local x2APIC State Transitions"); it resets the local
        // APIC, whose every register this function then sets.
        // SAFETY: the base stays where it is; the local APIC is not in use
        // yet (interrupts are off, nothing is armed).
        unsafe { ApicBase::write(frame, flags - ApicBaseFlags::X2APIC_ENABLE - ApicBaseFlags::LAPIC_ENABLE) };
    }
    // SAFETY: as above; this sets the global enable bit (11.4.3) and keeps
    // the base address, which the identity map covers.
    unsafe { ApicBase::write(frame, xapic) };
    BASE.store(frame.start_address().as_u64(), Ordering::Relaxed);
    write(TASK_PRIORITY, ACCEPT_ALL_PRIORITIES);
    write(LVT_LINT0, LVT_MASKED);
    write(LVT_TIMER, LVT_MASKED);
    write(SPURIOUS_INTERRUPT_VECTOR, SVR_APIC_SOFTWARE_ENABLE | u32::from(spurious_vector));
    Ok(())
}

/// This processor's xAPIC id, as its local APIC reports it (11.4.6).
pub fn id() -> u32 {
    read(LOCAL_APIC_ID) >> APIC_ID_SHIFT
}

/// Wait until the local APIC has sent the last IPI (the ICR's delivery
/// status is idle again), within [`SEND_PENDING_POLLS`].
fn wait_until_sent() -> Result<(), &'static str> {
    for _ in 0..SEND_PENDING_POLLS {
        if read(INTERRUPT_COMMAND_LOW) & ICR_SEND_PENDING == 0 {
            return Ok(());
        }
        core::hint::spin_loop();
    }
    Err("the local APIC's previous IPI stayed pending (ICR delivery status)")
}

/// Send an IPI with `command` (the ICR's low half) to the processor whose
/// xAPIC id is `destination`: destination first, then the low half, which
/// sends (11.6.1). Interrupts are masked meanwhile, so no interrupt handler
/// on this processor writes the ICR between the two halves.
fn send(destination: u32, command: u32) -> Result<(), &'static str> {
    x86_64::instructions::interrupts::without_interrupts(|| {
        wait_until_sent()?;
        write(INTERRUPT_COMMAND_HIGH, destination << ICR_DESTINATION_SHIFT);
        write(INTERRUPT_COMMAND_LOW, command);
        Ok(())
    })
}

/// INIT, level assert, to `destination`: the processor resets and waits for
/// a STARTUP IPI (11.6.1; 9.4.4.1 "Typical BSP Initialization Sequence").
pub fn send_init(destination: u32) -> Result<(), &'static str> {
    send(destination, ICR_DELIVERY_INIT | ICR_LEVEL_ASSERT)?;
    wait_until_sent()
}

/// STARTUP to `destination`: a processor waiting for one starts in real mode
/// at `page` << 12 (`page` < 0x100); one that runs ignores it (11.6.1).
pub fn send_startup(destination: u32, page: u8) -> Result<(), &'static str> {
    send(destination, ICR_DELIVERY_STARTUP | ICR_LEVEL_ASSERT | u32::from(page))?;
    wait_until_sent()
}

/// A fixed interrupt on `vector` to `destination` (the cross-core interrupt).
/// The MFENCE first makes every earlier store of this processor visible
/// before the IPI can arrive: the ICR is uncached memory, and the contract
/// (`Cores::interrupt_core`) promises that order whatever the memory types.
pub fn send_fixed(destination: u32, vector: u8) -> Result<(), &'static str> {
    // SAFETY: MFENCE only orders memory accesses.
    unsafe { core::arch::x86_64::_mm_mfence() };
    send(destination, ICR_DELIVERY_FIXED | ICR_LEVEL_ASSERT | u32::from(vector))
}

/// Take the 8259's interrupts on LINT0 (the serial console's line; see
/// `pic::route_console`): delivery mode ExtINT, unmasked (11.5.1, figure
/// 11-8). The processor then reads the vector from the 8259 (0x20 + line), and
/// the 8259, not the local APIC, expects the end of interrupt.
pub fn accept_8259_interrupts() {
    write(LVT_LINT0, LVT_DELIVERY_EXTINT);
}

/// Signal the end of the interrupt in service (11.8.5). Never for the
/// spurious vector, which the local APIC does not mark in service (11.9).
pub fn end_of_interrupt() {
    write(END_OF_INTERRUPT, EOI_VALUE);
}

fn vector_bit(first_register: u64, vector: u8) -> bool {
    let register = first_register + u64::from(vector / 32) * BIT_REGISTER_STRIDE;
    read(register) & (1 << (vector % 32)) != 0
}

/// Is `vector` in service at the local APIC, that is, delivered by it and not
/// yet acknowledged? (An `int n` instruction never is.) False before [`init`].
pub fn in_service(vector: u8) -> bool {
    BASE.load(Ordering::Relaxed) != 0 && vector_bit(IN_SERVICE_0, vector)
}

/// Has the local APIC accepted `vector` and not yet delivered it (interrupts
/// are off)?
pub fn requested(vector: u8) -> bool {
    vector_bit(INTERRUPT_REQUEST_0, vector)
}

/// TSC-deadline mode on `vector`: the timer fires when the TSC reaches the
/// value [`arm_deadline`] writes.
pub fn start_tsc_deadline(vector: u8) {
    write(LVT_TIMER, LVT_TIMER_MODE_TSC_DEADLINE | u32::from(vector));
    // The LVT write (memory) and the WRMSR that arms the deadline are not
    // ordered against each other; without a fence the first deadline may be
    // written while the timer is still in its old mode and be lost (11.5.4.1).
    // SAFETY: MFENCE only orders memory accesses.
    unsafe { core::arch::x86_64::_mm_mfence() };
}

/// Fire once the TSC reaches `tsc` (at once if it already has); replaces the
/// deadline armed before.
pub fn arm_deadline(tsc: u64) {
    // SAFETY: IA32_TSC_DEADLINE exists (CPUID.01H:ECX[24], checked by the
    // caller's choice of mode); writing it only arms the timer.
    unsafe { Msr::new(IA32_TSC_DEADLINE).write(tsc) };
}

/// One-shot mode on `vector`, counting at the local APIC's clock (divide by 1).
pub fn start_one_shot(vector: u8) {
    write(TIMER_DIVIDE_CONFIGURATION, DIVIDE_BY_1);
    write(LVT_TIMER, LVT_TIMER_MODE_ONE_SHOT | u32::from(vector));
}

/// Fire after `count` clocks (one-shot mode); restarts the countdown.
pub fn arm_one_shot(count: u32) {
    write(TIMER_INITIAL_COUNT, count);
}

/// Start the one-shot countdown from `initial` with its interrupt masked (to
/// measure the rate it counts at); 0 stops it.
pub fn count_down_masked(initial: u32) {
    write(TIMER_DIVIDE_CONFIGURATION, DIVIDE_BY_1);
    write(LVT_TIMER, LVT_MASKED | LVT_TIMER_MODE_ONE_SHOT);
    write(TIMER_INITIAL_COUNT, initial);
}

/// The one-shot countdown's current value.
pub fn current_count() -> u32 {
    read(TIMER_CURRENT_COUNT)
}
