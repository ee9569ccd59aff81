//! `cargo xtask`: the project's only build driver. It builds the kernel image, boots it
//! in QEMU, runs every test and attaches gdb, printing each external command it runs
//! (`+ ...`) so that nothing it does is hidden.

mod bench;
mod build;
mod chainboot;
mod check;
mod cmd;
mod exercise;
mod functions;
mod gdb;
mod image;
#[cfg(test)]
mod module_graph;
mod qemu;
mod quotes;
mod relro;
mod report;
mod rpi4;
mod soak;
mod summary;
mod test;
mod toolchain;
mod tour;
mod uefi;
mod user;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::build::Board;

#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Build, boot and test the brk-path kernel")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the kernel and flatten it into target/images/<board>/kernel.img (ELF beside it)
    Build(BuildArgs),
    /// Build the kernel and boot it in QEMU; exits with QEMU's (the kernel's) exit status
    Qemu(QemuArgs),
    /// Run every test: `check`, host unit tests, then the kernel booted in QEMU; ends with `N passed, N failed`
    Test,
    /// Static checks, warnings denied: cargo fmt --check, clippy for the host and both kernels' targets, cargo doc of both kernels
    Check,
    /// Attach gdb-multiarch to a QEMU started with `cargo xtask qemu --gdb`
    Gdb(GdbArgs),
    /// Benchmark the brk path in EL0 under QEMU (see docs/benchmarks.md); not part of `test`
    Bench(BenchArgs),
    /// Run the randomized checks (generated programs, scenarios, fuzzing, oracle) with fresh seeds until the time is up or one fails
    Soak(SoakArgs),
    /// Write the Raspberry Pi 4 SD card folder (kernel8.img, config.txt); --sd copies it to a boot partition
    Rpi4(rpi4::Rpi4Args),
    /// Send the kernel over a serial line to the UART chain-loader on a board, then show its console
    Chainboot(chainboot::ChainbootArgs),
    /// Write the x86_64 UEFI boot folder (EFI/BOOT/BOOTX64.EFI, bootargs.txt) to copy onto a FAT32 USB stick
    UefiImage(UefiImageArgs),
    /// List a user program's functions: each instruction's offset, address, encoding, disassembly and what a probe there would do
    Functions(FunctionsArgs),
    /// A guided run in chapters: the kernel booted with each chapter's flags, the trace lines that matter
    /// beside the source lines that printed them, a question before each one (see docs/exercises.md)
    Tour(tour::TourArgs),
    /// The exercises of docs/exercises.md: list them, show one, or check an answer (`--answer TEST`)
    Exercise(ExerciseArgs),
    /// Check (or, with --update, rewrite) the transcripts README.md and docs/ quote against real runs of the kernel
    Quotes(QuotesArgs),
    /// Install the targets and components rust-toolchain.toml names that the active toolchain lacks (every command that builds does this first)
    Toolchain,
}

impl Command {
    /// Whether the command builds anything, and so needs the pinned targets first.
    fn builds(&self) -> bool {
        !matches!(self, Command::Gdb(_))
    }
}

/// The architectures the kernel is built for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// The aarch64 kernel (QEMU virt, Raspberry Pi 4)
    #[default]
    Aarch64,
    /// The x86_64 UEFI kernel (QEMU with OVMF, a PC booting from USB)
    #[value(name = "x86_64")]
    X86_64,
}

#[derive(Args)]
struct UefiImageArgs {
    /// The folder to write (created if missing)
    #[arg(long, value_name = "DIR", default_value = "target/images/x86_64/usb")]
    out: PathBuf,
    /// Boot arguments written to bootargs.txt, e.g. "run=demo" (default: run=hello)
    #[arg(long, value_name = "BOOTARGS", default_value = "run=hello")]
    append: String,
}

