//! The contract between the kernel and EL0 programs: system call numbers and
//! arguments, error codes, and the fixed parts of a process's address space.
//!
//! # Calling convention
//!
//! `svc #0` with the call number in `x8` and up to six arguments in `x0`-`x5`.
//! The result comes back in `x0`: a non-negative value on success, a negative
//! [`Error`] code on failure. `clock` also returns a second value in `x1`.
//! Every other register is preserved.
//!
//! | nr | name | arguments | returns |
//! |---:|---|---|---|
//! | 0 | `write` | `x0` fd (1 = console), `x1` buffer, `x2` length | bytes written |
//! | 1 | `exit` | `x0` status | does not return; ends the whole process |
//! | 2 | `yield` | | 0 |
//! | 3 | `sleep` | `x0` nanoseconds | 0 |
//! | 4 | `getpid` | | process id |
//! | 5 | `gettid` | | thread id |
//! | 6 | `spawn_thread` | `x0` entry, `x1`, `x2` first two arguments of entry | thread id |
//! | 7 | `join` | `x0` thread id | 0, and the thread's exit value in `x1` (any 64-bit value, so not in `x0`) |
//! | 8 | `clock` | | `x0` counter (CNTVCT), `x1` counter frequency in Hz |
//! | 9 | `thread_exit` | `x0` exit value | does not return; ends the calling thread |
//! | 10 | `task_info` | `x0` buffer, `x1` its length (>= 56) | bytes written: a [`TaskInfo`] |
//! | 11 | `probe_register` | `x0` [`ProbeKind`], `x1` address in the caller's text | probe id |
//! | 12 | `probe_unregister` | `x0` probe id | 0, once the original instruction is back and no thread is still stepping it |
//! | 13 | `probe_stats` | `x0` probe id, `x1` buffer, `x2` its length (>= 16) | bytes written: a [`ProbeStats`] |
//! | 14 | `probe_counters` | `x0` buffer, `x1` its length (>= 96) | bytes written: a [`ProbeCounters`] |
//! | 15 | `memory_info` | `x0` buffer, `x1` its length (>= 16) | bytes written: a [`MemoryInfo`] |
//! | 16 | `pin_to_core` | `x0` core index (0 = the boot core) | 0, once the calling thread runs on that core, where it stays; `InvalidArgument` if no such core is up |
//! | 17 | `core_index` | | the index of the core the calling thread runs on |
//!
//! A new thread starts at `entry` with `x0`, `x1` as given, its own stack (with
//! an unmapped guard page below it) and `x30` = 0. The last thread to end ends
//! the process, with the status of its `exit` or, if none called `exit`, 0.
//!
//! ## x86_64
//!
//! The same calls, numbers, arguments, results and errors, in other registers:
//!
//! | aarch64 | x86_64 | role |
//! |---|---|---|
//! | `svc #0` | `int 0x80` (from ring 3) | enter the kernel |
//! | `x8` | `rax` | call number |
//! | `x0`-`x5` | `rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9` | arguments, in order |
//! | `x0` | `rax` | result (negative = [`Error`] code) |
//! | `x1` | `rdx` | second result: `clock`'s frequency, `join`'s exit value |
//!
//! Every other register, and RFLAGS, is preserved. The `int 0x80` gate switches
//! to the kernel's stack, so the user stack is not touched.
//!
//! A process starts at the ELF entry `_start` with `rdi` = address and `rsi` =
//! length of the argument string, `rsp` = the top of the main thread's stack,
//! 16-byte aligned, `rbp` and the other general registers 0, and RFLAGS = 0x202
//! (IF set). A new thread starts at `entry` with `rdi`, `rsi` = the two
//! arguments, `rsp` = the top of its own stack, 16-byte aligned, the rest as at
//! `_start`. In both cases `rsp` is aligned as *before* a `call`, not after one
//! as the System V ABI expects at a function's first instruction, and there is
//! no return address to return to: the entry is a naked function that `call`s
//! into compiled code (`user-rt`'s `_start` and thread trampoline do).
//!
//! x86_64 programs are built for `x86_64-unknown-none` (soft float): the kernel
//! does not save SSE or x87 state and leaves SSE disabled, so an SSE instruction
//! in a program is an invalid-opcode fault.
//!
//! Every pointer and length is checked against the caller's mappings before the
//! kernel touches it; a bad one returns [`Error::BadAddress`].

