//! Floating-point and vector state per thread (serves `task::scheduler`).
//!
//! On x86_64 there is none to switch: the kernel is built soft-float, the user
//! programs for the soft-float `x86_64-unknown-none`, and SSE and x87 are
//! switched off for everyone (`cpu::disable_sse`), so an SSE instruction
//! faults (#UD) instead of leaving state behind. The aarch64 kernel saves 528
//! bytes of NEON registers here; this port saves nothing, by construction.

/// A thread's FP/SIMD registers: empty on x86_64 (see the module comment).
pub struct FpState;

impl FpState {
    pub fn new() -> Self {
        FpState
    }
    /// Nothing to save: no thread can have touched SSE or x87 registers.
    pub fn save(&mut self) {}
    /// Nothing to restore.
    pub fn restore(&self) {}
}
