//! `cargo xtask exercise`: the exercises of docs/exercises.md and the check of
//! a learner's answer. Each exercise breaks exactly one step of the brk path on
//! purpose, through a cargo feature that is off in every normal build (the
//! probe core's `exercise-*` features, or the kernel's), and asks which test
//! catches it. The answer is checked by running the tests twice: with the
//! breakage the named test must fail, without it the same test must pass.
//!
//! `cargo xtask test` checks every exercise that way, with a right answer
//! (accepted) and, where the suite is a host one, a wrong one (rejected).

use std::{path::PathBuf, process::ExitCode};

use anyhow::{bail, Result};

use crate::{
    build::{self, Board},
    cmd::Cmd,
    summary::{self, Summary},
};

/// One exercise: what it asks, and the breakage its answer is checked against.
pub struct Exercise {
    /// Its number in docs/exercises.md and on the command line.
    pub number: usize,
    pub title: &'static str,
    pub question: &'static str,
    pub hint: &'static str,
    pub breakage: Breakage,
}

/// A deliberate breakage and the tests that may catch it.
pub enum Breakage {
    /// A feature of the probe core; the answer is one of its library's host tests.
    ProbeCore { feature: &'static str },
    /// A feature of the kernel crate; the answer is a QEMU test in
    /// `tests/tests/<test_file>.rs`, booted on a virt image built with it.
    Kernel { feature: &'static str, test_file: &'static str },
}

impl Breakage {
    /// The cargo feature that breaks the step.
    pub fn feature(&self) -> &'static str {
        match self {
            Breakage::ProbeCore { feature } | Breakage::Kernel { feature, .. } => feature,
        }
    }

    /// Where the answer is to be found, for the learner.
    pub fn suite(&self) -> String {
        match self {
            Breakage::ProbeCore { .. } => "the probe core's host tests (`cargo test -p probe-core --lib`)".into(),
            Breakage::Kernel { test_file, .. } => format!("the QEMU tests of tests/tests/{test_file}.rs"),
        }
    }
}

/// Every exercise, in the order of docs/exercises.md.
pub const EXERCISES: &[Exercise] = &[
    Exercise {
        number: 1,
        title: "the DSB between clean and invalidate",
        question: "The cache sequence in kernel/probe-core/src/cache.rs issues DC CVAU, DSB ISH, IC IVAU, DSB ISH, \
                   ISB. Leave out the first DSB ISH, the one between the cleans and the invalidations. Which test \
                   fails?",
        hint: "QEMU models no caches, so no boot can show it: look at the model of a non-coherent machine in \
               kernel/probe-core/src/cache/tests.rs. What may a refill of a dropped I-line read while the clean \
               is still on its way?",
        breakage: Breakage::ProbeCore { feature: "exercise-skip-dsb-between-clean-and-invalidate" },
    },
    Exercise {
        number: 2,
        title: "the IC IVAU",
        question: "Leave out the IC IVAU of the same sequence (the lines are still counted). Which test fails?",
        hint: "After the clean the point of unification holds the new instruction. Who still holds the old one?",
        breakage: Breakage::ProbeCore { feature: "exercise-skip-ic-ivau" },
    },
    Exercise {
        number: 3,
        title: "a retired probe in the thread's tree",
        question: "BreakpointTree::lookup (kernel/probe-core/src/tree.rs) finds an entry whose probe was \
                   unregistered. Keep the stale entry instead of removing it, as the seed patch did. Which test \
                   fails?",
        hint: "The lookup still refuses to use the entry. What else does the tree promise about it?",
        breakage: Breakage::ProbeCore { feature: "exercise-keep-retired-tree-entries" },
    },
    Exercise {
        number: 4,
        title: "MDSCR_EL1.SS after the step",
        question: "After the step exception, on_step calls Probes::disarm_step, which clears MDSCR_EL1.SS \
                   (kernel/src/arch/aarch64/probe.rs). Leave it set. Which test of tests/tests/probes.rs fails?",
        hint: "The step exception cleared SPSR_EL1.SS; MDSCR_EL1.SS belongs to the core. What does the next eret \
               to EL0 do with MDSCR_EL1.SS=1 and PSTATE.SS=0? The simplest probe test that steps will do.",
        breakage: Breakage::Kernel { feature: "exercise-keep-mdscr-ss-after-step", test_file: "probes" },
    },
    Exercise {
        number: 5,
        title: "frames a longjmp abandoned",
        question: "ReturnStack::pop (kernel/probe-core/src/retstack.rs) first drops the instances entered below \
                   the current SP. Skip that. Which test fails?",
        hint: "Which instances are below the current SP when a probed function returns through the trampoline?",
        breakage: Breakage::ProbeCore { feature: "exercise-keep-abandoned-return-frames" },
    },
    Exercise {
        number: 6,
        title: "the lowest free slot instead of the remembered one",
        question: "Under --xol-policy reuse, choose_slot (kernel/probe-core/src/xol.rs) takes the slot this \
                   breakpoint used last time. Take the lowest free slot instead, as the Linux patch does for a \
                   breakpoint without one. Which test fails?",
        hint: "One probe hit in a loop still finds its instruction in slot 1. What about two probes hit in turn?",
        breakage: Breakage::ProbeCore { feature: "exercise-take-lowest-free-slot" },
    },
];

