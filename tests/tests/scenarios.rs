//! Fault, race and hostile-input scenarios (docs/proving.md), each with the exact
//! lines `user/scenarios` and the kernel must print.

use qemu_tests::{boot, seed_from_env, Boot, Run};

fn expect_all(run: &Run, lines: &[&str]) {
    for line in lines {
        if !run.lines().any(|l| l == *line) {
            run.fail(&format!("no line {line:?}"));
        }
    }
}

#[test]
fn syscall_fuzz_every_call_returns_a_defined_result() {
    let seed = seed_from_env("FUZZ_SEED", 1);
    let run = boot(
        &Boot::default()
            .append(&format!("test=scenarios:fuzz,100000,{seed} test=hello"))
            .timeout(qemu_tests::LONG_TIMEOUT),
    );
    run.expect_no_line_containing("not a value or an ABI error");
    run.expect_exit(0);
    expect_all(&run, &["scenarios: fuzz: 0 undefined results", "scenarios: ok"]);
    run.expect_line_starting(&format!("scenarios: fuzz: 100000 calls (seed {seed}), "));
    run.expect_line_starting("hello from EL0");
}

#[test]
fn bad_registrations_return_errors_and_probes_still_work() {
    let run = boot(&Boot::default().append("test=scenarios:register-bad"));
    run.expect_exit(0);
    expect_all(
        &run,
        &[
            "scenarios: register below the program: invalid argument",
            "scenarios: register in kernel space: invalid argument",
            "scenarios: register unaligned: invalid argument",
            "scenarios: register in data: invalid argument",
            "scenarios: register on the trampoline: invalid argument",
            "scenarios: register in the XOL page: invalid argument",
            "scenarios: register on a stack: invalid argument",
            "scenarios: register with kind 7: invalid argument",
            "scenarios: register on flood_sled: ok",
            "scenarios: register on flood_sled again: already exists",
            "scenarios: register a return probe on flood_sled: already exists",
            "scenarios: unregister twice: invalid argument",
            "scenarios: unregister 999999: invalid argument",
            "scenarios: flood_sled(0) = 17000, probe hits 1",
            "scenarios: ok",
        ],
    );
}

#[test]
fn a_registration_flood_is_refused_at_the_limit_and_the_kernel_goes_on() {
    let run = boot(&Boot::default().append("test=scenarios:flood test=hello").timeout(qemu_tests::LONG_TIMEOUT));
    run.expect_exit(0);
    expect_all(
        &run,
        &[
            "scenarios: flood: 16384 probes registered, probe 16384 refused: out of memory",
            "scenarios: flood: flood_sled(0) = 17000 with every probe hit once: 16384 hits",
            "scenarios: flood: 16384 unregistered",
            "scenarios: flood: after unregistering: register ok, flood_sled(5) = 17005, hits Ok(1)",
            "scenarios: ok",
        ],
    );
    run.expect_line_starting("hello from EL0");
}

#[test]
fn return_probes_past_the_depth_limit_and_non_local_exits() {
    let run = boot(&Boot::default().append("test=scenarios:retdepth,100 test=scenarios:longjmp"));
    run.expect_exit(0);
    expect_all(
        &run,
        &[
            // depth(100) makes 101 calls; 64 returns are armed, the rest skipped.
            "scenarios: retdepth: depth(100) = 100, 101 entries, 64 returns, 37 skipped",
            // Jumps out of every probed call: no return is ever counted, nothing dies.
            "scenarios: longjmp: jumped out of 11 probed calls -> 77: 11 entries, 0 returns; again out of 4 -> 77: 15 entries, 0 returns",
        ],
    );
    if !run.expect_line_starting("counters: ").contains("return_probes_skipped=37") {
        run.fail("return_probes_skipped should be 37");
    }
}

#[test]
fn four_threads_hit_a_probe_unregistered_and_registered_1000_times() {
    let run = boot(&Boot::default().append("test=scenarios:race,1000").timeout(qemu_tests::LONG_TIMEOUT));
    run.expect_exit(0);
    expect_all(
        &run,
        &[
            "scenarios: race: 4 threads, 1000 rounds, hits after unregister 0, text restored 1000 of 1000",
            "scenarios: race: some hits in all, some calls",
            "scenarios: ok",
        ],
    );
}

#[test]
fn el0_abusing_its_xol_page_or_the_probe_brk_is_killed_alone() {
    let run = boot(&Boot::default().append(
        "expect-fault=scenarios:xol-write expect-fault=scenarios:xol-jump,37 expect-fault=scenarios:xol-jump,0 expect-fault=scenarios:own-brk test=hello",
    ));
    run.expect_exit(0);
    for (prefix, contains) in [
        ("fault: data abort from EL0 (EC 0x24): permission fault (level 3) on write (pid 1 scenarios xol-write, tid 1): FAR=0x7fffff0000 ", "; process killed"),
        ("fault: undefined instruction (EC 0x00) (pid 2 scenarios xol-jump 37, tid 2): ELR=0x7fffff0094 ", "; process killed"),
        ("fault: brk (EC 0x3C): the return-probe trampoline, reached with no return probe armed (pid 3 scenarios xol-jump 0, tid 3): ELR=0x7fffff0000 ", "; process killed"),
        ("fault: brk (EC 0x3C): brk #0x5, which no probe owns (pid 4 scenarios own-brk, tid 4): ", " at scenarios:own_brk; process killed"),
    ] {
        let line = run.expect_line_starting(prefix);
        if !line.ends_with(contains) {
            run.fail(&format!("{line:?} should end with {contains:?}"));
        }
    }
    run.expect_no_line_containing("the write to the XOL page succeeded");
    run.expect_no_line_containing("came back from");
    run.expect_line_starting("hello from EL0");
    run.expect_line_starting("tasks: 0 test failure(s)");
}

#[test]
fn a_50_us_tick_interrupts_steps_of_generated_blocks_without_changing_them() {
    // Alone: gen-transparency checks the kernel-wide counters against its own hits.
    let run = boot(
        &Boot::default().append("tick-us=50 xol-slots=2 test=gen-transparency:99").timeout(qemu_tests::LONG_TIMEOUT),
    );
    run.expect_exit(0);
    run.expect_line_starting("gen: ok");
    let run = boot(
        &Boot::default()
            .append("tick-us=50 xol-slots=2 test=scenarios:race,200 test=hello")
            .timeout(qemu_tests::LONG_TIMEOUT),
    );
    run.expect_exit(0);
    expect_all(&run, &["scenarios: race: 4 threads, 200 rounds, hits after unregister 0, text restored 200 of 200"]);
}
