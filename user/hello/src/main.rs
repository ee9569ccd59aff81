//! `hello`: the smallest EL0 program: says who it is and what it was given.

#![no_std]
#![no_main]

use user_rt::{println, sys};

user_rt::entry!(main);

fn main(args: &str) -> i32 {
    let pid = sys::getpid().expect("getpid");
    let tid = sys::gettid().expect("gettid");
    println!("hello from EL0: pid {pid}, tid {tid}, args '{args}'");
    0
}
