//! QEMU `virt` address map (QEMU `hw/arm/virt.c`, `base_memmap`): the fallback
//! used only where the device tree says nothing.

/// What the banner calls this board when the device tree has no `model`.
pub const BOARD_NAME: &str = "QEMU virt";
/// PL011 UART0.
pub const UART_BASE: usize = 0x0900_0000;
/// GICv2 distributor (GICD) and CPU interface (GICC).
pub const GIC_DISTRIBUTOR: usize = 0x0800_0000;
pub const GIC_CPU_INTERFACE: usize = 0x0801_0000;
/// RAM starts at 1 GiB; 128 MiB is QEMU's default size.
pub const RAM_BASE: usize = 0x4000_0000;
pub const RAM_SIZE: usize = 128 * 1024 * 1024;

/// What must stay untouched without a device tree: nothing (`virt`'s firmware,
/// if any, lives in flash below RAM).
pub const FALLBACK_RESERVED: &[(usize, usize, &str)] = &[];

/// The cores to start without a device tree, as `(MPIDR affinity, spin-table
/// release address)`: none. `virt` always passes a tree, whose `/cpus` says how
/// many cores `-smp` made and that PSCI starts them.
pub const CORES: &[(u64, usize)] = &[];
