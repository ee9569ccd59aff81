//! The x86_64 half of `scenarios`: the assembly functions (the registration
//! sled, the recursions for return probes and the non-local exit, the
//! program's own `int3`), and the addresses and instructions the shared
//! scenarios need for this architecture.
//!
//! The assembly is Intel syntax, System V ABI (arguments in `rdi`, `rsi`,
//! result in `rax`); numeric labels start at 2, since rustc rejects labels
//! made only of the digits 0 and 1 in x86 assembly.

/// Bytes per instruction of the sled (`nop`, 90): its stride. x86_64 asks no
/// alignment of an instruction, so this is also the alignment the kernel can
/// demand of a probe address: none.
pub const INSN_SIZE: u64 = 1;

/// An address in the kernel's (upper, canonical) half of the address space.
pub const KERNEL_ADDRESS: u64 = 0xffff_8000_0010_0000;

/// A kernel address for the fuzzer, from random bits `r`: half of them in the
/// kernel's canonical upper half, half just past the lower half, where an
/// address is not canonical (a kernel dereferencing one takes a general
/// protection fault, not a page fault).
pub fn fuzz_kernel_address(r: u64) -> u64 {
    if r & (1 << 39) != 0 {
        0xffff_8000_0000_0000 + (r >> 40)
    } else {
        0x0000_8000_0000_0000 + (r >> 40)
    }
}

/// Low physical memory (1 MiB), where firmware and a UEFI-loaded kernel live,
/// and which a kernel may map for itself (supervisor-only) in every address
/// space.
pub const KERNEL_PHYSICAL: u64 = 0x10_0000;

/// A `nop` (90), to keep in data.
pub const NOP_WORD: u64 = 0x90;

/// Bytes per XOL slot: slot N is at `XOL_PAGE + XOL_SLOT_SIZE * N`.
pub const XOL_SLOT_SIZE: u64 = 16;

/// The breakpoint `own_brk` executes, as `scenarios own-brk` names it.
pub const OWN_BREAKPOINT: &str = "int3";

core::arch::global_asm!(
    ".pushsection .text.scenarios, \"ax\", @progbits",
    // 17,000 (SLED_INSTRUCTIONS) one-byte `nop`s for the registration flood,
    // each a probe-able instruction start, then the result x + 17,000 (the
    // same as the aarch64 sled's 17,000 `add`s compute). The probes' hit
    // counts show that every `nop` ran.
    user_rt::asm_function!("flood_sled", ".rept 17000", "nop", ".endr", "lea rax, [rdi + 17000]", "ret"),
    // depth(n): recurses n deep with real `call`s; returns n. The pushed rbp
    // keeps RSP 16-byte aligned at the call.
    user_rt::asm_function!(
        "depth",
        "test rdi, rdi",
        "jz 2f",
        "push rbp",
        "mov rbp, rsp",
        "dec rdi",
        "call depth",
        "inc rax",
        "pop rbp",
        "ret",
        "2: xor eax, eax",
        "ret"
    ),
    // jump_depth(n, env): recurses n deep, then jumps back to the frame saved
    // in env ([rsp, resume rip]) with rax = 77, skipping every return on the way.
    user_rt::asm_function!(
        "jump_depth",
        "test rdi, rdi",
        "jz 2f",
        "push rbp",
        "mov rbp, rsp",
        "dec rdi",
        "call jump_depth",
        "pop rbp",
        "ret",
        "2: mov rsp, qword ptr [rsi]",
        "mov eax, 77",
        "jmp qword ptr [rsi + 8]"
    ),
    // setjmp_and_jump(n, env): saves RSP and a resume point in env, calls
    // jump_depth(n, env), and returns what the resume point finds in rax. The
    // saved RSP is the one a normal return from the call would leave.
    user_rt::asm_function!(
        "setjmp_and_jump",
        "push rbp",
        "mov rbp, rsp",
        "mov qword ptr [rsi], rsp",
        "lea rax, [rip + 3f]",
        "mov qword ptr [rsi + 8], rax",
        "call jump_depth",
        "3: pop rbp",
        "ret"
    ),
    // The probe breakpoint, executed by the program itself.
    user_rt::asm_function!("own_brk", "int3", "ret"),
    ".popsection",
);

unsafe extern "C" {
    pub fn flood_sled(x: u64) -> u64;
    pub fn depth(n: u64) -> u64;
    pub fn jump_depth(n: u64, env: *mut [u64; 2]) -> u64;
    pub fn setjmp_and_jump(n: u64, env: *mut [u64; 2]) -> u64;
    pub fn own_brk();
}

/// Calls `target` as a function, for `xol-jump`. Slot 0 is the trampoline (an
/// `int3`), which the kernel must refuse without an armed return. A slot never
/// written holds whatever the kernel fills the page with; if that is zeros,
/// `00 00` is `add byte ptr [rax], al`, so rax is 0 here to make it a clean
/// page fault at address 0 rather than a write somewhere.
///
/// # Safety
///
/// `target` runs as a C function of no arguments and may do anything; the
/// caller answers for that (`xol-jump` expects the kernel to kill it there).
pub unsafe fn call_address(target: u64) {
    // SAFETY: what `target` does is the caller's obligation (# Safety); the
    // registers a callee may change are declared clobbered, and the asm is not
    // `nostack`, so the `call` may push its return address.
    unsafe { core::arch::asm!("call {0}", in(reg) target, inout("rax") 0u64 => _, clobber_abi("C")) };
}

/// The kernel enters a thread with RSP 16-byte aligned and no return address
/// pushed; the `call` restores the System V alignment `fuzz_thread` expects.
#[unsafe(naked)]
extern "C" fn fuzz_thread_trampoline(_a: u64, _b: u64) -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",
        "call {fuzz_thread}",
        // fuzz_thread never returns.
        "ud2",
        fuzz_thread = sym crate::fuzz_thread,
    )
}

/// The entry the fuzzer gives `spawn_thread`: a trampoline into `fuzz_thread`.
pub fn fuzz_thread_entry() -> u64 {
    fuzz_thread_trampoline as *const () as u64
}
