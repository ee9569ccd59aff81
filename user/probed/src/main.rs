//! `probed [N]`: one tiny function per instruction class that the kernel's probe
//! code simulates or steps out of line, each called N times (default 50) with
//! varied arguments, and a checksum printed per function.
//!
//! The functions are assembly, so the instruction at each probe point is exactly
//! the one named in [`PROBE_POINTS`]; the tests put a probe on every one of them
//! and check the checksums are those of an unprobed run, and that every probe
//! was hit exactly N times.
//!
//! The functions and their probe points are per architecture (`arch/aarch64.rs`,
//! `arch/x86_64.rs`); this file, the same on both, calls them and prints the
//! lines: `probed: NAME xN = CHECKSUM` per function, the `fib_rec` line (a
//! recursive function for return probes) and `probed: done`. `probed fault`
//! instead loads from an unmapped address in `fault_load`, a probed instruction
//! that faults while it is stepped out of line.

#![no_std]
#![no_main]

use user_rt::{args, println};

user_rt::entry!(main);

#[cfg(target_arch = "aarch64")]
#[path = "arch/aarch64.rs"]
mod arch;
#[cfg(target_arch = "x86_64")]
#[path = "arch/x86_64.rs"]
mod arch;

pub use arch::PROBE_POINTS;
use arch::{fault_load, fib_rec, FUNCTIONS};

/// fib(n), iteratively: the check on `fib_rec`.
fn fib_iterative(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

fn main(arguments: &str) -> i32 {
    if args::operands(arguments, "probed").next() == Some("fault") {
        // An address in the user range that nothing maps.
        let unmapped = user_rt::layout::USER_BASE + 0x20_0000_0000;
        println!("probed: loading from {unmapped:#x}");
        let value = fault_load(unmapped);
        println!("probed: the load did not fault ({value:#x})");
        return 1;
    }
    let calls: u64 = args::operands(arguments, "probed").next().and_then(|n| n.parse().ok()).unwrap_or(50);
    assert_eq!(FUNCTIONS.len(), PROBE_POINTS.len());
    for ((name, _), (point, _, _)) in FUNCTIONS.iter().zip(PROBE_POINTS) {
        assert_eq!(name, point, "FUNCTIONS and PROBE_POINTS list the functions in one order");
    }
    for &(name, function) in FUNCTIONS {
        let mut checksum: u64 = 0;
        for i in 0..calls {
            // Arguments spread over 0..1000 so both ways of every branch are taken.
            let x = (i * 37) % 1000;
            checksum = checksum.rotate_left(7) ^ function(x);
        }
        println!("probed: {name} x{calls} = {checksum:#018x}");
    }
    let n = 15;
    let calls = 2 * fib_iterative(n + 1) - 1;
    println!("probed: fib_rec({n}) = {} in {calls} calls (fib = {})", fib_rec(n), fib_iterative(n));
    println!("probed: done");
    0
}
