//! `syscalls`: hand the kernel bad pointers and lengths and check that every
//! call fails with the documented error while this program goes on. Prints one
//! line per check and exits 0 only if all of them held.
//!
//! Every call goes through the raw `sys::syscall6`, so the same checks run on
//! both architectures; only the kernel's own address differs.

#![no_std]
#![no_main]

use brk_abi::{layout, Error, Syscall, TaskInfo};
use user_rt::{println, sys};

user_rt::entry!(main);

/// A raw call, so the arguments are exactly what we say.
fn call(number: Syscall, args: [u64; 6]) -> Result<u64, Error> {
    // SAFETY: the kernel checks every argument; that is what is being tested.
    Error::decode(unsafe { sys::syscall6(number as u64, args) })
}

/// One check: what it does, what the kernel returned, what it should have.
type Check = (&'static str, Result<u64, Error>, Result<u64, Error>);

static READ_ONLY: [u8; 64] = [0x5a; 64];

/// An address the kernel owns and the process must not name: the kernel image
/// on QEMU virt.
#[cfg(target_arch = "aarch64")]
const KERNEL_ADDRESS: u64 = 0x4008_0000;
/// An address the kernel owns and the process must not name: 1 MiB, in the low
/// physical memory that the x86_64 kernel, a UEFI application, keeps identity
/// mapped for itself (below USER_BASE, never a user page).
#[cfg(target_arch = "x86_64")]
const KERNEL_ADDRESS: u64 = 0x10_0000;

fn main(_: &str) -> i32 {
    let kernel_address = KERNEL_ADDRESS;
    let unmapped = layout::USER_BASE + 0x20_0000_0000;
    let read_only = READ_ONLY.as_ptr() as u64;
    let text = main as *const () as u64;
    let mut stack_buffer = [0u8; 64];
    let buffer = stack_buffer.as_mut_ptr() as u64;

    let checks: [Check; 12] = [
        ("write from a kernel address", call(Syscall::Write, [1, kernel_address, 16, 0, 0, 0]), Err(Error::BadAddress)),
        ("write from an unmapped address", call(Syscall::Write, [1, unmapped, 16, 0, 0, 0]), Err(Error::BadAddress)),
        (
            "write with a length that overflows",
            call(Syscall::Write, [1, buffer, u64::MAX - 8, 0, 0, 0]),
            Err(Error::BadAddress),
        ),
        (
            "write running off the end of the stack",
            call(Syscall::Write, [1, buffer, layout::STACKS_TOP, 0, 0, 0]),
            Err(Error::BadAddress),
        ),
        ("write to an unknown fd", call(Syscall::Write, [7, buffer, 1, 0, 0, 0]), Err(Error::InvalidArgument)),
        ("task_info into read-only data", call(Syscall::TaskInfo, [read_only, 64, 0, 0, 0, 0]), Err(Error::BadAddress)),
        ("task_info into text", call(Syscall::TaskInfo, [text, 64, 0, 0, 0, 0]), Err(Error::BadAddress)),
        (
            "task_info into a kernel address",
            call(Syscall::TaskInfo, [kernel_address, 64, 0, 0, 0, 0]),
            Err(Error::BadAddress),
        ),
        (
            "task_info with a short buffer",
            call(Syscall::TaskInfo, [buffer, 8, 0, 0, 0, 0]),
            Err(Error::InvalidArgument),
        ),
        (
            "spawn_thread at a data address",
            call(Syscall::SpawnThread, [read_only, 0, 0, 0, 0, 0]),
            Err(Error::InvalidArgument),
        ),
        ("join a thread that does not exist", call(Syscall::Join, [999_999, 0, 0, 0, 0, 0]), Err(Error::NoSuchThread)),
        (
            "an unknown system call",
            // SAFETY: 4242 names no system call, so the kernel runs no code of ours
            // and writes no memory; it only returns the error checked here.
            Error::decode(unsafe { sys::syscall6(4242, [0; 6]) }),
            Err(Error::NoSuchCall),
        ),
    ];
    let mut failed = 0;
    for (what, got, expected) in checks {
        let verdict = if got == expected { "ok" } else { "WRONG" };
        if got != expected {
            failed += 1;
        }
        println!("syscalls: {what}: {got:?} (expected {expected:?}) {verdict}");
    }
    // The good call still works after all that, and read-only data is intact.
    let info = sys::task_info();
    let good = matches!(info, Ok(TaskInfo { pid, .. }) if pid > 0) && READ_ONLY.iter().all(|&b| b == 0x5a);
    println!("syscalls: task_info into the stack afterwards: {}", if good { "ok" } else { "WRONG" });
    if !good {
        failed += 1;
    }
    // sleep really waits: at least the time asked, measured on the counter.
    let (before, frequency) = sys::clock();
    let slept = sys::sleep(30_000_000);
    let (after, _) = sys::clock();
    let waited_ms = (after - before) * 1000 / frequency;
    let good = slept == Ok(0) && waited_ms >= 30;
    println!("syscalls: sleep 30 ms waited {waited_ms} ms: {}", if good { "ok" } else { "WRONG" });
    if !good {
        failed += 1;
    }
    println!("syscalls: {} checks wrong", failed);
    if failed == 0 {
        0
    } else {
        1
    }
}
