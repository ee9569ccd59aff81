//! `cargo xtask check`: the static checks, with every warning an error. The
//! formatting of the whole tree, clippy over the host crates and over both kernels
//! for their own targets (the aarch64 kernel for each board, the x86_64 UEFI
//! kernel, the boot images and the user programs for both architectures), and the
//! kernels' documentation. `cargo xtask test` runs it as its first step.
//!
//! The bare-metal crates are checked exactly as `cargo xtask build` and
//! `uefi-image` build them: the same targets and features, and with
//! `BRK_USER_PROGRAMS` pointing at the programs xtask's own build functions built,
//! because each kernel's build script packs them.
//!
//! Every step runs even when an earlier one failed, so one run lists every
//! problem; the last line is the verdict and the exit status follows it.

use std::{path::Path, process::ExitCode};

use anyhow::{Context, Result};

use crate::{
    build::{Board, KERNEL_TARGET},
    cmd::Cmd,
    uefi, user,
};

/// The crates that build on the host and are linted with all their targets (unit
/// tests, integration tests, benches): the workspace's `default-members` and the
/// QEMU tests.
pub const HOST_PACKAGES: &[&str] =
    &["xtask", "brk-abi", "brk-devices", "probe-core", "text-screen", "brk-shell", "qemu-tests"];

/// The bare-metal boot images beside the kernel, built for the kernel's target.
pub const BOOT_PACKAGES: &[&str] = &["chainloader", "armstub"];

/// The user programs' runtime, checked with the programs of each architecture.
const USER_RUNTIME: &str = "user-rt";

/// What one step of the check is about, and whether it passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepResult {
    /// How the step is named in the recap and in `cargo xtask test`'s `FAIL` lines.
    pub label: String,
    /// `None` when the step passed, else why it failed.
    pub failure: Option<String>,
}

