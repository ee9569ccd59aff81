//! More than one core on x86_64 (serves `crate::cores` and the boot order in
//! `start/x86_64.rs`): starting an application processor with INIT-SIPI-SIPI
//! through the trampoline below 1 MiB (`ap_start.s`), its first Rust code
//! (its own GDT, TSS, GS area, control registers, local APIC and tick), and
//! the contract's `Cores`: the core index behind the GS base, the cross-core
//! interrupt (a fixed IPI), the local TLB flush.
//!
//! Intel SDM vol. 3A, 9.4 "Multiple-Processor (MP) Initialization" (9.4.4.1
//! "Typical BSP Initialization Sequence": INIT, 10 ms, STARTUP, 200 us,
//! STARTUP) and 9.9 "Mode Switching"; Linux does the same in
//! `arch/x86/kernel/smpboot.c` (`wakeup_secondary_cpu_via_init`) and
//! `arch/x86/realmode/rm/trampoline_64.S`.
//!
//! The trampoline is three pages the firmware gave below 0xa0000
//! (`board/uefi_pc/firmware.rs`), kept out of the frame allocator (the
//! first MiB is reserved): the code page, mapped read-only and executable in
//! the kernel's map, the parameter page, read/write and never executable,
//! and a PML4 of its own whose first entry is the kernel's (CR3 is loaded by
//! a 32-bit MOV there, so it must lie below 4 GiB, which the kernel's own
//! PML4 need not). The boot core writes one processor's parameters, starts
//! it, and waits for it to arrive (`cores::bring_up`) before it writes the
//! next one's.

use super::{
    cpu,
    exception::{CROSS_CORE_VECTOR, LOCAL_APIC_SPURIOUS_VECTOR},
    gdt, lapic,
    memory_layout::{self, AP_TRAMPOLINE_BELOW, AP_TRAMPOLINE_PAGES},
    mmu, timer, Machine,
};
use crate::{
    arch::Traps,
    cores::MAX_CORES,
    memory::{frames, PAGE_SIZE},
    time,
};
use alloc::{format, string::String};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use x86_64::registers::control::Cr3;

/// The pages, from the code page.
const PARAMETERS_PAGE: usize = PAGE_SIZE;
const PML4_PAGE: usize = 2 * PAGE_SIZE;

/// Offsets in the parameter page, as `ap_start.s` reads them.
mod parameter {
    /// Far pointer (32-bit offset, 16-bit selector) to the 32-bit code.
    pub const TO_PROTECTED_MODE: usize = 0;
    /// LGDT's operand: 16-bit limit, 32-bit base.
    pub const GDT_POINTER: usize = 8;
    /// Far pointer to the 64-bit code.
    pub const TO_LONG_MODE: usize = 16;
    /// The trampoline's PML4 (32 bits).
    pub const CR3: usize = 24;
    /// The Rust entry, the stack top and the core index (64 bits each).
    pub const ENTRY: usize = 32;
    pub const STACK_TOP: usize = 40;
    pub const CORE_INDEX: usize = 48;
    /// Nonzero while the parameters wait for their processor, which takes
    /// them by exchanging it with 0 (64 bits).
    pub const CLAIM: usize = 56;
}

/// The temporary GDT's selectors (`ap_start_gdt`: null, 32-bit code, data,
/// 64-bit code).
const CODE32_SELECTOR: u16 = 0x08;
const DATA_SELECTOR: u16 = 0x10;
const CODE64_SELECTOR: u16 = 0x18;

/// The control register and EFER bits the trampoline sets (SDM vol. 3A, 2.5
/// and 2.2.1): CR0.PE, ET, NE (with CD and NW clear), CR0.PG, CR4.PAE,
/// EFER.LME and NXE; IA32_EFER is MSR 0xc0000080.
const CR0_PE: u32 = 1 << 0;
const CR0_ET: u32 = 1 << 4;
const CR0_NE: u32 = 1 << 5;
const CR0_PG: u32 = 1 << 31;
const CR4_PAE: u32 = 1 << 5;
const IA32_EFER: u32 = 0xc000_0080;
const EFER_LME: u32 = 1 << 8;
const EFER_NXE: u32 = 1 << 11;

