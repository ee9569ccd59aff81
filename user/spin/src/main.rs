//! `spin NAME MS [fp]`: burn the CPU for MS milliseconds without ever yielding or
//! sleeping, printing a progress line every 10 ms of its own progress. Two of these
//! started together can only both make progress if the kernel preempts them on
//! the timer tick: their progress lines interleave in the transcript.
//!
//! With `fp`, the work is done with all 32 SIMD registers and TPIDR_EL0
//! holding a pattern of this process's own, checked after every block: a
//! kernel that let another thread's state leak in at a preemption would be
//! caught.

#![no_std]
#![no_main]

use user_rt::{args, println, sys};

user_rt::entry!(main);

fn main(arguments: &str) -> i32 {
    let mut operands = args::operands(arguments, "spin");
    let name = operands.next().unwrap_or("spin");
    let total_ms: u64 = operands.next().and_then(|ms| ms.parse().ok()).unwrap_or(100);
    let check_fp = operands.next() == Some("fp");
    // A pattern of this process's own: its pid in the top half of every register.
    let pattern = sys::getpid().unwrap_or(0) << 32 | 0x5eed_0000;
    let mut fp_blocks = 0u64;
    let mut fp_mismatches = 0u64;
    let (start, frequency) = sys::clock();
    let step = frequency / 100; // 10 ms of counter ticks
    let mut next_report = start + step;
    let mut reports = 0;
    let mut work: u64 = 0;
    loop {
        // Pure computation between clock reads: no system call that could yield.
        if check_fp {
            fp_mismatches += simd_registers_survive(pattern);
            fp_blocks += 1;
        } else {
            for i in 0..1000u64 {
                work = work.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
        }
        let (now, _) = sys::clock();
        if now >= next_report {
            reports += 1;
            println!("spin {name}: {} ms", reports * 10);
            next_report += step;
        }
        if now - start >= total_ms * frequency / 1000 {
            break;
        }
    }
    if check_fp {
        println!("spin {name}: fp registers checked in {fp_blocks} blocks, {fp_mismatches} mismatches");
        if fp_mismatches > 0 {
            return 1;
        }
    }
    println!("spin {name}: done after {reports} reports (work {work:#x})");
    0
}

/// Fill v0-v31 with `pattern + i` and TPIDR_EL0 with `pattern`, spin for a
/// while (the timer may preempt us here), then count the registers that no
/// longer hold their value.
fn simd_registers_survive(pattern: u64) -> u64 {
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
