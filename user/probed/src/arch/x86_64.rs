//! The x86_64 half of `probed`: the probed functions in x86_64 assembly (Intel
//! syntax, System V ABI: argument in `rdi`, result in `rax`), one per
//! instruction class the kernel simulates or steps, and their [`PROBE_POINTS`].
//!
//! Where the assembler could pick among encodings (the multi-byte `nop`s, a
//! `jmp` or `jcc` with a 32-bit displacement, prefixes), the bytes are spelled
//! out with `.byte`, so the probed instruction is exactly the one named. Numeric
//! labels start at 2: rustc rejects labels made only of the digits 0 and 1 in
//! x86 assembly (`1b` reads as a binary number in Intel syntax).
//!
//! Each function is written so a wrong simulation or fix-up changes its result
//! (and so the checksum `main` prints) or crashes the program, rather than
//! passing unnoticed: a `push` is read back and compared with the register it
//! pushed, a RIP-relative store is read back by a separate, unprobed load, the
//! flags `pushfq` stores include the trap flag.

/// (function, offset of the probed instruction, that instruction).
///
/// The kernel simulates the `cls_` ones (under `simulate=branches` only the
/// branches: `ret`, `call`, `jmp`, `jcc`; the `nop`s and `push`es also under
/// `simulate=all`) and steps the `step_` ones out of line, the RIP-relative
/// ones with their displacement fixed up for the slot.
pub const PROBE_POINTS: &[(&str, u64, &str)] = &[
    ("cls_nop", 0x0, "nop (90)"),
    ("cls_nop2", 0x0, "nop (66 90)"),
    ("cls_nop3", 0x0, "nop dword ptr [rax] (0f 1f 00)"),
    ("cls_nop5", 0x0, "nop dword ptr [rax + rax] (0f 1f 44 00 00)"),
    ("cls_nop9", 0x0, "nop word ptr [rax + rax + 0] (66 0f 1f 84 00 00 00 00 00)"),
    ("cls_push", 0x0, "push rbp"),
    ("cls_push_rex", 0x0, "push r12"),
    ("cls_ret", 0x4, "ret"),
    ("cls_call", 0x4, "call rel32"),
    ("cls_jmp8", 0x0, "jmp rel8"),
    ("cls_jmp32", 0x0, "jmp rel32"),
    ("cls_jcc8", 0x7, "jg rel8"),
    ("cls_jcc32", 0x7, "jb rel32"),
    ("step_alu", 0x0, "lea rax, [rdi + 8*rdi]"),
    ("step_add", 0x7, "add rax, rdi"),
    ("step_load", 0x7, "mov rcx, qword ptr [rdx + 8]"),
    ("step_store", 0x7, "mov qword ptr [rdx + 16], rdi"),
    ("step_rip_load", 0x0, "mov rax, qword ptr [rip + probed_data]"),
    ("step_rip_lea", 0x0, "lea rax, [rip + probed_data]"),
    ("step_rip_store", 0x0, "mov qword ptr [rip + probed_scratch], rdi"),
    ("step_cmpxchg", 0x13, "lock cmpxchg qword ptr [rip + probed_cas], rcx"),
    ("step_pushfq", 0x7, "pushfq"),
    ("step_rep_movsb", 0x37, "rep movsb"),
    ("step_movabs", 0x0, "movabs rax, imm64 (10 bytes)"),
    ("step_long", 0x7, "mov qword ptr [rip + probed_long], imm32 (11 bytes)"),
    ("step_max_length", 0x0, "cs cs cs cs cs movabs rax, imm64 (15 bytes)"),
];

