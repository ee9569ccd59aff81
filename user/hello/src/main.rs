//! `hello`: the smallest user program: says who it is, where it runs (EL0 on
//! aarch64, ring 3 on x86_64) and what it was given.

#![no_std]
#![no_main]

use user_rt::{println, sys};

user_rt::entry!(main);

/// What the architecture calls user mode.
#[cfg(target_arch = "aarch64")]
const USER_MODE: &str = "EL0";
#[cfg(target_arch = "x86_64")]
const USER_MODE: &str = "ring 3";

fn main(args: &str) -> i32 {
    let pid = sys::getpid().expect("getpid");
    let tid = sys::gettid().expect("gettid");
    println!("hello from {USER_MODE}: pid {pid}, tid {tid}, args '{args}'");
    0
}
