//! `cargo xtask test`: the test plan (`cargo xtask check`, host unit tests, the
//! kernel booted in QEMU, then `cargo xtask quotes --check`), run step by step and
//! added up into one closing line. Each command of the check counts as one test:
//! passed, or failed with its name in a `FAIL check: ...` line; so does each quoted
//! block of the docs (`FAIL quotes: ...`).
//!
//! To add a crate of host tests, extend the host run's arguments (or add a run); to
//! test on another board, add a run that names it in `boards`: its image is built
//! once and handed to the tests as `BRK_KERNEL_IMAGE_<BOARD>`, and the run is skipped,
//! with a reason, when the installed QEMU lacks the board's machine.

use std::{collections::HashMap, path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};

use crate::{
    build::{self, Board},
    cmd::Cmd,
    qemu,
    summary::{self, Summary},
};

/// One step of the plan.
pub enum Step {
    /// `cargo xtask check`: formatting, clippy and rustdoc with warnings denied.
    Check,
    /// A `cargo test` run.
    Tests(TestRun),
    /// Every exercise of docs/exercises.md checked with a right answer (and a
    /// wrong one where the suite is a host one): `cargo xtask exercise N --answer TEST`.
    Exercises,
    /// `cargo xtask tour --no-pause`: every chapter shows its lines and source links.
    Tour,
    /// `cargo xtask quotes --check`: every transcript the docs quote, against a fresh
    /// run of its command (one boot per distinct command), each block one test.
    Quotes,
}

/// One `cargo test` invocation of the plan.
pub struct TestRun {
    /// How the run is named in `SKIP`/`FAIL` lines.
    pub label: &'static str,
    /// Arguments after `cargo test --no-fail-fast`.
    pub cargo_args: Vec<&'static str>,
    /// The kernel images the run boots.
    pub boards: &'static [Board],
    /// What else the run needs, made ready before it starts; a run whose need cannot
    /// be met is skipped with the reason.
    pub needs: &'static [Need],
}

/// Something a run needs besides the kernel images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The Pi 4 device tree, fetched once from Debian's arm64 kernel package into
    /// target/rpi4-dtb/ (see `cargo xtask rpi4 --fetch-dtb`), as `BRK_RPI4_DTB`.
    Rpi4DeviceTree,
    /// The chain-loader's kernel8.img, as `BRK_CHAINLOADER_IMAGE`.
    Chainloader,
    /// The armstub that boots raspi4b the way the Pi firmware boots a board, as
    /// `BRK_ARMSTUB_IMAGE`.
    Armstub,
    /// The x86_64 UEFI kernel with its programs, as `BRK_KERNEL_EFI`, with the OVMF
    /// firmware as `BRK_OVMF` and `qemu-system-x86_64` as `QEMU_X86_64`.
    UefiKernel,
    /// The virt kernel's checked build (debug assertions on) as
    /// `BRK_KERNEL_IMAGE_VIRT`, with QEMU as `QEMU`.
    CheckedVirtKernel,
}

/// The raspi4b tests' names start with this; the virt run leaves them out.
const RASPI4B_TESTS: &str = "raspi4b_";
/// The x86_64 UEFI tests' names start with this; the virt run leaves them out.
const X86_64_TESTS: &str = "x86_64_";

/// The plan, in order: the static checks first (a lint or a formatting slip fails
/// the run like a failed test), then the `cargo test` runs, then the tour and the
/// docs' quotes (their images are built by then), and last the exercises (the
/// kernel's is built into a folder of its own, so every image the other steps boot
/// is the normal one).
pub fn plan() -> Vec<Step> {
    std::iter::once(Step::Check)
        .chain(test_runs().into_iter().map(Step::Tests))
        .chain([Step::Tour, Step::Quotes, Step::Exercises])
        .collect()
}

