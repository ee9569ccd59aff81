//! `faults`: commits the one fault its argument names, so that the kernel's
//! handling and report of every kind of user-mode fault (EL0, ring 3) can be
//! tested.
//!
//! Each fault is one instruction of inline assembly, so the faulting address
//! and instruction are exactly the ones named here, whatever the optimiser does.
//! The kinds differ by architecture (`aarch64.rs`, `x86_64.rs`); `faults`
//! without a kind lists them. The program prints `faults: committing <kind>` first; the kernel should end
//! it there. If it comes back, it prints `faults: <kind> did not fault` and
//! returns 1. An unknown or missing kind prints the list and returns 2.

#![no_std]
#![no_main]

use user_rt::{layout::USER_BASE, println};

user_rt::entry!(main);

/// An address in the user range that nothing maps: half way between the program
/// image (a few pages at `USER_BASE`) and the thread stacks (just below
/// `STACKS_TOP` = 0x7f_0000_0000). The ABI has no call that maps memory, so it
/// stays unmapped.
const UNMAPPED: u64 = USER_BASE + 0x20_0000_0000;

/// Where the kernel maps the XOL page, read + execute for user code.
const XOL_PAGE: u64 = user_rt::layout::XOL_PAGE;

// The kinds of fault and the code that commits them are per architecture; the
// command line, the messages and the stack overflow are shared.
#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
use aarch64::{commit, KINDS};

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
use x86_64::{commit, KINDS};

fn main(args: &str) -> i32 {
    let kind = user_rt::args::operands(args, "faults").next().unwrap_or("");
    if !KINDS.contains(&kind) {
        if kind.is_empty() {
            println!("faults: no kind given; usage: faults KIND, one of:");
        } else {
            println!("faults: unknown kind '{kind}'; usage: faults KIND, one of:");
        }
        for known in KINDS {
            println!("faults:   {known}");
        }
        return 2;
    }
    println!("faults: committing {kind}");
    commit(kind);
    println!("faults: {kind} did not fault");
    1
}

/// Something called through a vtable, for `write-vtable`.
trait Shape {
    fn area(&self) -> u64;
}

struct Square(u64);

impl Shape for Square {
    fn area(&self) -> u64 {
        self.0 * self.0
    }
}

/// The address of `Square`'s vtable for `Shape`, through which every call of
/// `area` on a `&dyn Shape` goes; `None` if what was taken for it does not lie
/// in the program image.
pub(crate) fn vtable_address() -> Option<u64> {
    let square = Square(3);
    let shape: &dyn Shape = core::hint::black_box(&square);
    println!("faults: a Square's area through its vtable: {}", shape.area());
    // SAFETY: a `&dyn Trait` is two words, the data pointer and then the vtable
    // pointer; that layout is not promised (`core::ptr::metadata`, which would
    // name the vtable, is not stable), so the words are checked below before one
    // is used: the data word must be `square`, the other must lie in the image.
    let [data, vtable]: [usize; 2] = unsafe { core::mem::transmute(shape) };
    (data == &square as *const Square as usize && user_rt::image::image().contains(&(vtable as u64)))
        .then_some(vtable as u64)
}

/// Calls itself forever, one kilobyte of stack per call.
#[inline(never)]
#[allow(unconditional_recursion)] // the point: it ends in the guard page
pub(crate) fn recurse(depth: u64) -> u64 {
    let mut frame = [depth as u8; 1024];
    // black_box: the optimiser may neither drop the array nor turn the
    // recursion into a loop.
    core::hint::black_box(&mut frame);
    recurse(depth + 1) + frame[depth as usize % 1024] as u64
}
