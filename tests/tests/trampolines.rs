//! Probes through branch trampolines (`probe-mode=trampoline`; docs/brk-path.md,
//! "One exception instead of two") on aarch64: every class of instruction of
//! `user/probed` runs displaced in its trampoline with the program's results
//! unchanged and one exception per hit; the trace shows the trampoline call;
//! a fault in a displaced instruction is reported at the probed address (and
//! ends its process with the thread inside the trampoline); unregistering
//! while other cores hit restores the text; the report says each probe's mode.
//! The x86_64 ones are in `x86_64.rs`, the generated programs in
//! `transparency.rs`.

use qemu_tests::{boot, probed_probe_args, probed_results, Boot, Run, LONG_TIMEOUT, PROBED_POINTS};

/// The JSON report between its marker lines.
fn json_report(run: &Run) -> serde_json::Value {
    let text: Vec<&str> =
        run.lines().skip_while(|l| *l != "report-json-begin").skip(1).take_while(|l| *l != "report-json-end").collect();
    serde_json::from_str(&text.join("\n")).unwrap_or_else(|e| run.fail(&format!("the report is not JSON: {e}")))
}

/// The registration line of the command-line probe `spec` (`probe SPEC: ...`).
#[track_caller]
fn registration<'a>(run: &'a Run, spec: &str) -> &'a str {
    run.expect_line_starting(&format!("probe {spec}: "))
}

#[test]
fn every_class_runs_displaced_in_its_trampoline_with_results_unchanged() {
    let plain = boot(&Boot::default().append("test=probed"));
    plain.expect_exit(0);
    let expected = probed_results(&plain);

    let args =
        format!("test=probed {} retprobe=probed:fib_rec probe-mode=trampoline report", probed_probe_args().join(" "));
    let run = boot(&Boot::default().append(&args));
    run.expect_exit(0);
    if probed_results(&run) != expected {
        run.fail(&format!(
            "probed results differ from the unprobed run:\n{:?}\nvs\n{:?}",
            probed_results(&run),
            expected
        ));
    }
    for (at, _) in PROBED_POINTS {
        let symbol = format!("probed:{}", at.trim_end_matches("+0x0"));
        let line = registration(&run, &format!("probed:{at}"));
        if !line.contains("(trampoline at 0x") {
            run.fail(&format!("every A64 class of user/probed is relocatable; {symbol} is not: {line:?}"));
        }
        assert_eq!(run.probe_counts(&symbol).0, 50, "{symbol}");
    }
    assert_eq!(run.probe_counts("probed:fib_rec"), (1973, 1973), "fib_rec(15) makes 1973 calls");
    // Planted before the program ran: no hit ever met a breakpoint, no slot was written.
    let hits = run.counter("hits");
    assert_eq!(run.counter("trampolined"), hits, "every hit went through its trampoline");
    assert_eq!(run.counter("simulated") + run.counter("stepped") + run.counter("slot_written"), 0);
    assert_eq!(hits, 50 * PROBED_POINTS.len() as u64 + 1973);

    let report = json_report(&run);
    assert_eq!(report["options"]["probe_mode"], "trampoline");
    for probe in report["probes"].as_array().expect("probes") {
        assert_eq!(probe["mode"], "trampoline", "{probe}");
        assert_eq!(probe["no_trampoline"], serde_json::Value::Null, "{probe}");
    }
}

#[test]
fn the_trace_shows_one_exception_per_hit() {
    let run = boot(&Boot::default().append("test=probed probe=probed:step_load+0x8 probe-mode=trampoline trace"));
    run.expect_exit(0);
    let calls = run.lines().filter(|l| l.starts_with("trace: svc #0xb7e from the trampoline at 0x")).count();
    let displaced = run.lines().filter(|l| l.starts_with("trace: ") && l.contains(" runs displaced at 0x")).count();
    assert_eq!((calls, displaced), (50, 50), "one trampoline call and one displaced run per hit");
    run.expect_no_line_containing("trace: brk #0x5");
    run.expect_no_line_containing("single step");
    assert_eq!(run.probe_counts("probed:step_load+0x8").0, 50);
}

#[test]
fn a_fault_in_a_displaced_instruction_is_reported_at_the_probed_address() {
    let run = boot(
        &Boot::default().append("expect-fault=probed:fault probe=probed:fault_load probe-mode=trampoline test=hello"),
    );
    run.expect_exit(0);
    registration(&run, "probed:fault_load");
    let report = run.expect_line_starting("fault: data abort from EL0 (EC 0x24): translation fault");
    if !report.contains("(in a probed instruction displaced to its trampoline at 0x")
        || !report.contains(" at probed:fault_load;")
    {
        run.fail(&format!("the fault should be reported at the probed instruction: {report:?}"));
    }
    // Its process ended with the thread inside the trampoline; the others ran on.
    run.expect_line_starting("hello from EL0");
}

#[test]
fn a_worker_on_every_core_hits_a_trampolined_probe_that_core_0_keeps_registering_and_unregistering() {
    let run = boot(&Boot::default().append("probe-mode=trampoline test=scenarios:race,300").timeout(LONG_TIMEOUT));
    run.expect_exit(0);
    run.expect_line_starting(
        "scenarios: race: 4 threads, 300 rounds, hits after unregister 0, text restored 300 of 300",
    );
    run.expect_line_starting("scenarios: race: some hits in all, some calls");
    let hits = run.counter("hits");
    let trampolined = run.counter("trampolined");
    if hits != trampolined + run.counter("simulated") + run.counter("stepped") || trampolined == 0 {
        run.fail("every hit is trampolined, simulated or stepped, and some went through the trampoline");
    }
}

