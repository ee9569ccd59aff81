//! A PC with UEFI firmware: what the firmware tells the kernel before
//! ExitBootServices (`firmware.rs`: memory map, boot arguments, the runtime
//! services; `acpi.rs`: the ACPI tables), and the console's devices: the GOP
//! framebuffer as its screen (`screen.rs`), the firmware's text output and a
//! 16550 UART after it (`console_sink.rs`), found at boot by `console.rs`.

pub mod acpi;
pub mod console;
pub mod console_sink;
pub mod firmware;
pub mod memory;
pub mod screen;
