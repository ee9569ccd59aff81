// The armstub (see main.rs). Offsets 0xd8-0xff are the firmware's contract:
// the spin table, then the two words the firmware (here: the test) fills in.

.equ SCR_NS,   1 << 0       // lower levels are non-secure
.equ SCR_RES1, 3 << 4       // bits 4 and 5 are RES1
.equ SCR_SMD,  1 << 7       // SMC is undefined below EL3: there is no secure monitor
.equ SCR_HCE,  1 << 8       // HVC is enabled
.equ SCR_RW,   1 << 10      // EL2 is AArch64
.equ SPSR_EL2H_MASKED, 0x3c9 // EL2 on SP_EL2, D, A, I and F masked

// BCM2711 GIC-400 in the low peripheral mode (BCM2711 ARM Peripherals, 6.3).
.equ GICD, 0xff841000
.equ GICC, 0xff842000
.equ GICD_CTLR,    0x000
.equ GICD_TYPER,   0x004
.equ GICD_TYPER_SECURITY_EXTN, 10
.equ GICD_IGROUPR, 0x080
.equ GICC_CTLR,    0x000
.equ GICC_PMR,     0x004

.equ KERNEL_ENTRY, 0x80000
.equ PI4_CRYSTAL_HZ, 54000000  // the generic timer's clock on a Pi 4

.section .text.boot, "ax"
.global _start
_start:
    b       el3

.org 0xd8
spin_cpu0:      .quad 0     // core 0 never reads its entry
spin_cpu1:      .quad 0     // cpu-release-addr of /cpus/cpu@1
spin_cpu2:      .quad 0
spin_cpu3:      .quad 0
dtb_ptr32:      .word 0     // 0xf8: the device tree's address, filled in by the loader
kernel_entry32: .word KERNEL_ENTRY  // 0xfc

el3:
    mov     x0, #(SCR_RW | SCR_HCE | SCR_SMD | SCR_RES1 | SCR_NS)
    msr     scr_el3, x0
    // The counter's frequency is the firmware's to program; QEMU already has one.
    mrs     x0, cntfrq_el0
    cbnz    x0, 1f
    ldr     x0, =PI4_CRYSTAL_HZ
    msr     cntfrq_el0, x0
1:
    // Every interrupt to non-secure group 1, which is what an EL1 kernel sees.
    // IGROUPR0 (SGIs and PPIs, the timer among them) is banked per core; the
    // SPIs' registers and the distributor's enable are shared: core 0 does them.
    // Only a GIC with the Security Extensions (GICD_TYPER.SecurityExtn), as the
    // BCM2711's GIC-400 has, splits secure and non-secure views; QEMU's raspi4b
    // GIC has one view, where the kernel enables group 0: leave it all there.
    ldr     x1, =GICD
    ldr     w2, [x1, #GICD_TYPER]
    tbz     w2, #GICD_TYPER_SECURITY_EXTN, 6f
    mov     w2, #-1
    str     w2, [x1, #GICD_IGROUPR]
    mrs     x6, mpidr_el1
    ands    x6, x6, #0xff
    b.ne    3f
    ldr     w3, [x1, #GICD_TYPER]
    and     w3, w3, #0x1f           // ITLinesNumber: 32 * (N + 1) interrupts
    add     x4, x1, #GICD_IGROUPR
2:  cbz     w3, 4f
    str     w2, [x4, x3, lsl #2]
    sub     w3, w3, #1
    b       2b
4:  mov     w2, #3                  // EnableGrp0 | EnableGrp1 (secure view)
    str     w2, [x1, #GICD_CTLR]
3:
    ldr     x1, =GICC
    mov     w2, #3                  // EnableGrp0 | EnableGrp1 (secure view)
    str     w2, [x1, #GICC_CTLR]
    mov     w2, #0xff               // let every priority through
    str     w2, [x1, #GICC_PMR]
6:
    // Down to EL2, interrupts masked.
    adr     x0, el2
    msr     elr_el3, x0
    mov     x0, #SPSR_EL2H_MASKED
    msr     spsr_el3, x0
    eret

el2:
    mrs     x6, mpidr_el1
    and     x6, x6, #0xff
    mov     x1, xzr
    mov     x2, xzr
    mov     x3, xzr
    cbz     x6, primary
    // Cores 1-3: wait on the spin table for an address to jump to.
    adr     x5, spin_cpu0
5:  wfe
    ldr     x4, [x5, x6, lsl #3]
    cbz     x4, 5b
    mov     x0, xzr
    br      x4
primary:
    ldr     w0, dtb_ptr32
    ldr     w4, kernel_entry32
    br      x4
.ltorg
