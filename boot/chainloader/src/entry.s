// boot/chainloader/src/entry.s: the loader's first instructions.
//
// The firmware (or QEMU) enters at 0x80000, at EL2 on a Pi 4, MMU and caches off,
// device tree in x0. Cores other than core 0 wait on the firmware's spin table and
// never come here; a board that starts them all parks them below. The code up to
// `br` runs at the load address, so it uses only PC-relative `adr` for where it is
// and literal-pool `ldr =` for where it is linked.

.section .text.boot, "ax"
.global _start
_start:
    // arm64 Image header (Linux Documentation/arch/arm64/booting.rst), so loaders
    // that read it (U-Boot booti, QEMU) put us at 0x80000 like the Pi firmware.
    b       entry
    .long   0
    .quad   0x80000                 // text_offset
    .quad   __loader_image_size     // image_size: non-zero, or text_offset is ignored
    .quad   0x2                     // flags: little-endian, 4 KiB pages
    .quad   0
    .quad   0
    .quad   0
    .ascii  "ARM\x64"
    .long   0

entry:
    mov     x19, x0                 // the device tree, handed on to the kernel unchanged
    mrs     x1, mpidr_el1
    and     x1, x1, #0x00ffffff
    cbnz    x1, park

    // Copy [load address, + size of the file) to the link address, 16 bytes at a
    // time (the linker script aligns the end to 16).
    adr     x1, _start
    ldr     x2, =__loader_start
    ldr     x3, =__loader_copy_end
    cmp     x1, x2
    b.eq    relocated_jump          // already where we are linked
1:  ldp     x4, x5, [x1], #16
    stp     x4, x5, [x2], #16
    cmp     x2, x3
    b.lo    1b
relocated_jump:
    // The copy was written as data; the instruction side must not run stale
    // lines for those addresses. With caches off this is belt and braces, but the
    // firmware makes no promise about the cache state it leaves.
    dsb     sy
    ic      iallu
    dsb     sy
    isb
    ldr     x1, =relocated
    br      x1

relocated:
    ldr     x1, =__stack_top
    mov     sp, x1
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
2:  cmp     x1, x2
    b.hs    3f
    stp     xzr, xzr, [x1], #16
    b       2b
3:  mov     x0, x19
    bl      loader_main             // never returns
park:
    wfe
    b       park

// jump_to_kernel(entry, dtb): the kernel's boot protocol wants x0 = device tree and
// x1-x3 = 0 (booting.rst), at the EL we were entered at, MMU off.
.global jump_to_kernel
jump_to_kernel:
    mov     x4, x0
    mov     x0, x1
    mov     x1, xzr
    mov     x2, xzr
    mov     x3, xzr
    br      x4
