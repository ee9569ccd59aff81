// The application processors' first instructions (serves arch/x86_64/smp.rs).
// AT&T syntax: the mode switches read as in Linux's
// arch/x86/realmode/rm/trampoline_64.S, which does the same.
//
// Never executed where the linker put it: smp.rs copies the bytes from
// `ap_start_begin` to `ap_start_end` into a page below 1 MiB (the code page
// P; a STARTUP IPI names it by its page number P >> 12, and the processor
// starts in real mode at CS = P >> 4, IP = 0: Intel SDM vol. 3A, 9.4.4 and
// 11.6.1 "STARTUP IPI"). The page after it (P + 0x1000) holds the parameters
// the boot processor writes for each processor before it starts it; the page
// after that (P + 0x2000) a PML4 whose first entry is the kernel's. Nothing
// here refers to a symbol, so the copy runs wherever it lies: real mode
// addresses through CS, the rest through EBX = P.
//
// The way to long mode is SDM vol. 3A, 9.8.5 "Initializing IA-32e Mode" after
// 9.9.1 "Switching to Protected Mode":
//   real mode -> LGDT, CR0.PE -> far jump into 32-bit protected mode ->
//   CR4.PAE, CR3, EFER.LME (and EFER.NXE: the kernel's tables set NX bits,
//   which are reserved bits, a #PF, while NXE is clear) -> CR0.PG (long mode
//   active, compatibility mode) -> far jump into a 64-bit code segment ->
//   stack and core index from the parameters -> the Rust entry.
// Interrupts stay off throughout (CLI; the Rust entry never sets IF).

.text
.balign 16
.global ap_start_begin
ap_start_begin:
.code16
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    // EBX = P, the code page's linear address, for the 32- and 64-bit parts.
    xor %ebx, %ebx
    mov %ax, %bx
    shl $4, %ebx
    // The 32-bit operand size loads all 32 bits of the GDT's base.
    lgdtl ({parameters} + {gdt_pointer})
    // PE on, and CD and NW off: at INIT the caches are disabled (CR0 =
    // 0x60000010, SDM vol. 3A, 10.1.1, table 10-1).
    mov ${cr0_protected}, %eax
    mov %eax, %cr0
    // The far jump right after the CR0 write, as 9.9.1 asks; its pointer
    // (P + the offset of ap_start_protected, the 32-bit code selector) is a
    // parameter because it depends on P.
    ljmpl *({parameters} + {to_protected_mode})

.code32
.global ap_start_protected
ap_start_protected:
    mov ${data_selector}, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr4, %eax
    or ${cr4_pae}, %eax
    mov %eax, %cr4
    // A 32-bit MOV to CR3: the trampoline's own PML4, below 1 MiB.
    mov ({parameters} + {cr3})(%ebx), %eax
    mov %eax, %cr3
    mov ${efer}, %ecx
    rdmsr
    or ${efer_lme_nxe}, %eax
    wrmsr
    mov %cr0, %eax
    or ${cr0_pg}, %eax
    mov %eax, %cr0
    // Long mode is active (EFER.LMA), in compatibility mode until CS is a
    // 64-bit segment.
    ljmpl *({parameters} + {to_long_mode})(%ebx)

.code64
.global ap_start_long
ap_start_long:
    // The upper halves of the registers are undefined after the switch
    // (SDM vol. 1, 3.4.1.1): a 32-bit MOV clears RBX's.
    mov %ebx, %ebx
    // Take the parameters: the boot core sets the claim for each processor
    // it starts, and only one processor can take it back to 0. One that
    // wakes after the boot core gave up on it (and maybe wrote the next
    // processor's stack here) finds 0 and stops, instead of running on
    // another core's stack.
    xor %eax, %eax
    xchg %rax, ({parameters} + {claim})(%rbx)
    test %rax, %rax
    jz 2f
    mov ({parameters} + {stack_top})(%rbx), %rsp
    mov ({parameters} + {core_index})(%rbx), %rdi
    mov ({parameters} + {entry})(%rbx), %rax
    xor %ebp, %ebp
    // entry(core_index) -> ! (System V); the CALL leaves RSP + 8 16-byte
    // aligned, as the ABI wants.
    call *%rax
    ud2
2:
    cli
    hlt
    jmp 2b

// The temporary GDT: flat 32-bit code, data, 64-bit code. The accessed bits
// are already set, so the processor never writes them back: the page is read
// only once paging is on.
.balign 8
.global ap_start_gdt
ap_start_gdt:
    .quad 0
    .quad 0x00cf9b000000ffff
    .quad 0x00cf93000000ffff
    .quad 0x00af9b000000ffff
.global ap_start_gdt_end
ap_start_gdt_end:
.global ap_start_end
ap_start_end:
