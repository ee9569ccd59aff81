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
// 22 quadwords = 176 bytes, a multiple of 16. The stubs then call the kernel's
// one trap entry, `handle_exception(frame, vector)` in crate::exception, which
// is `extern "C"`: on this UEFI target that is the Microsoft x64 convention
// (arguments in RCX and RDX, 32 bytes of shadow space reserved by the caller
// above the return address, RSP 16-byte aligned at the `call`, RAX the
// result); a system call, breakpoint or step from ring 3 calls the
// dispatcher's fast route for it instead, with the same frame. It returns the frame to resume, maybe another thread's (a context
// switch), and the exit path restores from that one.
//
// GS: while the kernel runs, the GS base is this core's per-core area
// (gdt.rs); while ring 3 runs, it is ring 3's, and the area's address waits
// in IA32_KERNEL_GS_BASE. SWAPGS exchanges the two, so it runs once on every
// entry from ring 3, before anything reads GS, and once on every return to
// ring 3, after the last GS access (SDM vol. 2B, SWAPGS; Linux's
// arch/x86/entry/entry_64.S). Whether a trap came from ring 3 is the RPL of
// the CS the CPU saved. Traps from ring 0 never swap: the kernel's GS base is
// already in place. (An NMI or machine check landing between the exit's
// SWAPGS and its IRETQ would find ring 3's GS base; both are fatal here.)

.section .text

// One 16-byte stub per vector, all 256 of them, so that whatever arrives (a
// CPU exception, a device's interrupt, a spurious local APIC interrupt, an
// `int n` of the kernel's own) reaches `handle_exception` with its number: stub N is
// at `trap_stubs + 16 * N` (exception.rs computes the IDT's gate addresses
// that way). The vectors whose exceptions push an error code (SDM vol. 3A,
// 6.3.1, table 6-1: #DF 8, #TS 10, #NP 11, #SS 12, #GP 13, #PF 14, #AC 17,
// #CP 21, #VC 29, #SX 30) push only the vector; every other stub pushes a
// dummy 0 first. `.org` pads each stub to 16 bytes and stops the build if
// one ever grew past them.
.p2align 4
.global trap_stubs
trap_stubs:
.set vector, 0
.rept 256
    .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    push 0
    .endif
    push vector
    jmp trap_common
    .org trap_stubs + (vector + 1) * 16, 0xcc
    .set vector, vector + 1
.endr

trap_common:
    // From ring 3 (the saved CS, above the vector and the error code)? Then
    // take the kernel's GS base.
    test qword ptr [rsp + 3*8], 3
    jz 1f
    swapgs
1:
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
    mov rcx, rsp
    mov rdx, [rsp + 15*8]
    // The ABI wants the direction flag clear on every call; ring 3 may have set it.
    cld
    // The shadow space: 32 bytes keep RSP 16-byte aligned; the frame to resume
    // replaces RSP below, so nothing needs to give them back.
    sub rsp, 32
    // The fast routes: from ring 3, `int 0x80` (the system call), `int 0x82`
    // (a probe's branch trampoline entering the kernel), `int3` (#BP,
    // vector 3) and the trap flag's single step (#DB, vector 1) go straight
    // to the dispatcher's entry for each, which skips the generic decoding of
    // the vector; anything else, and these from ring 0, to `handle_exception`.
    test qword ptr [rcx + 18*8], 3
    jz 3f
    cmp edx, 0x80
    je 4f
    cmp edx, {trampoline_vector}
    je 7f
    cmp edx, 3
    je 5f
    cmp edx, 1
    je 6f
3:
    call handle_exception
resume_frame:
    // The frame to resume: the same one, or another thread's.
    mov rsp, rax
    // Going back to ring 3 (CS.RPL = 3): the thread's next trap must land on
    // its own kernel stack, whose top is right above this frame, so this
    // core's TSS.RSP0 (in its per-core area, through GS) gets that address.
    // This is the one place every switch to a thread passes, which is why
    // RSP0 is set here and not in the scheduler.
    test qword ptr [rsp + 18*8], 3
    jz 1f
    lea rax, [rsp + 22*8]
    mov gs:[{rsp0_offset}], rax
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
    // Back to ring 3 (the CS IRETQ pops)? Then give ring 3 its GS base back.
    test qword ptr [rsp + 1*8], 3
    jz 2f
    swapgs
2:
    iretq

// The fast routes' calls (the frame in RCX, as for `handle_exception`).
4:
    call handle_user_system_call
    jmp resume_frame
5:
    call handle_user_breakpoint
    jmp resume_frame
6:
    call handle_user_step
    jmp resume_frame
7:
    call handle_user_trampoline_call
    jmp resume_frame

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
