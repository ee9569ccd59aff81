//! The brk path seen from outside: probes on every class of instruction leave a
//! program's results unchanged, counts are exact, slots are reused, return
//! probes count recursive calls, unregistration is clean, threads wait for
//! slots, bad probe requests are refused with a reason (docs/brk-path.md).

use qemu_tests::{boot, hex_after, hex_field, probed_probe_args, probed_results, Boot, PROBED_POINTS};

#[test]
fn probes_on_every_class_leave_results_identical_under_every_policy() {
    let plain = boot(&Boot::default().append("test=probed"));
    plain.expect_exit(0);
    let expected = probed_results(&plain);
    assert!(expected.len() >= 23, "the unprobed run printed too little");

    for (policy, simulate) in [("reuse", "all"), ("reuse", "branches"), ("fresh", "all"), ("fresh", "branches")] {
        let args = format!(
            "test=probed {} retprobe=probed:fib_rec xol-policy={policy} simulate={simulate}",
            probed_probe_args().join(" ")
        );
        let run = boot(&Boot::default().append(&args));
        run.expect_exit(0);
        if probed_results(&run) != expected {
            run.fail(&format!(
                "{policy}/{simulate}: probed results differ from the unprobed run:\n{:?}\nvs\n{:?}",
                probed_results(&run),
                expected
            ));
        }
        let mut simulated = 0;
        let mut stepped = 1973; // fib_rec's first instruction, `cmp`, is stepped
        for (at, class) in PROBED_POINTS {
            let symbol = format!("probed:{}", at.trim_end_matches("+0x0"));
            let (hits, _) = run.probe_counts(&symbol);
            if hits != 50 {
                run.fail(&format!("{policy}/{simulate}: probe {symbol} counted {hits} hits, expected 50"));
            }
            let is_simulated = *class == "simulate" || (*class == "all-only" && simulate == "all");
            if is_simulated {
                simulated += 50;
            } else {
                stepped += 50;
            }
        }
        let (calls, returns) = run.probe_counts("probed:fib_rec");
        if (calls, returns) != (1973, 1973) {
            run.fail(&format!(
                "fib_rec(15) makes 1973 calls; the return probe counted {calls} entries and {returns} returns"
            ));
        }
        assert_eq!(run.counter("simulated"), simulated, "{policy}/{simulate}: simulated");
        assert_eq!(run.counter("stepped"), stepped, "{policy}/{simulate}: stepped");
        assert_eq!(run.counter("hits"), simulated + stepped, "{policy}/{simulate}: hits");
    }
}

#[test]
fn reuse_writes_the_slot_once_and_fresh_on_every_one_of_100000_hits() {
    for (policy, writes) in [("reuse", 1), ("fresh", 100_000)] {
        let run = boot(
            &Boot::default()
                .append(&format!("test=probed:100000 probe=probed:step_alu xol-policy={policy}"))
                .timeout(qemu_tests::LONG_TIMEOUT),
        );
        run.expect_exit(0);
        assert_eq!(run.probe_counts("probed:step_alu").0, 100_000, "{policy}: hits");
        assert_eq!(run.counter("stepped"), 100_000, "{policy}: stepped");
        assert_eq!(run.counter("slot_written"), writes, "{policy}: slot writes");
        assert_eq!(run.counter("slot_reused"), 100_000 - writes, "{policy}: slot reuses");
        // One 4-byte slot is one D-line and one I-line (on cores without IDC/DIC).
        assert_eq!(run.counter("dc_cvau_lines"), writes, "{policy}: DC CVAU lines");
        assert_eq!(run.counter("ic_ivau_lines"), writes, "{policy}: IC IVAU lines");
        // The default CPU, a Cortex-A72, has a PIPT I-cache: never the whole one.
        assert_eq!(run.counter("ic_iallu"), 0, "{policy}: IC IALLUIS");
    }
}

#[test]
fn unregister_while_two_threads_hit_the_probe() {
    let run = boot(&Boot::default().append("test=probes:unregister,20"));
    run.expect_exit(0);
    run.expect_line_starting("probes: unregister: hits after probe_unregister returned: 0");
    run.expect_line_starting("probes: unregister: text restored after 20 of 20 unregistrations");
    run.expect_line_starting("probes: ok");
}

