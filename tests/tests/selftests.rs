//! A plain boot runs the kernel's self-tests, all pass, and the machine powers off
//! with status 0 (docs/kernel-contract.md, "Self-tests" and "Exit").

use qemu_tests::{boot, parse_selftest_line, parse_selftest_summary, Boot, Selftest};

#[test]
fn plain_boot_passes_every_selftest_and_exits_0() {
    let run = boot(&Boot::default());
    run.expect_exit(0);

    let mut ok = 0;
    for line in run.lines().filter(|l| l.starts_with("selftest ")) {
        match parse_selftest_line(line) {
            Ok(Selftest::Ok { .. }) => ok += 1,
            Ok(Selftest::Failed { name, reason }) => run.fail(&format!("self-test {name} failed: {reason}")),
            Err(why) => run.fail(&format!("malformed self-test line {line:?}: {why}")),
        }
    }
    if ok == 0 {
        run.fail("no `selftest <name>: ok` line");
    }
    run.expect_no_line_containing("FAILED");

    let summaries: Vec<&str> = run.lines().filter(|l| l.starts_with("selftests:")).collect();
    if summaries.len() != 1 {
        run.fail(&format!("expected one `selftests:` summary line, found {summaries:?}"));
    }
    match parse_selftest_summary(summaries[0]) {
        Some((n, 0)) if n == ok => {}
        Some(_) => run.fail(&format!("the summary {:?} does not match the {ok} ok line(s) and 0 failed", summaries[0])),
        None => run.fail(&format!("the summary {:?} is not `selftests: <N> ok, <M> failed`", summaries[0])),
    }
    // The summary closes the self-tests: no result line after it.
    run.expect_lines_in_order(&["selftests:", "power off: status 0 (success)"]);
    if run.lines().skip_while(|l| !l.starts_with("selftests:")).any(|l| l.starts_with("selftest ")) {
        run.fail("a self-test result line follows the summary");
    }
    run.expect_last_line("power off: status 0 (success)");
}
