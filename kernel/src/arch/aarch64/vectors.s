// kernel/src/arch/aarch64/vectors.s: the exception vector table (serves
// kernel/src/arch/aarch64/exception.rs).
//
// 16 entries of 0x80 bytes (Arm ARM D1.3.1): (current EL with SP_EL0, current EL
// with SP_ELx, lower EL AArch64, lower EL AArch32) x (synchronous, IRQ, FIQ,
// SError). Every entry saves the full register frame on the current kernel stack
// (SP_EL1) and calls `handle_exception(frame, slot)` in Rust. The handler returns
// the frame to resume: the same one, or another thread's (that is a context
// switch), which is restored and `eret`ed to.
//
// The fast routes: a synchronous exception from EL0 whose class (ESR_EL1.EC,
// bits [31:26], Arm ARM D19.2.40) is an SVC (0x15), a BRK (0x3c) or a software
// step (0x32) goes, with the same frame saved, straight to the dispatcher's
// entry for it (`handle_user_system_call`, `handle_user_breakpoint`,
// `handle_user_step`) instead of `handle_exception`, which would decode the
// slot and the class again. Every other class takes the generic path.

.equ FRAME_SIZE, 288            // = size_of::<ExceptionFrame>(), checked in Rust

.macro VECTOR_ENTRY slot
.balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x1, #\slot
    b       save_frame_and_dispatch
.endm

.section .text.vectors, "ax"
.balign 0x800
.global exception_vector_table
exception_vector_table:
    VECTOR_ENTRY 0      // current_el_sp0_synchronous
    VECTOR_ENTRY 1      // current_el_sp0_irq
    VECTOR_ENTRY 2      // current_el_sp0_fiq
    VECTOR_ENTRY 3      // current_el_sp0_serror
    VECTOR_ENTRY 4      // current_el_spx_synchronous
    VECTOR_ENTRY 5      // current_el_spx_irq
    VECTOR_ENTRY 6      // current_el_spx_fiq
    VECTOR_ENTRY 7      // current_el_spx_serror
    // lower_aarch64_synchronous: the fast routes by exception class.
.balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mrs     x0, esr_el1
    lsr     x1, x0, #26         // ESR_EL1.EC
    cmp     x1, #0x15           // SVC instruction execution in AArch64 state
    b.eq    el0_svc
    cmp     x1, #0x3c           // BRK instruction execution in AArch64 state
    b.eq    el0_brk
    cmp     x1, #0x32           // Software Step exception from a lower EL
    b.eq    el0_step
    mov     x1, #8
    b       save_frame_and_dispatch
    VECTOR_ENTRY 9      // lower_aarch64_irq
    VECTOR_ENTRY 10     // lower_aarch64_fiq
    VECTOR_ENTRY 11     // lower_aarch64_serror
    VECTOR_ENTRY 12     // lower_aarch32_synchronous
    VECTOR_ENTRY 13     // lower_aarch32_irq
    VECTOR_ENTRY 14     // lower_aarch32_fiq
    VECTOR_ENTRY 15     // lower_aarch32_serror

// The register frame's stores and loads, shared by every entry (the offsets
// are `ExceptionFrame`'s, checked in exception.rs). x0 and x1 are stored by
// the vector entry itself; ESR_EL1 and FAR_EL1 by each route as it needs.
//
// x2-x17, then SP_EL0 with x30, then ELR_EL1 and SPSR_EL1: what a handler
// written in Rust may clobber, and the thread's return state.
.macro SAVE_CALLER_SAVED_BUT_X0_X1
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    str     x18, [sp, #144]
    mrs     x2, sp_el0
    stp     x30, x2, [sp, #240]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x2, x3, [sp, #256]
.endm

// The same with the callee-saved x19-x29: the whole frame a context switch needs.
.macro SAVE_ALL_BUT_X0_X1
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, sp_el0
    stp     x30, x2, [sp, #240]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x2, x3, [sp, #256]
.endm

// ELR_EL1, SPSR_EL1, SP_EL0 and x30 back, then x0-x17 (x18 and, where they
// were saved, x19-x29 are the caller's to load).
.macro RESTORE_CALLER_SAVED_BUT_X18
    ldp     x2, x3, [sp, #256]
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x30, x2, [sp, #240]
    msr     sp_el0, x2
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
.endm

// x2-x30, SP_EL0, ELR_EL1, SPSR_EL1 and ESR_EL1 (already in x0) into the frame
// at SP, whose x0 and x1 the vector entry stored; FAR_EL1, meaningful for
// aborts only, which never take these routes, is not saved. Then the frame
// goes to `handler`, and the frame it returns is restored.
.macro FAST_ROUTE handler
    SAVE_ALL_BUT_X0_X1
    str     x0, [sp, #272]
    mov     x0, sp
    bl      \handler
    b       resume_frame
.endm

// `svc #0`, the system call, and `svc #0xb7e`, a probe's branch trampoline
// entering the kernel (`probe_core`'s TRAMPOLINE_SVC_IMMEDIATE): x19-x29 are
// not saved on the way in. The Rust code keeps them as it found them (they
// are callee-saved, AAPCS64 6.1.1), and neither a system call nor a
// trampoline call reads or writes them in the frame (the trampoline call
// reads x30 and SP, for a return probe), so they are still the thread's when
// the handler returns. If it returns the same frame, they stay in the
// registers; if it returns another (a context switch: the thread blocks,
// yields or ends), they are stored into the thread's frame first, so that
// the frame is whole when it is restored later (no other core restores it
// before: the scheduler gives no core a thread whose kernel stack another
// core is still leaving, `task::on_core::still_leaving`, and this core leaves
// it only after these stores). Any other immediate saves them all.
.macro CALLER_SAVED_ROUTE handler
    SAVE_CALLER_SAVED_BUT_X0_X1
    str     x0, [sp, #272]
    mov     x0, sp
    bl      \handler
    mov     x1, sp
    cmp     x0, x1
    b.ne    1f
    RESTORE_CALLER_SAVED_BUT_X18
    ldr     x18, [sp, #144]
    add     sp, sp, #FRAME_SIZE
    eret
1:  // Another frame: complete this thread's before leaving it.
    str     x19, [sp, #152]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    b       resume_frame
.endm

el0_svc:
    ands    x1, x0, #0xffff     // ESR_EL1.ISS[15:0], the svc immediate (x1 is in the frame already)
    b.ne    el0_svc_immediate
    CALLER_SAVED_ROUTE handle_user_system_call
el0_svc_immediate:
    cmp     x1, #{trampoline_svc}
    b.ne    el0_svc_full
    CALLER_SAVED_ROUTE handle_user_trampoline_call
el0_svc_full:
    FAST_ROUTE handle_user_system_call
el0_brk:
    FAST_ROUTE handle_user_breakpoint
el0_step:
    FAST_ROUTE handle_user_step

save_frame_and_dispatch:
    SAVE_ALL_BUT_X0_X1
    mrs     x2, esr_el1
    mrs     x3, far_el1
    stp     x2, x3, [sp, #272]
    mov     x0, sp
    bl      handle_exception    // x0 = frame to resume
resume_frame:
    mov     sp, x0

.global restore_frame_and_eret
restore_frame_and_eret:
    RESTORE_CALLER_SAVED_BUT_X18
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #FRAME_SIZE
    eret