/// The exercise numbered `number`.
pub fn find(number: usize) -> Result<&'static Exercise> {
    match EXERCISES.iter().find(|e| e.number == number) {
        Some(exercise) => Ok(exercise),
        None => bail!("there is no exercise {number}: they are 1 to {}", EXERCISES.len()),
    }
}

/// The command that checks an answer.
pub fn answer_command(exercise: &Exercise) -> String {
    format!("cargo xtask exercise {} --answer TEST_NAME", exercise.number)
}

/// `cargo xtask exercise [N] [--answer TEST]`: list, show one, or check an answer.
pub fn run(number: Option<usize>, answer: Option<&str>) -> Result<ExitCode> {
    let Some(number) = number else {
        for exercise in EXERCISES {
            println!("{}. {}: {}", exercise.number, exercise.title, answer_command(exercise));
        }
        println!("(the questions and hints: cargo xtask exercise N, or docs/exercises.md)");
        return Ok(ExitCode::SUCCESS);
    };
    let exercise = find(number)?;
    let Some(answer) = answer else {
        print_exercise(exercise);
        return Ok(ExitCode::SUCCESS);
    };
    let runs = run_both(exercise, answer)?;
    let verdict = judge(answer, &runs.broken, &runs.unbroken);
    println!();
    println!("exercise {}: {}", exercise.number, verdict.explain(exercise));
    Ok(if verdict.is_right() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_exercise(exercise: &Exercise) {
    println!("exercise {}: {}", exercise.number, exercise.title);
    println!();
    println!("{}", exercise.question);
    println!();
    println!("hint: {}", exercise.hint);
    println!("the answer is a test in {}", exercise.breakage.suite());
    println!("check it: {}", answer_command(exercise));
}

/// What one `cargo test` run reported, test by test: (full name, status).
pub type Outcomes = Vec<(String, String)>;

/// The same tests with the breakage and without it.
pub struct BothRuns {
    pub broken: Outcomes,
    pub unbroken: Outcomes,
}

/// Every `test <name> ... <status>` line of a libtest transcript.
pub fn outcomes(transcript: &str) -> Outcomes {
    transcript
        .lines()
        .filter_map(summary::parse_test_line)
        .map(|(name, status)| (name.to_string(), status.to_string()))
        .collect()
}

/// Runs the exercise's tests with its breakage and without. For the kernel's
/// breakages only the test named by `answer` is booted (each boot takes seconds).
pub fn run_both(exercise: &Exercise, answer: &str) -> Result<BothRuns> {
    match &exercise.breakage {
        Breakage::ProbeCore { feature } => {
            let tests = |features: &[&str]| -> Result<Outcomes> {
                // A property test failing on purpose must not leave a regression
                // file in the source tree for every later run to replay.
                let cmd = Cmd::new("cargo")
                    .args(["test", "-p", "probe-core", "--lib"])
                    .args(features.iter().copied())
                    .env("PROPTEST_DISABLE_FAILURE_PERSISTENCE", "1");
                Ok(outcomes(&cmd.tee_stdout()?.1))
            };
            println!("exercise {}: the probe core's tests with `{feature}`, then without it", exercise.number);
            Ok(BothRuns { broken: tests(&["--features", feature])?, unbroken: tests(&[])? })
        }
        Breakage::Kernel { feature, test_file } => {
            let qemu = crate::qemu::ensure()?;
            let broken = build::build_with_kernel_feature(Board::Virt, feature)?;
            let unbroken = build::build(Board::Virt, false, &[])?;
            let name = answer.rsplit("::").next().unwrap_or(answer);
            let tests = |image: PathBuf| -> Result<Outcomes> {
                let absolute = std::path::absolute(&image)?;
                let cmd = Cmd::new("cargo")
                    .args(["test", "-p", "qemu-tests", "--test", test_file, "--", "--exact", name])
                    .env(Board::Virt.image_env_var(), absolute.display().to_string())
                    .env("QEMU", qemu.program.as_str());
                Ok(outcomes(&cmd.tee_stdout()?.1))
            };
            println!("exercise {}: {name} on a kernel built with `{feature}`, then on the normal one", exercise.number);
            Ok(BothRuns { broken: tests(broken.image)?, unbroken: tests(unbroken.image)? })
        }
    }
}

/// Whether an answer names a test that catches the breakage.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `test` fails with the breakage and passes without it; `also` are the
    /// other tests that failed with it.
    Right {
        test: String,
        also: Vec<String>,
    },
    Wrong(String),
}

impl Verdict {
    pub fn is_right(&self) -> bool {
        matches!(self, Verdict::Right { .. })
    }

    fn explain(&self, exercise: &Exercise) -> String {
        match self {
            Verdict::Right { test, also } => {
                let mut text =
                    format!("right: {test} fails with `{}` and passes without it", exercise.breakage.feature());
                if !also.is_empty() {
                    text.push_str(&format!("; it was caught by {} other test(s) too: {}", also.len(), also.join(", ")));
                }
                text
            }
            Verdict::Wrong(why) => format!("not this one: {why}"),
        }
    }
}

/// Judges `answer` (a test's full name, or its last `::` part) against what
/// the tests did with the breakage (`broken`) and without it (`unbroken`).
pub fn judge(answer: &str, broken: &Outcomes, unbroken: &Outcomes) -> Verdict {
    let answer = answer.trim();
    let names = |name: &str| name == answer || name.ends_with(&format!("::{answer}"));
    let matching: Vec<&(String, String)> = unbroken.iter().filter(|(name, _)| names(name)).collect();
    let (test, status) = match matching.as_slice() {
        [] => return Verdict::Wrong(format!("no test named {answer} ran")),
        [one] => one,
        several => {
            let full: Vec<&str> = several.iter().map(|(name, _)| name.as_str()).collect();
            return Verdict::Wrong(format!("{answer} names several tests ({}): give the full name", full.join(", ")));
        }
    };
    if status != "ok" {
        return Verdict::Wrong(format!("{test} does not pass even without the breakage ({status})"));
    }
    let failed = |status: &str| status.starts_with("FAILED");
    match broken.iter().find(|(name, _)| name == test) {
        None => Verdict::Wrong(format!("{test} did not run with the breakage (did that build fail?)")),
        Some((_, status)) if !failed(status) => {
            Verdict::Wrong(format!("{test} passes with the breakage too ({status}): it does not catch it"))
        }
        Some(_) => Verdict::Right {
            test: test.clone(),
            also: broken
                .iter()
                .filter(|(name, status)| name != test && failed(status))
                .map(|(n, _)| n.clone())
                .collect(),
        },
    }
}

/// What `cargo xtask test` answers for each exercise: a right answer, and for
/// the host suites a test that passes despite the breakage (a wrong one).
pub const CHECKED_ANSWERS: &[(usize, &str, Option<&str>)] = &[
    (1, "full_sequence_makes_the_new_instruction_visible", Some("without_the_isb_the_fetch_sees_the_old_instruction")),
    (
        2,
        "full_sequence_makes_the_new_instruction_visible",
        Some("without_the_dcache_clean_the_fetch_sees_the_old_instruction"),
    ),
    (
        3,
        "a_retired_entry_is_removed_on_lookup_and_never_used",
        Some("a_miss_then_a_cached_hit_that_remembers_its_slot"),
    ),
    (4, "trace_follows_one_breakpoint_through_the_kernel", None),
    (
        5,
        "a_longjmp_over_probed_frames_discards_them_at_the_next_return",
        Some("a_longjmp_over_probed_frames_discards_them_at_the_next_call"),
    ),
    (6, "two_probes_hit_in_turn_keep_their_own_slots", Some("reuse_writes_the_slot_once_for_many_hits")),
];

/// `cargo xtask test`'s step: every exercise's right answer accepted and its
/// wrong one rejected, each one test of the closing line.
pub fn check_all(summary: &mut Summary) -> Result<()> {
    for &(number, right, wrong) in CHECKED_ANSWERS {
        let exercise = find(number)?;
        let runs = match run_both(exercise, right) {
            Ok(runs) => runs,
            Err(e) => {
                summary.fail(format!("exercise {number}: its tests did not run: {e:#}"));
                continue;
            }
        };
        let verdict = judge(right, &runs.broken, &runs.unbroken);
        println!("exercise {number}, right answer {right}: {}", verdict.explain(exercise));
        if verdict.is_right() {
            summary.pass();
        } else {
            summary.fail(format!("exercise {number}: the right answer {right} was not accepted"));
        }
        if let Some(wrong) = wrong {
            let verdict = judge(wrong, &runs.broken, &runs.unbroken);
            println!("exercise {number}, wrong answer {wrong}: {}", verdict.explain(exercise));
            if verdict.is_right() {
                summary.fail(format!("exercise {number}: the wrong answer {wrong} was accepted"));
            } else {
                summary.pass();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &[(&str, &str)]) -> Outcomes {
        lines.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect()
    }

    #[test]
    fn libtest_lines_become_outcomes() {
        let transcript = "running 3 tests\ntest cache::tests::a ... ok\ntest cache::tests::b ... FAILED\n\
                          test xol::tests::c ... ignored, slow\ntest result: FAILED. 1 passed; 1 failed";
        assert_eq!(
            outcomes(transcript),
            run(&[("cache::tests::a", "ok"), ("cache::tests::b", "FAILED"), ("xol::tests::c", "ignored, slow")])
        );
    }

    #[test]
    fn a_test_that_fails_only_with_the_breakage_is_right() {
        let broken = run(&[("cache::tests::visible", "FAILED"), ("cache::tests::order", "FAILED"), ("x::y", "ok")]);
        let unbroken = run(&[("cache::tests::visible", "ok"), ("cache::tests::order", "ok"), ("x::y", "ok")]);
        let verdict = judge("visible", &broken, &unbroken);
        assert_eq!(
            verdict,
            Verdict::Right { test: "cache::tests::visible".into(), also: vec!["cache::tests::order".into()] }
        );
        assert_eq!(judge("cache::tests::visible", &broken, &unbroken), verdict);
    }

    #[test]
    fn wrong_unknown_ambiguous_and_always_failing_answers_are_rejected() {
        let broken = run(&[("a::t", "FAILED"), ("a::u", "ok"), ("b::u", "ok"), ("c::bad", "FAILED")]);
        let unbroken = run(&[("a::t", "ok"), ("a::u", "ok"), ("b::u", "ok"), ("c::bad", "FAILED")]);
        let wrong = |answer| match judge(answer, &broken, &unbroken) {
            Verdict::Wrong(why) => why,
            right => panic!("{answer} accepted: {right:?}"),
        };
        assert!(wrong("a::u").contains("passes with the breakage too"));
        assert!(wrong("nothing").contains("no test named nothing"));
        assert!(wrong("u").contains("names several tests"));
        assert!(wrong("bad").contains("does not pass even without the breakage"));
        let not_run = judge("t", &Outcomes::new(), &unbroken);
        assert!(matches!(not_run, Verdict::Wrong(why) if why.contains("did not run with the breakage")));
    }

    #[test]
    fn exercises_are_numbered_in_order_and_each_checked_by_the_test_plan() {
        for (index, exercise) in EXERCISES.iter().enumerate() {
            assert_eq!(exercise.number, index + 1);
            assert!(exercise.breakage.feature().starts_with("exercise-"), "{}", exercise.breakage.feature());
            assert!(CHECKED_ANSWERS.iter().any(|&(n, ..)| n == exercise.number), "exercise {} unchecked", index + 1);
        }
        assert!(find(0).is_err() && find(EXERCISES.len() + 1).is_err());
    }

    /// The features are deliberate breakage: declared where the exercise
    /// says, cfg'd in the source, off by default, and enabled by no crate of
    /// the workspace, so the release image is built without them.
    #[test]
    fn breakage_features_exist_default_off_and_nothing_enables_them() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let manifest =
            |path: &str| -> toml::Table { toml::from_str(&std::fs::read_to_string(root.join(path)).unwrap()).unwrap() };
        let probe_core = manifest("kernel/probe-core/Cargo.toml");
        let kernel = manifest("kernel/Cargo.toml");
        for exercise in EXERCISES {
            let feature = exercise.breakage.feature();
            let declared_in = match exercise.breakage {
                Breakage::ProbeCore { .. } => &probe_core,
                Breakage::Kernel { .. } => &kernel,
            };
            assert!(declared_in["features"].get(feature).is_some(), "{feature} is not declared");
            let cfg = format!("feature = \"{feature}\"");
            let sources = ["kernel/probe-core/src", "kernel/src"].map(|dir| root.join(dir));
            let uses: usize = sources.iter().map(|dir| count_in_tree(dir, &cfg)).sum();
            assert!(uses > 0, "{feature} changes no line");
        }
        for default in [&probe_core, &kernel] {
            if let Some(default) = default["features"].get("default") {
                assert!(
                    !format!("{default:?}").contains("exercise-"),
                    "a default feature is an exercise's: {default:?}"
                );
            }
        }
        // No manifest of the workspace turns one on (the kernel's dependency
        // on the probe core names no feature; no other crate names them).
        let workspace = manifest("Cargo.toml");
        for member in workspace["workspace"]["members"].as_array().unwrap() {
            let path = format!("{}/Cargo.toml", member.as_str().unwrap());
            let text = std::fs::read_to_string(root.join(&path)).unwrap();
            let mentions = text.lines().filter(|l| l.contains("exercise-") && !l.trim_start().starts_with('#'));
            let enabling: Vec<&str> = mentions.filter(|l| !l.trim_start().starts_with("exercise-")).collect();
            assert!(enabling.is_empty(), "{path} enables an exercise's breakage: {enabling:?}");
        }
        // And the normal builds pass no feature beyond the board's.
        for board in [Board::Virt, Board::Rpi4] {
            assert!(!board.cargo_features().iter().any(|f| f.contains("exercise-")));
        }
    }

    #[test]
    fn docs_exercises_md_gives_each_exercise_its_command_and_feature() {
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/exercises.md")).unwrap();
        for exercise in EXERCISES {
            let heading = format!("## {}. ", exercise.number);
            let section = docs.split(&heading).nth(1).unwrap_or_else(|| panic!("no section {heading:?}"));
            let section = section.split("\n## ").next().unwrap();
            let command = format!("cargo xtask exercise {} --answer TEST_NAME", exercise.number);
            assert!(section.contains(&command), "section {} lacks `{command}`", exercise.number);
            assert!(section.contains(exercise.breakage.feature()), "section {} lacks its feature", exercise.number);
        }
    }

    fn count_in_tree(dir: &std::path::Path, needle: &str) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .map(|path| {
                if path.is_dir() {
                    count_in_tree(&path, needle)
                } else if path.extension().is_some_and(|e| e == "rs") {
                    std::fs::read_to_string(&path).unwrap().matches(needle).count()
                } else {
                    0
                }
            })
            .sum()
    }
}
