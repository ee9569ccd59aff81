//! The aarch64 half of `scenarios`: the assembly functions (the registration
//! sled, the recursions for return probes and the non-local exit, the
//! program's own probe `brk`), and the addresses and instructions the shared
//! scenarios need for this architecture.

/// Bytes per instruction: the sled's stride, and the alignment the kernel
/// demands of a probe address.
pub const INSN_SIZE: u64 = 4;

/// An address in the kernel's half of the address space.
pub const KERNEL_ADDRESS: u64 = 0xffff_0000_4008_0000;

/// A kernel address for the fuzzer, from random bits `r`.
pub fn fuzz_kernel_address(r: u64) -> u64 {
    0xffff_0000_4000_0000 + (r >> 40)
}

/// The kernel's physical load address, mapped (EL1-only) in every address space.
pub const KERNEL_PHYSICAL: u64 = 0x4008_0000;

/// A `nop`, to keep in data.
pub const NOP_WORD: u64 = 0xd503_201f;

/// Bytes per XOL slot: slot N is at `XOL_PAGE + XOL_SLOT_SIZE * N`.
pub const XOL_SLOT_SIZE: u64 = 4;

/// The breakpoint `own_brk` executes, as `scenarios own-brk` names it.
pub const OWN_BREAKPOINT: &str = "brk #0x5";

core::arch::global_asm!(
    ".pushsection .text.scenarios, \"ax\", %progbits",
    // 17,000 (SLED_INSTRUCTIONS) probe-able instructions for the registration flood.
    ".globl flood_sled",
    ".type flood_sled, %function",
    ".p2align 4",
    "flood_sled:",
    ".rept 17000",
    "add x0, x0, #1",
    ".endr",
    "ret",
    ".size flood_sled, . - flood_sled",
    // depth(n): recurses n deep with real `bl`s; returns n.
    ".globl depth",
    ".type depth, %function",
    ".p2align 3",
    "depth:",
    "cbz x0, 1f",
    "stp x29, x30, [sp, #-16]!",
    "mov x29, sp",
    "sub x0, x0, #1",
    "bl depth",
    "add x0, x0, #1",
    "ldp x29, x30, [sp], #16",
    "1: ret",
    ".size depth, . - depth",
    // jump_depth(n, env): recurses n deep, then jumps back to the frame saved
    // in env ([sp, resume pc]), skipping every return on the way.
    ".globl jump_depth",
    ".type jump_depth, %function",
    ".p2align 3",
    "jump_depth:",
    "cbz x0, 2f",
    "stp x29, x30, [sp, #-16]!",
    "mov x29, sp",
    "sub x0, x0, #1",
    "bl jump_depth",
    "ldp x29, x30, [sp], #16",
    "ret",
    "2: ldp x2, x3, [x1]",
    "mov sp, x2",
    "mov x0, #77",
    "br x3",
    ".size jump_depth, . - jump_depth",
    // setjmp_and_jump(n, env): saves SP and a resume point in env, calls
    // jump_depth(n, env), and returns what the resume point finds in x0.
    ".globl setjmp_and_jump",
    ".type setjmp_and_jump, %function",
    ".p2align 3",
    "setjmp_and_jump:",
    "stp x29, x30, [sp, #-16]!",
    "mov x29, sp",
    "mov x2, sp",
    "adr x3, 3f",
    "stp x2, x3, [x1]",
    "bl jump_depth",
    "3: ldp x29, x30, [sp], #16",
    "ret",
    ".size setjmp_and_jump, . - setjmp_and_jump",
    // The probe brk immediate, executed by the program itself.
    ".globl own_brk",
    ".type own_brk, %function",
    "own_brk:",
    "brk #0x5",
    "ret",
    ".size own_brk, . - own_brk",
    ".popsection",
);

unsafe extern "C" {
    pub fn flood_sled(x: u64) -> u64;
    pub fn depth(n: u64) -> u64;
    pub fn jump_depth(n: u64, env: *mut [u64; 2]) -> u64;
    pub fn setjmp_and_jump(n: u64, env: *mut [u64; 2]) -> u64;
    pub fn own_brk();
}

/// Calls `target` as a function (`blr`), for `xol-jump`: a zeroed slot is
/// `udf #0`; slot 0 is the trampoline, which the kernel must refuse without an
/// armed return.
///
/// # Safety
///
/// `target` runs as a C function of no arguments and may do anything; the
/// caller answers for that (`xol-jump` expects the kernel to kill it there).
pub unsafe fn call_address(target: u64) {
    // SAFETY: what `target` does is the caller's obligation (# Safety); the
    // registers a callee may change are declared clobbered.
    unsafe { core::arch::asm!("blr {0}", in(reg) target, clobber_abi("C")) };
}

/// The entry the fuzzer gives `spawn_thread`: `fuzz_thread` itself, since the
/// kernel's thread entry state is already the AAPCS64 call state.
pub fn fuzz_thread_entry() -> u64 {
    crate::fuzz_thread as *const () as u64
}
