//! `threads`: worker threads of one process sharing its memory.
//!
//! Every worker adds 1 to one shared atomic counter [`ADDS_PER_WORKER`] times,
//! yielding now and then so the workers interleave, and sums its own series of
//! numbers on its stack. `main` joins them all and checks both: the counter
//! shows that no increment was lost (the `fetch_add` survives preemption: an
//! `ldxr`/`stxr` loop on aarch64, one `lock` instruction on x86_64), the sums
//! that each thread's registers and stack survived every switch.
//!
//! Arguments: the number of workers (default 4, at most [`MAX_WORKERS`]), e.g.
//! `threads 8`.

#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use user_rt::{
    println,
    thread::{self, Tid},
};

user_rt::entry!(main);

const DEFAULT_WORKERS: usize = 4;
/// Each thread has a 64 KiB stack plus a guard page; 32 of them are ~2 MiB.
const MAX_WORKERS: usize = 32;
const ADDS_PER_WORKER: u64 = 10_000;
/// A worker yields after this many increments (20 times in all).
const YIELD_EVERY: u64 = 500;

/// The counter every worker increments.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Worker `index`: increments [`COUNTER`] and returns the sum of its own series
/// `index * ADDS_PER_WORKER + k` for `k` in `0..ADDS_PER_WORKER`.
fn worker(index: usize) -> usize {
    let base = index as u64 * ADDS_PER_WORKER;
    let mut sum = 0u64;
    for k in 0..ADDS_PER_WORKER {
        COUNTER.fetch_add(1, Ordering::SeqCst);
        sum += base + k;
        if k % YIELD_EVERY == YIELD_EVERY - 1 {
            thread::yield_now();
        }
    }
    sum as usize
}

/// What [`worker`]`(index)` must return: `index * N * N + N * (N - 1) / 2`.
fn expected_sum(index: usize) -> usize {
    let n = ADDS_PER_WORKER;
    (index as u64 * n * n + n * (n - 1) / 2) as usize
}

fn main(args: &str) -> i32 {
    let workers = match user_rt::args::operands(args, "threads").next() {
        None => DEFAULT_WORKERS,
        Some(word) => match word.parse::<usize>() {
            Ok(count @ 1..=MAX_WORKERS) => count,
            _ => {
                println!("threads: usage: threads [WORKERS], WORKERS from 1 to {MAX_WORKERS} (got '{word}')");
                return 2;
            }
        },
    };
    println!("threads: {workers} workers, {ADDS_PER_WORKER} increments each");

    let mut tids = [Tid(0); MAX_WORKERS];
    for (index, tid) in tids.iter_mut().enumerate().take(workers) {
        match thread::spawn(worker, index) {
            Ok(spawned) => *tid = spawned,
            Err(error) => {
                // Returning ends the process, and with it the workers already running.
                println!("threads: spawning worker {index} failed: {}", error.name());
                return 1;
            }
        }
    }

    let mut ok = true;
    for (index, tid) in tids.iter().enumerate().take(workers) {
        let expected = expected_sum(index);
        match thread::join(*tid) {
            Ok(sum) if sum == expected => println!("threads: worker {index} sum = {sum}"),
            Ok(sum) => {
                println!("threads: worker {index} sum = {sum}, expected {expected}");
                ok = false;
            }
            Err(error) => {
                println!("threads: joining worker {index} (tid {tid}) failed: {}", error.name());
                ok = false;
            }
        }
    }

    let counter = COUNTER.load(Ordering::SeqCst);
    let expected = workers as u64 * ADDS_PER_WORKER;
    if counter == expected {
        println!("threads: counter = {counter}");
    } else {
        println!("threads: counter = {counter}, expected {expected}");
        ok = false;
    }

    if ok {
        println!("threads: ok");
        0
    } else {
        println!("threads: FAILED");
        1
    }
}
