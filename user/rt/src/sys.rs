//! System calls: one wrapper per call of the ABI in [`brk_abi`], plus the raw
//! [`syscall6`] for tests that feed the kernel arbitrary numbers and arguments.
//!
//! The convention (brk_abi's module documentation) is per architecture: on
//! aarch64 `svc #0` with the call number in `x8`, arguments in `x0`-`x5`, result
//! in `x0`; on x86_64 `int 0x80` with the number in `rax`, arguments in `rdi`,
//! `rsi`, `rdx`, `r10`, `r8`, `r9`, result in `rax`. A negative result is an
//! [`Error`] code; `clock` and `join` return a second value (`x1` / `rdx`); every
//! other register is preserved. The instructions themselves are in
//! the runtime's private `arch` module; this module is the same on every architecture.

use brk_abi::{Error, ProbeCounters, ProbeKind, ProbeStats, Syscall, TaskInfo};

use crate::arch;

pub use crate::arch::ThreadEntry;

/// The raw system call: `number` and the six `args` in the argument registers
/// of the architecture, in order; returns the result register as the kernel
/// left it (not decoded: see [`Error::decode`]).
///
/// The second result register (`x1` / `rdx`) is treated as clobbered, since
/// `clock` and `join` return a value there.
///
/// # Safety
///
/// The kernel checks every pointer it is given, so most calls cannot harm the
/// caller. The exceptions are the calls that run code: `spawn_thread` (nr 6) starts
/// a thread at `args[0]` with `args[1]`, `args[2]` as its first two arguments; the
/// caller must make sure that is sound (the entry takes two integer arguments in
/// the thread entry state of [`ThreadEntry`] and never returns, or faults
/// harmlessly). `exit` (1) and `thread_exit` (9) do not return to the caller; that
/// is sound, only surprising.
pub unsafe fn syscall6(number: u64, args: [u64; 6]) -> u64 {
    // SAFETY: the caller's obligation (# Safety) is this function's.
    unsafe { arch::syscall6(number, args) }
}

/// A call with no arguments that cannot run code or end the caller.
fn call0(call: Syscall) -> Result<u64, Error> {
    // SAFETY: the calls passed here (yield, getpid, gettid) take no arguments, touch
    // no user memory and return.
    Error::decode(unsafe { arch::syscall0(call as u64) })
}

/// A call with one integer argument that cannot run code or end the caller.
fn call1(call: Syscall, a0: u64) -> Result<u64, Error> {
    // SAFETY: the calls passed here (sleep) take a plain integer, touch no user
    // memory and return.
    Error::decode(unsafe { arch::syscall1(call as u64, a0) })
}

/// `write` (0): writes `buffer` to file descriptor `fd` (1 = the console); returns
/// the number of bytes written.
pub fn write(fd: u64, buffer: &[u8]) -> Result<u64, Error> {
    // SAFETY: the kernel only reads `buffer.len()` bytes at `buffer.as_ptr()`, which
    // the slice guarantees are readable.
    Error::decode(unsafe { arch::syscall3(Syscall::Write as u64, fd, buffer.as_ptr() as u64, buffer.len() as u64) })
}