#[test]
fn more_threads_than_xol_slots_all_finish_with_exact_counts() {
    // One step slot (plus the trampoline's) for eight threads.
    let run = boot(&Boot::default().append("xol-slots=1 test=probes:threads,8,500"));
    run.expect_exit(0);
    run.expect_line_starting("probes: threads: 8 threads x 500 calls, probe hits 4000, expected 4000");
    run.expect_line_starting("probes: ok");
}

#[test]
fn bad_probe_requests_are_refused_with_a_reason_and_nothing_else_is_affected() {
    let requests = [
        ("probed:no_such_function", "probed has no function named 'no_such_function'"),
        ("probed:step_alu+0x2", "is not 4-byte aligned"),
        ("probed:0x10", "is not in probed's text"),
        ("probed:0x7fffff0000", "is in the XOL page"),
        ("probed:refuse_ldaxr", "exclusive load/store"),
        ("probed:refuse_svc", "brk/hlt/svc/hvc/smc/eret"),
        ("probed:refuse_msr", "writes a system register"),
    ];
    let mut args: Vec<String> = requests.iter().map(|(spec, _)| format!("probe={spec}")).collect();
    args.push("probe=probed:cls_nop".into());
    args.push("probe=probed:cls_nop".into()); // twice on the same address
    args.push("test=probed".into());
    let run = boot(&Boot::default().append(&args.join(" ")));
    run.expect_exit(0);
    for (spec, why) in requests {
        let line = run.expect_line_starting(&format!("probe {spec}: refused: "));
        if !line.contains(why) {
            run.fail(&format!("the refusal of {spec} should say {why:?}: {line:?}"));
        }
    }
    let duplicate = run.expect_line_starting("probe probed:cls_nop: refused: ");
    if !duplicate.contains("already probed") {
        run.fail(&format!("a second probe on one address should be refused as such: {duplicate:?}"));
    }
    assert_eq!(run.probe_counts("probed:cls_nop").0, 50);
    run.expect_line_starting("probed: done");
}

#[test]
fn trace_follows_one_breakpoint_through_the_kernel() {
    let run = boot(&Boot::default().append("test=probed:2 probe=probed:step_alu trace"));
    run.expect_exit(0);
    // First hit: tree miss, registry, slot written with cache maintenance, step.
    let lines = run.expect_lines_in_order(&[
        "trace: brk #0x5 at ",
        "trace: tree miss; registry: probe ",
        // The probed instruction, `add x0, x0, x0, lsl #3` (user/probed), disassembled.
        "trace: 0x8b000c00 add x0, x0, x0, lsl #3 runs the same anywhere",
        "trace: slot 1 (NeverWritten): written 0x8b000c00 add x0, x0, x0, lsl #3 through the kernel alias ",
        "trace: eret to slot ",
        "trace: step exception at ",
        // Second hit: the task's own tree, the slot already holds it.
        "trace: brk #0x5 at ",
        "trace: tree hit: probe ",
        "trace: 0x8b000c00 add x0, x0, x0, lsl #3 runs the same anywhere",
        "trace: slot 1 (Remembered): already holds 0x8b000c00 add x0, x0, x0, lsl #3: ",
        "trace: eret to slot ",
        "trace: step exception at ",
    ]);
    // The ESRs' fields, decoded as the Arm ARM lays them out.
    let brk = lines[0];
    let esr = hex_field(brk, "ESR_EL1").unwrap_or_else(|| run.fail(&format!("no ESR_EL1 in {brk:?}")));
    assert_eq!(esr >> 26, 0x3c, "{brk}");
    assert!(
        brk.contains(&format!("(EC 0x3C brk from EL0, IL {}, ISS: comment #{:#x})", esr >> 25 & 1, esr & 0xffff)),
        "{brk}"
    );
    for step in [lines[5], lines[11]] {
        let esr = hex_field(step, "ESR_EL1").unwrap_or_else(|| run.fail(&format!("no ESR_EL1 in {step:?}")));
        assert_eq!(esr >> 26, 0x32, "{step}");
        // ISV (bit 24) set: EX (bit 6) is valid, and an `add` is no load-exclusive.
        assert_eq!((esr >> 24 & 1, esr >> 6 & 1, esr & 0x3f), (1, 0, 0x22), "{step}");
        assert!(
            step.contains("(EC 0x32 software step from EL0, IL 1, ISS: ISV 1, EX 0 not a load-exclusive, IFSC 0x22 debug exception)"),
            "{step}"
        );
    }
}

