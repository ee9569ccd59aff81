//! The x86_64 side of [`crate::arch`]: `int 0x80` system calls, the `_start`
//! that the kernel's first return to ring 3 in a process lands on, and the
//! thread entry trampoline.
//!
//! The convention (brk_abi's module documentation): `int 0x80` from ring 3, call
//! number in `rax`, arguments in `rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9`, result in
//! `rax` (negative = error code), `clock` and `join` also return in `rdx`; every
//! other register and RFLAGS are preserved (hence `preserves_flags`).
//!
//! Every `asm!` here keeps the default memory semantics (no `nomem`/`readonly`):
//! the kernel reads and writes our buffers (`write`, `task_info`), and `yield`,
//! `join`, `sleep` are where other threads' stores become visible, so the
//! compiler must not cache memory in registers across any `int 0x80`.
//! `nostack`: the interrupt gate switches to the kernel stack of the TSS before
//! pushing anything, so the user stack (and a red zone, had this target one) is
//! untouched.
//!
//! The assembly is in Rust's default x86 syntax, Intel (`noprefix`).

use core::arch::asm;

/// The ELF entry point (`ENTRY(_start)` in `linker/user-x86_64.ld`).
///
/// The kernel enters with `rdi` = address and `rsi` = length of the argument
/// string, `rsp` = the top of the main thread's stack, 16-byte aligned, `rbp`
/// and the other registers 0, RFLAGS = IF only, and `.bss` already zeroed.
///
/// The System V ABI wants `rsp + 8` 16-byte aligned at a function's first
/// instruction, as a `call` leaves it; the kernel's return to ring 3 leaves `rsp`
/// aligned. So `_start` is naked and enters Rust with a `call`, which pushes the
/// 8 bytes that restore the convention. `rbp` = 0 marks the outermost frame for
/// a debugger or a kernel walking the user's frame chain. `rdi`/`rsi` pass
/// straight through to `start_rust`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
#[unsafe(link_section = ".text._start")]
pub extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",
        "call {start_rust}",
        // start_rust never returns; should it, fault here (#UD) rather than run
        // on into whatever follows.
        "ud2",
        start_rust = sym crate::start::start_rust,
    )
}

/// A thread entry point as the kernel starts it: `rdi`, `rsi` = the two
/// arguments given to `spawn_thread`, its own stack with `rsp` 16-byte aligned
/// and no return address on it, as at `_start`. It must never return: it ends
/// with `thread_exit` or `exit`.
///
/// Because `rsp` is aligned as at `_start` and not as after a `call`, a plain
/// Rust function started here runs with its stack 8 bytes off the System V
/// alignment. The entry should be a naked function that `call`s on, as
/// `user_rt::thread::spawn`'s trampoline does.
pub type ThreadEntry = extern "C" fn(u64, u64) -> !;

/// Where [`crate::thread::spawn`]'s threads start: a trampoline that restores
/// the System V stack alignment before entering Rust.
pub(crate) fn thread_entry() -> ThreadEntry {
    thread_entry_trampoline
}

/// The kernel starts every thread of [`crate::thread::spawn`] here. As in
/// [`_start`]: `rbp` = 0 ends the frame chain, the `call` makes `rsp + 8` aligned
/// the way `thread_start` expects, and `rdi`/`rsi` (the function and its
/// argument) pass straight through.
#[unsafe(naked)]
extern "C" fn thread_entry_trampoline(_function: u64, _argument: u64) -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",
        "call {thread_start}",
        // thread_start never returns.
        "ud2",
        thread_start = sym crate::thread::thread_start,
    )
}

/// A call with no arguments, result in `rax`; every other register preserved.
///
/// # Safety
///
/// Call `number` with no arguments must be sound for the caller to make (it
/// returns, and runs no code of the caller's).
#[inline(always)]
pub(crate) unsafe fn syscall0(number: u64) -> u64 {
    let rax: u64;
    // SAFETY: `int 0x80` enters the kernel, which changes only rax (the ABI);
    // what the call does is the caller's obligation (# Safety).
    unsafe {
        asm!(
            "int 0x80",
            inlateout("rax") number => rax,
            options(nostack, preserves_flags),
        );
    }
    rax
}