/// The `cargo test` runs, in order. Host tests come first: they are fast and need no QEMU.
pub fn test_runs() -> Vec<TestRun> {
    vec![
        TestRun { label: "host", cargo_args: host_test_args(), boards: &[], needs: &[] },
        TestRun {
            label: "qemu virt",
            cargo_args: vec!["-p", "qemu-tests", "--", "--skip", RASPI4B_TESTS, "--skip", X86_64_TESTS],
            boards: &[Board::Virt],
            needs: &[],
        },
        // The Pi 4 image as the firmware starts it, without a device tree (every
        // address from the board table), and the chain-loader feeding it over a pty.
        TestRun {
            label: "qemu raspi4b",
            cargo_args: vec![
                "-p",
                "qemu-tests",
                "--test",
                "rpi4",
                "--test",
                "chainboot",
                "--test",
                "smp",
                "--",
                RASPI4B_TESTS,
                "--skip",
                "raspi4b_with_dtb",
            ],
            boards: &[Board::Rpi4],
            needs: &[Need::Chainloader],
        },
        // The same image with the Pi 4's own device tree, through QEMU's loader
        // and, filled in as the firmware fills it, through the armstub.
        TestRun {
            label: "qemu raspi4b with device tree",
            cargo_args: vec![
                "-p",
                "qemu-tests",
                "--test",
                "rpi4",
                "--test",
                "shell",
                "--test",
                "smp",
                "--",
                "raspi4b_with_dtb",
            ],
            boards: &[Board::Rpi4],
            needs: &[Need::Rpi4DeviceTree, Need::Armstub],
        },
        // The checked build (debug assertions and overflow checks on) through the
        // self-tests, the task tests (faults, preemption, system calls) and the
        // probe tests, which exercise every invariant the kernel asserts.
        TestRun {
            label: "qemu virt checked",
            cargo_args: vec!["-p", "qemu-tests", "--test", "selftests", "--test", "tasks", "--test", "probes"],
            boards: &[],
            needs: &[Need::CheckedVirtKernel],
        },
        // The x86_64 UEFI kernel under OVMF, on one processor and on several
        // (`x86_smp`). A UEFI boot takes about 5 s, so each test batches
        // several scenarios into one boot.
        TestRun {
            label: "qemu x86_64 uefi",
            cargo_args: vec![
                "-p",
                "qemu-tests",
                "--test",
                "x86_64",
                "--test",
                "x86_smp",
                "--test",
                "shell",
                "--test",
                "trampolines",
                "--",
                X86_64_TESTS,
            ],
            boards: &[],
            needs: &[Need::UefiKernel],
        },
    ]
}

/// The workspace's `default-members`: every crate that builds and tests on the host.
/// The kernel and the user programs build only for the bare-metal targets; the QEMU
/// tests run on their own, after the images are built.
fn host_test_args() -> Vec<&'static str> {
    Vec::new()
}