/// The N, Z, C, V a `b.cond` trace line shows: `(NZCV=1001;`.
fn nzcv_of(line: &str) -> Option<[bool; 4]> {
    let digits = line.split_once("(NZCV=")?.1.get(..4)?;
    let mut flags = [false; 4];
    for (flag, digit) in flags.iter_mut().zip(digits.chars()) {
        *flag = match digit {
            '0' => false,
            '1' => true,
            _ => return None,
        };
    }
    Some(flags)
}

#[test]
fn the_trace_says_why_a_simulated_branch_went_where_it_did() {
    let run = boot(&Boot::default().append("test=probed probe=probed:cls_bcond+4 probe=probed:cls_cbz trace"));
    run.expect_exit(0);
    let resume_of = |line: &str| hex_after(line, "resume at ");
    let address_of = |symbol: &str| {
        let line = run.expect_line_starting(&format!("probe probed:{symbol}: uprobe at "));
        hex_after(line, "uprobe at ").unwrap_or_else(|| run.fail(&format!("no address: {line:?}")))
    };
    // cls_bcond: `cmp x0, #500` then `b.gt 1f`, 3 instructions ahead. Every
    // line says taken or not from N, Z, V as `gt` reads them, and resumes there.
    let bcond = address_of("cls_bcond+4");
    let mut taken = [0, 0];
    for line in run.lines().filter(|line| line.starts_with("trace: simulated 0x5400006c b.gt $+0xc (")) {
        let [n, z, _, v] = nzcv_of(line).unwrap_or_else(|| run.fail(&format!("no NZCV in {line:?}")));
        let was_taken = line.contains("): b.gt taken: ");
        assert!(was_taken || line.contains("): b.gt not taken: "), "{line}");
        assert_eq!(was_taken, !z && n == v, "{line}");
        assert!(line.contains(&format!(" N={} Z={} V={} ", u8::from(n), u8::from(z), u8::from(v))), "{line}");
        assert!(line.contains("; gt: Z=0 and N=V); resume at "), "{line}");
        assert_eq!(resume_of(line), Some(if was_taken { bcond + 0xc } else { bcond + 4 }), "{line}");
        taken[usize::from(was_taken)] += 1;
    }
    assert!(taken[0] > 0 && taken[1] > 0, "b.gt should go both ways over probed's arguments: {taken:?}");
    assert_eq!(taken[0] + taken[1], run.probe_counts("probed:cls_bcond+0x4").0);
    // cls_cbz: `cbz x0, 1f`: the value of x0 decides.
    let cbz = address_of("cls_cbz");
    let mut cbz_lines = 0;
    for line in run.lines().filter(|line| line.starts_with("trace: simulated 0xb4000060 cbz x0, $+0xc (")) {
        let value = hex_after(line, "x0 = ").unwrap_or_else(|| run.fail(line));
        let want = if value == 0 { "cbz taken: " } else { "cbz not taken: " };
        assert!(line.contains(want), "{line}");
        assert_eq!(resume_of(line), Some(if value == 0 { cbz + 0xc } else { cbz + 4 }), "{line}");
        cbz_lines += 1;
    }
    assert_eq!(cbz_lines, run.probe_counts("probed:cls_cbz").0);
}

