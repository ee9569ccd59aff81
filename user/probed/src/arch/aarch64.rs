//! The aarch64 half of `probed`: the probed functions in A64 assembly, one per
//! instruction class the kernel simulates or steps, and their [`PROBE_POINTS`].

/// (function, offset of the probed instruction, that instruction).
pub const PROBE_POINTS: &[(&str, u64, &str)] = &[
    ("cls_b", 0x0, "b"),
    ("cls_bl", 0x8, "bl"),
    ("cls_bcond", 0x4, "b.gt"),
    ("cls_cbz", 0x0, "cbz"),
    ("cls_tbnz", 0x0, "tbnz"),
    ("cls_br", 0x4, "br x16"),
    ("cls_blr", 0xc, "blr x16"),
    ("cls_ret", 0x4, "ret"),
    ("cls_adr", 0x0, "adr"),
    ("cls_adrp", 0x0, "adrp"),
    ("cls_ldr_literal", 0x0, "ldr x1, literal"),
    ("cls_ldrsw_literal", 0x0, "ldrsw x1, literal"),
    ("cls_nop", 0x0, "nop"),
    ("cls_push", 0x0, "stp x29, x30, [sp, #-16]!"),
    ("step_alu", 0x0, "add x0, x0, x0, lsl #3"),
    ("step_madd", 0x4, "madd"),
    ("step_csel", 0x4, "csel"),
    ("step_mrs_nzcv", 0x4, "mrs x1, nzcv"),
    ("step_load", 0x8, "ldr x1, [x2, #8]!"),
    ("step_store", 0x8, "str x0, [x2, #16]"),
    ("step_pair", 0x8, "ldp x3, x4, [x2]"),
    ("step_simd", 0x4, "add v0.2d, v0.2d, v0.2d"),
];

core::arch::global_asm!(
    ".pushsection .text.probed, \"ax\", %progbits",
    user_rt::asm_function!("cls_helper", "add x0, x0, #100", "ret"),
    user_rt::asm_function!("cls_b", "b 1f", "mov x0, #0", "1: add x0, x0, #1", "ret"),
    user_rt::asm_function!(
        "cls_bl",
        "stp x29, x30, [sp, #-16]!",
        "mov x29, sp",
        "bl cls_helper",
        "ldp x29, x30, [sp], #16",
        "ret"
    ),
    user_rt::asm_function!(
        "cls_bcond",
        "cmp x0, #500",
        "b.gt 1f",
        "add x0, x0, #10",
        "ret",
        "1: sub x0, x0, #1",
        "ret"
    ),
    user_rt::asm_function!("cls_cbz", "cbz x0, 1f", "add x0, x0, #7", "ret", "1: mov x0, #42", "ret"),
    user_rt::asm_function!("cls_tbnz", "tbnz x0, #1, 1f", "add x0, x0, #3", "ret", "1: eor x0, x0, #0xff", "ret"),
    user_rt::asm_function!("cls_br", "adr x16, 1f", "br x16", "mov x0, #0", "1: add x0, x0, #5", "ret"),
    user_rt::asm_function!(
        "cls_blr",
        "stp x29, x30, [sp, #-16]!",
        "mov x29, sp",
        "adr x16, cls_helper",
        "blr x16",
        "ldp x29, x30, [sp], #16",
        "ret"
    ),
    user_rt::asm_function!("cls_ret", "add x0, x0, #9", "ret"),
    user_rt::asm_function!(
        "cls_adr",
        "adr x1, 1f",
        "ldr x1, [x1]",
        "add x0, x0, x1",
        "ret",
        ".p2align 3",
        "1: .quad 1000"
    ),
    // adrp + ldr, not adrp + add: the linker would relax adrp + add into nop + adr.
    user_rt::asm_function!(
        "cls_adrp",
        "adrp x1, probed_data",
        "ldr x1, [x1, :lo12:probed_data]",
        "add x0, x0, x1",
        "ret"
    ),
    user_rt::asm_function!(
        "cls_ldr_literal",
        "ldr x1, 1f",
        "add x0, x0, x1",
        "ret",
        ".p2align 3",
        "1: .quad 0x123456789"
    ),
    user_rt::asm_function!("cls_ldrsw_literal", "ldrsw x1, 1f", "add x0, x0, x1", "ret", ".p2align 2", "1: .word -5"),
    user_rt::asm_function!("cls_nop", "nop", "add x0, x0, #1", "ret"),
    user_rt::asm_function!(
        "cls_push",
        "stp x29, x30, [sp, #-16]!",
        "mov x29, sp",
        "add x0, x0, #2",
        "ldp x29, x30, [sp], #16",
        "ret"
    ),
    user_rt::asm_function!("step_alu", "add x0, x0, x0, lsl #3", "eor x0, x0, #0x5555555555555555", "ret"),
    user_rt::asm_function!("step_madd", "mov x1, #3", "madd x0, x0, x1, x0", "ret"),
    user_rt::asm_function!("step_csel", "cmp x0, #300", "csel x0, x0, xzr, hi", "ret"),
    user_rt::asm_function!("step_mrs_nzcv", "cmp x0, #100", "mrs x1, nzcv", "eor x0, x0, x1, lsr #28", "ret"),
    user_rt::asm_function!(
        "step_load",
        "adrp x2, probed_buffer",
        "add x2, x2, :lo12:probed_buffer",
        "ldr x1, [x2, #8]!",
        "add x0, x0, x1",
        "ret"
    ),
    user_rt::asm_function!(
        "step_store",
        "adrp x2, probed_buffer",
        "add x2, x2, :lo12:probed_buffer",
        "str x0, [x2, #16]",
        "ldr x1, [x2, #16]",
        "add x0, x1, #1",
        "ret"
    ),
    user_rt::asm_function!(
        "step_pair",
        "adrp x2, probed_buffer",
        "add x2, x2, :lo12:probed_buffer",
        "ldp x3, x4, [x2]",
        "add x0, x0, x3",
        "add x0, x0, x4",
        "ret"
    ),
    user_rt::asm_function!("step_simd", "dup v0.2d, x0", "add v0.2d, v0.2d, v0.2d", "umov x0, v0.d[1]", "ret"),
    // Recursive Fibonacci, every call a real `bl` (the compiler would turn one of
    // the two recursive calls of a Rust version into a loop): fib_rec(n) makes
    // exactly 2 * fib(n + 1) - 1 calls, each ending in the `ret` at 2.
    user_rt::asm_function!(
        "fib_rec",
        "cmp x0, #2",
        "b.lo 2f",
        "stp x29, x30, [sp, #-32]!",
        "mov x29, sp",
        "stp x19, x20, [sp, #16]",
        "mov x19, x0",
        "sub x0, x19, #1",
        "bl fib_rec",
        "mov x20, x0",
        "sub x0, x19, #2",
        "bl fib_rec",
        "add x0, x0, x20",
        "ldp x19, x20, [sp, #16]",
        "ldp x29, x30, [sp], #32",
        "2: ret",
    ),
    // Called only by `probed fault`, with an unmapped address: a probed load
    // that faults while it is stepped out of line.
    user_rt::asm_function!("fault_load", "ldr x1, [x0]", "mov x0, x1", "ret"),
    // Never called: instructions the kernel must refuse to probe.
    user_rt::asm_function!("refuse_ldaxr", "ldaxr x1, [x0]", "ret"),
    user_rt::asm_function!("refuse_svc", "svc #0", "ret"),
    user_rt::asm_function!("refuse_msr", "msr tpidr_el0, x0", "ret"),
    ".popsection",
    ".pushsection .data.probed, \"aw\", %progbits",
    ".p2align 3",
    ".globl probed_data",
    "probed_data: .quad 77",
    ".globl probed_buffer",
    "probed_buffer: .quad 11, 22, 33, 44",
    ".popsection",
);