core::arch::global_asm!(
    include_str!("ap_start.s"),
    parameters = const PARAMETERS_PAGE,
    gdt_pointer = const parameter::GDT_POINTER,
    to_protected_mode = const parameter::TO_PROTECTED_MODE,
    to_long_mode = const parameter::TO_LONG_MODE,
    cr3 = const parameter::CR3,
    entry = const parameter::ENTRY,
    stack_top = const parameter::STACK_TOP,
    core_index = const parameter::CORE_INDEX,
    claim = const parameter::CLAIM,
    data_selector = const DATA_SELECTOR,
    cr0_protected = const CR0_PE | CR0_ET | CR0_NE,
    cr0_pg = const CR0_PG,
    cr4_pae = const CR4_PAE,
    efer = const IA32_EFER,
    efer_lme_nxe = const EFER_LME | EFER_NXE,
    options(att_syntax)
);

extern "C" {
    /// `ap_start.s`'s labels: the code to copy, and the places in it whose
    /// offsets the parameters name.
    static ap_start_begin: u8;
    static ap_start_protected: u8;
    static ap_start_long: u8;
    static ap_start_gdt: u8;
    static ap_start_gdt_end: u8;
    static ap_start_end: u8;
}

/// The offset of an `ap_start.s` label from the code's start.
fn offset_of_label(label: *const u8) -> usize {
    label as usize - core::ptr::addr_of!(ap_start_begin) as usize
}

/// The trampoline's code page, once [`install_trampoline`] copied the code.
static TRAMPOLINE: AtomicUsize = AtomicUsize::new(0);

/// Copy the start code into the code page at `base` (the first of
/// [`AP_TRAMPOLINE_PAGES`] pages below [`AP_TRAMPOLINE_BELOW`]), while the
/// firmware's identity map is still in CR3: the kernel's maps that page read
/// only.
pub fn install_trampoline(base: usize) {
    let (begin, end) = (core::ptr::addr_of!(ap_start_begin), core::ptr::addr_of!(ap_start_end));
    let len = end as usize - begin as usize;
    assert!(len <= PAGE_SIZE, "the AP start code ({} bytes) does not fit its page", len);
    assert!(base.is_multiple_of(PAGE_SIZE) && base + AP_TRAMPOLINE_PAGES * PAGE_SIZE <= AP_TRAMPOLINE_BELOW);
    // SAFETY: the firmware allocated the pages at `base` to the kernel
    // (LOADER_DATA) and identity maps them writable; the code is `len` bytes
    // of the image's text.
    unsafe { core::ptr::copy_nonoverlapping(begin, base as *mut u8, len) };
    TRAMPOLINE.store(base, Ordering::Release);
}

/// The trampoline's code page, if it was installed.
pub fn trampoline() -> Option<usize> {
    Some(TRAMPOLINE.load(Ordering::Acquire)).filter(|&base| base != 0)
}

fn put<T>(address: usize, value: T) {
    // SAFETY: every caller names a place inside the trampoline's parameter
    // or PML4 page, identity mapped read/write in the kernel's map and
    // owned by the kernel; the processor being started reads them only once
    // they are all written and its INIT sent, and takes them by the claim.
    unsafe { core::ptr::write_unaligned(address as *mut T, value) }
}

/// Fill the parameters every processor shares (after the kernel's map is
/// live): the far pointers and the GDT pointer, which depend on where the
/// trampoline lies, its PML4, and the Rust entry.
fn prepare_trampoline(base: usize) {
    let parameters = base + PARAMETERS_PAGE;
    let (protected, long, gdt, gdt_end) = (
        core::ptr::addr_of!(ap_start_protected),
        core::ptr::addr_of!(ap_start_long),
        core::ptr::addr_of!(ap_start_gdt),
        core::ptr::addr_of!(ap_start_gdt_end),
    );
    let gdt_bytes = offset_of_label(gdt_end) - offset_of_label(gdt);
    put(parameters + parameter::TO_PROTECTED_MODE, (base + offset_of_label(protected)) as u32);
    put(parameters + parameter::TO_PROTECTED_MODE + 4, CODE32_SELECTOR);
    put(parameters + parameter::GDT_POINTER, (gdt_bytes - 1) as u16);
    put(parameters + parameter::GDT_POINTER + 2, (base + offset_of_label(gdt)) as u32);
    put(parameters + parameter::TO_LONG_MODE, (base + offset_of_label(long)) as u32);
    put(parameters + parameter::TO_LONG_MODE + 4, CODE64_SELECTOR);
    mmu::share_kernel_map(base + PML4_PAGE);
    put(parameters + parameter::CR3, (base + PML4_PAGE) as u32);
    put(parameters + parameter::ENTRY, application_processor_entry as *const () as u64);
}