/// `exit` (1): ends the whole process, every thread, with `status`.
///
/// The status goes to the kernel sign-extended, so `exit(-1)` passes
/// `0xffff_ffff_ffff_ffff`.
pub fn exit(status: i32) -> ! {
    // SAFETY: `exit` does not return (the ABI).
    unsafe { arch::syscall1_noreturn(Syscall::Exit as u64, i64::from(status) as u64) }
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

/// `spawn_thread` (6): starts a thread of this process at `entry(a0, a1)`; returns
/// its thread id. [`crate::thread::spawn`] is the convenient form.
///
/// The thread starts in the state [`ThreadEntry`] describes for the
/// architecture: on x86_64 that is not the state a `call` leaves, so there
/// `entry` should be a naked function that `call`s on.
pub fn spawn_thread(entry: ThreadEntry, a0: u64, a1: u64) -> Result<u64, Error> {
    // SAFETY: the new thread runs `entry`, a function with exactly the signature the
    // kernel calls it with and that never returns, so starting it is as sound as
    // calling it; the arguments are plain integers.
    Error::decode(unsafe { arch::syscall3(Syscall::SpawnThread as u64, entry as usize as u64, a0, a1) })
}

/// `join` (7): waits for thread `tid` to end; returns its exit value.
///
/// An exit value with bit 63 set cannot be told apart from an error code and comes
/// back as an `Err` (see [`crate::thread::join`]).
pub fn join(tid: u64) -> Result<u64, Error> {
    // SAFETY: a plain integer argument; the call returns a second value.
    let (result, value) = unsafe { arch::syscall1_pair(Syscall::Join as u64, tid) };
    // The exit value is in the second result register: the first only says whether
    // the call worked, so a value with the top bit set is not mistaken for an error.
    Error::decode(result).map(|_| value)
}

/// `clock` (8): `(counter, frequency)`: the kernel's counter (CNTVCT_EL0 on
/// aarch64) and its frequency in Hz. Seconds since boot = counter / frequency.
///
/// Not a `Result`: the call cannot fail, and the first result is a counter
/// value, not a result to decode.
pub fn clock() -> (u64, u64) {
    // SAFETY: `clock` takes no arguments, touches no memory and returns two values.
    unsafe { arch::syscall0_pair(Syscall::Clock as u64) }
}

/// `thread_exit` (9): ends the calling thread with `value` (what [`join`]
/// returns). The last thread to end ends the process.
pub fn thread_exit(value: u64) -> ! {
    // SAFETY: `thread_exit` does not return (the ABI).
    unsafe { arch::syscall1_noreturn(Syscall::ThreadExit as u64, value) }
}

/// `task_info` (10): the calling thread's [`TaskInfo`]: process and thread id,
/// live threads, run time in counter ticks, the counter frequency, and the timer
/// ticks and preemptions the kernel has counted for the process.
pub fn task_info() -> Result<TaskInfo, Error> {
    let mut buffer = [0u8; TaskInfo::SIZE];
    // SAFETY: the kernel writes at most `buffer.len()` bytes at `buffer.as_mut_ptr()`,
    // which the array makes writable; the asm keeps the default memory clobber, so
    // the compiler reads `buffer` again afterwards.
    let result = unsafe { arch::syscall2(Syscall::TaskInfo as u64, buffer.as_mut_ptr() as u64, buffer.len() as u64) };
    Error::decode(result)?;
    Ok(TaskInfo::from_bytes(&buffer))
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
    let result =
        unsafe { syscall6(Syscall::ProbeStats as u64, [id, buffer.as_mut_ptr() as u64, buffer.len() as u64, 0, 0, 0]) };
    Error::decode(result)?;
    Ok(ProbeStats::from_bytes(&buffer))
}

/// `probe_counters` (14): the kernel-wide counters of the brk path.
pub fn probe_counters() -> Result<ProbeCounters, Error> {
    let mut buffer = [0u8; ProbeCounters::SIZE];
    // SAFETY: as in `probe_stats`.
    let result = unsafe {
        syscall6(Syscall::ProbeCounters as u64, [buffer.as_mut_ptr() as u64, buffer.len() as u64, 0, 0, 0, 0])
    };
    Error::decode(result)?;
    Ok(ProbeCounters::from_bytes(&buffer))
}

/// `memory_info` (15): the kernel heap's use (bytes used, bytes free).
pub fn memory_info() -> Result<brk_abi::MemoryInfo, Error> {
    let mut buffer = [0u8; brk_abi::MemoryInfo::SIZE];
    // SAFETY: as in `probe_stats`.
    let result =
        unsafe { syscall6(Syscall::MemoryInfo as u64, [buffer.as_mut_ptr() as u64, buffer.len() as u64, 0, 0, 0, 0]) };
    Error::decode(result)?;
    Ok(brk_abi::MemoryInfo::from_bytes(&buffer))
}

/// `pin_to_core` (16): run the calling thread on core `core` only, from now
/// on; returns once it runs there. `InvalidArgument` if no such core is up.
pub fn pin_to_core(core: u64) -> Result<u64, Error> {
    call1(Syscall::PinToCore, core)
}

/// `core_index` (17): the index of the core the calling thread runs on now.
pub fn core_index() -> Result<u64, Error> {
    call0(Syscall::CoreIndex)
}
