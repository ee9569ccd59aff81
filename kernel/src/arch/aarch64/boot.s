// arch/aarch64/boot.s: the first instructions the CPU runs.
//
// Owns: the arm64 Image header (so QEMU, U-Boot `booti` and the Raspberry Pi
// firmware all load this file the same way and pass the device tree in x0),
// parking every core but the boot core, dropping from EL3 or EL2 to EL1,
// clearing the OS lock, enabling FP/SIMD for EL0, setting the boot stack,
// zeroing BSS, and calling `kernel_main(dtb, entry_el)` in Rust; and the
// entry of every other core the boot core starts (`secondary_entry`): the
// same drop to EL1, its MMU on, its own stack, `secondary_main_aarch64`.
//
// Everything here runs with the MMU and caches off. No Rust may run before the
// stack is set and BSS is zeroed; the first Rust, `boot_map_enable`, turns them
// on before `kernel_main`.

// ---- Register values, one named definition each (Arm ARM, D19 "AArch64 System Register Descriptions")

.equ CURRENTEL_EL_SHIFT,   2             // CurrentEL.EL is bits [3:2]
.equ MPIDR_AFFINITY_MASK,  0x00ffffff    // Aff2:Aff1:Aff0: core 0 of cluster 0 is the boot core

// EL3 -> EL2 (only a raspi4b ELF boot or a bare board enters at EL3)
.equ SCR_EL3_NS,           (1 << 0)      // lower ELs are Non-secure
.equ SCR_EL3_RES1,         (3 << 4)      // bits 5:4 are RES1
.equ SCR_EL3_HCE,          (1 << 8)      // HVC enabled
.equ SCR_EL3_RW,           (1 << 10)     // EL2 is AArch64
.equ SPSR_EL2H_DAIF_MASKED, 0x3c9        // M = EL2h, D A I F masked

// EL2 -> EL1
.equ HCR_EL2_RW,           (1 << 31)     // EL1 is AArch64; TGE=0 and E2H=0 so nothing routes to EL2
.equ CNTHCTL_EL1PCTEN_EL1PCEN, 0x3       // EL1/EL0 may read the physical counter and use the physical timer
.equ CPTR_EL2_NO_TRAPS,    0x33ff        // RES1 bits only: TFP=0 (FP/SIMD not trapped), TTA=0, TCPAC=0
.equ MDCR_EL2_KEEP_HPMN,   0x1f          // keep HPMN; clear TDE/TDA/TDOSA so debug (single-step!) stays at EL1
.equ SCTLR_EL1_RES1_MMU_OFF, 0x30d00800  // RES1 bits, little-endian, MMU/caches off (Rust turns them on)
.equ SPSR_EL1H_DAIF_MASKED, 0x3c5        // M = EL1h, D A I F masked

// EL1
.equ CPACR_EL1_FPEN_NO_TRAP, (3 << 20)   // FP/SIMD usable at EL0 and EL1 (EL0 programs use NEON)
.equ DAIFSET_ALL,          0xf           // `msr daifset`: mask D, A, I and F
.equ SPSEL_SP_ELX,         1             // `msr spsel`: SP is SP_EL1 (EL1h), the kernel's own

.section .text.boot, "ax"
.global _start
_start:
    // ---- arm64 Image header (Linux Documentation/arch/arm64/booting.rst) ----
    b       primary_entry           // code0: branch over the header
    .long   0                       // code1
    .quad   0x80000                 // text_offset: load us 512 KiB into a 2 MiB aligned RAM base
    .quad   __kernel_image_size     // image_size: non-zero, or loaders ignore text_offset
    .quad   0x2                     // flags: little-endian, 4 KiB pages, 2 MiB aligned base
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5 (no PE/COFF header)

primary_entry:
    mov     x19, x0                 // x0 = physical address of the device tree (booting.rst)

    // Only the boot core continues; the others wait here forever. (On raspi4b the
    // firmware already holds cores 1-3 on its spin table; on virt PSCI never starts them.)
    mrs     x1, mpidr_el1
    and     x1, x1, #MPIDR_AFFINITY_MASK
    cbnz    x1, park

    // The image runs only at its link address: its vtables and function-pointer
    // tables hold absolute addresses. A loader that put it elsewhere (U-Boot
    // `booti` places it at ALIGN(DRAM start, 2 MiB) + text_offset, which is not
    // always where it was linked) gets a message naming both addresses.
    adr     x1, _start
    ldr     x2, =_start
    cmp     x1, x2
    b.ne    wrong_load_address

    mrs     x20, CurrentEL
    lsr     x20, x20, #CURRENTEL_EL_SHIFT   // x20 = the EL we were entered at, kept for the banner
    bl      enter_el1

    adrp    x1, __boot_stack_top
    add     x1, x1, :lo12:__boot_stack_top
    mov     sp, x1

    // Zero BSS (both bounds are 16-byte aligned by the linker script).
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:
    // The MMU and the caches on, with an identity map of RAM and the board's
    // peripherals, before any code that may take a lock: exclusives need Normal
    // memory (arch/aarch64/boot_map.rs). x19 and x20 are callee-saved.
    bl      boot_map_enable
    mov     x0, x19                 // device tree
    mov     x1, x20                 // entry EL
    bl      kernel_main             // never returns
