// kernel/src/arch/aarch64/vectors.s: the exception vector table (serves
// kernel/src/arch/aarch64/exception.rs).
//
// 16 entries of 0x80 bytes (Arm ARM D1.3.1): (current EL with SP_EL0, current EL
// with SP_ELx, lower EL AArch64, lower EL AArch32) x (synchronous, IRQ, FIQ,
// SError). Every entry saves the full register frame on the current kernel stack
// (SP_EL1) and calls `handle_exception(frame, slot)` in Rust. The handler returns
// the frame to resume: the same one, or another thread's (that is a context
// switch), which is restored and `eret`ed to.

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
    VECTOR_ENTRY 8      // lower_aarch64_synchronous
    VECTOR_ENTRY 9      // lower_aarch64_irq
    VECTOR_ENTRY 10     // lower_aarch64_fiq
    VECTOR_ENTRY 11     // lower_aarch64_serror
    VECTOR_ENTRY 12     // lower_aarch32_synchronous
    VECTOR_ENTRY 13     // lower_aarch32_irq
    VECTOR_ENTRY 14     // lower_aarch32_fiq
    VECTOR_ENTRY 15     // lower_aarch32_serror

save_frame_and_dispatch:
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
    mrs     x2, esr_el1
    mrs     x3, far_el1
    stp     x2, x3, [sp, #272]
    mov     x0, sp
    bl      handle_exception    // x0 = frame to resume
    mov     sp, x0

.global restore_frame_and_eret
restore_frame_and_eret:
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
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #FRAME_SIZE
    eret
