//! Each architecture's boot order, from its first Rust function to
//! [`crate::run`]. Nothing calls into this module: the firmware or `boot.s`
//! enters it.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;