#![no_std]

/// System call numbers (`x8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Syscall {
    Write = 0,
    Exit = 1,
    Yield = 2,
    Sleep = 3,
    GetPid = 4,
    GetTid = 5,
    SpawnThread = 6,
    Join = 7,
    Clock = 8,
    ThreadExit = 9,
    TaskInfo = 10,
    ProbeRegister = 11,
    ProbeUnregister = 12,
    ProbeStats = 13,
    ProbeCounters = 14,
    MemoryInfo = 15,
    PinToCore = 16,
    CoreIndex = 17,
}

impl Syscall {
    pub const ALL: [Syscall; 18] = [
        Syscall::Write,
        Syscall::Exit,
        Syscall::Yield,
        Syscall::Sleep,
        Syscall::GetPid,
        Syscall::GetTid,
        Syscall::SpawnThread,
        Syscall::Join,
        Syscall::Clock,
        Syscall::ThreadExit,
        Syscall::TaskInfo,
        Syscall::ProbeRegister,
        Syscall::ProbeUnregister,
        Syscall::ProbeStats,
        Syscall::ProbeCounters,
        Syscall::MemoryInfo,
        Syscall::PinToCore,
        Syscall::CoreIndex,
    ];

    pub fn from_number(number: u64) -> Option<Syscall> {
        Self::ALL.into_iter().find(|call| *call as u64 == number)
    }

    pub fn name(self) -> &'static str {
        match self {
            Syscall::Write => "write",
            Syscall::Exit => "exit",
            Syscall::Yield => "yield",
            Syscall::Sleep => "sleep",
            Syscall::GetPid => "getpid",
            Syscall::GetTid => "gettid",
            Syscall::SpawnThread => "spawn_thread",
            Syscall::Join => "join",
            Syscall::Clock => "clock",
            Syscall::ThreadExit => "thread_exit",
            Syscall::TaskInfo => "task_info",
            Syscall::ProbeRegister => "probe_register",
            Syscall::ProbeUnregister => "probe_unregister",
            Syscall::ProbeStats => "probe_stats",
            Syscall::ProbeCounters => "probe_counters",
            Syscall::MemoryInfo => "memory_info",
            Syscall::PinToCore => "pin_to_core",
            Syscall::CoreIndex => "core_index",
        }
    }
}

/// What `task_info` writes into the caller's buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TaskInfo {
    pub pid: u64,
    pub tid: u64,
    /// Threads of the process that have not ended.
    pub live_threads: u64,
    /// Counter ticks the process has run so far (all threads).
    pub run_time: u64,
    /// Counter ticks per second.
    pub counter_frequency: u64,
    /// Timer interrupts that arrived while a thread of the process was running.
    pub ticks: u64,
    /// Times the timer took the CPU from a running thread of the process and gave
    /// it to another thread: involuntary switches, as the kernel counts them.
    pub preemptions: u64,
}

impl TaskInfo {
    pub const SIZE: usize = core::mem::size_of::<TaskInfo>();

    /// The little-endian bytes the kernel copies out.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        words_to_bytes([
            self.pid,
            self.tid,
            self.live_threads,
            self.run_time,
            self.counter_frequency,
            self.ticks,
            self.preemptions,
        ])
    }

    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Self {
        let [pid, tid, live_threads, run_time, counter_frequency, ticks, preemptions] = bytes_to_words(bytes);
        Self { pid, tid, live_threads, run_time, counter_frequency, ticks, preemptions }
    }
}

/// What `memory_info` writes: the kernel heap's use, so a program can measure
/// what a probe registration or a breakpoint-tree entry costs the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct MemoryInfo {
    pub heap_used: u64,
    pub heap_free: u64,
}

impl MemoryInfo {
    pub const SIZE: usize = core::mem::size_of::<MemoryInfo>();
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        words_to_bytes([self.heap_used, self.heap_free])
    }
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Self {
        let [heap_used, heap_free] = bytes_to_words(bytes);
        Self { heap_used, heap_free }
    }
}

