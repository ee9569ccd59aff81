//! Reading what libtest printed and adding it up into the one closing line of
//! `cargo xtask test`: `N passed, N failed` (`, N skipped` when something was).

use std::fmt::Write as _;

/// The counts of one `test result:` line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

/// Parses libtest's per-binary closing line:
/// `test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s`
/// (`FAILED.` instead of `ok.` when something failed).
pub fn parse_result_line(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_verdict, rest) = rest.split_once(". ")?;
    let mut counts = Counts::default();
    let mut seen_passed = false;
    for field in rest.split(';') {
        let mut words = field.split_whitespace();
        let (Some(number), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = number.parse::<u64>() else {
            continue;
        };
        match what {
            "passed" => {
                counts.passed = n;
                seen_passed = true;
            }
            "failed" => counts.failed = n,
            "ignored" => counts.ignored = n,
            _ => {}
        }
    }
    seen_passed.then_some(counts)
}

/// A test that did not run, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    pub test: String,
    pub reason: String,
}

/// Everything read from one `cargo test` run's stdout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The sum over every `test result:` line.
    pub counts: Counts,
    /// How many `test result:` lines there were (one per test binary and doc-test run).
    pub result_lines: usize,
    /// Tests printed as `test <name> ... ignored[, <reason>]`.
    pub ignored: Vec<Skip>,
    /// Tests printed as `test <name> ... FAILED`.
    pub failed: Vec<String>,
}

/// Reads a whole libtest transcript (the default "pretty" format).
pub fn parse_libtest_output(text: &str) -> Report {
    let mut report = Report::default();
    for line in text.lines() {
        if let Some(c) = parse_result_line(line) {
            report.counts.passed += c.passed;
            report.counts.failed += c.failed;
            report.counts.ignored += c.ignored;
            report.result_lines += 1;
        } else if let Some((name, status)) = parse_test_line(line) {
            if let Some(after) = status.strip_prefix("ignored") {
                let reason = after.strip_prefix(", ").map(str::trim).filter(|r| !r.is_empty());
                report.ignored.push(Skip {
                    test: name.to_string(),
                    reason: reason.unwrap_or("ignored (no reason given)").to_string(),
                });
            } else if status.starts_with("FAILED") {
                report.failed.push(name.to_string());
            }
        }
    }
    report
}

/// `test <name> ... <status>` → (name, status).
pub fn parse_test_line(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("test ")?;
    let (name, status) = rest.split_once(" ... ")?;
    Some((name.trim(), status.trim()))
}

/// The whole `cargo xtask test` tally.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub passed: u64,
    pub failed: u64,
    /// Every skip, named, with its reason (libtest's ignored tests and the plan's own skips).
    pub skips: Vec<Skip>,
    /// One line per failure, for the recap before the closing line.
    pub failures: Vec<String>,
}

impl Summary {
    /// Adds one cargo test run. A run whose cargo exited non-zero without reporting a
    /// failed test (a compile error, a crashed test binary) counts as one failure, so
    /// the closing line cannot say `0 failed` about a run that did not finish.
    pub fn add_run(&mut self, label: &str, report: &Report, cargo_succeeded: bool, cargo_status: &str) {
        self.passed += report.counts.passed;
        self.failed += report.counts.failed;
        for name in &report.failed {
            self.failures.push(format!("{label}: {name}"));
        }
        let unnamed = report.counts.failed.saturating_sub(report.failed.len() as u64);
        if unnamed > 0 {
            self.failures.push(format!("{label}: {unnamed} more failed test(s), see above"));
        }
        self.skips.extend(
            report.ignored.iter().map(|s| Skip { test: format!("{label}: {}", s.test), reason: s.reason.clone() }),
        );
        let unnamed = report.counts.ignored.saturating_sub(report.ignored.len() as u64);
        for _ in 0..unnamed {
            self.skips.push(Skip { test: format!("{label}: (unnamed)"), reason: "ignored".into() });
        }
        if !cargo_succeeded && report.counts.failed == 0 {
            self.fail(format!(
                "{label}: cargo test ended with {cargo_status} without reporting a failed test (a build error or a crashed test binary)"
            ));
        }
    }

    /// A pass that is not a libtest test (a command of `cargo xtask check`).
    pub fn pass(&mut self) {
        self.passed += 1;
    }

    /// A failure that is not a libtest test (a step that could not run).
    pub fn fail(&mut self, what: String) {
        self.failed += 1;
        self.failures.push(what);
    }

    pub fn skip(&mut self, test: String, reason: String) {
        self.skips.push(Skip { test, reason });
    }

