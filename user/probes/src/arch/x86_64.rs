//! The x86_64 half of `probes`: the probed function and the undefined
//! instruction that `die-stepping` commits.

// probe_target(x) = rotate_left(x * 0x9e3779b9, 13) ^ 0x5555, as on aarch64,
// in assembly so its first instruction is known: `mov eax, imm32` (b8 imm32,
// 5 bytes), which the kernel steps out of line (only nops, push, ret and
// direct branches are simulated).
core::arch::global_asm!(
    ".pushsection .text.probes, \"ax\", @progbits",
    user_rt::asm_function!(
        "probe_target",
        "mov eax, 0x9e3779b9",
        "imul rax, rdi",
        "rol rax, 13",
        "xor rax, 0x5555",
        "ret"
    ),
    ".popsection",
);

unsafe extern "C" {
    /// `safe`: takes rdi, returns rax, clobbers only rax and the flags.
    pub safe fn probe_target(x: u64) -> u64;
}

/// Executes `ud2`: the kernel kills the process there (invalid opcode).
#[inline(always)]
pub fn commit_undefined_instruction() {
    // SAFETY: `ud2` raises the invalid-opcode exception; the kernel kills the
    // process there, so nothing after it runs.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
}