unsafe extern "C" {
    // `safe`: each function above takes x0 and returns x0, clobbers only the
    // caller-saved registers x1-x4, x16 and v0, keeps SP balanced, and touches no
    // memory but its own frame and `probed_buffer`, which nothing in Rust reads.
    safe fn cls_b(x: u64) -> u64;
    safe fn cls_bl(x: u64) -> u64;
    safe fn cls_bcond(x: u64) -> u64;
    safe fn cls_cbz(x: u64) -> u64;
    safe fn cls_tbnz(x: u64) -> u64;
    safe fn cls_br(x: u64) -> u64;
    safe fn cls_blr(x: u64) -> u64;
    safe fn cls_ret(x: u64) -> u64;
    safe fn cls_adr(x: u64) -> u64;
    safe fn cls_adrp(x: u64) -> u64;
    safe fn cls_ldr_literal(x: u64) -> u64;
    safe fn cls_ldrsw_literal(x: u64) -> u64;
    safe fn cls_nop(x: u64) -> u64;
    safe fn cls_push(x: u64) -> u64;
    safe fn step_alu(x: u64) -> u64;
    safe fn step_madd(x: u64) -> u64;
    safe fn step_csel(x: u64) -> u64;
    safe fn step_mrs_nzcv(x: u64) -> u64;
    safe fn step_load(x: u64) -> u64;
    safe fn step_store(x: u64) -> u64;
    safe fn step_pair(x: u64) -> u64;
    safe fn step_simd(x: u64) -> u64;
    pub safe fn fib_rec(n: u64) -> u64;
    pub safe fn fault_load(address: u64) -> u64;
}

/// The functions of [`PROBE_POINTS`], in the same order, by name.
pub const FUNCTIONS: &[(&str, extern "C" fn(u64) -> u64)] = &[
    ("cls_b", cls_b),
    ("cls_bl", cls_bl),
    ("cls_bcond", cls_bcond),
    ("cls_cbz", cls_cbz),
    ("cls_tbnz", cls_tbnz),
    ("cls_br", cls_br),
    ("cls_blr", cls_blr),
    ("cls_ret", cls_ret),
    ("cls_adr", cls_adr),
    ("cls_adrp", cls_adrp),
    ("cls_ldr_literal", cls_ldr_literal),
    ("cls_ldrsw_literal", cls_ldrsw_literal),
    ("cls_nop", cls_nop),
    ("cls_push", cls_push),
    ("step_alu", step_alu),
    ("step_madd", step_madd),
    ("step_csel", step_csel),
    ("step_mrs_nzcv", step_mrs_nzcv),
    ("step_load", step_load),
    ("step_store", step_store),
    ("step_pair", step_pair),
    ("step_simd", step_simd),
];