core::arch::global_asm!(
    ".pushsection .text.probed, \"ax\", @progbits",
    user_rt::asm_function!("cls_helper", "lea rax, [rdi + 100]", "ret"),
    // ---- simulated: nops of every length the decoders emit for padding.
    user_rt::asm_function!("cls_nop", "nop", "lea rax, [rdi + 1]", "ret"),
    user_rt::asm_function!("cls_nop2", ".byte 0x66, 0x90", "lea rax, [rdi + 2]", "ret"),
    user_rt::asm_function!("cls_nop3", ".byte 0x0f, 0x1f, 0x00", "lea rax, [rdi + 3]", "ret"),
    user_rt::asm_function!("cls_nop5", ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00", "lea rax, [rdi + 5]", "ret"),
    user_rt::asm_function!(
        "cls_nop9",
        ".byte 0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00",
        "lea rax, [rdi + 9]",
        "ret"
    ),
    // ---- simulated: pushes. The pushed word minus the register is 0 when the
    // simulation stored the right value; a wrong RSP breaks the `ret`.
    user_rt::asm_function!(
        "cls_push",
        "push rbp",
        "mov rax, qword ptr [rsp]",
        "sub rax, rbp",
        "lea rax, [rax + rdi + 2]",
        "pop rbp",
        "ret"
    ),
    // `push r12` is 41 54: the REX prefix selects the register.
    user_rt::asm_function!(
        "cls_push_rex",
        "push r12",
        "mov rax, qword ptr [rsp]",
        "sub rax, r12",
        "lea rax, [rax + rdi + 3]",
        "pop r12",
        "ret"
    ),
    // ---- simulated: branches.
    user_rt::asm_function!("cls_ret", "lea rax, [rdi + 9]", "ret"),
    // The frame keeps RSP 16-byte aligned at the call, as the ABI wants.
    user_rt::asm_function!("cls_call", "push rbp", "mov rbp, rsp", "call cls_helper", "add rax, rdi", "pop rbp", "ret"),
    user_rt::asm_function!("cls_jmp8", "jmp 2f", "xor eax, eax", "ret", "2: lea rax, [rdi + 1]", "ret"),
    // e9 rel32, relative to the end of the instruction (label 2).
    user_rt::asm_function!(
        "cls_jmp32",
        ".byte 0xe9",
        ".long 3f - 2f",
        "2: xor eax, eax",
        "ret",
        "3: lea rax, [rdi + 4]",
        "ret"
    ),
    // Signed greater: taken for x > 500, so both ways are taken over 0..1000.
    user_rt::asm_function!(
        "cls_jcc8",
        "cmp rdi, 500",
        "jg 2f",
        "lea rax, [rdi + 10]",
        "ret",
        "2: lea rax, [rdi - 1]",
        "ret"
    ),
    // 0f 82 rel32 (jb: carry set), taken for x < 300.
    user_rt::asm_function!(
        "cls_jcc32",
        "cmp rdi, 300",
        ".byte 0x0f, 0x82",
        ".long 3f - 2f",
        "2: lea rax, [rdi + 20]",
        "ret",
        "3: lea rax, [rdi + rdi]",
        "ret"
    ),
    // ---- stepped out of line.
    user_rt::asm_function!(
        "step_alu",
        "lea rax, [rdi + 8*rdi]",
        "movabs rcx, 0x5555555555555555",
        "xor rax, rcx",
        "ret"
    ),
    // The carry of the stepped `add` (set for x >= 500) feeds the `adc`: the
    // flags after a step must be the instruction's.
    user_rt::asm_function!("step_add", "mov rax, -500", "add rax, rdi", "adc rax, rdi", "ret"),
    user_rt::asm_function!(
        "step_load",
        "lea rdx, [rip + probed_buffer]",
        "mov rcx, qword ptr [rdx + 8]",
        "lea rax, [rdi + rcx]",
        "ret"
    ),
    user_rt::asm_function!(
        "step_store",
        "lea rdx, [rip + probed_buffer]",
        "mov qword ptr [rdx + 16], rdi",
        "mov rax, qword ptr [rdx + 16]",
        "add rax, 1",
        "ret"
    ),
    user_rt::asm_function!("step_rip_load", "mov rax, qword ptr [rip + probed_data]", "add rax, rdi", "ret"),
    user_rt::asm_function!(
        "step_rip_lea",
        "lea rax, [rip + probed_data]",
        "mov rax, qword ptr [rax]",
        "xor rax, rdi",
        "ret"
    ),
    // Read back by an unprobed load: a store the fix-up sent elsewhere leaves
    // the previous call's value there.
    user_rt::asm_function!(
        "step_rip_store",
        "mov qword ptr [rip + probed_scratch], rdi",
        "mov rax, qword ptr [rip + probed_scratch]",
        "add rax, 5",
        "ret"
    ),
    // cmpxchg compares with rax implicitly, so the register a fix-up borrows
    // for the RIP-relative operand must not be rax. The expected value is off
    // by one for odd x, so the exchange fails (ZF = 0, rax = memory) for odd x
    // and succeeds (ZF = 1, memory = x + 1) for even x.
    user_rt::asm_function!(
        "step_cmpxchg",
        "mov rax, qword ptr [rip + probed_cas]",
        "mov edx, edi",
        "and edx, 1",
        "add rax, rdx",
        "lea rcx, [rdi + 1]",
        "lock cmpxchg qword ptr [rip + probed_cas], rcx",
        "setz dl",
        "movzx edx, dl",
        "shl rax, 1",
        "or rax, rdx",
        "ret"
    ),
    // The flags pushed include TF (0x100), which the step sets in the
    // instruction's flags: the kernel must clear it again in the pushed word.
    // The mask keeps CF PF AF ZF SF TF IF DF OF.
    user_rt::asm_function!("step_pushfq", "cmp rdi, 500", "pushfq", "pop rax", "and eax, 0xfd5", "add rax, rdi", "ret"),
    // Copies 5..12 bytes (x % 8 + 5) of [x, 0x1122334455667788] over a zeroed
    // 16-byte buffer. Under TF, `rep movsb` traps after every byte with RIP
    // still on the instruction: the step is over only when RCX reaches 0.
    user_rt::asm_function!(
        "step_rep_movsb",
        "mov r8, rdi",
        "mov qword ptr [rip + probed_source], rdi",
        "mov qword ptr [rip + probed_copy], 0",
        "mov qword ptr [rip + probed_copy + 8], 0",
        "lea rsi, [rip + probed_source]",
        "lea rdi, [rip + probed_copy]",
        "mov ecx, r8d",
        "and ecx, 7",
        "add ecx, 5",
        "rep movsb",
        "mov rax, qword ptr [rip + probed_copy]",
        "add rax, qword ptr [rip + probed_copy + 8]",
        "ret"
    ),
    user_rt::asm_function!("step_movabs", "movabs rax, 0x123456789abcdef0", "xor rax, rdi", "ret"),
    // 48 c7 05 disp32 imm32: the immediate follows the displacement, so the
    // fix-up's RIP is the end of all 11 bytes. The slot is first set to x.
    user_rt::asm_function!(
        "step_long",
        "mov qword ptr [rip + probed_long], rdi",
        "mov qword ptr [rip + probed_long], 0x5a5a5",
        "mov rax, qword ptr [rip + probed_long]",
        "add rax, rdi",
        "ret"
    ),
    // The longest instruction x86 allows, 15 bytes: five CS overrides (no
    // effect in 64-bit mode) before `movabs rax, imm64` (REX.W b8 imm64). It
    // fills a 16-byte XOL slot but one byte.
    user_rt::asm_function!(
        "step_max_length",
        ".byte 0x2e, 0x2e, 0x2e, 0x2e, 0x2e, 0x48, 0xb8",
        ".quad 0x0fedcba987654321",
        "xor rax, rdi",
        "ret"
    ),
    // Recursive Fibonacci, every call a real `call`: fib_rec(n) makes exactly
    // 2 * fib(n + 1) - 1 calls. The first instruction, `cmp`, is stepped; the
    // three pushes keep RSP 16-byte aligned at each call.
    user_rt::asm_function!(
        "fib_rec",
        "cmp rdi, 2",
        "jb 2f",
        "push rbp",
        "mov rbp, rsp",
        "push rbx",
        "push r12",
        "mov rbx, rdi",
        "lea rdi, [rbx - 1]",
        "call fib_rec",
        "mov r12, rax",
        "lea rdi, [rbx - 2]",
        "call fib_rec",
        "add rax, r12",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "ret",
        "2: mov rax, rdi",
        "ret",
    ),
    // Called only by `probed fault`, with an unmapped address: a probed load
    // that faults while it is stepped out of line, or displaced in its
    // trampoline. `mov rax, qword ptr [rdi + 0x0]` with a 32-bit displacement
    // (48 8b 87 00 00 00 00), 7 bytes: long enough for a `jmp rel32`.
    user_rt::asm_function!("fault_load", ".byte 0x48, 0x8b, 0x87, 0x00, 0x00, 0x00, 0x00", "ret"),
    // Never called: instructions the kernel must refuse to probe (a
    // breakpoint of the program's own, a system call, a privileged one).
    user_rt::asm_function!("refuse_int3", "int3", "ret"),
    user_rt::asm_function!("refuse_int80", "int 0x80", "ret"),
    user_rt::asm_function!("refuse_hlt", "hlt", "ret"),
    ".popsection",
    ".pushsection .data.probed, \"aw\", @progbits",
    ".p2align 3",
    ".globl probed_data",
    "probed_data: .quad 77",
    ".globl probed_buffer",
    "probed_buffer: .quad 11, 22, 33, 44",
    ".globl probed_scratch",
    "probed_scratch: .quad 0",
    ".globl probed_cas",
    "probed_cas: .quad 1000",
    ".globl probed_long",
    "probed_long: .quad 0",
    ".globl probed_source",
    "probed_source: .quad 0, 0x1122334455667788",
    ".globl probed_copy",
    "probed_copy: .quad 0, 0",
    ".popsection",
);

unsafe extern "C" {
    // `safe`: each function above takes rdi and returns rax, clobbers only the
    // caller-saved registers rax, rcx, rdx, rsi, rdi, r8 and the flags
    // (restoring rbx, rbp, r12 it pushes), keeps RSP balanced, leaves DF clear,
    // and touches no memory but its own frame and the `probed_` data above,
    // which nothing in Rust reads.
    safe fn cls_nop(x: u64) -> u64;
    safe fn cls_nop2(x: u64) -> u64;
    safe fn cls_nop3(x: u64) -> u64;
    safe fn cls_nop5(x: u64) -> u64;
    safe fn cls_nop9(x: u64) -> u64;
    safe fn cls_push(x: u64) -> u64;
    safe fn cls_push_rex(x: u64) -> u64;
    safe fn cls_ret(x: u64) -> u64;
    safe fn cls_call(x: u64) -> u64;
    safe fn cls_jmp8(x: u64) -> u64;
    safe fn cls_jmp32(x: u64) -> u64;
    safe fn cls_jcc8(x: u64) -> u64;
    safe fn cls_jcc32(x: u64) -> u64;
    safe fn step_alu(x: u64) -> u64;
    safe fn step_add(x: u64) -> u64;
    safe fn step_load(x: u64) -> u64;
    safe fn step_store(x: u64) -> u64;
    safe fn step_rip_load(x: u64) -> u64;
    safe fn step_rip_lea(x: u64) -> u64;
    safe fn step_rip_store(x: u64) -> u64;
    safe fn step_cmpxchg(x: u64) -> u64;
    safe fn step_pushfq(x: u64) -> u64;
    safe fn step_rep_movsb(x: u64) -> u64;
    safe fn step_movabs(x: u64) -> u64;
    safe fn step_long(x: u64) -> u64;
    safe fn step_max_length(x: u64) -> u64;
    pub safe fn fib_rec(n: u64) -> u64;
    pub safe fn fault_load(address: u64) -> u64;
}

/// The functions of [`PROBE_POINTS`], in the same order, by name.
pub const FUNCTIONS: &[(&str, extern "C" fn(u64) -> u64)] = &[
    ("cls_nop", cls_nop),
    ("cls_nop2", cls_nop2),
    ("cls_nop3", cls_nop3),
    ("cls_nop5", cls_nop5),
    ("cls_nop9", cls_nop9),
    ("cls_push", cls_push),
    ("cls_push_rex", cls_push_rex),
    ("cls_ret", cls_ret),
    ("cls_call", cls_call),
    ("cls_jmp8", cls_jmp8),
    ("cls_jmp32", cls_jmp32),
    ("cls_jcc8", cls_jcc8),
    ("cls_jcc32", cls_jcc32),
    ("step_alu", step_alu),
    ("step_add", step_add),
    ("step_load", step_load),
    ("step_store", step_store),
    ("step_rip_load", step_rip_load),
    ("step_rip_lea", step_rip_lea),
    ("step_rip_store", step_rip_store),
    ("step_cmpxchg", step_cmpxchg),
    ("step_pushfq", step_pushfq),
    ("step_rep_movsb", step_rep_movsb),
    ("step_movabs", step_movabs),
    ("step_long", step_long),
    ("step_max_length", step_max_length),
];
