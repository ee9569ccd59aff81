//! A tiny payload for testing the chain-loader in QEMU: linked at 0x80000 like the
//! kernel, it checks that it was entered the way the kernel expects (at EL2, with
//! the loader's x0 handed on and x1-x3 zero), says so on the UART and exits QEMU
//! through semihosting with status 0, or 5 if a register was wrong. The kernel
//! itself is about 1 MiB, which QEMU's PL011 takes minutes to receive; this takes
//! a fraction of a second and goes through every step of the protocol.

#![no_std]
#![no_main]

core::arch::global_asm!(
    r#"
.section .text.boot, "ax"
.global _start
_start:
    mov     x10, #0                 // the exit status
    cmp     x0, #0x100              // raspi4b without -dtb passes the ATAGS address, 0x100
    b.ne    1f
    orr     x11, x1, x2
    orr     x11, x11, x3
    cbnz    x11, 1f
    mrs     x11, CurrentEL
    cmp     x11, #(2 << 2)
    b.ne    1f
    adr     x2, good
    b       2f
1:  mov     x10, #5
    adr     x2, bad
2:  movz    x1, #0x1000
    movk    x1, #0xfe20, lsl #16    // PL011 UART0 at 0xFE20_1000
3:  ldrb    w3, [x2], #1
    cbz     w3, 5f
4:  ldr     w4, [x1, #0x18]         // FR
    tbnz    w4, #5, 4b              // TXFF: transmit FIFO full
    str     w3, [x1]
    b       3b
5:  ldr     w4, [x1, #0x18]
    tbnz    w4, #3, 5b              // BUSY: let the last byte go
    // Wait a quarter of a second before exiting: when QEMU exits, a pty on the
    // serial line hangs up, and a hang-up discards what the reader has not read yet.
    mrs     x5, cntfrq_el0
    lsr     x5, x5, #2
    mrs     x6, cntpct_el0
    add     x6, x6, x5
7:  mrs     x7, cntpct_el0
    cmp     x7, x6
    b.lo    7b
    adr     x1, exit_block
    str     x10, [x1, #8]
    mov     w0, #0x18               // SYS_EXIT
    hlt     #0xf000
6:  wfe
    b       6b
.balign 8
exit_block:
    .quad   0x20026                 // ADP_Stopped_ApplicationExit
    .quad   0
good:
    .asciz  "chainload payload: entered at EL2 with the loader's x0 and x1-x3 zero\r\n"
bad:
    .asciz  "chainload payload: entered with the wrong registers or EL\r\n"
"#
);

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
