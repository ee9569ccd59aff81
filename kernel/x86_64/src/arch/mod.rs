//! Architecture code, one folder per architecture, mirroring the generic
//! subsystems (`exception`, `time`, `memory` ...). Generic code calls `arch::...`.
//! This crate is the x86_64 UEFI port; the aarch64 kernel is `kernel/src`.

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/mod.rs"]
mod selected;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("kernel-x86_64 builds for x86_64-unknown-uefi only (the aarch64 kernel is kernel/src)");

pub use selected::*;