park:
    wfe
    b       park

// ---- Down to EL1 from whichever EL this core runs at, and the EL1 set-up
// every core needs before Rust: a subroutine shared by the boot core and the
// secondary cores. Returns at EL1 (x30, the return address, is a general
// register: each `eret` keeps it). Clobbers x1 only; uses no stack.

enter_el1:
    mrs     x1, CurrentEL
    lsr     x1, x1, #CURRENTEL_EL_SHIFT
    cmp     x1, #3
    b.eq    from_el3
    cmp     x1, #2
    b.eq    from_el2
    b       at_el1

from_el3:
    msr     cptr_el3, xzr           // no FP/SIMD traps to EL3
    msr     mdcr_el3, xzr           // debug exceptions and registers not trapped to EL3
    ldr     x1, =(SCR_EL3_NS | SCR_EL3_RES1 | SCR_EL3_HCE | SCR_EL3_RW)
    msr     scr_el3, x1
    ldr     x1, =SPSR_EL2H_DAIF_MASKED
    msr     spsr_el3, x1
    adr     x1, from_el2
    msr     elr_el3, x1
    eret

from_el2:
    ldr     x1, =HCR_EL2_RW
    msr     hcr_el2, x1
    mrs     x1, cnthctl_el2
    orr     x1, x1, #CNTHCTL_EL1PCTEN_EL1PCEN
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr        // virtual counter == physical counter
    ldr     x1, =CPTR_EL2_NO_TRAPS
    msr     cptr_el2, x1
    mrs     x1, mdcr_el2
    and     x1, x1, #MDCR_EL2_KEEP_HPMN
    msr     mdcr_el2, x1            // software step must reach EL1, not EL2
    ldr     x1, =SCTLR_EL1_RES1_MMU_OFF
    msr     sctlr_el1, x1
    ldr     x1, =SPSR_EL1H_DAIF_MASKED
    msr     spsr_el2, x1
    adr     x1, at_el1
    msr     elr_el2, x1
    eret

at_el1:
    // Entered at EL1 directly (QEMU virt, a PSCI CPU_ON from EL1) nothing says
    // which stack pointer is selected or that interrupts are masked: make it
    // EL1h with D, A, I and F masked, as the eret from EL2 above does.
    msr     daifset, #DAIFSET_ALL
    msr     spsel, #SPSEL_SP_ELX
    ldr     x1, =SCTLR_EL1_RES1_MMU_OFF
    msr     sctlr_el1, x1
    isb
    // The OS lock is set at reset; while it is set the architecture disables
    // software step. QEMU does not model that, a Cortex-A72 does: clear it here,
    // on every core (as Linux does in __cpu_setup).
    msr     oslar_el1, xzr
    ldr     x1, =CPACR_EL1_FPEN_NO_TRAP
    msr     cpacr_el1, x1
    isb
    ret

// ---- A secondary core: started by PSCI CPU_ON (x0 = the context id, its
// index) or released from a spin table (x0 = whatever the firmware left), at
// EL2 or EL1, with its MMU and caches off. It finds its slot in the boot
// core's hand-over (`SECONDARY_BOOT`, arch/aarch64/smp.rs) by its own MPIDR,
// turns its MMU on with the boot core's translation registers before its
// first store to memory, takes its stack and calls
// `secondary_main_aarch64(index)` in Rust (kernel/src/start/aarch64.rs).
// A core with no slot (one given up on, waking late) parks.

.global secondary_entry
secondary_entry:
    bl      enter_el1
    mrs     x1, mpidr_el1
    ldr     x2, ={mpidr_affinity}
    and     x1, x1, x2              // x1 = this core's MPIDR affinity
    adrp    x2, SECONDARY_BOOT
    add     x2, x2, :lo12:SECONDARY_BOOT
    add     x3, x2, #{boot_slots}   // x3 walks the slots
    mov     x4, #0                  // x4 = the slot's core index
1:  cmp     x4, #{max_cores}
    b.hs    park
    ldp     x5, x6, [x3], #{boot_slot_size}   // x5 = MPIDR affinity, x6 = stack top
    cbz     x6, 2f
    cmp     x5, x1
    b.eq    3f
