//! System calls: one wrapper per call of the ABI in [`brk_abi`], plus the raw
//! [`syscall6`] for tests that feed the kernel arbitrary numbers and arguments.
//!
//! The convention (brk_abi's module documentation): `svc #0`, call number in
//! `x8`, arguments in `x0`-`x5`, result in `x0` (negative = [`Error`] code),
//! `clock` also returns in `x1`, every other register preserved.
//!
//! Every `asm!` here keeps the default memory semantics (no `nomem`/`readonly`):
//! the kernel reads our buffers (`write`), and `yield`, `join`, `sleep` are where
//! other threads' stores become visible, so the compiler must not cache memory in
//! registers across any `svc`. `nostack`: `svc` does not touch the EL0 stack (the
//! kernel runs on SP_EL1).

use core::arch::asm;

use brk_abi::{Error, ProbeCounters, ProbeKind, ProbeStats, Syscall, TaskInfo};

/// The raw system call: `x8` = `number`, `x0`-`x5` = `args`; returns `x0` as the
/// kernel left it (not decoded: see [`Error::decode`]).
///
/// `x1` is treated as clobbered, since `clock` returns its second value there.
///
/// # Safety
///
/// The kernel checks every pointer it is given, so most calls cannot harm the
/// caller. The exceptions are the calls that run code: `spawn_thread` (nr 6) starts
/// a thread at `args[0]` with `args[1]`, `args[2]` in `x0`, `x1`; the caller must
/// make sure that is sound (the entry is a function that takes two integer
/// arguments and never returns, or faults harmlessly). `exit` (1) and
/// `thread_exit` (9) do not return to the caller; that is sound, only surprising.
pub unsafe fn syscall6(number: u64, args: [u64; 6]) -> u64 {
    let x0: u64;
    // SAFETY: `svc #0` enters the kernel, which follows the ABI above: only x0 and
    // x1 change. What the call itself does is the caller's obligation (# Safety).
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

/// A call with no arguments that cannot run code or end the caller.
fn call0(call: Syscall) -> Result<u64, Error> {
    let x0: u64;
    // SAFETY: the calls passed here (yield, getpid, gettid) take no arguments, touch
    // no user memory and return; the kernel preserves every register but x0.
    unsafe {
        asm!("svc #0", in("x8") call as u64, lateout("x0") x0, options(nostack));
    }
    Error::decode(x0)
}

/// A call with one integer argument that cannot run code or end the caller.
fn call1(call: Syscall, a0: u64) -> Result<u64, Error> {
    let x0: u64;
    // SAFETY: the calls passed here (sleep, join) take a plain integer, touch no
    // user memory and return; the kernel preserves every register but x0.
    unsafe {
        asm!("svc #0", in("x8") call as u64, inlateout("x0") a0 => x0, options(nostack));
    }
    Error::decode(x0)
}

/// `write` (0): writes `buffer` to file descriptor `fd` (1 = the console); returns
/// the number of bytes written.
pub fn write(fd: u64, buffer: &[u8]) -> Result<u64, Error> {
    let x0: u64;
    // SAFETY: the kernel only reads `buffer.len()` bytes at `buffer.as_ptr()`, which
    // the slice guarantees are readable; registers other than x0 are preserved.
    unsafe {
        asm!(
            "svc #0",
            in("x8") Syscall::Write as u64,
            inlateout("x0") fd => x0,
            in("x1") buffer.as_ptr(),
            in("x2") buffer.len(),
            options(nostack),
        );
    }
    Error::decode(x0)
}

/// `exit` (1): ends the whole process, every thread, with `status`.
///
/// The status goes to the kernel sign-extended, so `exit(-1)` passes
/// `0xffff_ffff_ffff_ffff`.
pub fn exit(status: i32) -> ! {
    // SAFETY: `exit` does not return (the ABI), which is what `noreturn` promises.
    // The `udf` after it turns a kernel that breaks that promise into a visible
    // fault instead of undefined behaviour.
    unsafe {
        asm!(
            "svc #0",
            "udf #0",
            in("x8") Syscall::Exit as u64,
            in("x0") i64::from(status) as u64,
            options(noreturn, nostack),
        );
    }
}

/// `yield` (2): lets another runnable thread run before this one continues.
pub fn yield_now() -> Result<u64, Error> {
    call0(Syscall::Yield)
}

/// `sleep` (3): blocks the calling thread for at least `nanoseconds`.
pub fn sleep(nanoseconds: u64) -> Result<u64, Error> {
    call1(Syscall::Sleep, nanoseconds)
}

/// `getpid` (4): the process id.
pub fn getpid() -> Result<u64, Error> {
    call0(Syscall::GetPid)
}

/// `gettid` (5): the calling thread's id.
pub fn gettid() -> Result<u64, Error> {
    call0(Syscall::GetTid)
}

/// A thread entry point as the kernel starts it: `x0`, `x1` = the two arguments
/// given to [`spawn_thread`], its own stack, `x30` = 0 (so it must never return:
/// it ends with [`thread_exit`] or [`exit`]).
pub type ThreadEntry = extern "C" fn(u64, u64) -> !;

/// `spawn_thread` (6): starts a thread of this process at `entry(a0, a1)`; returns
/// its thread id. [`crate::thread::spawn`] is the convenient form.
pub fn spawn_thread(entry: ThreadEntry, a0: u64, a1: u64) -> Result<u64, Error> {
    let x0: u64;
    // SAFETY: the new thread runs `entry`, a function with exactly the signature the
    // kernel calls it with and that never returns, so starting it is as sound as
    // calling it; the arguments are plain integers. Registers other than x0 are
    // preserved.
    unsafe {
        asm!(
            "svc #0",
            in("x8") Syscall::SpawnThread as u64,
            inlateout("x0") entry as usize as u64 => x0,
            in("x1") a0,
            in("x2") a1,
            options(nostack),
        );
    }
    Error::decode(x0)
}

/// `join` (7): waits for thread `tid` to end; returns its exit value.
///
/// An exit value with bit 63 set cannot be told apart from an error code and comes
/// back as an `Err` (see [`crate::thread::join`]).
pub fn join(tid: u64) -> Result<u64, Error> {
    let (x0, value): (u64, u64);
    // SAFETY: `svc #0` per the ABI: x0 and x1 come back, nothing else changes.
    unsafe {
        asm!(
            "svc #0",
            in("x8") Syscall::Join as u64,
            inlateout("x0") tid => x0,
            lateout("x1") value,
            options(nostack),
        );
    }
    // The exit value is in x1: x0 only says whether the call worked, so a value
    // with the top bit set is not mistaken for an error.
    Error::decode(x0).map(|_| value)
}

/// `clock` (8): `(counter, frequency)`: the virtual counter (CNTVCT_EL0) and its
/// frequency in Hz. Seconds since boot = counter / frequency.
///
/// Not a `Result`: the call cannot fail, and `x0` is a counter value, not a
/// result to decode.
pub fn clock() -> (u64, u64) {
    let counter: u64;
    let frequency: u64;
    // SAFETY: `clock` takes no arguments and touches no memory; it returns in x0 and
    // x1 and preserves every other register.
    unsafe {
        asm!(
            "svc #0",
            in("x8") Syscall::Clock as u64,
            lateout("x0") counter,
            lateout("x1") frequency,
            options(nostack),
        );
    }
    (counter, frequency)
}

/// `thread_exit` (9): ends the calling thread with `value` (what [`join`]
/// returns). The last thread to end ends the process.
pub fn thread_exit(value: u64) -> ! {
    // SAFETY: `thread_exit` does not return (the ABI); `udf` catches a kernel that
    // breaks that promise, as in `exit`.
    unsafe {
        asm!(
            "svc #0",
            "udf #0",
            in("x8") Syscall::ThreadExit as u64,
            in("x0") value,
            options(noreturn, nostack),
        );
    }
}

/// `task_info` (10): the calling thread's [`TaskInfo`]: process and thread id,
/// live threads, run time in counter ticks and the counter frequency.
pub fn task_info() -> Result<TaskInfo, Error> {
    let mut buffer = [0u8; TaskInfo::SIZE];
    let x0: u64;
    // SAFETY: the kernel writes at most `buffer.len()` bytes at `buffer.as_mut_ptr()`,
    // which the array makes writable; the asm keeps the default memory clobber, so
    // the compiler reads `buffer` again afterwards. Registers other than x0 are
    // preserved.
    unsafe {
        asm!(
            "svc #0",
            in("x8") Syscall::TaskInfo as u64,
            inlateout("x0") buffer.as_mut_ptr() => x0,
            in("x1") buffer.len(),
            options(nostack),
        );
    }
    Error::decode(x0)?;
    // Five little-endian u64 in field order (`TaskInfo::to_bytes`).
    let word = |index: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&buffer[index * 8..index * 8 + 8]);
        u64::from_le_bytes(bytes)
    };
    Ok(TaskInfo {
        pid: word(0),
        tid: word(1),
        live_threads: word(2),
        run_time: word(3),
        counter_frequency: word(4),
    })
}

