//! The statuses a run ends with, and the words the power-off line gives them:
//! the numbers are the contract of docs/kernel-contract.md on both
//! architectures.

/// Why the kernel stops. The number is the status the host sees (on aarch64
/// QEMU's exit status itself; on x86_64 behind QEMU's `33 + 2 * status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitStatus {
    Success = 0,
    SelfTestFailed = 1,
    Panic = 2,
    UnexpectedException = 3,
    /// A task run as a test (`test=`, `expect-fault=`) did not do what it should,
    /// or could not be started.
    TaskFailed = 4,
    /// A program asked for with `run=` could not be started (not an ELF, a
    /// segment both writable and executable, outside the user range, no such
    /// program, ...); the other programs ran.
    ProgramNotStarted = 5,
    /// The machine was booted in a way this kernel cannot run from: loaded away
    /// from its link address (reported by boot.s), or entered at EL3.
    #[allow(dead_code)] // the x86_64 kernel, a UEFI application, refuses no boot
    UnsupportedBoot = 6,
}

impl ExitStatus {
    /// The words of `power off: status N (<words>)`.
    pub fn describe(self) -> &'static str {
        match self {
            ExitStatus::Success => "success",
            ExitStatus::SelfTestFailed => "self-test failed",
            ExitStatus::Panic => "panic",
            ExitStatus::UnexpectedException => "unexpected exception",
            ExitStatus::TaskFailed => "task test failed",
            ExitStatus::ProgramNotStarted => "program not started",
            ExitStatus::UnsupportedBoot => "unsupported boot",
        }
    }

    /// How a run of programs ends: a failed test outweighs a `run=` program that
    /// could not be started, which outweighs success.
    pub fn of_tasks(failed_tests: usize, not_started: usize) -> ExitStatus {
        if failed_tests > 0 {
            ExitStatus::TaskFailed
        } else if not_started > 0 {
            ExitStatus::ProgramNotStarted
        } else {
            ExitStatus::Success
        }
    }
}