/// Whether the shared parameters are written (before the first start).
static PREPARED: spin::Once<()> = spin::Once::new();
/// Each core's xAPIC id, by core index (for the cross-core interrupt).
static APIC_IDS: [AtomicU32; MAX_CORES] = [const { AtomicU32::new(0) }; MAX_CORES];
/// Each secondary core's double-fault stack top, by core index.
static DOUBLE_FAULT_STACK_TOPS: [AtomicUsize; MAX_CORES] = [const { AtomicUsize::new(0) }; MAX_CORES];
/// Pages of a secondary core's double-fault stack (the boot core's is the
/// image's, with a guard page below; these have none).
const DOUBLE_FAULT_STACK_PAGES: usize = memory_layout::DOUBLE_FAULT_STACK_BYTES / PAGE_SIZE;

/// Set up the boot core's own per-core area (core 0: its GDT, TSS and GS
/// base), first thing in `kernel_main`, before anything reads the core index.
pub fn init_boot_core() {
    gdt::init_this_core(0, memory_layout::double_fault_stack_top() as u64);
}

/// Remember the boot core's APIC id (its local APIC is enabled), and return it.
pub fn boot_core_apic_id() -> u32 {
    let id = lapic::id();
    APIC_IDS[0].store(id, Ordering::Relaxed);
    id
}

/// The waits of the INIT-SIPI-SIPI sequence (9.4.4.1).
const AFTER_INIT_US: u64 = 10_000;
const BETWEEN_STARTUPS_US: u64 = 200;

/// Busy-wait `us` microseconds on the TSC.
fn wait_us(us: u64) {
    let end = time::counter() + time::frequency() * us / 1_000_000;
    while time::counter() < end {
        core::hint::spin_loop();
    }
}

/// Start the processor with xAPIC id `apic_id` as core `index` on the stack
/// whose top is `stack_top`: its parameters, INIT, 10 ms, STARTUP, 200 us,
/// STARTUP. With `withhold_startup` (the `inject=ap-no-sipi` test) only the
/// INIT is sent, so the processor stays waiting and never answers. The
/// parameters carry a claim only one processor can take (`ap_start.s`): one
/// that answers too late, after the next one's parameters were written,
/// stops in its start code.
pub fn start(index: usize, apic_id: u32, stack_top: usize, withhold_startup: bool) -> Result<(), String> {
    let base = trampoline().ok_or("no trampoline page below 1 MiB")?;
    let destination =
        u8::try_from(apic_id).map_err(|_| format!("x2APIC id {} is beyond the xAPIC's 8-bit destination", apic_id))?;
    let double_fault =
        frames::alloc_zeroed_contiguous(DOUBLE_FAULT_STACK_PAGES).ok_or("no memory for its double-fault stack")?;
    DOUBLE_FAULT_STACK_TOPS[index].store(double_fault + DOUBLE_FAULT_STACK_PAGES * PAGE_SIZE, Ordering::Relaxed);
    APIC_IDS[index].store(apic_id, Ordering::Relaxed);
    PREPARED.call_once(|| prepare_trampoline(base));
    let parameters = base + PARAMETERS_PAGE;
    put(parameters + parameter::STACK_TOP, stack_top as u64);
    put(parameters + parameter::CORE_INDEX, index as u64);
    put(parameters + parameter::CLAIM, 1u64);
    // Every parameter is in memory before the INIT is sent (the ICR writes
    // are volatile; these plain stores must not move past them).
    core::sync::atomic::fence(Ordering::SeqCst);
    let page = (base / PAGE_SIZE) as u8;
    let sent = lapic::send_init(u32::from(destination)).and_then(|()| {
        wait_us(AFTER_INIT_US);
        if withhold_startup {
            return Ok(());
        }
        lapic::send_startup(u32::from(destination), page)?;
        wait_us(BETWEEN_STARTUPS_US);
        lapic::send_startup(u32::from(destination), page)
    });
    sent.map_err(|why| {
        frames::free_contiguous(double_fault, DOUBLE_FAULT_STACK_PAGES);
        String::from(why)
    })
}