#[test]
fn the_report_is_json_with_the_documented_fields() {
    let run = boot(&Boot::default().append("test=demo probe=demo:compute retprobe=demo:fib report"));
    run.expect_exit(0);
    let lines: Vec<&str> = run.lines().collect();
    let begin =
        lines.iter().position(|l| *l == "report-json-begin").unwrap_or_else(|| run.fail("no report-json-begin"));
    let end = lines.iter().position(|l| *l == "report-json-end").unwrap_or_else(|| run.fail("no report-json-end"));
    let json: serde_json::Value = serde_json::from_str(&lines[begin + 1..end].join("\n"))
        .unwrap_or_else(|e| run.fail(&format!("the report is not JSON: {e}")));
    let probes = json["probes"].as_array().unwrap_or_else(|| run.fail("no probes array"));
    assert_eq!(probes.len(), 2);
    for probe in probes {
        for field in ["program", "symbol", "address", "kind", "hits", "return_hits"] {
            assert!(!probe[field].is_null(), "probe entry without {field}: {probe}");
        }
        // Nothing unregistered them: they went with demo's address space.
        assert_eq!(probe["retired"], true, "{probe}");
        assert_eq!(probe["retired_by"], "process end", "{probe}");
    }
    let compute = probes.iter().find(|p| p["symbol"] == "compute").expect("compute probe");
    assert_eq!(compute["program"], "demo");
    assert_eq!(compute["kind"], "uprobe");
    assert!(compute["hits"].as_u64().unwrap() >= 1000);
    let fib = probes.iter().find(|p| p["symbol"] == "fib").expect("fib probe");
    assert_eq!(fib["kind"], "uretprobe");
    assert_eq!(fib["hits"], fib["return_hits"]);
    for field in [
        "hits",
        "simulated",
        "stepped",
        "slot_reused",
        "slot_written",
        "dc_cvau_lines",
        "ic_ivau_lines",
        "slot_waits",
        "return_probes_skipped",
        "ic_iallu",
    ] {
        assert!(json["counters"][field].is_u64(), "counters without {field}");
    }
}

#[test]
fn a_fault_in_a_stepped_instruction_is_reported_at_the_probed_address() {
    let run = boot(&Boot::default().append("expect-fault=probed:fault probe=probed:fault_load test=hello"));
    run.expect_exit(0);
    let report = run.expect_line_starting("fault: data abort from EL0 (EC 0x24): translation fault");
    if !report.contains("(stepping a probed instruction out of line)") || !report.contains(" at probed:fault_load;") {
        run.fail(&format!("the fault should be reported at the probed instruction, not in the XOL page: {report:?}"));
    }
    if report.contains("ELR=0x7fffff") {
        run.fail(&format!("the report shows the XOL slot address: {report:?}"));
    }
    run.expect_line_starting("hello from EL0");
}

#[test]
fn interrupts_landing_inside_steps_resume_them_exactly() {
    // A 50 us tick preempts threads all the time, often between the eret to an
    // XOL slot and the step exception; every count must stay exact.
    let run = boot(&Boot::default().append("tick-us=50 xol-slots=2 test=probes:threads,6,400 test=probed probe=probed:step_load+0x8 probe=probed:step_simd+0x4"));
    run.expect_exit(0);
    run.expect_line_starting("probes: threads: 6 threads x 400 calls, probe hits 2400, expected 2400");
    assert_eq!(run.probe_counts("probed:step_load+0x8").0, 50);
    assert_eq!(run.probe_counts("probed:step_simd+0x4").0, 50);
    run.expect_line_starting("probed: done");
}

#[test]
fn a_process_killed_with_a_slot_in_flight_leaves_the_others_running() {
    // preempt-steps: every armed step is interrupted, so on one core the worker
    // is mid-step whenever its sibling runs, and when the sibling commits the
    // fault that kills the process. With more cores the two run at once and
    // the worker may be between calls; with the guest's clock on its
    // instruction count no tick can preempt it between calls at a moment
    // that depends on the host.
    let run = boot(&Boot::default().smp(1).instruction_counted().append(
        "preempt-steps expect-fault=probes:die-stepping test=probed probe=probed:step_load+0x8 probe=probed:step_alu test=probes:threads,4,300",
    ));
    run.expect_exit(0);
    run.expect_line_starting("fault: undefined instruction (EC 0x00) (pid 1 probes die-stepping");
    let line = run.expect_line_starting("task: pid 1 ends with ");
    if !line.contains("probe step(s) in flight") {
        run.fail(&format!("the kill should find a step in flight: {line:?}"));
    }
    // Everyone else, probed and stepping all the time too, is exact.
    assert_eq!(run.probe_counts("probed:step_load+0x8").0, 50);
    assert_eq!(run.probe_counts("probed:step_alu").0, 50);
    run.expect_line_starting("probes: threads: 4 threads x 300 calls, probe hits 1200, expected 1200");
    run.expect_line_starting("probed: done");
}
