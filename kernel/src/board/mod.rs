//! Board code: what differs between machines that share the architecture.
//!
//! Each board has one table of addresses (`board/<name>/memory.rs`). The device tree
//! overrides every entry; the table is the fallback when a loader passes none.

#[cfg(all(feature = "board-virt", not(feature = "board-rpi4")))]
#[path = "qemu_virt/mod.rs"]
mod selected;

#[cfg(feature = "board-rpi4")]
#[path = "rpi4/mod.rs"]
mod selected;

#[cfg(not(any(feature = "board-virt", feature = "board-rpi4")))]
compile_error!("select a board: --features board-virt or --features board-rpi4");

pub use selected::memory;
