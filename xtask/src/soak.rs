//! `cargo xtask soak --minutes N`: the randomized checks of `cargo xtask test`,
//! in a loop, each round with fresh seeds, until the time is up or a check
//! fails. A failure prints the seeds and the commands that reproduce it.
//!
//! One round:
//! 1. rebuild the images with a new `GEN_SEED` (the transparency generator's
//!    instruction sequences are chosen at build time), into their own images
//!    folder so the images `cargo xtask test` boots are left alone;
//! 2. the transparency tests (every `--xol-policy` x `--simulate`, plus a 50 us
//!    tick), the fault and race scenarios, the probes hit on every core at once
//!    (`tests/tests/smp_probes.rs`; every boot has four cores) and the syscall
//!    fuzzer, with fresh
//!    `GEN_RUN_SEED` and `FUZZ_SEED`;
//! 3. the same for the x86_64 UEFI kernel (its transparency and fuzzing tests,
//!    built with the same `GEN_SEED`), when `qemu-system-x86_64` and OVMF are
//!    there (a round says so when they are not);
//! 4. both classifier oracles (A64 and x86_64) on a fresh `ORACLE_SEED`.

use std::{
    path::Path,
    process::ExitCode,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result};

use crate::{
    build::{self, Board},
    cmd::Cmd,
    uefi,
};

/// The x86_64 tests of a round: generated programs under every policy, and the
/// fuzzer with a fast tick.
const X86_64_TESTS: [&str; 2] = [
    "x86_64_generated_programs_behave_the_same_with_a_probe_on_every_instruction",
    "x86_64_syscall_fuzzing_and_a_fast_tick_and_preemption_inside_steps",
];

/// A seed from the clock, mixed (splitmix64) so consecutive rounds differ well.
fn fresh_seed(round: u64) -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let mut z = nanos ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % 1_000_000_007
}

/// The seeds of one round.
#[derive(Clone, Copy, Debug)]
struct Seeds {
    gen: u64,
    gen_run: u64,
    fuzz: u64,
    oracle: u64,
}

