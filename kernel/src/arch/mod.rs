//! Architecture code, one folder per architecture, mirroring the generic
//! subsystems (`exception`, `time`, `memory` ...). Generic code calls `arch::...`.

#[cfg(target_arch = "aarch64")]
#[path = "aarch64/mod.rs"]
mod selected;

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/mod.rs"]
mod selected;

#[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
compile_error!("the kernel builds for aarch64-unknown-none-softfloat and x86_64-unknown-uefi");

pub use selected::*;
