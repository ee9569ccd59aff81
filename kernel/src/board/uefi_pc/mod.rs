//! A PC with UEFI firmware: what the firmware tells the kernel before
//! ExitBootServices (`firmware.rs`: memory map, boot arguments, the runtime
//! services; `acpi.rs`: the ACPI tables), and the GOP framebuffer as the
//! console's screen (`screen.rs`).

pub mod acpi;
pub mod firmware;
pub mod memory;
pub mod screen;
