//! Boot arguments (`/chosen/bootargs`, QEMU's `-append`): words of the form
//! `key=value`. Unknown words are reported, never silently ignored.
//!
//! | word | effect |
//! | --- | --- |
//! | `run=NAME[:ARGS]` | start program NAME (ARGS: words separated by `,`) |
//! | `test=NAME[:ARGS]` | the same, and the run fails unless it exits with status 0 |
//! | `expect-fault=NAME[:ARGS]` | the same, and the run fails unless a fault kills it |
//! | `probe=PROGRAM:SYMBOL[+OFFSET]`, `probe=PROGRAM:0xADDRESS` | a uprobe there, in every process of PROGRAM |
//! | `retprobe=PROGRAM:SYMBOL` | a return probe on that function |
//! | `xol-policy=fresh\|reuse`, `simulate=all\|branches`, `xol-slots=N` | how hits execute the original instruction |
//! | `probe-mode=brk\|trampoline` | a probe is a breakpoint / a branch to the probe's own trampoline where its instruction can be relocated, else a breakpoint (default; docs/brk-path.md, "One exception instead of two") |
//! | `lookup=tree\|registry` | find a hit's probe in the thread's own tree, the registry on a miss (default) / in the registry under its exclusive lock on every hit (the benchmark's comparison) |
//! | `trace` | print every step of every hit |
//! | `tick-us=N` | tick every N microseconds while tasks run (default 10 ms) |
//! | `preempt-steps` | switch to another thread after every `eret` into an XOL slot is prepared |
//! | `report` | print the probe report as JSON at the end of the run |
//! | `inject=el1-data-abort` / `inject=panic` | commit that kernel fault after the self-tests |
//! | `shell` / `no-shell` | after the self-tests, take commands on the console and stay up (the Pi 4 build's default) / don't |
//! | `inject=ap-no-sipi` | x86_64 only, a test: the boot core sends the last processor it starts an INIT but no STARTUP IPI, so it never answers and is reported (`... did not answer within 1000 ms`) |
//! | `cores=N` | run on at most N cores (the boot core and the first N-1 others the machine lists); read by the boot order before the other cores start |
//! | `firmware-left-avx-on` | x86_64 only: before the kernel sets the processor up, turn AVX on (CR4.OSXSAVE, XCR0) as a PC's firmware may leave it, to prove the kernel turns it off for ring 3 |

use alloc::{string::String, vec::Vec};

/// The word that asks the x86_64 kernel to start with AVX on, as a firmware may
/// leave it (read by its UEFI entry, before the processor is set up).
pub const FIRMWARE_LEFT_AVX_ON: &str = "firmware-left-avx-on";

/// `cores=N` in the boot argument `line`, read by the boot order before it
/// starts the other cores (the full parse runs later): the most cores to run
/// on, or `None` for every core the machine lists. A malformed value is said
/// once, by [`parse`].
pub fn cores_wanted(line: &str) -> Option<usize> {
    line.split_whitespace()
        .filter_map(|word| word.strip_prefix("cores="))
        .filter_map(|count| count.parse().ok().filter(|&count: &usize| count >= 1))
        .next_back()
}

/// The word that has the x86_64 boot order withhold the STARTUP IPIs from the
/// last processor it starts (read by the boot order before the other cores
/// start), to prove a processor that never answers is reported and left out.
pub const AP_NO_SIPI: &str = "inject=ap-no-sipi";

/// Whether the boot argument `line` holds [`AP_NO_SIPI`].
#[cfg_attr(target_arch = "aarch64", allow(dead_code))] // the x86_64 boot order's
pub fn withholds_startup_ipi(line: &str) -> bool {
    line.split_whitespace().any(|word| word == AP_NO_SIPI)
}

/// What a test run expects of a process (`test=` / `expect-fault=` boot arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expectation {
    /// `run=`: not judged.
    Nothing,
    /// `test=`: must exit with status 0.
    ExitZero,
    /// `expect-fault=`: must be killed by a fault.
    Fault,
}

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

/// Where in a program a probe goes (`--probe` / `--retprobe`, the shell's `probe add`).
pub use brk_shell::ProbeLocation;

/// One probe asked for on the command line: `probe=PROGRAM:LOCATION`.
#[derive(Clone, Debug)]
pub struct ProbeRequest {
    /// As the user wrote it, for messages.
    pub spec: String,
    pub program: String,
    pub location: ProbeLocation,
    pub return_probe: bool,
}

/// How the brk path runs (`xol-policy=`, `simulate=`, `xol-slots=`, `trace`, `report`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProbeOptions {
    /// `xol-policy=fresh`: a new slot, written and maintained, on every hit.
    pub fresh_slots: bool,
    /// `simulate=branches`: simulate only what cannot run out of line.
    pub simulate_branches_only: bool,
    /// `xol-slots=N`: use only N step slots of the XOL page (to test waiting).
    pub xol_slots: Option<usize>,
    pub trace: bool,
    pub report: bool,
    /// `preempt-steps`: switch threads right after every step is armed, as if a
    /// timer interrupt landed in every step (a torture test).
    pub preempt_steps: bool,
    /// `lookup=registry`: every hit looks its probe up in the registry under
    /// its exclusive lock instead of the thread's tree (the benchmark's
    /// comparison with the situation before the per-thread tree).
    pub registry_every_hit: bool,
    /// `probe-mode=brk`: keep every probe on the breakpoint path. The default,
    /// `probe-mode=trampoline`, sends each probe whose instruction can be
    /// relocated to its own branch trampoline (one exception per hit,
    /// whatever the instruction).
    pub breakpoints_only: bool,
}

