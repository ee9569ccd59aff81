//! Architecture code, one folder per architecture, mirroring the generic
//! subsystems (`exception`, `time`, `memory` ...). Generic code calls `arch::...`.

#[cfg(target_arch = "aarch64")]
#[path = "aarch64/mod.rs"]
mod selected;

#[cfg(not(target_arch = "aarch64"))]
compile_error!("the kernel builds for aarch64 only (x86_64 is a separate UEFI port)");

pub use selected::*;