/// A call with one argument in `rdi`, result in `rax`.
///
/// # Safety
///
/// As [`syscall0`], for call `number` with argument `a0`.
#[inline(always)]
pub(crate) unsafe fn syscall1(number: u64, a0: u64) -> u64 {
    let rax: u64;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!(
            "int 0x80",
            inlateout("rax") number => rax,
            in("rdi") a0,
            options(nostack, preserves_flags),
        );
    }
    rax
}

/// A call with arguments in `rdi`, `rsi`, result in `rax`.
///
/// # Safety
///
/// As [`syscall0`], for call `number` with these arguments; a pointer among
/// them must be valid for what the call does with it.
#[inline(always)]
pub(crate) unsafe fn syscall2(number: u64, a0: u64, a1: u64) -> u64 {
    let rax: u64;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!(
            "int 0x80",
            inlateout("rax") number => rax,
            in("rdi") a0,
            in("rsi") a1,
            options(nostack, preserves_flags),
        );
    }
    rax
}

/// A call with arguments in `rdi`, `rsi`, `rdx`, result in `rax`.
///
/// # Safety
///
/// As [`syscall2`].
#[inline(always)]
pub(crate) unsafe fn syscall3(number: u64, a0: u64, a1: u64, a2: u64) -> u64 {
    let rax: u64;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!(
            "int 0x80",
            inlateout("rax") number => rax,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") a2,
            options(nostack, preserves_flags),
        );
    }
    rax
}

/// A call with no arguments and two results, `rax` and `rdx` (`clock`).
///
/// # Safety
///
/// As [`syscall0`].
#[inline(always)]
pub(crate) unsafe fn syscall0_pair(number: u64) -> (u64, u64) {
    let (rax, rdx): (u64, u64);
    // SAFETY: as in `syscall0`; this call also returns in rdx.
    unsafe {
        asm!(
            "int 0x80",
            inlateout("rax") number => rax,
            lateout("rdx") rdx,
            options(nostack, preserves_flags),
        );
    }
    (rax, rdx)
}

/// A call with one argument in `rdi` and two results, `rax` and `rdx` (`join`).
///
/// # Safety
///
/// As [`syscall1`].
#[inline(always)]
pub(crate) unsafe fn syscall1_pair(number: u64, a0: u64) -> (u64, u64) {
    let (rax, rdx): (u64, u64);
    // SAFETY: as in `syscall0`; this call also returns in rdx.
    unsafe {
        asm!(
            "int 0x80",
            inlateout("rax") number => rax,
            in("rdi") a0,
            lateout("rdx") rdx,
            options(nostack, preserves_flags),
        );
    }
    (rax, rdx)
}

/// The raw call: `rax` = `number`, `rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9` =
/// `args`; returns `rax`. `rdx` is treated as clobbered, since `clock` and
/// `join` return a second value there.
///
/// # Safety
///
/// See [`crate::sys::syscall6`].
#[inline(always)]
pub(crate) unsafe fn syscall6(number: u64, args: [u64; 6]) -> u64 {
    let rax: u64;
    // SAFETY: `int 0x80` enters the kernel, which follows the ABI above: only rax
    // and rdx change. What the call itself does is the caller's obligation.
    unsafe {
        asm!(
            "int 0x80",
            inlateout("rax") number => rax,
            in("rdi") args[0],
            in("rsi") args[1],
            inlateout("rdx") args[2] => _,
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            options(nostack, preserves_flags),
        );
    }
    rax
}

/// A call with one argument in `rdi` that does not return (`exit`,
/// `thread_exit`).
///
/// # Safety
///
/// Call `number` must be one that never returns to the caller.
#[inline(always)]
pub(crate) unsafe fn syscall1_noreturn(number: u64, a0: u64) -> ! {
    // SAFETY: the call does not return (# Safety), which is what `noreturn`
    // promises. The `ud2` after it turns a kernel that breaks that promise into a
    // visible fault (#UD) instead of undefined behaviour.
    unsafe {
        asm!(
            "int 0x80",
            "ud2",
            in("rax") number,
            in("rdi") a0,
            options(noreturn, nostack),
        );
    }
}