#[derive(Args)]
struct FunctionsArgs {
    /// A program from user/ (built first), or a path to an ELF file
    program: String,
    /// The architecture to build the program for
    #[arg(long, value_enum, default_value_t = Arch::Aarch64)]
    arch: Arch,
    /// Only this function (its name as `--probe PROGRAM:SYMBOL` takes it)
    #[arg(long, value_name = "NAME")]
    symbol: Option<String>,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct QuotesArgs {
    /// Fail naming each quote that no longer matches what the kernel prints (`cargo xtask test` runs this)
    #[arg(long)]
    check: bool,
    /// Rewrite each quote that no longer matches from a fresh run
    #[arg(long)]
    update: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// The kernel to measure: aarch64 (QEMU virt) or x86_64 (UEFI under OVMF)
    #[arg(long, value_enum, default_value_t = Arch::Aarch64)]
    arch: Arch,
    /// Fewer calls per case (under a minute in all)
    #[arg(long)]
    quick: bool,
    /// Only count guest instructions per case under -icount (no timed boots, no core-scaling pass)
    #[arg(long)]
    icount_only: bool,
    /// Write every figure as JSON records to PATH
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Draw the policies per case and the scaling curves as an SVG chart at PATH
    #[arg(long, value_name = "PATH.svg")]
    chart: Option<PathBuf>,
}

#[derive(Args)]
struct BuildArgs {
    /// The machine to build for
    #[arg(long, value_enum, default_value_t = Board::Virt)]
    board: Board,
    /// Build with cargo's dev profile instead of --release
    #[arg(long)]
    debug: bool,
}

#[derive(Args)]
struct QemuArgs {
    /// The architecture to boot: aarch64 (QEMU virt or raspi4b) or x86_64 (UEFI under OVMF)
    #[arg(long, value_enum, default_value_t = Arch::Aarch64)]
    arch: Arch,
    #[command(flatten)]
    build: BuildArgs,
    /// QEMU CPU model, e.g. cortex-a53, cortex-a57, cortex-a72, max [virt default: cortex-a72]
    #[arg(long)]
    cpu: Option<String>,
    /// Guest RAM, e.g. 512M, 2G [virt default: 1G]
    #[arg(long)]
    memory: Option<String>,
    /// Enter the kernel at EL2 (virt with virtualization=on)
    #[arg(long)]
    el2: bool,
    /// Run on N cores: QEMU `-smp N` on virt and x86_64; on rpi4 (raspi4b always
    /// has 4) the boot argument `cores=N`, so the kernel starts only N-1 others.
    /// Default: 4 on virt and rpi4 (a Pi 4's cores), 2 on x86_64
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=8))]
    smp: Option<u32>,
    /// Start halted with a gdb server on tcp port 1234, and print how to attach
    #[arg(long)]
    gdb: bool,
    /// Kernel command line (the device tree's /chosen/bootargs), e.g. "inject=panic"
    #[arg(long, value_name = "BOOTARGS")]
    append: Option<String>,
    /// Run a program: a name under user/ (`demo`, `threads:8` passes args "8") or the
    /// path of an ELF built elsewhere (`path/to/prog.elf[:ARGS]`). Repeatable.
    /// Default: `demo` (`hello` with --arch x86_64), unless --append is given.
    #[arg(long, value_name = "PROGRAM")]
    run: Vec<String>,
    /// Put a probe on PROGRAM:SYMBOL[+OFFSET] or PROGRAM:ADDRESS (e.g. demo:compute+0x8,
    /// demo:0x4000000120). Repeatable
    #[arg(long, value_name = "SPEC")]
    probe: Vec<String>,
    /// Put a return probe on PROGRAM:SYMBOL (counts the function's calls and returns). Repeatable
    #[arg(long, value_name = "SPEC")]
    retprobe: Vec<String>,
    /// Write the probes' counters as JSON to PATH when the run ends
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// Print every step of every probe hit (trap, lookup, slot, cache lines, step)
    #[arg(long)]
    trace: bool,
    /// Take commands on the serial console after the self-tests (boot argument `shell`;
    /// docs/shell.md): type into this terminal; `poweroff` ends the run. No program is
    /// started unless --run names one. Without it, `--board rpi4` passes `no-shell`
    #[arg(long)]
    shell: bool,
    /// XOL slot policy: `fresh` (new slot, copy and maintain on every hit, as Linux
    /// before the slot-reuse patch) or `reuse` (the patch)
    #[arg(long, value_enum, default_value_t = XolPolicy::Reuse)]
    xol_policy: XolPolicy,
    /// What to simulate instead of stepping out of line: `all` (branches, adr/adrp,
    /// ldr literal, nop, the frame push) or `branches` (only what cannot run out of
    /// line, as Linux at the time of the patch)
    #[arg(long, value_enum, default_value_t = Simulate::All)]
    simulate: Simulate,
    /// How a probe's hits run: `brk` (the breakpoint path: simulate, or step out of
    /// line) or `trampoline` (a branch to the probe's own trampoline, which enters the
    /// kernel once and runs the instruction relocated; docs/brk-path.md, "One
    /// exception instead of two")
    #[arg(long, value_enum, default_value_t = ProbeMode::Trampoline)]
    probe_mode: ProbeMode,
    /// Kill QEMU after this many seconds (default: no limit)
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Pass this device tree with -dtb (e.g. the Pi 4's, from `cargo xtask rpi4 --fetch-dtb`)
    #[arg(long, value_name = "PATH")]
    dtb: Option<PathBuf>,
}

