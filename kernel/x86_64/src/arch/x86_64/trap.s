// Trap entry and exit (serves arch/x86_64/exception.rs). Intel syntax.
//
// Every vector the IDT uses has a stub here. The CPU has already pushed
// SS, RSP, RFLAGS, CS, RIP (always, in long mode, even from ring 0), and for
// some exceptions an error code; on a trap from ring 3 it has switched to the
// TSS's RSP0 first, and it aligned RSP down to 16 bytes before pushing. Each
// stub pushes a dummy error code 0 where the CPU pushes none, then the vector
// number, so that every trap leaves the same `TrapFrame` (exception.rs):
//
//   low  r15 r14 r13 r12 r11 r10 r9 r8 rbp rdi rsi rdx rcx rbx rax
//        vector error_code rip cs rflags rsp ss                      high
//
// 22 quadwords = 176 bytes, a multiple of 16: RSP is 16-byte aligned at the
// `call`, as the System V ABI of `trap_entry` wants. `trap_entry` returns the
// frame to resume, maybe another thread's (a context switch), and the exit
// path restores from that one.

.macro trap_stub vector, cpu_pushes_error_code
    .p2align 4
trap_vector_\vector:
    .if \cpu_pushes_error_code == 0
    push 0
    .endif
    push \vector
    jmp trap_common
.endm

.section .text

// Vectors that push an error code (SDM vol. 3A, table 6-1): #DF 8, #TS 10,
// #NP 11, #SS 12, #GP 13, #PF 14, #AC 17, #CP 21, #VC 29, #SX 30.
.irp vector, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
    trap_stub \vector, 0
.endr
.irp vector, 8,10,11,12,13,14,17,21,29,30
    trap_stub \vector, 1
.endr
// The 16 lines of the two 8259 PICs, remapped to 0x20-0x2F, and `int 0x80`.
.irp vector, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,128
    trap_stub \vector, 0
.endr

trap_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    // The ABI wants the direction flag clear on every call; ring 3 may have set it.
    cld
    call {trap_entry}
    // The frame to resume: the same one, or another thread's.
    mov rsp, rax
    // Going back to ring 3 (CS.RPL = 3): the thread's next trap must land on
    // its own kernel stack, whose top is right above this frame, so TSS.RSP0
    // gets that address. This is the one place every switch to a thread
    // passes, which is why RSP0 is set here and not in the scheduler.
    test qword ptr [rsp + 18*8], 3
    jz 1f
    lea rax, [rsp + 22*8]
    mov [rip + {tss} + {rsp0_offset}], rax
1:
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    // Drop the vector and the error code.
    add rsp, 16
    iretq

// run_on_stack(top: rdi, entry: rsi, argument: rdx) -> !  (System V)
// Switch to a new stack and call entry(argument) on it; entry never returns.
// The `call` leaves RSP + 8 16-byte aligned at entry, as the ABI wants.
.global run_on_stack
run_on_stack:
    mov rsp, rdi
    xor ebp, ebp
    mov rdi, rdx
    call rsi
    ud2

// The stub addresses, indexed by `exception::STUB_VECTORS` order: 0..=47, then 0x80.
.section .rdata, "dr"
.p2align 3
.global trap_stub_table
trap_stub_table:
.irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad trap_vector_\vector
.endr
.irp vector, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,128
    .quad trap_vector_\vector
.endr
