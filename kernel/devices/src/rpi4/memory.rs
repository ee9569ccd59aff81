//! BCM2711 address map in "low peripheral" mode, as the Pi firmware sets it up
//! (BCM2711 ARM Peripherals, section 1.2): the fallback used only where the
//! device tree says nothing. The kernel reads it as `board::memory` when built
//! for the Pi 4; the chain-loader, which is given no tree, takes its UART, clock
//! and GPIO block from here.

/// What the banner calls this board when the device tree has no `model`.
pub const BOARD_NAME: &str = "Raspberry Pi 4";
/// PL011 UART0 (GPIO 14/15).
pub const UART_BASE: usize = 0xFE20_1000;
/// The UART's reference clock. The firmware sets it to 48 MHz unless `config.txt`
/// says otherwise (`init_uart_clock`); the tree describes it only as a firmware
/// clock without a rate, so this is what the baud divisor is computed from.
pub const UART_CLOCK_HZ: u32 = 48_000_000;
/// GPIO block (BCM2711 ARM Peripherals, 5.2), which muxes UART0 onto GPIO 14/15.
pub const GPIO_BASE: usize = 0xFE20_0000;
/// The VideoCore mailbox (BCM2711 ARM Peripherals, 1.2: bus 0x7E00_B880 in the
/// low peripheral window), through which the firmware hands out a framebuffer.
pub const MAILBOX_BASE: usize = 0xFE00_B880;
/// GIC-400 distributor and CPU interface.
pub const GIC_DISTRIBUTOR: usize = 0xFF84_1000;
pub const GIC_CPU_INTERFACE: usize = 0xFF84_2000;
/// The first RAM bank the firmware reports on every Pi 4 model: below the GPU's
/// share at the top of the first GiB. With the default `gpu_mem` (76 MiB) the
/// firmware's `/memory` node says `reg = <0x0 0x0 0x3b400000 ...>` (948 MiB),
/// which is what a Pi 4 running Raspberry Pi OS shows in
/// /proc/device-tree/memory@0/reg; QEMU's `raspi4b` says 0x3c000000.
pub const RAM_BASE: usize = 0;
pub const RAM_SIZE: usize = 0x3B40_0000;

/// What must stay untouched when there is no device tree to say so (with one,
/// the firmware's `/memreserve/` covers it): page 0 holds the firmware's armstub
/// and the spin table on which cores 1-3 wait (`spin_cpu1..3` at 0xe0-0xf0 in
/// armstub8.S of the Raspberry Pi tools), which a frame handed out and zeroed
/// would overwrite.
pub const FALLBACK_RESERVED: &[(usize, usize, &str)] = &[(0, 0x1000, "the armstub and the spin table of cores 1-3")];

/// The four Cortex-A72 cores without a device tree, as `(MPIDR affinity,
/// spin-table release address)`: the firmware's armstub holds cores 1-3 in a
/// `wfe` loop on the 64-bit words at 0xe0, 0xe8 and 0xf0 (core 0's is 0xd8),
/// and branches to whatever address appears there (`spin_cpu0..3` in
/// armstub8.S of the Raspberry Pi tools; QEMU's `raspi4b` builds the same
/// table, hw/arm/raspi.c `write_smpboot64`). The Pi 4 device tree gives the
/// same addresses as each `/cpus/cpu@N` `cpu-release-addr`.
pub const CORES: &[(u64, usize)] = &[(0, 0xd8), (1, 0xe0), (2, 0xe8), (3, 0xf0)];
