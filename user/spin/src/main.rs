//! `spin NAME TICKS [fp]`: burn the CPU without ever yielding or sleeping until
//! the kernel has counted TICKS timer ticks against this process, printing a
//! progress line at each new tick. Two of these started together can only both
//! finish if the kernel preempts them on the tick; the kernel's exit summary says
//! how often it did (`preempted N time(s)`), which is what the tests check: the
//! count does not depend on how fast the host runs the guest.
//!
//! With `fp`, the work is done with registers holding a pattern of this
//! process's own, checked after every block: a kernel that let another thread's
//! state leak in at a preemption would be caught. On aarch64 these are all 32
//! SIMD registers and TPIDR_EL0; on x86_64, whose user programs have no SIMD
//! (soft float, SSE off), all 15 general registers besides `rsp`. The word `fp`
//! is the same on both; the result line names what was checked.

#![no_std]
#![no_main]

use user_rt::{args, println, sys};

user_rt::entry!(main);

fn main(arguments: &str) -> i32 {
    let mut operands = args::operands(arguments, "spin");
    let name = operands.next().unwrap_or("spin");
    let ticks: u64 = operands.next().and_then(|ticks| ticks.parse().ok()).unwrap_or(10);
    let check_fp = operands.next() == Some("fp");
    // A pattern of this process's own: its pid in the top half of every register.
    let pattern = sys::getpid().unwrap_or(0) << 32 | 0x5eed_0000;
    let mut fp_blocks = 0u64;
    let mut fp_mismatches = 0u64;
    let mut seen = 0;
    let mut work: u64 = 0;
    while seen < ticks {
        // Pure computation between the kernel's counts: `task_info` never yields.
        if check_fp {
            fp_mismatches += registers_survive(pattern);
            fp_blocks += 1;
        } else {
            for i in 0..1000u64 {
                work = work.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
        }
        let Ok(info) = sys::task_info() else {
            println!("spin {name}: task_info failed");
            return 1;
        };
        if info.ticks > seen {
            seen = info.ticks;
            println!("spin {name}: {seen} of {ticks} ticks");
        }
    }
    if check_fp {
        println!("spin {name}: {CHECKED_REGISTERS} checked in {fp_blocks} blocks, {fp_mismatches} mismatches");
        if fp_mismatches > 0 {
            return 1;
        }
    }
    println!("spin {name}: done after {seen} ticks (work {work:#x})");
    0
}

/// Fill v0-v31 with `pattern + i` and TPIDR_EL0 with `pattern`, spin for a
/// while (the timer may preempt us here), then count the registers that no
/// longer hold their value.
#[cfg(target_arch = "aarch64")]
fn registers_survive(pattern: u64) -> u64 {
    let mismatches: u64;
    // SAFETY: only the listed registers are written, and all of them are declared
    // clobbered; no memory is touched.
    unsafe {
        core::arch::asm!(
            "mov {t}, {p}",
            ".irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            "dup v\\n\\().2d, {t}",
            "add {t}, {t}, #1",
            ".endr",
            "msr tpidr_el0, {p}",
            "mov {c}, #20000",
            "2: subs {c}, {c}, #1",
            "b.ne 2b",
            "mov {t}, {p}",
            "mov {bad}, #0",
            ".irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            "umov {u}, v\\n\\().d[1]",
            "cmp {u}, {t}",
            "cinc {bad}, {bad}, ne",
            "add {t}, {t}, #1",
            ".endr",
            "mrs {u}, tpidr_el0",
            "cmp {u}, {p}",
            "cinc {bad}, {bad}, ne",
            p = in(reg) pattern,
            t = out(reg) _,
            c = out(reg) _,
            u = out(reg) _,
            bad = out(reg) mismatches,
            out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _, out("v6") _, out("v7") _,
            out("v8") _, out("v9") _, out("v10") _, out("v11") _, out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            out("v16") _, out("v17") _, out("v18") _, out("v19") _, out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _, out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            options(nomem, nostack),
        );
    }
    mismatches
}

/// How many rounds `registers_survive` spins with every general register in
/// use (the counter lives on the stack): long enough for timer ticks to land
/// inside.
#[cfg(target_arch = "x86_64")]
const SPIN_ROUNDS: u64 = 20_000;

/// What `fp` checks, for the result line.
#[cfg(target_arch = "aarch64")]
const CHECKED_REGISTERS: &str = "fp registers";
#[cfg(target_arch = "x86_64")]
const CHECKED_REGISTERS: &str = "general registers";

/// Fill the 15 general registers other than `rsp` with `pattern + i`, spin for
/// a while (the timer may preempt us here), then count the registers that no
/// longer hold their value.
#[cfg(target_arch = "x86_64")]
fn registers_survive(pattern: u64) -> u64 {
    gprs_survive(pattern, SPIN_ROUNDS)
}

// SAFETY (of `safe fn`): `gprs_survive` below is a complete System V function:
// it saves and restores the callee-saved registers it uses, leaves `rsp` as it
// found it, and touches only its own stack frame, so any call is sound.
#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    /// `gprs_survive(pattern, rounds) -> mismatches`, in the `global_asm!` below.
    safe fn gprs_survive(pattern: u64, rounds: u64) -> u64;
}

// A whole function rather than `asm!`, because `rbx` and `rbp` cannot be asm
// operands and every register must hold the pattern at once. The loop counter
// and the tally of mismatches therefore live on the stack. Register i (in the
// order rax, rbx, rcx, rdx, rsi, rdi, rbp, r8-r15) holds `pattern + i`.
// Intel syntax, Rust's default.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(user_rt::asm_function!(
    "gprs_survive",
    "push rbx",
    "push rbp",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    // [rsp + 16] = pattern, [rsp + 8] = mismatches, [rsp] = rounds left.
    "push rdi",
    "push 0",
    "push rsi",
    "lea rax, [rdi + 0]",
    "lea rbx, [rdi + 1]",
    "lea rcx, [rdi + 2]",
    "lea rdx, [rdi + 3]",
    "lea rsi, [rdi + 4]",
    "lea rbp, [rdi + 6]",
    "lea r8, [rdi + 7]",
    "lea r9, [rdi + 8]",
    "lea r10, [rdi + 9]",
    "lea r11, [rdi + 10]",
    "lea r12, [rdi + 11]",
    "lea r13, [rdi + 12]",
    "lea r14, [rdi + 13]",
    "lea r15, [rdi + 14]",
    "add rdi, 5",
    "2: dec qword ptr [rsp]",
    "jnz 2b",
    // Take the pattern back off: register i must now hold i. Every mismatch
    // adds one to the tally.
    ".irp reg,rax,rbx,rcx,rdx,rsi,rdi,rbp,r8,r9,r10,r11,r12,r13,r14,r15",
    "sub \\reg, qword ptr [rsp + 16]",
    ".endr",
    "cmp rax, 0",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp rbx, 1",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp rcx, 2",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp rdx, 3",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp rsi, 4",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp rdi, 5",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp rbp, 6",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp r8, 7",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp r9, 8",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp r10, 9",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp r11, 10",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp r12, 11",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp r13, 12",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp r14, 13",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: cmp r15, 14",
    "jz 3f",
    "inc qword ptr [rsp + 8]",
    "3: pop rsi",
    "pop rax",
    "pop rdi",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbp",
    "pop rbx",
    "ret",
));