/// `probe_register`'s kind argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ProbeKind {
    /// Count every execution of the instruction.
    Uprobe = 0,
    /// Also count every return of the function whose first instruction it is.
    Uretprobe = 1,
}

impl ProbeKind {
    pub fn from_number(number: u64) -> Option<ProbeKind> {
        [ProbeKind::Uprobe, ProbeKind::Uretprobe].into_iter().find(|k| *k as u64 == number)
    }
}

/// Little-endian `u64` fields, in order, as the kernel copies them out.
fn words_to_bytes<const N: usize, const B: usize>(words: [u64; N]) -> [u8; B] {
    let mut bytes = [0; B];
    for (i, word) in words.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    bytes
}

fn bytes_to_words<const N: usize>(bytes: &[u8]) -> [u64; N] {
    let mut words = [0; N];
    for (i, word) in words.iter_mut().enumerate() {
        *word = u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    }
    words
}

/// What `probe_stats` writes: one probe's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ProbeStats {
    pub hits: u64,
    pub return_hits: u64,
}

impl ProbeStats {
    pub const SIZE: usize = core::mem::size_of::<ProbeStats>();
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        words_to_bytes([self.hits, self.return_hits])
    }
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Self {
        let [hits, return_hits] = bytes_to_words(bytes);
        Self { hits, return_hits }
    }
}

/// What `probe_counters` writes: the kernel-wide counters of the brk path (the
/// names are those of `--report`'s JSON).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ProbeCounters {
    pub hits: u64,
    pub simulated: u64,
    pub stepped: u64,
    pub slot_reused: u64,
    pub slot_written: u64,
    pub dc_cvau_lines: u64,
    pub ic_ivau_lines: u64,
    pub slot_waits: u64,
    pub return_probes_skipped: u64,
    /// Whole instruction-cache invalidations (`IC IALLUIS`), where the I-cache
    /// may alias; appended last, so the earlier fields keep their offsets.
    pub ic_iallu: u64,
    /// Times a hit found a lock it takes already held by another core (the
    /// registry's, or its thread's own probe state's): the contention the
    /// per-thread tree is there to avoid (appended last).
    pub lock_waits: u64,
    /// Hits whose instruction ran displaced in its branch trampoline: one
    /// exception, no XOL slot (appended last).
    pub trampolined: u64,
}

impl ProbeCounters {
    pub const SIZE: usize = core::mem::size_of::<ProbeCounters>();
    fn words(&self) -> [u64; 12] {
        [
            self.hits,
            self.simulated,
            self.stepped,
            self.slot_reused,
            self.slot_written,
            self.dc_cvau_lines,
            self.ic_ivau_lines,
            self.slot_waits,
            self.return_probes_skipped,
            self.ic_iallu,
            self.lock_waits,
            self.trampolined,
        ]
    }
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        words_to_bytes(self.words())
    }
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Self {
        let [hits, simulated, stepped, slot_reused, slot_written, dc_cvau_lines, ic_ivau_lines, slot_waits, return_probes_skipped, ic_iallu, lock_waits, trampolined] =
            bytes_to_words(bytes);
        Self {
            hits,
            simulated,
            stepped,
            slot_reused,
            slot_written,
            dc_cvau_lines,
            ic_ivau_lines,
            slot_waits,
            return_probes_skipped,
            ic_iallu,
            lock_waits,
            trampolined,
        }
    }
}

/// Error codes, returned negated in `x0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Error {
    /// A pointer or length is not inside the caller's mappings with the needed access.
    BadAddress = 1,
    /// An argument is out of range (unknown fd, bad entry point, ...).
    InvalidArgument = 2,
    /// No such system call.
    NoSuchCall = 3,
    /// No such thread (or not in the caller's process).
    NoSuchThread = 4,
    /// The kernel is out of memory for this request.
    OutOfMemory = 5,
    /// The request would wait forever (joining yourself).
    Deadlock = 6,
    /// The kernel refuses to probe that instruction (exclusive, system, ...).
    Refused = 7,
    /// There is a probe at that address already.
    AlreadyExists = 8,
}

impl Error {
    pub const ALL: [Error; 8] = [
        Error::BadAddress,
        Error::InvalidArgument,
        Error::NoSuchCall,
        Error::NoSuchThread,
        Error::OutOfMemory,
        Error::Deadlock,
        Error::Refused,
        Error::AlreadyExists,
    ];