pub fn run() -> Result<ExitCode> {
    let plan = plan();
    let qemu = if plan.iter().any(|s| matches!(s, Step::Tests(r) if !r.boards.is_empty())) {
        crate::gdb::ensure_for_tests()?;
        Some(qemu::ensure()?)
    } else {
        None
    };

    let mut summary = Summary::default();
    let mut images: HashMap<Board, Option<PathBuf>> = HashMap::new();
    for step in &plan {
        match step {
            Step::Check => run_check(&mut summary)?,
            Step::Tests(run) => run_step(run, qemu.as_ref(), &mut images, &mut summary)?,
            Step::Tour => crate::tour::check_all(&mut summary)?,
            Step::Exercises => crate::exercise::check_all(&mut summary)?,
            Step::Quotes => crate::quotes::run_in_plan(&mut summary),
        }
    }

    println!();
    print!("{}", summary.render());
    if summary.passed + summary.failed == 0 {
        eprintln!("error: no test ran");
    }
    Ok(if summary.succeeded() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `cargo xtask check`, each of its commands counted as one test.
fn run_check(summary: &mut Summary) -> Result<()> {
    let results = crate::check::run_all()?;
    println!("{}", crate::check::verdict(&results));
    for result in results {
        match result.failure {
            None => summary.pass(),
            Some(why) => summary.fail(format!("check: {}: {why}", result.label)),
        }
    }
    Ok(())
}

fn run_step(
    step: &TestRun,
    qemu: Option<&qemu::Qemu>,
    images: &mut HashMap<Board, Option<PathBuf>>,
    summary: &mut Summary,
) -> Result<()> {
    let mut cmd = Cmd::new("cargo").args(["test", "--no-fail-fast"]).args(step.cargo_args.iter().copied());
    if let Some(qemu) = qemu.filter(|_| !step.boards.is_empty()) {
        for &board in step.boards {
            if !qemu.supports(board) {
                let version = qemu.version.map(|v| v.to_string()).unwrap_or_default();
                summary.skip(
                    step.label.to_string(),
                    format!("QEMU {version} is too old for {board} (needs {}.0 or newer)", board.min_qemu_major()),
                );
                return Ok(());
            }
            let image = images.entry(board).or_insert_with(|| match build::build(board, false, &[]) {
                Ok(built) => Some(built.image),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    None
                }
            });
            let Some(image) = image else {
                summary.fail(format!("{}: the {board} kernel image did not build", step.label));
                return Ok(());
            };
            let absolute = std::path::absolute(&*image).context("resolving the image path")?;
            cmd = cmd.env(board.image_env_var(), absolute.display().to_string());
        }
        cmd = cmd.env("QEMU", qemu.program.as_str());
    }
    for need in step.needs {
        match need {
            Need::Rpi4DeviceTree => match crate::rpi4::fetch_dtb() {
                Ok(dtb) => {
                    let absolute = std::path::absolute(&dtb).context("resolving the device tree path")?;
                    cmd = cmd.env("BRK_RPI4_DTB", absolute.display().to_string());
                }
                Err(reason) => {
                    summary.skip(step.label.to_string(), format!("no Pi 4 device tree: {reason}"));
                    return Ok(());
                }
            },
            Need::Chainloader => match crate::chainboot::build_loader(false) {
                Ok(image) => {
                    let absolute = std::path::absolute(&image).context("resolving the chain-loader path")?;
                    cmd = cmd.env("BRK_CHAINLOADER_IMAGE", absolute.display().to_string());
                }
                Err(e) => {
                    summary.fail(format!("{}: the chain-loader did not build: {e:#}", step.label));
                    return Ok(());
                }
            },
            Need::Armstub => match crate::rpi4::build_armstub() {
                Ok(image) => {
                    let absolute = std::path::absolute(&image).context("resolving the armstub path")?;
                    cmd = cmd.env("BRK_ARMSTUB_IMAGE", absolute.display().to_string());
                }
                Err(e) => {
                    summary.fail(format!("{}: the armstub did not build: {e:#}", step.label));
                    return Ok(());
                }
            },
            Need::CheckedVirtKernel => match (build::build_checked(Board::Virt), qemu) {
                (Ok(images), Some(qemu)) => {
                    let absolute = std::path::absolute(&images.image).context("resolving the checked image path")?;
                    cmd = cmd
                        .env(Board::Virt.image_env_var(), absolute.display().to_string())
                        .env("QEMU", qemu.program.as_str());
                }
                (Ok(_), None) => {
                    summary.fail(format!("{}: no QEMU to boot the checked kernel", step.label));
                    return Ok(());
                }
                (Err(e), _) => {
                    summary.fail(format!("{}: the checked kernel did not build: {e:#}", step.label));
                    return Ok(());
                }
            },
            Need::UefiKernel => {
                let (qemu_x86, ovmf) = match crate::uefi::ensure() {
                    Ok(found) => found,
                    Err(e) => {
                        summary.fail(format!("{}: {e:#} (see the install command above)", step.label));
                        return Ok(());
                    }
                };
                match crate::uefi::build(false) {
                    Ok(efi) => {
                        let absolute = std::path::absolute(&efi).context("resolving the UEFI kernel path")?;
                        cmd = cmd
                            .env("BRK_KERNEL_EFI", absolute.display().to_string())
                            .env("BRK_OVMF", ovmf.display().to_string())
                            .env("QEMU_X86_64", qemu_x86.program.as_str());
                    }
                    Err(e) => {
                        summary.fail(format!("{}: the x86_64 UEFI kernel did not build: {e:#}", step.label));
                        return Ok(());
                    }
                }
            }
        }
    }

    let (status, stdout) = cmd.tee_stdout()?;
    let report = summary::parse_libtest_output(&stdout);
    summary.add_run(step.label, &report, status.success(), &status.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_comes_first_and_the_exercises_last() {
        let plan = plan();
        assert!(matches!(plan[0], Step::Check));
        assert!(matches!(plan.last(), Some(Step::Exercises)));
        assert_eq!(plan.iter().filter(|s| matches!(s, Step::Check)).count(), 1);
        assert_eq!(plan.len(), test_runs().len() + 4);
        assert!(matches!(plan[plan.len() - 3..], [Step::Tour, Step::Quotes, Step::Exercises]));
    }

    #[test]
    fn host_run_is_the_default_members_only() {
        let plan = test_runs();
        let host = plan.iter().find(|r| r.boards.is_empty()).unwrap();
        assert!(host.cargo_args.is_empty(), "plain `cargo test` runs the default members");
        let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
        let defaults = manifest.split("default-members").nth(1).unwrap().lines().next().unwrap();
        for bare_metal in ["\"kernel\"", "\"tests\"", "user/"] {
            assert!(!defaults.contains(bare_metal), "{bare_metal} must not be a default member");
        }
    }

    #[test]
    fn every_board_run_has_a_distinct_label() {
        let plan = test_runs();
        let mut labels: Vec<_> = plan.iter().map(|r| r.label).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), plan.len());
        assert!(plan.iter().any(|r| r.boards == [Board::Virt]));
    }
}