impl StepResult {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// One command of the check: what it is called and the command line.
pub struct Step {
    pub label: String,
    pub cmd: Cmd,
}

impl Step {
    fn new(label: impl Into<String>, cmd: Cmd) -> Self {
        Step { label: label.into(), cmd }
    }
}

/// `cargo fmt --check` over the whole workspace (rustfmt reads every module,
/// whatever its `cfg`, so one run covers both kernels).
pub fn fmt_step() -> Step {
    Step::new("cargo fmt", Cmd::new("cargo").args(["fmt", "--all", "--check"]))
}

/// `cargo clippy ... -- -D warnings` with `packages`, and `target` unless `None`.
fn clippy(packages: &[&str], target: Option<&str>) -> Cmd {
    let mut cmd = Cmd::new("cargo").arg("clippy");
    for package in packages {
        cmd = cmd.args(["-p", package]);
    }
    if let Some(target) = target {
        cmd = cmd.args(["--target", target]);
    }
    cmd
}

/// The `-- -D warnings` that ends every clippy command line.
fn deny_warnings(cmd: Cmd) -> Cmd {
    cmd.args(["--", "-D", "warnings"])
}

/// Clippy over the host crates, tests included.
pub fn host_clippy_step() -> Step {
    Step::new("clippy host crates", deny_warnings(clippy(HOST_PACKAGES, None).arg("--all-targets")))
}

/// Clippy over the aarch64 kernel for `board`, packing the programs in `programs`.
pub fn kernel_clippy_step(board: Board, programs: &Path) -> Step {
    let cmd = clippy(&["kernel"], Some(KERNEL_TARGET))
        .args(board.cargo_features().iter().copied())
        .env("BRK_USER_PROGRAMS", programs.display().to_string());
    Step::new(format!("clippy kernel {KERNEL_TARGET} {board}"), deny_warnings(cmd))
}

/// Clippy over the chain-loader and the armstub.
pub fn boot_clippy_step() -> Step {
    Step::new(format!("clippy boot {KERNEL_TARGET}"), deny_warnings(clippy(BOOT_PACKAGES, Some(KERNEL_TARGET))))
}

/// Clippy over the user runtime and the programs `names`, for `target`.
pub fn user_clippy_step(target: &str, names: &[String]) -> Step {
    let mut packages = vec![USER_RUNTIME];
    packages.extend(names.iter().map(String::as_str));
    Step::new(format!("clippy user programs {target}"), deny_warnings(clippy(&packages, Some(target))))
}

/// Clippy over the x86_64 UEFI kernel, packing the programs in `programs`.
pub fn uefi_clippy_step(programs: &Path) -> Step {
    let cmd = clippy(&[uefi::KERNEL_PACKAGE], Some(uefi::UEFI_TARGET))
        .env("BRK_USER_PROGRAMS", programs.display().to_string());
    Step::new(format!("clippy kernel {}", uefi::UEFI_TARGET), deny_warnings(cmd))
}

/// `cargo doc --no-deps` for a kernel package and target, with rustdoc's warnings
/// (broken intra-doc links, bad code blocks ...) denied.
pub fn doc_step(package: &str, target: &str, programs: &Path) -> Step {
    let cmd = Cmd::new("cargo")
        .args(["doc", "--no-deps", "-p", package, "--target", target])
        .env("RUSTDOCFLAGS", "-D warnings")
        .env("BRK_USER_PROGRAMS", programs.display().to_string());
    Step::new(format!("cargo doc {package} {target}"), cmd)
}

/// Runs `step`, turning a failure to start or a non-zero exit into its result.
fn run_step(step: &Step) -> StepResult {
    let failure = match step.cmd.status() {
        Ok(status) if status.success() => None,
        Ok(status) => Some(format!("`{}` failed ({status})", step.cmd.display())),
        Err(e) => Some(format!("{e:#}")),
    };
    if let Some(why) = &failure {
        eprintln!("check: {}: {why}", step.label);
    }
    StepResult { label: step.label.clone(), failure }
}

/// The steps that need the programs built by `build`: when the build failed, each
/// of them fails with that reason instead of running.
fn run_with_programs(
    results: &mut Vec<StepResult>,
    what: &str,
    build: Result<std::path::PathBuf>,
    steps: impl FnOnce(&Path) -> Vec<Step>,
    labels: &[String],
) {
    match build {
        Ok(programs) => results.extend(steps(&programs).iter().map(run_step)),
        Err(e) => {
            eprintln!("error: {e:#}");
            results.extend(labels.iter().map(|label| StepResult {
                label: label.clone(),
                failure: Some(format!("the {what} user programs did not build")),
            }));
        }
    }
}

/// Runs every step of the check, in order, and returns what each one came to.
pub fn run_all() -> Result<Vec<StepResult>> {
    let aarch64_programs = user::program_names_for(user::UserArch::Aarch64).context("listing the aarch64 programs")?;
    let x86_64_programs = user::program_names_for(user::UserArch::X86_64).context("listing the x86_64 programs")?;

    let mut results = Vec::new();
    for step in [fmt_step(), host_clippy_step(), boot_clippy_step()] {
        results.push(run_step(&step));
    }
    results.push(run_step(&user_clippy_step(user::USER_TARGET, &aarch64_programs)));
    results.push(run_step(&user_clippy_step(user::X86_64_USER_TARGET, &x86_64_programs)));

    // The kernels pack the release programs that `cargo xtask build` packs.
    let aarch64_kernel = |programs: &Path| {
        vec![
            kernel_clippy_step(Board::Virt, programs),
            kernel_clippy_step(Board::Rpi4, programs),
            doc_step("kernel", KERNEL_TARGET, programs),
        ]
    };
    let labels: Vec<String> = aarch64_kernel(Path::new("")).into_iter().map(|s| s.label).collect();
    run_with_programs(&mut results, "aarch64", user::build_programs(&[]), aarch64_kernel, &labels);

    let uefi_kernel =
        |programs: &Path| vec![uefi_clippy_step(programs), doc_step(uefi::KERNEL_PACKAGE, uefi::UEFI_TARGET, programs)];
    let labels: Vec<String> = uefi_kernel(Path::new("")).into_iter().map(|s| s.label).collect();
    run_with_programs(&mut results, "x86_64", user::build_x86_64_programs(), uefi_kernel, &labels);
    Ok(results)
}

/// The closing line of `cargo xtask check`.
pub fn verdict(results: &[StepResult]) -> String {
    let failed: Vec<&str> = results.iter().filter(|r| !r.passed()).map(|r| r.label.as_str()).collect();
    if failed.is_empty() {
        format!("check: passed ({} steps)", results.len())
    } else {
        format!("check: FAILED ({} of {} steps: {})", failed.len(), results.len(), failed.join(", "))
    }
}

/// `cargo xtask check`: every step, a recap of the failed ones, the verdict.
pub fn run() -> Result<ExitCode> {
    let results = run_all()?;
    println!();
    for result in &results {
        if let Some(why) = &result.failure {
            println!("FAIL {}: {why}", result.label);
        }
    }
    println!("{}", verdict(&results));
    Ok(if results.iter().all(StepResult::passed) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clippy_denies_warnings_on_every_target() {
        let programs = Path::new("/p");
        let steps = [
            host_clippy_step(),
            boot_clippy_step(),
            kernel_clippy_step(Board::Virt, programs),
            kernel_clippy_step(Board::Rpi4, programs),
            uefi_clippy_step(programs),
            user_clippy_step(user::USER_TARGET, &["hello".to_string()]),
        ];
        for step in &steps {
            assert!(step.cmd.display().ends_with(" -- -D warnings"), "{}", step.cmd.display());
        }
        assert_eq!(
            steps[2].cmd.display(),
            "BRK_USER_PROGRAMS=/p cargo clippy -p kernel --target aarch64-unknown-none-softfloat -- -D warnings"
        );
        assert_eq!(
            steps[3].cmd.display(),
            "BRK_USER_PROGRAMS=/p cargo clippy -p kernel --target aarch64-unknown-none-softfloat \
             --no-default-features --features board-rpi4 -- -D warnings"
        );
        assert_eq!(
            steps[4].cmd.display(),
            "BRK_USER_PROGRAMS=/p cargo clippy -p kernel --target x86_64-unknown-uefi -- -D warnings"
        );
        assert_eq!(
            steps[5].cmd.display(),
            "cargo clippy -p user-rt -p hello --target aarch64-unknown-none -- -D warnings"
        );
        assert!(steps[0].cmd.display().contains(" --all-targets "));
    }

    #[test]
    fn the_docs_deny_rustdoc_warnings() {
        let step = doc_step("kernel", KERNEL_TARGET, Path::new("/p"));
        assert_eq!(
            step.cmd.display(),
            "RUSTDOCFLAGS='-D warnings' BRK_USER_PROGRAMS=/p cargo doc --no-deps -p kernel --target aarch64-unknown-none-softfloat"
        );
        assert_eq!(fmt_step().cmd.display(), "cargo fmt --all --check");
    }

    #[test]
    fn the_host_packages_are_the_default_members_and_the_qemu_tests() {
        let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
        let defaults = manifest.split("default-members = ").nth(1).unwrap().lines().next().unwrap();
        let count = defaults.matches('"').count() / 2;
        assert_eq!(count + 1, HOST_PACKAGES.len(), "{defaults}");
    }

    #[test]
    fn the_verdict_names_what_failed() {
        let ok = |label: &str| StepResult { label: label.into(), failure: None };
        let bad = |label: &str| StepResult { label: label.into(), failure: Some("exit status: 101".into()) };
        assert_eq!(verdict(&[ok("a"), ok("b")]), "check: passed (2 steps)");
        assert_eq!(verdict(&[ok("a"), bad("b"), bad("c")]), "check: FAILED (2 of 3 steps: b, c)");
    }
}
