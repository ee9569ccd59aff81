//! Boot arguments (`/chosen/bootargs`, QEMU's `-append`): words of the form
//! `key=value`. Unknown words are reported, never silently ignored.
//!
//! | word | effect |
//! | --- | --- |
//! | `run=NAME[:ARGS]` | start program NAME (ARGS: words separated by `,`) |
//! | `test=NAME[:ARGS]` | the same, and the run fails unless it exits with status 0 |
//! | `expect-fault=NAME[:ARGS]` | the same, and the run fails unless a fault kills it |
//! | `inject=el1-data-abort` / `inject=panic` | commit that kernel fault after the self-tests |

use crate::task::process::Expectation;
use alloc::{string::String, vec::Vec};

/// Faults a test can ask the kernel to commit, to prove they are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injection {
    /// Read an unmapped address at EL1.
    El1DataAbort,
    /// `panic!`.
    Panic,
}

/// A program to start (`run=`, `test=`, `expect-fault=`).
#[derive(Debug)]
pub struct ProgramRequest {
    pub name: String,
    /// The argument string; in the boot argument `NAME:A,B` it is `A B`.
    pub args: String,
    pub expectation: Expectation,
}

/// Parsed boot arguments.
#[derive(Debug, Default)]
pub struct BootArgs {
    pub inject: Option<Injection>,
    pub programs: Vec<ProgramRequest>,
}

fn program_request(spec: &str, expectation: Expectation) -> ProgramRequest {
    let (name, args) = spec.split_once(':').unwrap_or((spec, ""));
    ProgramRequest { name: String::from(name), args: args.replace(',', " "), expectation }
}

/// Parse `line`, printing one line per word it does not understand.
pub fn parse(line: &str) -> BootArgs {
    let mut args = BootArgs::default();
    for word in line.split_whitespace() {
        match word.split_once('=') {
            Some(("inject", "el1-data-abort")) => args.inject = Some(Injection::El1DataAbort),
            Some(("inject", "panic")) => args.inject = Some(Injection::Panic),
            Some(("run", spec)) => args.programs.push(program_request(spec, Expectation::Nothing)),
            Some(("test", spec)) => args.programs.push(program_request(spec, Expectation::ExitZero)),
            Some(("expect-fault", spec)) => args.programs.push(program_request(spec, Expectation::Fault)),
            Some(("inject", other)) => {
                crate::println!("bootargs: unknown injection '{}' (known: el1-data-abort, panic)", other)
            }
            _ => crate::println!("bootargs: unknown argument '{}' ignored", word),
        }
    }
    args
}

/// An address that is never mapped: the first page of the 512 GiB TTBR0 range's
/// last GiB, far from RAM and devices on every supported board.
const UNMAPPED_ADDRESS: usize = crate::arch::mmu::VA_LIMIT - 0x4000_0000;

/// Commit the requested fault, if any. Does not return when one was requested.
pub fn run_injection(args: &BootArgs) {
    match args.inject {
        Some(Injection::El1DataAbort) => {
            crate::println!("inject: reading unmapped address {:#x} at EL1", UNMAPPED_ADDRESS);
            // SAFETY: deliberately unsound: this read faults, and the fault handler
            // reports it and powers off. It is what the test asked for.
            let value = unsafe { core::ptr::read_volatile(UNMAPPED_ADDRESS as *const u64) };
            panic!("read of unmapped address {:#x} did not fault (got {:#x})", UNMAPPED_ADDRESS, value);
        }
        Some(Injection::Panic) => panic!("injected panic"),
        None => {}
    }
}
