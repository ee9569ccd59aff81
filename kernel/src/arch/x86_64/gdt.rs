//! The GDT and the TSS (serve the IDT, the trap frames and `trap.s` in
//! `exception.rs`).
//!
//! Long mode ignores segment bases and limits, but ring changes still need
//! descriptors: ring 0 code and data, ring 3 code and data, and the TSS, which
//! names the stack the CPU switches to when a trap arrives from ring 3 (RSP0,
//! set to the running thread's kernel stack by `trap.s` on every return to
//! ring 3) and the separate
//! stack for double faults (IST1, so a kernel stack overflow is reported
//! instead of escalating to a triple fault and a reset). System calls are
//! `int 0x80`, not `syscall`, so the order SYSRET wants does not matter.

use spin::Once;
use x86_64::{
    instructions::{
        segmentation::{Segment, CS, DS, ES, SS},
        tables::load_tss,
    },
    registers::segmentation::SegmentSelector,
    structures::{
        gdt::{Descriptor, GlobalDescriptorTable},
        tss::TaskStateSegment,
    },
    PrivilegeLevel, VirtAddr,
};

/// The IST slot (1-based in the IDT, 0-based in the TSS) of the double fault.
pub const DOUBLE_FAULT_IST_INDEX: u16 = 0;

/// The selectors, in GDT order.
#[derive(Clone, Copy, Debug)]
pub struct Selectors {
    pub kernel_code: SegmentSelector,
    pub kernel_data: SegmentSelector,
    pub user_data: SegmentSelector,
    pub user_code: SegmentSelector,
    pub tss: SegmentSelector,
}

/// The TSS is written after it is loaded (RSP0 on every return to ring 3), so
/// it is a `static mut` reached only through raw pointers, never a reference
/// the compiler could assume constant. `trap.s` writes RSP0 at
/// [`TSS_RSP0_OFFSET`].
pub(super) static mut TSS: TaskStateSegment = TaskStateSegment::new();
/// Byte offset of RSP0 in the TSS (SDM vol. 3A, figure 8-11: after a
/// reserved doubleword).
pub const TSS_RSP0_OFFSET: usize = 4;
const _: () = assert!(core::mem::offset_of!(TaskStateSegment, privilege_stack_table) == TSS_RSP0_OFFSET);
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

/// Build and load the GDT, reload every segment register, load the TSS.
/// `double_fault_stack_top` is the top of the IST1 stack.
pub fn init(double_fault_stack_top: u64) {
    let tss = core::ptr::addr_of_mut!(TSS);
    // SAFETY: single core, before interrupts are enabled: nothing else uses the TSS yet.
    unsafe { (*tss).interrupt_stack_table[DOUBLE_FAULT_IST_INDEX as usize] = VirtAddr::new(double_fault_stack_top) };
    let (gdt, selectors) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let kernel_code = gdt.append(Descriptor::kernel_code_segment());
        let kernel_data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        // SAFETY: the TSS is a static, so it outlives the GDT, and it is only
        // changed through raw pointers (`trap.s` writes RSP0).
        let tss = gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss) });
        (gdt, Selectors { kernel_code, kernel_data, user_data, user_code, tss })
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded; CS is reloaded with a far
    // return to the same (identity-mapped) code, the data selectors are the
    // flat ring 0 data segment, and the TSS descriptor is a valid, not-busy TSS.
    unsafe {
        CS::set_reg(selectors.kernel_code);
        SS::set_reg(selectors.kernel_data);
        DS::set_reg(selectors.kernel_data);
        ES::set_reg(selectors.kernel_data);
        load_tss(selectors.tss);
    }
}

pub fn selectors() -> Selectors {
    GDT.get().expect("GDT not loaded yet").1
}

/// The ring 3 code and stack selectors (RPL 3) for a new thread's frame.
pub fn user_selectors() -> (u64, u64) {
    let selectors = selectors();
    let user = |selector: SegmentSelector| SegmentSelector::new(selector.index(), PrivilegeLevel::Ring3).0 as u64;
    (user(selectors.user_code), user(selectors.user_data))
}

/// RSP0 and IST1 as the TSS holds them now, and the task register (self-test).
pub fn loaded_state() -> (u64, u64, u16) {
    let tss = core::ptr::addr_of!(TSS);
    // SAFETY: reading our own static with the kernel not preempted.
    let (rsp0, ist1) = unsafe {
        (
            (*tss).privilege_stack_table[0].as_u64(),
            (*tss).interrupt_stack_table[DOUBLE_FAULT_IST_INDEX as usize].as_u64(),
        )
    };
    let task_register: u16;
    // SAFETY: `str` only reads the task register.
    unsafe { core::arch::asm!("str {0:x}", out(reg) task_register, options(nomem, nostack, preserves_flags)) };
    (rsp0, ist1, task_register)
}
