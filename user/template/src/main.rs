//! `template`: the starting point for your own EL0 program (see README.md here).
//!
//! It greets, then times a loop with `clock`, which returns the kernel's counter
//! (CNTVCT_EL0 on aarch64) and its frequency in Hz: ticks / frequency = seconds.

#![no_std]
#![no_main]

use core::hint::black_box;

use user_rt::{println, sys};

// The function `_start` calls; it gets the argument string and returns the
// process's exit status.
user_rt::entry!(main);

/// How many rounds of the loop that `clock` times.
const ITERATIONS: u64 = 10_000;

fn main(args: &str) -> i32 {
    let pid = sys::getpid().expect("getpid");
    println!("template: hello from process {pid}, args '{args}'");

    let (start, frequency) = sys::clock();
    let mut hash = 0u64;
    for i in 0..black_box(ITERATIONS) {
        hash = hash.rotate_left(5) ^ i;
    }
    let (end, _) = sys::clock();

    let ticks = end - start;
    // In u128: ticks * 10^9 overflows a u64 from 1.8 * 10^10 ticks on (under five
    // minutes at QEMU's 62.5 MHz).
    let nanoseconds = if frequency == 0 { 0 } else { u128::from(ticks) * 1_000_000_000 / u128::from(frequency) };
    println!(
        "template: {ITERATIONS} iterations (hash {hash:#x}) took {ticks} ticks = {nanoseconds} ns at {frequency} Hz"
    );
    0
}
