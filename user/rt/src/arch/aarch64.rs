//! The aarch64 side of [`crate::arch`]: `svc #0` system calls, the `_start` that
//! the kernel's first `eret` into a process lands on, and thread entry.
//!
//! The convention (brk_abi's module documentation): `svc #0`, call number in
//! `x8`, arguments in `x0`-`x5`, result in `x0` (negative = error code), `clock`
//! and `join` also return in `x1`, every other register preserved.
//!
//! Every `asm!` here keeps the default memory semantics (no `nomem`/`readonly`):
//! the kernel reads and writes our buffers (`write`, `task_info`), and `yield`,
//! `join`, `sleep` are where other threads' stores become visible, so the
//! compiler must not cache memory in registers across any `svc`. `nostack`:
//! `svc` does not touch the EL0 stack (the kernel runs on SP_EL1).

use core::arch::asm;

/// The ELF entry point (`ENTRY(_start)` in `linker/user.ld`).
///
/// The kernel enters with `x0` = address and `x1` = length of the argument
/// string, SP = the top of the main thread's stack (16-byte aligned), and `.bss`
/// already zeroed. FP/SIMD is enabled for EL0 by the kernel, and there is no TLS.
///
/// Written as a naked function so the frame chain starts clean: `x29` = 0 and
/// `x30` = 0 mark the outermost frame for a debugger or a kernel unwinding the
/// user stack. `x0`/`x1` pass straight through to `start_rust`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text._start")]
pub extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "mov x29, xzr",
        "mov x30, xzr",
        "bl {start_rust}",
        // start_rust never returns; should it, fault here rather than run on
        // into whatever follows.
        "udf #0",
        start_rust = sym crate::start::start_rust,
    )
}

/// A thread entry point as the kernel starts it: `x0`, `x1` = the two arguments
/// given to `spawn_thread`, its own stack (16-byte aligned), `x30` = 0 (so it
/// must never return: it ends with `thread_exit` or `exit`). Any `extern "C"`
/// function of this type can be started directly.
pub type ThreadEntry = extern "C" fn(u64, u64) -> !;

/// Where [`crate::thread::spawn`]'s threads start: the kernel's entry state is
/// already the AAPCS64 call state, so the Rust function itself.
pub(crate) fn thread_entry() -> ThreadEntry {
    crate::thread::thread_start
}

/// A call with no arguments, result in `x0`; every other register preserved.
///
/// # Safety
///
/// Call `number` with no arguments must be sound for the caller to make (it
/// returns, and runs no code of the caller's).
#[inline(always)]
pub(crate) unsafe fn syscall0(number: u64) -> u64 {
    let x0: u64;
    // SAFETY: `svc #0` enters the kernel, which changes only x0 (the ABI); what
    // the call does is the caller's obligation (# Safety).
    unsafe {
        asm!("svc #0", in("x8") number, lateout("x0") x0, options(nostack));
    }
    x0
}

/// A call with one argument in `x0`, result in `x0`.
///
/// # Safety
///
/// As [`syscall0`], for call `number` with argument `a0`.
#[inline(always)]
pub(crate) unsafe fn syscall1(number: u64, a0: u64) -> u64 {
    let x0: u64;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!("svc #0", in("x8") number, inlateout("x0") a0 => x0, options(nostack));
    }
    x0
}

/// A call with arguments in `x0`, `x1`, result in `x0`.
///
/// # Safety
///
/// As [`syscall0`], for call `number` with these arguments; a pointer among
/// them must be valid for what the call does with it.
#[inline(always)]
pub(crate) unsafe fn syscall2(number: u64, a0: u64, a1: u64) -> u64 {
    let x0: u64;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!(
            "svc #0",
            in("x8") number,
            inlateout("x0") a0 => x0,
            in("x1") a1,
            options(nostack),
        );
    }
    x0
}

/// A call with arguments in `x0`-`x2`, result in `x0`.
///
/// # Safety
///
/// As [`syscall2`].
#[inline(always)]
pub(crate) unsafe fn syscall3(number: u64, a0: u64, a1: u64, a2: u64) -> u64 {
    let x0: u64;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!(
            "svc #0",
            in("x8") number,
            inlateout("x0") a0 => x0,
            in("x1") a1,
            in("x2") a2,
            options(nostack),
        );
    }
    x0
}

/// A call with no arguments and two results, `x0` and `x1` (`clock`).
///
/// # Safety
///
/// As [`syscall0`].
#[inline(always)]
pub(crate) unsafe fn syscall0_pair(number: u64) -> (u64, u64) {
    let (x0, x1): (u64, u64);
    // SAFETY: as in `syscall0`; this call also returns in x1.
    unsafe {
        asm!(
            "svc #0",
            in("x8") number,
            lateout("x0") x0,
            lateout("x1") x1,
            options(nostack),
        );
    }
    (x0, x1)
}

/// A call with one argument in `x0` and two results, `x0` and `x1` (`join`).
///
/// # Safety
///
/// As [`syscall1`].
#[inline(always)]
pub(crate) unsafe fn syscall1_pair(number: u64, a0: u64) -> (u64, u64) {
    let (x0, x1): (u64, u64);
    // SAFETY: as in `syscall0`; this call also returns in x1.
    unsafe {
        asm!(
            "svc #0",
            in("x8") number,
            inlateout("x0") a0 => x0,
            lateout("x1") x1,
            options(nostack),
        );
    }
    (x0, x1)
}

/// The raw call: `x8` = `number`, `x0`-`x5` = `args`; returns `x0`. `x1` is
/// treated as clobbered, since `clock` and `join` return a second value there.
///
/// # Safety
///
/// See [`crate::sys::syscall6`].
#[inline(always)]
pub(crate) unsafe fn syscall6(number: u64, args: [u64; 6]) -> u64 {
    let x0: u64;
    // SAFETY: `svc #0` enters the kernel, which follows the ABI above: only x0 and
    // x1 change. What the call itself does is the caller's obligation.
    unsafe {
        asm!(
            "svc #0",
            in("x8") number,
            inlateout("x0") args[0] => x0,
            inlateout("x1") args[1] => _,
            in("x2") args[2],
            in("x3") args[3],
            in("x4") args[4],
            in("x5") args[5],
            options(nostack),
        );
    }
    x0
}

/// A call with one argument in `x0` that does not return (`exit`,
/// `thread_exit`).
///
/// # Safety
///
/// Call `number` must be one that never returns to the caller.
#[inline(always)]
pub(crate) unsafe fn syscall1_noreturn(number: u64, a0: u64) -> ! {
    // SAFETY: the call does not return (# Safety), which is what `noreturn`
    // promises. The `udf` after it turns a kernel that breaks that promise into a
    // visible fault instead of undefined behaviour.
    unsafe {
        asm!(
            "svc #0",
            "udf #0",
            in("x8") number,
            in("x0") a0,
            options(noreturn, nostack),
        );
    }
}