impl QemuArgs {
    /// The cores to run on: `--smp`, else every core of a Pi 4 (four) on
    /// virt and rpi4 and two processors on x86_64.
    fn cores(&self) -> u32 {
        self.smp.unwrap_or(match self.arch {
            Arch::Aarch64 => 4,
            Arch::X86_64 => 2,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum XolPolicy {
    Fresh,
    Reuse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Simulate {
    All,
    Branches,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ProbeMode {
    Brk,
    Trampoline,
}

#[derive(Args)]
struct ExerciseArgs {
    /// The exercise's number (without one: the list)
    number: Option<usize>,
    /// The test you think catches the exercise's breakage: it must fail with the breakage and pass without it
    #[arg(long, value_name = "TEST", requires = "number")]
    answer: Option<String>,
}

#[derive(Args)]
struct SoakArgs {
    /// How long to keep going
    #[arg(long, default_value_t = 10)]
    minutes: u64,
}

#[derive(Args)]
struct GdbArgs {
    /// The board whose kernel ELF to load symbols from
    #[arg(long, value_enum, default_value_t = Board::Virt)]
    board: Board,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    // Every path xtask prints or passes on is relative to the workspace root.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("xtask lives inside the workspace")?;
    std::env::set_current_dir(root).with_context(|| format!("entering {}", root.display()))?;
    if cli.command.builds() {
        toolchain::ensure()?;
    }

    match cli.command {
        Command::Build(args) => {
            build::build(args.board, args.debug, &[])?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Qemu(args) => run_qemu(args),
        Command::Test => test::run(),
        Command::Check => check::run(),
        Command::Gdb(args) => gdb::run(args.board),
        Command::Rpi4(args) => rpi4::run(args),
        Command::Chainboot(args) => chainboot::run(args),
        Command::Soak(args) => soak::run(args.minutes),
        Command::Toolchain => Ok(ExitCode::SUCCESS),
        Command::Tour(args) => tour::run(&args),
        Command::Exercise(args) => exercise::run(args.number, args.answer.as_deref()),
        Command::Quotes(args) => quotes::run(if args.update { quotes::Mode::Update } else { quotes::Mode::Check }),
        Command::UefiImage(args) => {
            let efi = uefi::build(false)?;
            uefi::write_esp(&args.out, &efi, &args.append)?;
            println!("wrote {} and {} in {}", uefi::BOOT_PATH, uefi::BOOTARGS_FILE, args.out.display());
            println!(
                "copy the folder's contents to a FAT32-formatted USB stick and boot a PC from it (docs/x86_64.md)"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Functions(args) => {
            functions::run(&args.program, args.arch, args.symbol.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            bench::run(bench::Options {
                arch: args.arch,
                quick: args.quick,
                icount_only: args.icount_only,
                json: args.json,
                chart: args.chart,
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_qemu(args: QemuArgs) -> Result<ExitCode> {
    let boot = prepare_boot(&args)?;
    if args.gdb {
        match args.arch {
            Arch::Aarch64 => {
                println!("QEMU will wait for gdb on tcp port 1234. Attach from another terminal with");
                println!("    {}", gdb::command(&boot.kernel).display());
                println!("or: cargo xtask gdb --board {}", args.build.board);
            }
            Arch::X86_64 => println!(
                "QEMU will wait for gdb on tcp port 1234: gdb {} -ex 'target remote :1234'",
                boot.kernel.display()
            ),
        }
    }
    let (outcome, transcript) = qemu::run(&boot.qemu, &boot.argv, args.timeout.map(Duration::from_secs))?;
    write_report(args.report.as_deref(), &transcript)?;
    match outcome {
        qemu::Outcome::Exited(status) => Ok(match args.arch {
            Arch::Aarch64 => exit_code_of(status),
            Arch::X86_64 => uefi::exit_code_of(status),
        }),
        qemu::Outcome::TimedOut(after) => {
            eprintln!("QEMU timed out after {} s", after.as_secs());
            // The exit status `timeout(1)` uses for the same event.
            Ok(ExitCode::from(124))
        }
    }
}

/// What `cargo xtask qemu` boots, built: the QEMU to run, its arguments, and the
/// kernel file gdb loads symbols from.
pub struct Boot {
    pub qemu: qemu::Qemu,
    pub argv: Vec<String>,
    pub kernel: PathBuf,
}

/// Builds what the `qemu` flags `args` ask for and the QEMU command line that boots it:
/// the aarch64 image on its board, or (`--arch x86_64`) the UEFI kernel from an ESP
/// folder under OVMF.
fn prepare_boot(args: &QemuArgs) -> Result<Boot> {
    if args.arch == Arch::X86_64 {
        return prepare_boot_x86_64(args);
    }
    let board = args.build.board;
    let qemu = qemu::ensure()?;
    if !qemu.supports(board) {
        bail!("{} cannot boot {board}: its machine needs QEMU {}.0 or newer", qemu.program, board.min_qemu_major());
    }
    let (bootargs, outside) = bootargs_of(args)?;
    let images = build::build(board, args.build.debug, &outside)?;
    let options = qemu::BootOptions {
        cpu: args.cpu.clone(),
        memory: args.memory.clone(),
        el2: args.el2,
        gdb: args.gdb,
        append: (!bootargs.is_empty()).then(|| bootargs.join(" ")),
        dtb: args.dtb.clone(),
        smp: Some(args.cores()),
    };
    let argv = qemu::boot_args(board, &options, &images.image)?;
    Ok(Boot { qemu, argv, kernel: images.elf })
}

/// The boot arguments the `qemu` flags stand for, and the outside ELFs `--run` names.
fn bootargs_of(args: &QemuArgs) -> Result<(Vec<String>, Vec<PathBuf>)> {
    let runs = if args.run.is_empty() && args.append.is_none() && !args.shell {
        // `demo` is aarch64's (its SIMD part has no x86_64 build).
        let default = if args.arch == Arch::X86_64 { "hello" } else { "demo" };
        vec![default.to_string()]
    } else {
        args.run.clone()
    };
    let mut outside = Vec::new();
    let mut bootargs: Vec<String> = args.append.clone().into_iter().collect();
    for run in &runs {
        let (program, program_args) = run.split_once(':').unwrap_or((run.as_str(), ""));
        let name = if program.ends_with(".elf") || program.contains('/') {
            let path = std::path::PathBuf::from(program);
            let name = user::name_of_outside_program(&path)?;
            outside.push(std::fs::canonicalize(&path).with_context(|| format!("--run {program}"))?);
            name
        } else {
            program.to_string()
        };
        let program_args = if program_args.is_empty() { String::new() } else { format!(":{program_args}") };
        bootargs.push(format!("run={name}{program_args}"));
    }
    bootargs.extend(args.probe.iter().map(|spec| format!("probe={spec}")));
    bootargs.extend(args.retprobe.iter().map(|spec| format!("retprobe={spec}")));
    if args.trace {
        bootargs.push("trace".into());
    }
    if args.shell {
        bootargs.push("shell".into());
    } else if args.build.board == Board::Rpi4 {
        // The Pi 4 build starts its shell by default, for the board; a QEMU run
        // asks for it with --shell.
        bootargs.push("no-shell".into());
    }
    if let Some(cores) = args.smp.filter(|_| args.arch == Arch::Aarch64 && args.build.board == Board::Rpi4) {
        // raspi4b always models the Pi 4's four cores: the kernel is told how
        // many to run.
        bootargs.push(format!("cores={}", cores));
    }
    if args.report.is_some() {
        bootargs.push("report".into());
    }
    if args.xol_policy == XolPolicy::Fresh {
        bootargs.push("xol-policy=fresh".into());
    }
    if args.simulate == Simulate::Branches {
        bootargs.push("simulate=branches".into());
    }
    if args.probe_mode == ProbeMode::Brk {
        bootargs.push("probe-mode=brk".into());
    }
    for warning in probes_of_programs_not_run(&bootargs.join(" ")) {
        eprintln!("warning: {warning}");
    }
    Ok((bootargs, outside))
}

/// The probes of `bootargs` (`probe=`, `retprobe=`) whose program no `run=`,
/// `test=` or `expect-fault=` starts, one warning each: such a probe can never
/// be installed (the kernel's final report lists it too).
fn probes_of_programs_not_run(bootargs: &str) -> Vec<String> {
    let words: Vec<&str> = bootargs.split_whitespace().collect();
    let started: Vec<&str> = words
        .iter()
        .filter_map(|w| ["run=", "test=", "expect-fault="].iter().find_map(|key| w.strip_prefix(key)))
        .map(|request| request.split(':').next().unwrap_or(request))
        .collect();
    words
        .iter()
        .filter_map(|w| ["probe=", "retprobe="].iter().find_map(|key| w.strip_prefix(key)))
        .filter_map(|spec| {
            let program = spec.split(':').next().unwrap_or(spec);
            (!started.contains(&program)).then(|| {
                format!("the probe {spec} names {program}, which no --run (or run=/test=/expect-fault= in --append) starts: it will never be installed")
            })
        })
        .collect()
}

/// `--report PATH`: the JSON report the kernel printed, written to PATH.
fn write_report(path: Option<&Path>, transcript: &str) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    match report::extract(transcript) {
        Some(json) => {
            std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
            println!("report: {}", path.display());
        }
        None => eprintln!("error: the kernel printed no complete report, so {} was not written", path.display()),
    }
    Ok(())
}

/// `cargo xtask qemu --arch x86_64`: the UEFI kernel in an ESP folder, and OVMF to boot it.
fn prepare_boot_x86_64(args: &QemuArgs) -> Result<Boot> {
    if args.el2 || args.dtb.is_some() || args.cpu.is_some() || args.memory.is_some() || args.build.board != Board::Virt
    {
        bail!("--board, --cpu, --memory, --el2 and --dtb are for aarch64; --arch x86_64 boots a PC under OVMF");
    }
    let (bootargs, outside) = bootargs_of(args)?;
    if !outside.is_empty() {
        bail!("--arch x86_64 runs only the programs under user/ that support x86_64 (see user/README.md)");
    }
    let (qemu, ovmf) = uefi::ensure()?;
    let efi = uefi::build(args.build.debug)?;
    let esp = uefi::scratch_esp("esp")?;
    uefi::write_esp(&esp, &efi, &bootargs.join(" "))?;
    let argv = uefi::qemu_args(&ovmf, &esp, args.gdb, args.cores())?;
    Ok(Boot { qemu, argv, kernel: efi })
}

/// QEMU's exit status (the code the kernel passed to semihosting SYS_EXIT) as ours.
fn exit_code_of(status: std::process::ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(code as u8);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            eprintln!("QEMU was killed by signal {signal}");
            return ExitCode::from(128u8.wrapping_add(signal as u8));
        }
    }
    eprintln!("QEMU ended without an exit status ({status})");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn qemu_flags_parse() {
        let cli = Cli::try_parse_from([
            "xtask",
            "qemu",
            "--board",
            "virt",
            "--cpu",
            "cortex-a53",
            "--memory",
            "2G",
            "--el2",
            "--gdb",
            "--append",
            "inject=panic",
            "--timeout",
            "5",
        ])
        .unwrap();
        let Command::Qemu(args) = cli.command else { panic!("not qemu") };
        assert_eq!(args.build.board, Board::Virt);
        assert_eq!(args.cpu.as_deref(), Some("cortex-a53"));
        assert_eq!(args.memory.as_deref(), Some("2G"));
        assert!(args.el2 && args.gdb);
        assert_eq!(args.append.as_deref(), Some("inject=panic"));
        assert_eq!(args.timeout, Some(5));
    }

    #[test]
    fn the_arch_flag_takes_aarch64_and_x86_64() {
        let cli =
            Cli::try_parse_from(["xtask", "qemu", "--arch", "x86_64", "--run", "probed", "--probe", "probed:cls_nop"])
                .unwrap();
        let Command::Qemu(args) = cli.command else { panic!("not qemu") };
        assert_eq!(args.arch, Arch::X86_64);
        let (bootargs, outside) = bootargs_of(&args).unwrap();
        assert_eq!(bootargs, ["run=probed", "probe=probed:cls_nop"]);
        assert!(outside.is_empty());
        let cli = Cli::try_parse_from(["xtask", "bench", "--arch", "x86_64", "--quick"]).unwrap();
        assert!(matches!(cli.command, Command::Bench(BenchArgs { arch: Arch::X86_64, quick: true, .. })));
        let Command::Qemu(args) = Cli::try_parse_from(["xtask", "qemu"]).unwrap().command else { panic!("not qemu") };
        assert_eq!(args.arch, Arch::Aarch64);
        assert!(Cli::try_parse_from(["xtask", "qemu", "--arch", "x86-64"]).is_err());
    }

    #[test]
    fn a_probe_on_a_program_that_never_runs_is_warned_about() {
        assert!(probes_of_programs_not_run("run=demo probe=demo:compute retprobe=demo:fib").is_empty());
        assert!(probes_of_programs_not_run("test=spin:a,20 expect-fault=faults:brk probe=spin:main probe=faults:main")
            .is_empty());
        let warnings = probes_of_programs_not_run("run=hello probe=demo:compute retprobe=threads:worker");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("the probe demo:compute names demo, which no --run"), "{warnings:?}");
        assert!(warnings[1].starts_with("the probe threads:worker names threads,"), "{warnings:?}");
        // The default program counts: `cargo xtask qemu --probe demo:compute` runs demo.
        let Command::Qemu(args) = Cli::try_parse_from(["xtask", "qemu", "--probe", "demo:compute"]).unwrap().command
        else {
            panic!("not qemu")
        };
        assert!(probes_of_programs_not_run(&bootargs_of(&args).unwrap().0.join(" ")).is_empty());
    }

    #[test]
    fn an_x86_64_run_without_programs_runs_hello() {
        let Command::Qemu(args) = Cli::try_parse_from(["xtask", "qemu", "--arch", "x86_64"]).unwrap().command else {
            panic!("not qemu")
        };
        assert_eq!(bootargs_of(&args).unwrap().0, ["run=hello"]);
    }

    #[test]
    fn shell_asks_for_the_shell_and_starts_no_program_by_default() {
        let qemu = |argv: &[&str]| match Cli::try_parse_from(argv).unwrap().command {
            Command::Qemu(args) => bootargs_of(&args).unwrap().0,
            _ => panic!("not qemu"),
        };
        assert_eq!(qemu(&["xtask", "qemu", "--shell"]), ["shell"]);
        assert_eq!(qemu(&["xtask", "qemu", "--arch", "x86_64", "--shell", "--run", "hello"]), ["run=hello", "shell"]);
        assert_eq!(qemu(&["xtask", "qemu", "--board", "rpi4"]), ["run=demo", "no-shell"]);
        assert_eq!(qemu(&["xtask", "qemu", "--board", "rpi4", "--shell"]), ["shell"]);
    }

    #[test]
    fn smp_is_qemu_smp_on_virt_and_x86_64_and_a_boot_argument_on_rpi4() {
        let qemu = |argv: &[&str]| match Cli::try_parse_from(argv).unwrap().command {
            Command::Qemu(args) => args,
            _ => panic!("not qemu"),
        };
        let virt = qemu(&["xtask", "qemu", "--smp", "2"]);
        assert_eq!(virt.cores(), 2);
        assert_eq!(bootargs_of(&virt).unwrap().0, ["run=demo"]);
        let options = qemu::BootOptions { smp: Some(virt.cores()), ..Default::default() };
        let args = qemu::boot_args(Board::Virt, &options, Path::new("k.img")).unwrap().join(" ");
        assert!(args.contains(" -smp 2 "), "{args}");
        let rpi4 = qemu(&["xtask", "qemu", "--board", "rpi4", "--smp", "2"]);
        assert_eq!(bootargs_of(&rpi4).unwrap().0, ["run=demo", "no-shell", "cores=2"]);
        let every_core = qemu(&["xtask", "qemu", "--board", "rpi4"]);
        assert_eq!(bootargs_of(&every_core).unwrap().0, ["run=demo", "no-shell"]);
        let options = qemu::BootOptions { smp: Some(rpi4.cores()), ..Default::default() };
        let args = qemu::boot_args(Board::Rpi4, &options, Path::new("k.img")).unwrap();
        assert!(!args.contains(&"-smp".to_string()), "{args:?}");
        let x86 = qemu(&["xtask", "qemu", "--arch", "x86_64", "--smp", "2"]);
        let args = uefi::qemu_args(Path::new("/ovmf.fd"), Path::new("/esp"), false, x86.cores()).unwrap().join(" ");
        assert!(args.contains(" -smp 2"), "{args}");
        assert_eq!(qemu(&["xtask", "qemu"]).cores(), 4);
        assert_eq!(qemu(&["xtask", "qemu", "--arch", "x86_64"]).cores(), 2);
        assert!(Cli::try_parse_from(["xtask", "qemu", "--smp", "0"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "qemu", "--smp", "9"]).is_err());
    }

    #[test]
    fn boards_are_virt_and_rpi4() {
        let cli = Cli::try_parse_from(["xtask", "build", "--board", "rpi4", "--debug"]).unwrap();
        let Command::Build(args) = cli.command else { panic!("not build") };
        assert_eq!(args.board, Board::Rpi4);
        assert!(args.debug);
        assert!(Cli::try_parse_from(["xtask", "build", "--board", "raspi3"]).is_err());
    }
}