impl Seeds {
    fn env(&self) -> [(&'static str, String); 4] {
        [
            ("GEN_SEED", self.gen.to_string()),
            ("GEN_RUN_SEED", self.gen_run.to_string()),
            ("FUZZ_SEED", self.fuzz.to_string()),
            ("ORACLE_SEED", self.oracle.to_string()),
        ]
    }

    /// The shell line that repeats a failed step of a round: `rebuild` (the
    /// xtask command that made the images the step boots, if any) with this
    /// round's `GEN_SEED` and images folder, then the step's own command, which
    /// names every file by its absolute path, so the line works from any folder.
    fn reproduce(&self, images_dir: &Path, rebuild: Option<&Cmd>, failed: &Cmd) -> String {
        let failed = failed.display();
        match rebuild {
            Some(rebuild) => {
                let rebuild = rebuild
                    .clone()
                    .env("GEN_SEED", self.gen.to_string())
                    .env("BRK_IMAGES_DIR", images_dir.display().to_string());
                format!("{} && {failed}", rebuild.display())
            }
            None => failed,
        }
    }
}

pub fn run(minutes: u64) -> Result<ExitCode> {
    let started = Instant::now();
    let budget = Duration::from_secs(minutes * 60);
    let images_dir =
        std::path::absolute(build::target_dir().join("images-soak")).context("resolving the soak images folder")?;
    // The images of this loop go to their own folder (see build::images_dir).
    std::env::set_var("BRK_IMAGES_DIR", &images_dir);
    let qemu = crate::qemu::ensure()?;
    let x86 = uefi::ensure().map_err(|e| format!("{e:#}"));
    let mut round = 0u64;
    let mut checks = 0u64;
    while started.elapsed() < budget {
        round += 1;
        let seeds = Seeds {
            gen: fresh_seed(4 * round),
            gen_run: fresh_seed(4 * round + 1),
            fuzz: fresh_seed(4 * round + 2),
            oracle: fresh_seed(4 * round + 3),
        };
        println!(
            "soak: round {round} at {:.0} s of {} s: GEN_SEED={} GEN_RUN_SEED={} FUZZ_SEED={} ORACLE_SEED={}",
            started.elapsed().as_secs_f64(),
            budget.as_secs(),
            seeds.gen,
            seeds.gen_run,
            seeds.fuzz,
            seeds.oracle
        );
        std::env::set_var("GEN_SEED", seeds.gen.to_string());
        let images = build::build(Board::Virt, false, &[]).context("building the soak images")?;
        let image = std::fs::canonicalize(&images.image)?;
        let qemu_tests = Cmd::new("cargo")
            .args([
                "test",
                "-q",
                "-p",
                "qemu-tests",
                "--test",
                "transparency",
                "--test",
                "scenarios",
                "--test",
                "smp_probes",
            ])
            .env("BRK_KERNEL_IMAGE_VIRT", image.display().to_string())
            .env("QEMU", qemu.program.as_str());
        // Each step: the xtask command that rebuilds what it boots, and its tests.
        let xtask = |args: &[&str]| Cmd::new("cargo").arg("xtask").args(args.iter().copied());
        let mut steps = vec![(Some(xtask(&["build"])), qemu_tests)];
        match &x86 {
            Ok((qemu_x86, ovmf)) => {
                let efi = std::fs::canonicalize(uefi::build(false).context("building the soak x86_64 kernel")?)?;
                let usb = images_dir.join("x86_64").join("usb").display().to_string();
                steps.push((
                    Some(xtask(&["uefi-image", "--out", &usb])),
                    Cmd::new("cargo")
                        .args(["test", "-q", "-p", "qemu-tests", "--test", "x86_64", "--"])
                        .args(X86_64_TESTS)
                        .env("BRK_KERNEL_EFI", efi.display().to_string())
                        .env("BRK_OVMF", ovmf.display().to_string())
                        .env("QEMU_X86_64", qemu_x86.program.as_str()),
                ));
            }
            Err(why) => println!("soak: round {round} leaves out the x86_64 kernel: {why}"),
        }
        steps.push((
            None,
            Cmd::new("cargo").args(["test", "-q", "-p", "probe-core", "--test", "oracle", "--test", "oracle_x86"]),
        ));
        for (rebuild, cmd) in steps {
            let cmd = seeds.env().into_iter().fold(cmd, |cmd, (key, value)| cmd.env(key, value));
            let (status, output) = cmd.tee_stdout()?;
            checks += output
                .lines()
                .filter_map(|l| l.strip_prefix("test result: ok. "))
                .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
                .sum::<u64>();
            if !status.success() {
                println!("soak: FAILED in round {round} after {:.0} s", started.elapsed().as_secs_f64());
                println!("soak: reproduce with: {}", seeds.reproduce(&images_dir, rebuild.as_ref(), &cmd));
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    println!(
        "soak: {round} rounds, {checks} passing test runs in {:.0} s, no failure",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_between_rounds_and_the_reproduction_line_names_them() {
        let a = fresh_seed(1);
        let b = fresh_seed(2);
        assert_ne!(a, b);
        let seeds = Seeds { gen: 11, gen_run: 22, fuzz: 33, oracle: 44 };
        let images = Path::new("/work/target/images-soak");
        let test = seeds
            .env()
            .into_iter()
            .fold(Cmd::new("cargo").args(["test", "--test", "transparency"]), |cmd, (k, v)| cmd.env(k, v))
            .env("BRK_KERNEL_IMAGE_VIRT", "/work/target/images-soak/virt/kernel.img");
        let line = seeds.reproduce(images, Some(&Cmd::new("cargo").args(["xtask", "build"])), &test);
        assert_eq!(
            line,
            "GEN_SEED=11 BRK_IMAGES_DIR=/work/target/images-soak cargo xtask build && GEN_SEED=11 GEN_RUN_SEED=22 FUZZ_SEED=33 \
             ORACLE_SEED=44 BRK_KERNEL_IMAGE_VIRT=/work/target/images-soak/virt/kernel.img cargo test --test transparency"
        );
        let oracle = Cmd::new("cargo").args(["test", "--test", "oracle"]).env("ORACLE_SEED", "44");
        assert_eq!(seeds.reproduce(images, None, &oracle), "ORACLE_SEED=44 cargo test --test oracle");
    }
}
