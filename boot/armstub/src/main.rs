//! The armstub that QEMU's `raspi4b` runs when the tests boot it the way the Pi 4's
//! firmware boots a board, instead of through QEMU's own `-kernel` loader.
//!
//! On a Pi 4 the VideoCore firmware loads `armstub8.bin` at address 0,
//! `kernel8.img` at 0x80000 and the device tree (with `/memory` filled in from the
//! GPU split, `/chosen/bootargs` from cmdline.txt) somewhere in RAM, writes the
//! tree's address and the kernel's entry into two words of the armstub, and
//! releases the four Cortex-A72 cores at address 0 in EL3. QEMU's `-kernel` path
//! does the same in C, but rewrites `/memory` with its own size and drops the
//! second RAM bank; booted without `-kernel`, the cores start at 0 in EL3 as on the
//! board, and run this (`src/armstub.s`), which does what the firmware's armstub
//! does for the kernel (Raspberry Pi `tools/armstubs/armstub8.S` is the model):
//! lower levels non-secure AArch64, every interrupt in the GIC's non-secure group
//! 1 (where the GIC has the Security Extensions, as the BCM2711's GIC-400 does and
//! QEMU's does not), CNTFRQ_EL0 if it is zero, EL2, then core 0 to the kernel with the tree in x0
//! and cores 1-3 waiting on the spin table at 0xd8 (`cpu-release-addr` in the
//! Pi 4 device tree). The test that loads it writes the two words.
//!
//! A test fixture, never on a card: the real armstub comes with the firmware.

#![no_std]
#![no_main]

core::arch::global_asm!(include_str!("armstub.s"));

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
