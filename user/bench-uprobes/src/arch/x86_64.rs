//! The x86_64 half of `bench-uprobes`: the probed targets in x86_64 assembly
//! (Intel syntax, System V ABI: argument in `rdi`, result in `rax`) and the
//! bare trap instructions of the `floor` section.

use crate::Target;

core::arch::global_asm!(
    ".pushsection .text.bench, \"ax\", @progbits",
    // The three targets of the Linux selftests bench, first instruction nop,
    // push, ret (all three simulated under simulate=all), one whose first
    // instruction is always stepped out of line, `add`, and one that starts
    // with a 5-byte nop.
    user_rt::asm_function!("trig_nop", "nop", "mov rax, rdi", "ret"),
    user_rt::asm_function!("trig_push", "push rbp", "mov rbp, rsp", "pop rbp", "mov rax, rdi", "ret"),
    user_rt::asm_function!("trig_ret", "ret"),
    user_rt::asm_function!("trig_add", "add rdi, 1", "mov rax, rdi", "ret"),
    // A 5-byte nop at the entry, as compilers pad functions for live
    // patching (0f 1f 44 00 00, `nop dword ptr [rax + rax]`): the common
    // instruction a probe's `jmp rel32` to a trampoline replaces whole.
    user_rt::asm_function!("trig_nop5", ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00", "mov rax, rdi", "ret"),
    // 10,000 functions of two instructions each, 8 bytes apart: function i is
    // at bench_fns + 8 * i. The first instruction, `lea rax, [rdi + disp32]`
    // (48 8d 87 disp32, 7 bytes, then `ret`), is one the kernel always steps
    // out of line (so every hit needs an XOL slot), and it differs between
    // neighbours (disp32 = 4096 + i % 4096: at least 128, so never the short
    // disp8 form), so that two probes never share a slot's contents by
    // accident. `.p2align 3` holds the stride at 8 whatever the encoding.
    //
    // Each is a function symbol of its own with its size (`bench_fn_<i>`),
    // as a compiler would emit it: a probe gets a branch trampoline only
    // where the kernel can check the function holding it for jumps into the
    // bytes the `jmp rel32` replaces (docs/brk-path.md, "One exception
    // instead of two").
    ".globl bench_fns",
    ".p2align 3",
    "bench_fns:",
    ".macro bench_fn i",
    ".p2align 3",
    ".type bench_fn_\\i, @function",
    "bench_fn_\\i:",
    "lea rax, [rdi + 4096 + (\\i & 4095)]",
    "ret",
    ".size bench_fn_\\i, . - bench_fn_\\i",
    ".endm",
    ".altmacro",
    ".set bench_i, 0",
    ".rept 10000",
    "bench_fn %bench_i",
    ".set bench_i, bench_i + 1",
    ".endr",
    ".noaltmacro",
    ".popsection",
);

unsafe extern "C" {
    // `safe`: each takes rdi, returns rax, clobbers only rax, rdi and the
    // flags, and keeps RSP balanced.
    safe fn trig_nop(x: u64) -> u64;
    safe fn trig_push(x: u64) -> u64;
    safe fn trig_ret(x: u64) -> u64;
    safe fn trig_add(x: u64) -> u64;
    safe fn trig_nop5(x: u64) -> u64;
    pub static bench_fns: [u8; MANY_FN_STRIDE * crate::MANY];
}

/// The `trig` section's targets: (name in the case names, function).
pub const TRIG_TARGETS: &[(&str, Target)] =
    &[("nop", trig_nop), ("push", trig_push), ("ret", trig_ret), ("add", trig_add), ("nop5", trig_nop5)];

/// Bytes from one function of `bench_fns` to the next.
pub const MANY_FN_STRIDE: usize = 8;

/// One `getpid` (4), which takes nothing and only writes rax.
#[inline(always)]
pub fn null_system_call() {
    // SAFETY: getpid (4) takes nothing and only writes rax; the kernel keeps
    // every other register and RFLAGS (brk_abi, x86_64).
    unsafe {
        core::arch::asm!("int 0x80", inlateout("rax") 4u64 => _, options(nostack, preserves_flags));
    }
}

/// One null breakpoint: `int 3` in its two-byte form, cd 03. Like the probe
/// `int3` (cc) it raises #BP with RIP after it; the kernel tells the two apart
/// by the bytes before RIP (cd 03, where a probe's is cc) and only returns from
/// this one, as aarch64's kernel only steps over `brk #0x7`.
#[inline(always)]
pub fn null_breakpoint() {
    // SAFETY: the null breakpoint: the kernel returns to the next instruction
    // and changes no register (spelled in bytes: assemblers may turn `int 3`
    // into the one-byte `int3`).
    unsafe {
        core::arch::asm!(".byte 0xcd, 0x03", options(nostack));
    }
}
