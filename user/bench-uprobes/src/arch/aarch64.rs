//! The aarch64 half of `bench-uprobes`: the probed targets in A64 assembly and
//! the bare trap instructions of the `floor` section.

use crate::Target;

core::arch::global_asm!(
    ".pushsection .text.bench, \"ax\", %progbits",
    // The three targets of the Linux selftests bench: first instruction nop, push, ret.
    user_rt::asm_function!("trig_nop", "nop", "ret"),
    user_rt::asm_function!("trig_push", "stp x29, x30, [sp, #-16]!", "ldp x29, x30, [sp], #16", "ret"),
    user_rt::asm_function!("trig_ret", "ret"),
    // 10,000 functions of two instructions each, 8 bytes apart: function i is at
    // bench_fns + 8 * i. The first instruction is an ALU one, which the kernel
    // always steps out of line (so every hit needs an XOL slot), and it differs
    // between neighbours (`add x0, x0, #(i % 4096)`), so that two probes never
    // share a slot's contents by accident.
    ".globl bench_fns",
    ".p2align 3",
    "bench_fns:",
    ".set bench_i, 0",
    ".rept 10000",
    "add x0, x0, #(bench_i % 4096)",
    "ret",
    ".set bench_i, bench_i + 1",
    ".endr",
    ".popsection",
);

unsafe extern "C" {
    // `safe`: each takes x0, returns x0, touches only its own stack slot.
    safe fn trig_nop(x: u64) -> u64;
    safe fn trig_push(x: u64) -> u64;
    safe fn trig_ret(x: u64) -> u64;
    pub static bench_fns: [u32; 2 * crate::MANY];
}

/// The `trig` section's targets: (name in the case names, function).
pub const TRIG_TARGETS: &[(&str, Target)] = &[("nop", trig_nop), ("push", trig_push), ("ret", trig_ret)];

/// Bytes from one function of `bench_fns` to the next.
pub const MANY_FN_STRIDE: usize = 8;

/// One `getpid` (4), which takes nothing and only writes x0.
#[inline(always)]
pub fn null_system_call() {
    // SAFETY: getpid (4) takes nothing and only writes x0.
    unsafe {
        core::arch::asm!("svc #0", in("x8") 4u64, lateout("x0") _, options(nostack));
    }
}

/// One null breakpoint: a trap the kernel only steps over.
#[inline(always)]
pub fn null_breakpoint() {
    // SAFETY: `brk #0x7` is the null breakpoint: the kernel only steps over it
    // (layout::NULL_BRK_IMMEDIATE) and changes no register.
    unsafe {
        core::arch::asm!("brk #0x7", options(nostack));
    }
}