    pub fn succeeded(&self) -> bool {
        self.failed == 0 && self.passed > 0
    }

    /// `N passed, N failed`, plus `, N skipped` only when something was skipped.
    pub fn closing_line(&self) -> String {
        let mut line = format!("{} passed, {} failed", self.passed, self.failed);
        if !self.skips.is_empty() {
            let _ = write!(line, ", {} skipped", self.skips.len());
        }
        line
    }

    /// The recap: `SKIP` and `FAIL` lines, then the closing line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.skips {
            let _ = writeln!(out, "SKIP {}: {}", s.test, s.reason);
        }
        for f in &self.failures {
            let _ = writeln!(out, "FAIL {f}");
        }
        out.push_str(&self.closing_line());
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_parse() {
        assert_eq!(
            parse_result_line(
                "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"
            ),
            Some(Counts { passed: 12, failed: 0, ignored: 1 })
        );
        assert_eq!(
            parse_result_line(
                "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.52s"
            ),
            Some(Counts { passed: 3, failed: 2, ignored: 0 })
        );
        assert_eq!(parse_result_line("running 3 tests"), None);
        assert_eq!(parse_result_line("test foo ... ok"), None);
        assert_eq!(parse_result_line("test result: garbage"), None);
    }

    const TRANSCRIPT: &str = "\
running 4 tests
test qemu::tests::parses ... ok
test banner_on_cortex_a53 ... FAILED
test raspi4b_banner ... ignored, needs QEMU >= 9
test slow_one ... ignored

failures:

---- banner_on_cortex_a53 stdout ----
test result: this line is test output, not a result

failures:
    banner_on_cortex_a53

test result: FAILED. 1 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.40s

running 0 tests

test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    #[test]
    fn a_transcript_adds_up() {
        let report = parse_libtest_output(TRANSCRIPT);
        assert_eq!(report.counts, Counts { passed: 1, failed: 1, ignored: 2 });
        assert_eq!(report.result_lines, 2);
        assert_eq!(report.failed, ["banner_on_cortex_a53"]);
        assert_eq!(
            report.ignored,
            [
                Skip { test: "raspi4b_banner".into(), reason: "needs QEMU >= 9".into() },
                Skip { test: "slow_one".into(), reason: "ignored (no reason given)".into() },
            ]
        );
    }

    #[test]
    fn closing_line_mentions_skips_only_when_there_are_some() {
        let mut summary = Summary::default();
        let ok = Report { counts: Counts { passed: 5, failed: 0, ignored: 0 }, result_lines: 1, ..Default::default() };
        summary.add_run("host", &ok, true, "exit status: 0");
        assert_eq!(summary.closing_line(), "5 passed, 0 failed");
        assert!(summary.succeeded());

        summary.add_run("qemu", &parse_libtest_output(TRANSCRIPT), false, "exit status: 101");
        assert_eq!(summary.closing_line(), "6 passed, 1 failed, 2 skipped");
        assert!(!summary.succeeded());
        let rendered = summary.render();
        assert!(rendered.contains("SKIP qemu: raspi4b_banner: needs QEMU >= 9\n"), "{rendered}");
        assert!(rendered.contains("FAIL qemu: banner_on_cortex_a53\n"), "{rendered}");
        assert!(rendered.ends_with("6 passed, 1 failed, 2 skipped\n"), "{rendered}");
    }

    #[test]
    fn a_run_that_failed_without_a_failed_test_is_a_failure() {
        let mut summary = Summary::default();
        summary.add_run("host", &Report::default(), false, "exit status: 101");
        assert_eq!(summary.closing_line(), "0 passed, 1 failed");
        assert!(summary.failures[0].contains("build error"));
    }

    #[test]
    fn nothing_run_is_not_success() {
        let mut summary = Summary::default();
        summary.add_run("host", &Report { result_lines: 1, ..Default::default() }, true, "exit status: 0");
        assert_eq!(summary.closing_line(), "0 passed, 0 failed");
        assert!(!summary.succeeded());
    }

    #[test]
    fn plan_skips_count() {
        let mut summary = Summary { passed: 1, ..Default::default() };
        summary.skip("kernel on QEMU raspi4b".into(), "QEMU 7.2.0 has no raspi4b".into());
        assert_eq!(summary.closing_line(), "1 passed, 0 failed, 1 skipped");
        assert!(summary.render().starts_with("SKIP kernel on QEMU raspi4b: QEMU 7.2.0 has no raspi4b\n"));
    }
}