    /// The value the kernel puts in `x0`.
    pub fn to_return_value(self) -> u64 {
        (-(self as i64)) as u64
    }

    /// Decode a system call result: `Ok(value)` or the error it carries.
    pub fn decode(x0: u64) -> Result<u64, Error> {
        let signed = x0 as i64;
        if signed >= 0 {
            return Ok(x0);
        }
        Err(Self::ALL.into_iter().find(|e| *e as i64 == -signed).unwrap_or(Error::InvalidArgument))
    }

    pub fn name(self) -> &'static str {
        match self {
            Error::BadAddress => "bad address",
            Error::InvalidArgument => "invalid argument",
            Error::NoSuchCall => "no such system call",
            Error::NoSuchThread => "no such thread",
            Error::OutOfMemory => "out of memory",
            Error::Deadlock => "deadlock",
            Error::Refused => "instruction refused for probing",
            Error::AlreadyExists => "already exists",
        }
    }
}

/// The fixed parts of every process's address space (all within TTBR0's 512 GiB;
/// the kernel identity-maps physical memory below 256 GiB, EL1-only).
pub mod layout {
    /// Programs are linked here (`linker/user.ld`).
    pub const USER_BASE: u64 = 0x40_0000_0000;
    /// One past the highest user address.
    pub const USER_END: u64 = 0x80_0000_0000;
    /// Thread stacks grow down from here, one slot per thread.
    pub const STACKS_TOP: u64 = 0x7f_0000_0000;
    /// Each thread's stack size; an unmapped guard page lies below each stack.
    pub const STACK_SIZE: u64 = 64 * 1024;
    pub const GUARD_SIZE: u64 = 4096;
    /// The longest argument string a process gets. `_start` receives its address
    /// in `x0` and its length in `x1` (UTF-8, not NUL-terminated).
    pub const ARGS_MAX: usize = 256;
    /// `brk #0x7` from EL0 is the *null breakpoint*: the kernel only steps over
    /// it. Benchmarks use it to measure the bare cost of a `brk` round trip.
    pub const NULL_BRK_IMMEDIATE: u16 = 0x007;
    /// The execute-out-of-line page: EL0 read + execute, written only by the
    /// kernel through its own alias. Slot 0 holds the return-probe trampoline.
    pub const XOL_PAGE: u64 = 0x7f_ffff_0000;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_numbers_round_trip() {
        for call in Syscall::ALL {
            assert_eq!(Syscall::from_number(call as u64), Some(call));
        }
        assert_eq!(Syscall::from_number(10_000), None);
    }

    #[test]
    fn task_info_is_seven_little_endian_words() {
        let info =
            TaskInfo { pid: 1, tid: 2, live_threads: 3, run_time: 4, counter_frequency: 5, ticks: 6, preemptions: 7 };
        let bytes = info.to_bytes();
        assert_eq!(bytes.len(), 56);
        assert_eq!(u64::from_le_bytes(bytes[32..40].try_into().unwrap()), 5);
        assert_eq!(u64::from_le_bytes(bytes[48..56].try_into().unwrap()), 7);
        assert_eq!(TaskInfo::from_bytes(&bytes), info);
    }

    #[test]
    fn probe_structs_round_trip_through_bytes() {
        let counters = ProbeCounters {
            hits: 1,
            simulated: 2,
            stepped: 3,
            slot_reused: 4,
            slot_written: 5,
            dc_cvau_lines: 6,
            ic_ivau_lines: 7,
            slot_waits: 8,
            return_probes_skipped: 9,
            ic_iallu: 10,
            lock_waits: 11,
            trampolined: 12,
        };
        assert_eq!(ProbeCounters::SIZE, 96);
        assert_eq!(ProbeCounters::from_bytes(&counters.to_bytes()), counters);
        let stats = ProbeStats { hits: 10, return_hits: 11 };
        assert_eq!(ProbeStats::from_bytes(&stats.to_bytes()), stats);
    }

    #[test]
    fn errors_round_trip_through_x0() {
        for error in Error::ALL {
            assert_eq!(Error::decode(error.to_return_value()), Err(error));
        }
        assert_eq!(Error::decode(42), Ok(42));
    }
}