2:  add     x4, x4, #1
    b       1b
3:
    // The MMU on, in the order of arch/aarch64/mmu.rs `enable_boot_map` (Linux
    // head.S __enable_mmu): translation registers, `TLBI VMALLE1` (this core's
    // TLB may hold anything from before), `DSB NSH`, `ISB`, SCTLR_EL1, `ISB`, then
    // `IC IALLU` for anything fetched with the I-cache off.
    ldr     x5, [x2, #{boot_mair}]
    msr     mair_el1, x5
    ldr     x5, [x2, #{boot_tcr}]
    msr     tcr_el1, x5
    ldr     x5, [x2, #{boot_ttbr0}]
    msr     ttbr0_el1, x5
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x5, [x2, #{boot_sctlr}]
    msr     sctlr_el1, x5
    isb
    ic      iallu
    dsb     nsh
    isb
    mov     sp, x6
    mov     x0, x4
    bl      secondary_main_aarch64  // never returns
    b       park


// ---- Loaded at the wrong address: say so on the UART, exit through semihosting
// (QEMU) or park. Position-independent: PC-relative addresses and constants only.

.equ PL011_DR,             0x00
.equ PL011_FR,             0x18
.equ PL011_FR_TXFF_BIT,    5
.equ PL011_CR,             0x30
.equ PL011_CR_ON,          0x301         // UARTEN | TXE | RXE
.equ SEMIHOSTING_SYS_EXIT, 0x18

wrong_load_address:                     // x1 = where we are, x2 = where we were linked
    ldr     x3, ={early_uart}
    ldr     w7, [x3, #PL011_CR]
    mov     w8, #PL011_CR_ON
    orr     w7, w7, w8
    str     w7, [x3, #PL011_CR]         // a loader may leave the UART off (QEMU virt does)
    adr     x4, msg_loaded
    bl      uart_puts
    mov     x5, x1
    bl      uart_puthex
    adr     x4, msg_linked
    bl      uart_puts
    mov     x5, x2
    bl      uart_puthex
    adr     x4, msg_advice
    bl      uart_puts
    // An undefined `hlt` (no semihosting host, as on a board) must not run off
    // into an unset vector table: point this EL's VBAR at one that parks.
    adr     x6, park_vectors
    mrs     x7, CurrentEL
    lsr     x7, x7, #CURRENTEL_EL_SHIFT
    cmp     x7, #3
    b.ne    1f
    msr     vbar_el3, x6
    b       3f
1:  cmp     x7, #2
    b.ne    2f
    msr     vbar_el2, x6
    b       3f
2:  msr     vbar_el1, x6
3:  isb
    mov     x0, #SEMIHOSTING_SYS_EXIT
    adr     x1, exit_unsupported_boot
    hlt     #0xf000
    b       park

// Print the NUL-terminated string at x4 on the PL011 at x3 (clobbers x4, w6, w7).
uart_puts:
1:  ldrb    w6, [x4], #1
    cbz     w6, 3f
2:  ldr     w7, [x3, #PL011_FR]
    tbnz    w7, #PL011_FR_TXFF_BIT, 2b
    str     w6, [x3, #PL011_DR]
    b       1b
3:  ret

// Print x5 as 0x and 16 hex digits on the PL011 at x3 (clobbers x6-x9).
uart_puthex:
    mov     w6, #'0'
    str     w6, [x3, #PL011_DR]
    mov     w6, #'x'
    str     w6, [x3, #PL011_DR]
    mov     x9, #60
1:  lsr     x6, x5, x9
    and     x6, x6, #0xf
    add     x7, x6, #'0'
    add     x8, x6, #('a' - 10)
    cmp     x6, #10
    csel    x6, x7, x8, lo
2:  ldr     w7, [x3, #PL011_FR]
    tbnz    w7, #PL011_FR_TXFF_BIT, 2b
    str     w6, [x3, #PL011_DR]
    subs    x9, x9, #4
    b.ge    1b
    ret

msg_loaded:
    .asciz  "boot: loaded at "
msg_linked:
    .asciz  ", but linked to run at "
msg_advice:
    .asciz  ": this image runs only at its link address (RAM base + 0x80000); load it there\r\npower off: status 6 (unsupported boot)\r\n"
    .balign 8
exit_unsupported_boot:
    .quad   0x20026                     // ADP_Stopped_ApplicationExit
    .quad   6                           // ExitStatus::UnsupportedBoot

// Every exception parks the core (used only on the way down, above).
    .balign 2048
park_vectors:
    .rept   16
    b       park
    .balign 128
    .endr
