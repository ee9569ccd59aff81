//! `spin NAME MS`: burn the CPU for MS milliseconds without ever yielding or
//! sleeping, printing a progress line every 10 ms of its own progress. Two of these
//! started together can only both make progress if the kernel preempts them on
//! the timer tick: their progress lines interleave in the transcript.

#![no_std]
#![no_main]

use user_rt::{args, println, sys};

user_rt::entry!(main);

fn main(arguments: &str) -> i32 {
    let mut operands = args::operands(arguments, "spin");
    let name = operands.next().unwrap_or("spin");
    let total_ms: u64 = operands.next().and_then(|ms| ms.parse().ok()).unwrap_or(100);
    let (start, frequency) = sys::clock();
    let step = frequency / 100; // 10 ms of counter ticks
    let mut next_report = start + step;
    let mut reports = 0;
    let mut work: u64 = 0;
    loop {
        // Pure computation between clock reads: no system call that could yield.
        for i in 0..1000u64 {
            work = work.wrapping_mul(6364136223846793005).wrapping_add(i);
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
    println!("spin {name}: done after {reports} reports (work {work:#x})");
    0
}
