//! The GDT, the TSS and the per-core area behind GS (serve the IDT, the trap
//! frames and `trap.s` in `exception.rs`, and the contract's `Cores` in
//! `smp.rs`).
//!
//! Long mode ignores segment bases and limits, but ring changes still need
//! descriptors: ring 0 code and data, ring 3 code and data, and the TSS, which
//! names the stack the CPU switches to when a trap arrives from ring 3 (RSP0,
//! set to the running thread's kernel stack by `trap.s` on every return to
//! ring 3) and the separate stack for double faults (IST1, so a kernel stack
//! overflow is reported instead of escalating to a triple fault and a reset).
//! System calls are `int 0x80`, not `syscall`, so the order SYSRET wants does
//! not matter.
//!
//! Every core has its own TSS (its RSP0 is its running thread's, its IST1 its
//! own double-fault stack) and so its own GDT (a TSS descriptor is marked busy
//! when loaded, SDM vol. 3A, 8.2.2). Both live in the core's [`PerCore`]
//! area, whose address is the core's GS base while it runs the kernel: its
//! index is `gs:[CORE_INDEX_OFFSET]`, its RSP0 `gs:[RSP0_OFFSET]`. Ring 3 can
//! change its own GS base (loading a GS selector does, in long mode), so the
//! kernel keeps the area's address in IA32_KERNEL_GS_BASE while ring 3 runs
//! and `trap.s` exchanges the two with SWAPGS on every entry from ring 3 and
//! every return to it (SDM vol. 2B, SWAPGS; Linux's `entry_64.S` does the
//! same). The selectors are the same on every core.

use alloc::boxed::Box;
use core::cell::UnsafeCell;
use spin::Once;
use x86_64::{
    instructions::{
        segmentation::{Segment, CS, DS, ES, SS},
        tables::load_tss,
    },
    registers::{
        model_specific::{GsBase, KernelGsBase},
        segmentation::SegmentSelector,
    },
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

/// One core's own descriptor tables and index, reached through its GS base.
/// Made once per core by [`init_this_core`] and never freed.
#[repr(C)]
pub struct PerCore {
    /// The core's index (`Cores::core_index`).
    index: usize,
    /// The core's TSS. `trap.s` writes its RSP0 through GS, so the compiler
    /// must not assume it constant: an `UnsafeCell`.
    tss: UnsafeCell<TaskStateSegment>,
    /// The core's GDT, whose TSS descriptor names `tss`.
    gdt: GlobalDescriptorTable,
}

/// Byte offset of RSP0 in the TSS (SDM vol. 3A, figure 8-11: after a
/// reserved doubleword).
const TSS_RSP0_OFFSET: usize = 4;
const _: () = assert!(core::mem::offset_of!(TaskStateSegment, privilege_stack_table) == TSS_RSP0_OFFSET);
/// Where the core's index lies in its [`PerCore`] (`gs:[CORE_INDEX_OFFSET]`).
pub const CORE_INDEX_OFFSET: usize = core::mem::offset_of!(PerCore, index);
/// Where the core's TSS.RSP0 lies in its [`PerCore`] (`gs:[RSP0_OFFSET]`,
/// written by `trap.s`).
pub const RSP0_OFFSET: usize = core::mem::offset_of!(PerCore, tss) + TSS_RSP0_OFFSET;

static SELECTORS: Once<Selectors> = Once::new();

/// Build this core's area for core `index` with `double_fault_stack_top` as
/// the top of its IST1 stack; load its GDT, reload every segment register,
/// load its TSS, and make the area this core's GS base (IA32_KERNEL_GS_BASE
/// 0, ring 3's until its first SWAPGS). Interrupts are off.
pub fn init_this_core(index: usize, double_fault_stack_top: u64) {
    let mut tss = TaskStateSegment::new();
    tss.interrupt_stack_table[DOUBLE_FAULT_IST_INDEX as usize] = VirtAddr::new(double_fault_stack_top);
    let area: &'static mut PerCore =
        Box::leak(Box::new(PerCore { index, tss: UnsafeCell::new(tss), gdt: GlobalDescriptorTable::new() }));
    let tss = area.tss.get();
    let kernel_code = area.gdt.append(Descriptor::kernel_code_segment());
    let kernel_data = area.gdt.append(Descriptor::kernel_data_segment());
    let user_data = area.gdt.append(Descriptor::user_data_segment());
    let user_code = area.gdt.append(Descriptor::user_code_segment());
    // SAFETY: the TSS lives in the leaked area, so it outlives the GDT, and it
    // is only changed through raw pointers (`trap.s` writes RSP0).
    let tss_selector = area.gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss) });
    let selectors =
        *SELECTORS.call_once(|| Selectors { kernel_code, kernel_data, user_data, user_code, tss: tss_selector });
    let area: &'static PerCore = area;
    area.gdt.load();
    // SAFETY: the selectors index the GDT just loaded (every core's has the
    // same layout); CS is reloaded with a far return to the same
    // (identity-mapped) code, the data selectors are the flat ring 0 data
    // segment, and the TSS descriptor is a valid, not-busy TSS of this core.
    unsafe {
        CS::set_reg(selectors.kernel_code);
        SS::set_reg(selectors.kernel_data);
        DS::set_reg(selectors.kernel_data);
        ES::set_reg(selectors.kernel_data);
        load_tss(selectors.tss);
    }
    // GS itself is never loaded with a selector by the kernel: only its base
    // matters, and loading a selector would replace it.
    GsBase::write(VirtAddr::from_ptr(area));
    KernelGsBase::write(VirtAddr::zero());
}

/// This core's area (its GS base: the kernel runs, so SWAPGS has put it there).
fn this_core() -> *const PerCore {
    GsBase::read().as_ptr()
}

pub fn selectors() -> Selectors {
    *SELECTORS.get().expect("GDT not loaded yet")
}

/// The ring 3 code and stack selectors (RPL 3) for a new thread's frame.
pub fn user_selectors() -> (u64, u64) {
    let selectors = selectors();
    let user = |selector: SegmentSelector| SegmentSelector::new(selector.index(), PrivilegeLevel::Ring3).0 as u64;
    (user(selectors.user_code), user(selectors.user_data))
}

/// This core's index, from its area (what `Cores::core_index` reads through
/// GS directly; a self-test compares them).
pub fn index_in_area() -> usize {
    // SAFETY: the GS base is this core's leaked area while the kernel runs.
    unsafe { (*this_core()).index }
}

/// RSP0 and IST1 as this core's TSS holds them now, and the task register
/// (self-test).
pub fn loaded_state() -> (u64, u64, u16) {
    // SAFETY: the GS base is this core's leaked area; its TSS is read through
    // the cell's raw pointer with this core not preempted.
    let (rsp0, ist1) = unsafe {
        let tss = (*this_core()).tss.get();
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