/// Parsed boot arguments.
#[derive(Debug, Default)]
pub struct BootArgs {
    pub inject: Option<Injection>,
    pub programs: Vec<ProgramRequest>,
    pub probes: Vec<ProbeRequest>,
    pub probe_options: ProbeOptions,
    /// `tick-us=N`: the timer tick period for the tasks, in microseconds.
    pub tick_us: Option<u64>,
    /// `shell` / `no-shell`: take commands on the console after the self-tests
    /// and stay up when the last process ends. On by default on the Pi 4,
    /// where powering off ends all a learner can do.
    pub shell: bool,
}

/// Whether the shell runs when the boot arguments say neither `shell` nor `no-shell`.
pub const SHELL_BY_DEFAULT: bool = cfg!(feature = "board-rpi4");

/// `PROGRAM:SYMBOL[+OFFSET]` or `PROGRAM:0xADDRESS`.
pub fn parse_probe_spec(spec: &str, return_probe: bool) -> Result<ProbeRequest, String> {
    let target = brk_shell::ProbeTarget::parse(spec)?;
    Ok(ProbeRequest { spec: target.spec, program: target.program, location: target.location, return_probe })
}

fn program_request(spec: &str, expectation: Expectation) -> ProgramRequest {
    let (name, args) = spec.split_once(':').unwrap_or((spec, ""));
    ProgramRequest { name: String::from(name), args: args.replace(',', " "), expectation }
}

/// Parse `line`, printing one line per word it does not understand.
pub fn parse(line: &str) -> BootArgs {
    let mut args = BootArgs { shell: SHELL_BY_DEFAULT, ..BootArgs::default() };
    for word in line.split_whitespace() {
        match word.split_once('=') {
            Some(("inject", "el1-data-abort")) => args.inject = Some(Injection::El1DataAbort),
            Some(("inject", "panic")) => args.inject = Some(Injection::Panic),
            Some(("run", spec)) => args.programs.push(program_request(spec, Expectation::Nothing)),
            Some(("test", spec)) => args.programs.push(program_request(spec, Expectation::ExitZero)),
            Some(("expect-fault", spec)) => args.programs.push(program_request(spec, Expectation::Fault)),
            Some(("probe", spec)) | Some(("retprobe", spec)) => {
                match parse_probe_spec(spec, word.starts_with("retprobe=")) {
                    Ok(request) => args.probes.push(request),
                    Err(why) => crate::println!("bootargs: {}", why),
                }
            }
            Some(("xol-policy", "fresh")) => args.probe_options.fresh_slots = true,
            Some(("xol-policy", "reuse")) => args.probe_options.fresh_slots = false,
            Some(("simulate", "branches")) => args.probe_options.simulate_branches_only = true,
            Some(("simulate", "all")) => args.probe_options.simulate_branches_only = false,
            Some(("probe-mode", "trampoline")) => args.probe_options.breakpoints_only = false,
            Some(("probe-mode", "brk")) => args.probe_options.breakpoints_only = true,
            Some(("probe-mode", other)) => {
                crate::println!("bootargs: probe-mode={} is not brk or trampoline; the default stays", other)
            }
            Some(("lookup", "tree")) => args.probe_options.registry_every_hit = false,
            Some(("lookup", "registry")) => args.probe_options.registry_every_hit = true,
            Some(("xol-slots", count)) => match count.parse() {
                Ok(count) if count >= 1 => args.probe_options.xol_slots = Some(count),
                _ => crate::println!("bootargs: xol-slots={} is not a count of at least 1", count),
            },
            Some(("tick-us", period)) => match period.parse() {
                Ok(period) if period >= 20 => args.tick_us = Some(period),
                _ => crate::println!("bootargs: tick-us={} is not a period of at least 20 microseconds", period),
            },
            Some(("cores", count)) => {
                if cores_wanted(word).is_none() {
                    crate::println!("bootargs: cores={} is not a count of at least 1; every core runs", count)
                }
            }
            None if word == "trace" => args.probe_options.trace = true,
            None if word == "preempt-steps" => args.probe_options.preempt_steps = true,
            None if word == "report" => args.probe_options.report = true,
            None if word == "shell" => args.shell = true,
            None if word == "no-shell" => args.shell = false,
            // Acted on by the x86_64 kernel's UEFI entry and boot order, long before this.
            #[cfg(target_arch = "x86_64")]
            None if word == FIRMWARE_LEFT_AVX_ON => {}
            #[cfg(target_arch = "x86_64")]
            _ if word == AP_NO_SIPI => {}
            #[cfg(not(target_arch = "x86_64"))]
            _ if word == AP_NO_SIPI => {
                crate::println!("bootargs: {} starts x86_64 processors; ignored on this architecture", word)
            }
            #[cfg(not(target_arch = "x86_64"))]
            None if word == FIRMWARE_LEFT_AVX_ON => {
                crate::println!("bootargs: {} is an x86_64 firmware state; ignored on this architecture", word)
            }
            Some(("inject", other)) => {
                crate::println!("bootargs: unknown injection '{}' (known: el1-data-abort, panic, ap-no-sipi)", other)
            }
            _ => crate::println!("bootargs: unknown argument '{}' ignored", word),
        }
    }
    args
}

/// An address that is never mapped: the first page of the user range's last GiB
/// (`USER_END` is where TTBR0 and the first PML4 entry stop translating), above
/// every program and stack, below the XOL page, and far from RAM and devices on
/// every supported board.
const UNMAPPED_ADDRESS: usize = brk_abi::layout::USER_END as usize - 0x4000_0000;

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
