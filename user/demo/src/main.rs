//! `demo`: the program the probe examples and tests attach to.
//!
//! Each function below is a different kind of probe site, kept out of line
//! (`#[inline(never)]`) and under its own unmangled name (`#[no_mangle]`) so that
//! `demo:compute`, `demo:fib+0x8` ... name the same code in every build
//! (`framed` is assembly, for an exact prologue: see there).
//! They use the C calling convention so a probe that logs registers sees the
//! arguments where the AAPCS64 puts them (`x0`, `x1`, and `s0`/`x0` for results).
//!
//! The output is the same on every run, probed or not: a probe that changes
//! what the program computes shows up as a different line.

#![no_std]
#![no_main]

use core::{
    arch::{
        aarch64::{float32x4_t, uint32x4_t, vaddvq_f32, vaddvq_u64, vdupq_n_f32, vdupq_n_u64, vfmaq_f32, vpadalq_u32},
        asm,
    },
    hint::black_box,
};

use user_rt::println;

user_rt::entry!(main);

/// How many times `main` calls `compute`: enough hits to count, little CPU time.
const COMPUTE_CALLS: u64 = 1000;

/// A small leaf: no calls, no stack frame, a handful of integer instructions.
/// The classic first probe site (`demo:compute`, `demo:compute+0x4` ...).
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn compute(x: u64) -> u64 {
    // A multiplicative hash (the 64-bit golden-ratio constant), so that every
    // input changes the checksum.
    (x ^ (x >> 7)).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(13)
}

/// Recursive Fibonacci: many nested activations of one probe site, and many
/// returns for a return probe.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

// `framed`: a non-leaf function whose first instruction is the frame push
// `stp x29, x30, [sp, #-16]!`, the prologue the kernel simulates instead of
// stepping it out of line.
//
// It is written in assembly because the compiler does not produce that prologue
// here: `aarch64-unknown-none` omits frame pointers, so Rust code of this shape
// starts with `str x30, [sp, #-16]!` instead. The body is what the compiler would
// emit with frame pointers on, so each instruction is a different kind of probe
// site: the frame push (simulated), `mov x29, sp` (stepped), `bl` (simulated
// branch), `eor` (stepped), `ldp` (stepped) and `ret` (simulated). The `.cfi_`
// lines describe the frame to a debugger's unwinder.
core::arch::global_asm!(
    ".pushsection .text.framed, \"ax\", %progbits",
    ".globl framed",
    ".type framed, %function",
    ".p2align 2",
    "framed:",
    ".cfi_startproc",
    "    stp x29, x30, [sp, #-16]!",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset w30, -8",
    ".cfi_offset w29, -16",
    "    mov x29, sp",
    ".cfi_def_cfa w29, 16",
    "    bl {compute}",
    "    eor x0, x0, #0x00ff00ff00ff00ff",
    "    ldp x29, x30, [sp], #16",
    ".cfi_def_cfa wsp, 0",
    ".cfi_restore w30",
    ".cfi_restore w29",
    "    ret",
    ".cfi_endproc",
    ".size framed, . - framed",
    ".popsection",
    compute = sym compute,
);

unsafe extern "C" {
    /// `compute(x) ^ 0x00ff_00ff_00ff_00ff`, through a full stack frame (above).
    // `safe`: the assembly above follows the AAPCS64 for this signature (argument
    // and result in x0, x29/x30 restored, SP balanced) and touches no memory but
    // its own frame.
    safe fn framed(x: u64) -> u64;
}

/// Loads four `f32` lanes with one `ld1 {vN.4s}`, which needs only 4-byte
/// alignment.
///
/// The intrinsic `vld1q_f32` would not do: `aarch64-unknown-none` compiles with
/// `+strict-align`, and LLVM, unable to prove the 16-byte alignment its `ldr q`
/// needs, splits the load into scalar loads and stack stores.
///
/// # Safety
///
/// `four` must point to four readable `f32`.
#[inline(always)]
unsafe fn load_f32x4(four: *const f32) -> float32x4_t {
    let vector: float32x4_t;
    // SAFETY: the caller guarantees the 16 bytes at `four` are readable; `ld1`
    // writes only `vector`.
    unsafe {
        asm!("ld1 {{{vector:v}.4s}}, [{four}]", four = in(reg) four, vector = out(vreg) vector,
             options(nostack, readonly, preserves_flags));
    }
    vector
}

/// [`load_f32x4`] for four `u32` lanes.
///
/// # Safety
///
/// `four` must point to four readable `u32`.
#[inline(always)]
unsafe fn load_u32x4(four: *const u32) -> uint32x4_t {
    let vector: uint32x4_t;
    // SAFETY: as for `load_f32x4`.
    unsafe {
        asm!("ld1 {{{vector:v}.4s}}, [{four}]", four = in(reg) four, vector = out(vreg) vector,
             options(nostack, readonly, preserves_flags));
    }
    vector
}

/// A dot product of two 16-float vectors with NEON: four `ld1` pairs, four fused
/// multiply-adds (`fmla`), one horizontal add (`faddp`). Probes here must leave
/// the SIMD registers exactly as they were.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn simd_dot(a: &[f32; 16], b: &[f32; 16]) -> f32 {
    // SAFETY: NEON is in the `aarch64-unknown-none` baseline (the kernel enables
    // FP/SIMD for EL0), which is all the intrinsics ask for; `lane + 4 <= 16`, so
    // each load reads four floats inside `a` / `b`.
    unsafe {
        let mut sums = vdupq_n_f32(0.0);
        for lane in (0..16).step_by(4) {
            let a4 = load_f32x4(a.as_ptr().add(lane));
            let b4 = load_f32x4(b.as_ptr().add(lane));
            sums = vfmaq_f32(sums, a4, b4);
        }
        vaddvq_f32(sums)
    }
}

/// The sum of 64 unsigned integers with NEON: each step loads four `u32` lanes
/// and adds them pairwise into two `u64` lanes (`uadalp`), so nothing overflows.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn simd_sum(values: &[u32; 64]) -> u64 {
    // SAFETY: NEON is in the target baseline, as for `simd_dot`; `lane + 4 <= 64`,
    // so each load reads four integers inside `values`.
    unsafe {
        let mut sums = vdupq_n_u64(0);
        for lane in (0..64).step_by(4) {
            sums = vpadalq_u32(sums, load_u32x4(values.as_ptr().add(lane)));
        }
        vaddvq_u64(sums)
    }
}

fn main(_args: &str) -> i32 {
    let mut checksum = 0u64;
    for i in 0..black_box(COMPUTE_CALLS) {
        checksum = checksum.wrapping_add(compute(i));
    }
    println!("demo: compute checksum = {checksum:#018x}");

    println!("demo: fib(15) = {}", fib(black_box(15)));

    println!("demo: framed = {:#018x}", framed(black_box(42)));

    // a = 0, 0.5, 1, ... 7.5; b = 16, 15, ... 1: the dot product is exactly 340
    // (every partial sum is a small multiple of 0.5, so rounding never happens).
    let a: [f32; 16] = core::array::from_fn(|i| i as f32 * 0.5);
    let b: [f32; 16] = core::array::from_fn(|i| (16 - i) as f32);
    println!("demo: simd_dot = {}", simd_dot(black_box(&a), black_box(&b)));

    // 0^2 + 1^2 + ... + 63^2 = 63 * 64 * 127 / 6 = 85344.
    let squares: [u32; 64] = core::array::from_fn(|i| (i * i) as u32);
    println!("demo: simd_sum = {}", simd_sum(black_box(&squares)));

    println!("demo: done");
    0
}