#[test]
fn unregistering_while_two_threads_hit_restores_the_text() {
    let run = boot(&Boot::default().append("probe-mode=trampoline test=probes:unregister,20"));
    run.expect_exit(0);
    run.expect_line_starting("probes: unregister: hits after probe_unregister returned: 0");
    run.expect_line_starting("probes: unregister: text restored after 20 of 20 unregistrations");
    run.expect_line_starting("probes: ok");
    assert!(run.counter("trampolined") > 0, "the probe should have had a trampoline");
}

#[test]
fn the_breakpoint_mode_stays_the_default_and_the_report_says_so() {
    let run = boot(&Boot::default().append("test=probed probe=probed:cls_nop report"));
    run.expect_exit(0);
    let line = registration(&run, "probed:cls_nop");
    assert!(line.contains("(simulate nop; "), "{line}");
    let report = json_report(&run);
    assert_eq!(report["options"]["probe_mode"], "brk");
    assert_eq!(report["probes"][0]["mode"], "brk");
    assert_eq!(run.counter("trampolined"), 0);
}

/// `user/probed`'s x86_64 probe points that must run displaced in a
/// trampoline: instructions of at least 5 bytes that no jump lands inside (the
/// 5- and 9-byte nops, `jmp rel32`, `jb rel32`, a RIP-relative load, `movabs`,
/// the 15-byte instruction); and ones that must keep their `int3`, with the
/// reason the registration line gives.
const X86_TRAMPOLINED: &[&str] = &[
    "cls_nop5+0x0",
    "cls_nop9+0x0",
    "cls_jmp32+0x0",
    "cls_jcc32+0x7",
    "step_rip_load+0x0",
    "step_movabs+0x0",
    "step_max_length+0x0",
];
const X86_KEPT: &[(&str, &str)] = &[
    ("cls_nop+0x0", "no trampoline: the instruction is 1 bytes, shorter than a 5-byte jmp rel32"),
    ("cls_push+0x0", "no trampoline: the instruction is 1 bytes, shorter than a 5-byte jmp rel32"),
    ("cls_ret+0x4", "no trampoline: the instruction is 1 bytes, shorter than a 5-byte jmp rel32"),
    ("cls_call+0x4", "no trampoline: call rel32 is not relocated into trampolines"),
];

#[test]
fn x86_64_long_instructions_run_displaced_in_their_trampolines_and_short_ones_keep_their_int3() {
    use qemu_tests::{UefiBoot, PROBED_POINTS_X86_64};
    let probes: String = PROBED_POINTS_X86_64.iter().map(|(at, _)| format!(" probe=probed:{at}")).collect();
    let runs: Vec<Run> = ["test=probed".to_string(), format!("test=probed probe-mode=trampoline report{probes}")]
        .into_iter()
        .map(|args| std::thread::spawn(move || UefiBoot::new(&args).run()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|boot| boot.join().expect("a boot thread panicked"))
        .collect();
    let (plain, run) = (&runs[0], &runs[1]);
    plain.expect_exit(0);
    run.expect_exit(0);
    if probed_results(run) != probed_results(plain) {
        run.fail("probed results differ from the unprobed run");
    }
    let mut trampolined = 0;
    for (at, _) in PROBED_POINTS_X86_64 {
        let line = registration(run, &format!("probed:{at}"));
        let symbol = format!("probed:{}", at.strip_suffix("+0x0").unwrap_or(at));
        let hits = run.probe_counts(&symbol).0;
        assert_eq!(hits, 50, "{symbol}");
        if line.contains("(trampoline at 0x") {
            trampolined += hits;
        } else if !line.contains(", no trampoline: ") {
            run.fail(&format!("{at} has neither a trampoline nor a reason: {line:?}"));
        }
        if X86_TRAMPOLINED.contains(at) && !line.contains("(trampoline at 0x") {
            run.fail(&format!("{at} should run displaced in a trampoline: {line:?}"));
        }
        if let Some((_, why)) = X86_KEPT.iter().find(|(kept, _)| kept == at) {
            if !line.contains(why) {
                run.fail(&format!("{at} should keep its int3 because {why:?}: {line:?}"));
            }
        }
    }
    assert_eq!(run.counter("trampolined"), trampolined);
    assert_eq!(run.counter("hits"), run.counter("trampolined") + run.counter("simulated") + run.counter("stepped"));
    let report = json_report(run);
    let modes: Vec<&str> =
        report["probes"].as_array().expect("probes").iter().filter_map(|p| p["mode"].as_str()).collect();
    let with_trampolines = modes.iter().filter(|m| **m == "trampoline").count() as u64;
    assert_eq!(with_trampolines * 50, trampolined, "{modes:?}");
}

#[test]
fn x86_64_a_fault_in_a_displaced_instruction_is_reported_at_the_probed_address() {
    let run =
        qemu_tests::boot_uefi("probe-mode=trampoline expect-fault=probed:fault probe=probed:fault_load test=hello");
    run.expect_exit(0);
    let line = registration(&run, "probed:fault_load");
    if line.contains("(trampoline at 0x") {
        let report = run.expect_line_starting("fault: page fault");
        if !report.contains("(in a probed instruction displaced to its trampoline at 0x")
            || !report.contains(" at probed:fault_load;")
        {
            run.fail(&format!("the fault should be reported at the probed instruction: {report:?}"));
        }
    } else {
        run.fail(&format!("fault_load's load should be long enough for a jmp rel32: {line:?}"));
    }
    run.expect_line_starting("hello from ");
}
