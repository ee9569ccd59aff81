//! AArch64 FP/SIMD register state (serves `crate::task`): saved and restored
//! when the CPU switches from one EL0 thread to another.
//!
//! The kernel is built for `aarch64-unknown-none-softfloat`, so kernel code never
//! touches v0-v31, FPCR or FPSR. A trap therefore leaves EL0's FP/SIMD state
//! intact, and only a thread switch has to save it: 32 x 128-bit registers plus
//! FPCR and FPSR, 528 bytes per thread.

/// One thread's FP/SIMD registers.
#[repr(C, align(16))]
#[derive(Clone)]
pub struct FpState {
    v: [u128; 32],
    fpcr: u64,
    fpsr: u64,
}

impl FpState {
    /// The state a new thread starts with: all zero, default rounding.
    pub const fn new() -> Self {
        Self { v: [0; 32], fpcr: 0, fpsr: 0 }
    }

    /// V\[index\] = value in this saved copy (`index` in 0..=31).
    pub fn set_v(&mut self, index: u8, value: u128) {
        self.v[usize::from(index)] = value;
    }

    /// Store this core's FP/SIMD registers into `self`.
    pub fn save(&mut self) {
        // SAFETY: writes exactly size_of::<FpState>() bytes into `self`, which is
        // 16-byte aligned as `stp q` requires. `.arch_extension` lets the assembler
        // accept FP/SIMD instructions that the soft-float target otherwise forbids;
        // CPACR_EL1.FPEN (set in boot.s) lets them execute at EL1.
        unsafe {
            core::arch::asm!(
                ".arch_extension fp",
                ".arch_extension simd",
                "stp q0, q1, [{p}, #0]",
                "stp q2, q3, [{p}, #32]",
                "stp q4, q5, [{p}, #64]",
                "stp q6, q7, [{p}, #96]",
                "stp q8, q9, [{p}, #128]",
                "stp q10, q11, [{p}, #160]",
                "stp q12, q13, [{p}, #192]",
                "stp q14, q15, [{p}, #224]",
                "stp q16, q17, [{p}, #256]",
                "stp q18, q19, [{p}, #288]",
                "stp q20, q21, [{p}, #320]",
                "stp q22, q23, [{p}, #352]",
                "stp q24, q25, [{p}, #384]",
                "stp q26, q27, [{p}, #416]",
                "stp q28, q29, [{p}, #448]",
                "stp q30, q31, [{p}, #480]",
                "mrs {t}, fpcr",
                "str {t}, [{p}, #512]",
                "mrs {t}, fpsr",
                "str {t}, [{p}, #520]",
                p = in(reg) self as *mut FpState,
                t = out(reg) _,
                options(nostack),
            );
        }
    }

    /// Load `self` into this core's FP/SIMD registers.
    pub fn restore(&self) {
        // SAFETY: reads exactly size_of::<FpState>() bytes from `self`; see `save`.
        unsafe {
            core::arch::asm!(
                ".arch_extension fp",
                ".arch_extension simd",
                "ldp q0, q1, [{p}, #0]",
                "ldp q2, q3, [{p}, #32]",
                "ldp q4, q5, [{p}, #64]",
                "ldp q6, q7, [{p}, #96]",
                "ldp q8, q9, [{p}, #128]",
                "ldp q10, q11, [{p}, #160]",
                "ldp q12, q13, [{p}, #192]",
                "ldp q14, q15, [{p}, #224]",
                "ldp q16, q17, [{p}, #256]",
                "ldp q18, q19, [{p}, #288]",
                "ldp q20, q21, [{p}, #320]",
                "ldp q22, q23, [{p}, #352]",
                "ldp q24, q25, [{p}, #384]",
                "ldp q26, q27, [{p}, #416]",
                "ldp q28, q29, [{p}, #448]",
                "ldp q30, q31, [{p}, #480]",
                "ldr {t}, [{p}, #512]",
                "msr fpcr, {t}",
                "ldr {t}, [{p}, #520]",
                "msr fpsr, {t}",
                p = in(reg) self as *const FpState,
                t = out(reg) _,
                options(nostack, readonly),
            );
        }
    }
}

const _: () = assert!(core::mem::size_of::<FpState>() == 528);
