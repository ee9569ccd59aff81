//! The atomics the probe machinery synchronizes through (the XOL bitmap, a
//! probe's retired bit and in-flight count): `core`'s in the kernel and in
//! ordinary tests, loom's when the crate is built with `--cfg loom`, so that the
//! model checker sees, and permutes, every access.
//!
//! Statistics ([`crate::counters`], a probe's hit counts) always use `core`'s
//! atomics: nothing is decided from them, so there is nothing to model-check,
//! and `Counters::new` stays a `const fn` for the kernel's `static`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64};

pub(crate) use core::sync::atomic::Ordering;