/// An application processor's first Rust code, called by `ap_start.s` in
/// long mode on its own stack with the trampoline's PML4 in CR3, interrupts
/// off. It sets the processor up as the boot core set itself up, then
/// reports and waits to join the scheduler.
extern "sysv64" fn application_processor_entry(index: u64) -> ! {
    let index = index as usize;
    // The control registers first (NX, WP, global pages, SMEP, SMAP), then
    // the kernel's own map, which has global entries.
    cpu::enable_protection(&cpu::identify());
    mmu::kernel_table_on_this_core();
    gdt::init_this_core(index, DOUBLE_FAULT_STACK_TOPS[index].load(Ordering::Relaxed) as u64);
    // The IDT the boot core built (read only from now on).
    Machine::init_traps();
    cpu::disable_sse();
    let local_apic = lapic::init(LOCAL_APIC_SPURIOUS_VECTOR);
    if local_apic.is_ok() {
        timer::start_tick_on_this_core();
        time::start_on_this_core();
    }
    if let Err(why) = local_apic.map_err(String::from).and_then(|()| set_up_as_asked(index)) {
        // It does not arrive: the boot core reports it as not answering and
        // goes on without it.
        crate::println!("cores:   core {} (APIC id {}) stops: {}", index, lapic::id(), why);
        cpu::halt();
    }
    let arrived = *WHEN_SET_UP.get().expect("the boot order names what a started processor does next");
    arrived(index)
}

/// What a started processor does once it is set up (the boot order's: report
/// to the generic `cores` module and join the scheduler). Handed over by
/// [`when_set_up`] so that this architecture code does not call up into the
/// generic kernel.
static WHEN_SET_UP: spin::Once<fn(usize) -> !> = spin::Once::new();

/// Have every processor started from now on call `arrived(index)` once it is
/// set up.
pub fn when_set_up(arrived: fn(usize) -> !) {
    WHEN_SET_UP.call_once(|| arrived);
}

/// Check what a secondary core just set up, before it counts as up: its index
/// through GS, its own TSS in the task register, the shared IDT, SSE off, its
/// APIC id the one it was started at, and its first tick requested.
fn set_up_as_asked(index: usize) -> Result<(), String> {
    let through_gs = <Machine as crate::arch::Cores>::core_index();
    if through_gs != index || gdt::index_in_area() != index {
        return Err(format!("core index {} through GS, {} in its area", through_gs, gdt::index_in_area()));
    }
    let (_, _, task_register) = gdt::loaded_state();
    if task_register != gdt::selectors().tss.0 {
        return Err(format!("task register {:#x}, not the TSS selector", task_register));
    }
    let (loaded, ours) = super::exception::idt_addresses();
    if loaded != ours {
        return Err(format!("IDTR base {:#x}, the kernel's IDT is at {:#x}", loaded, ours));
    }
    if !cpu::sse_is_off() {
        return Err(String::from("SSE or x87 is on"));
    }
    let apic_id = lapic::id();
    if apic_id != APIC_IDS[index].load(Ordering::Relaxed) {
        return Err(format!("started as APIC id {}", APIC_IDS[index].load(Ordering::Relaxed)));
    }
    timer::first_tick_requested_on_this_core()
}

impl crate::arch::Cores for Machine {
    /// `gs:[CORE_INDEX_OFFSET]`: the GS base is this core's per-core area
    /// whenever the kernel runs (`trap.s` swaps it in from ring 3).
    #[inline(always)]
    fn core_index() -> usize {
        let index: usize;
        // SAFETY: the GS base is this core's `PerCore`, set before anything
        // reads the index (`init_boot_core`, `application_processor_entry`);
        // the read has no side effect.
        unsafe {
            core::arch::asm!(
                "mov {index}, gs:[{offset}]",
                index = out(reg) index,
                offset = const gdt::CORE_INDEX_OFFSET,
                options(nostack, readonly, preserves_flags),
            );
        }
        index
    }

    /// A fixed IPI on [`CROSS_CORE_VECTOR`] to the core's APIC id.
    fn interrupt_core(index: usize) {
        if let Err(why) = lapic::send_fixed(APIC_IDS[index].load(Ordering::Relaxed), CROSS_CORE_VECTOR) {
            crate::println!("cores:   cross-core interrupt to core {} not sent: {}", index, why);
        }
    }

    /// Reload CR3: every non-global translation goes (SDM vol. 3A, 4.10.4.1);
    /// PCIDs are off (`mmu.rs`), so nothing of another address space stays.
    fn flush_local_user_translations() {
        let (frame, flags) = Cr3::read();
        // SAFETY: the same table is loaded again; nothing changes but the TLB.
        unsafe { Cr3::write(frame, flags) };
    }

    /// INVLPG and a CR3 write act on this core's TLB only (SDM vol. 3A,
    /// 4.10.5 "Propagation of Paging-Structure Changes to Multiple
    /// Processors").
    const TLB_INVALIDATION_IS_BROADCAST: bool = false;
}