/// `probe_register` (11): put a probe of `kind` on the instruction at `address`
/// in this program's text; returns the probe id.
pub fn probe_register(kind: ProbeKind, address: u64) -> Result<u64, Error> {
    // SAFETY: plain integer arguments; the kernel checks the address.
    Error::decode(unsafe { syscall6(Syscall::ProbeRegister as u64, [kind as u64, address, 0, 0, 0, 0]) })
}

/// `probe_unregister` (12): remove probe `id`; returns once the original
/// instruction is back and no thread is still stepping it.
pub fn probe_unregister(id: u64) -> Result<u64, Error> {
    // SAFETY: a plain integer argument.
    Error::decode(unsafe { syscall6(Syscall::ProbeUnregister as u64, [id, 0, 0, 0, 0, 0]) })
}

/// `probe_stats` (13): probe `id`'s hit counts.
pub fn probe_stats(id: u64) -> Result<ProbeStats, Error> {
    let mut buffer = [0u8; ProbeStats::SIZE];
    // SAFETY: the kernel writes at most `buffer.len()` bytes into the array,
    // which is writable and lives across the call.
    let x0 = unsafe { syscall6(Syscall::ProbeStats as u64, [id, buffer.as_mut_ptr() as u64, buffer.len() as u64, 0, 0, 0]) };
    Error::decode(x0)?;
    Ok(ProbeStats::from_bytes(&buffer))
}

/// `probe_counters` (14): the kernel-wide counters of the brk path.
pub fn probe_counters() -> Result<ProbeCounters, Error> {
    let mut buffer = [0u8; ProbeCounters::SIZE];
    // SAFETY: as in `probe_stats`.
    let x0 = unsafe { syscall6(Syscall::ProbeCounters as u64, [buffer.as_mut_ptr() as u64, buffer.len() as u64, 0, 0, 0, 0]) };
    Error::decode(x0)?;
    Ok(ProbeCounters::from_bytes(&buffer))
}

/// `memory_info` (15): the kernel heap's use (bytes used, bytes free).
pub fn memory_info() -> Result<brk_abi::MemoryInfo, Error> {
    let mut buffer = [0u8; brk_abi::MemoryInfo::SIZE];
    // SAFETY: as in `probe_stats`.
    let x0 = unsafe { syscall6(Syscall::MemoryInfo as u64, [buffer.as_mut_ptr() as u64, buffer.len() as u64, 0, 0, 0, 0]) };
    Error::decode(x0)?;
    Ok(brk_abi::MemoryInfo::from_bytes(&buffer))
}
