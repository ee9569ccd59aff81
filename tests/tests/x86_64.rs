//! The x86_64 UEFI kernel under OVMF: the same claims as the aarch64 suite where
//! they apply (tasks, faults, bad input, probe counts, transparency on generated
//! programs), with the x86 mechanism (`int3`, RFLAGS.TF, RIP-relative fixups) and
//! no cache maintenance at all.
//!
//! A UEFI boot costs about 5 s before the kernel runs, so each test batches many
//! scenarios into one boot, and a test that needs several boots runs them at once.
//! Every test's name starts with `x86_64_` (`cargo xtask test` runs them apart).

use qemu_tests::{
    boot_uefi, hex_after, probed_results,
    screen::{expect_screen_shows, Finished},
    seed_from_env, Run, UefiBoot, PROBED_POINTS_X86_64,
};
use std::thread;

/// Boots every command line at once (two cores: QEMU runs mostly single-threaded).
fn boot_all(bootargs: &[String]) -> Vec<Run> {
    run_all(bootargs.iter().map(|args| UefiBoot::new(args)).collect())
}

/// Runs every boot at once.
fn run_all(boots: Vec<UefiBoot>) -> Vec<Run> {
    let handles: Vec<_> = boots.into_iter().map(|boot| thread::spawn(move || boot.run())).collect();
    handles.into_iter().map(|h| h.join().expect("a boot thread panicked")).collect()
}

/// The boot arguments that make every fault kind a task test.
fn every_fault() -> String {
    FAULTS.iter().map(|(kind, _)| format!(" expect-fault=faults:{kind}")).collect()
}

/// Each fault kind killed its process alone, with the line it must give.
fn expect_each_fault_killed_alone(run: &Run) {
    for (kind, start) in FAULTS {
        let line = run
            .lines()
            .find(|l| l.starts_with(start) && l.contains(&format!(" faults {kind}, tid ")))
            .unwrap_or_else(|| run.fail(&format!("no {start:?} line for faults {kind}")));
        if !line.contains(" RIP=0x") || !line.ends_with("; process killed") {
            run.fail(&format!("faults {kind}: {line:?}"));
        }
        run.expect_test_ok(&format!("faults {kind}"));
    }
}

/// Each fault kind of `user/faults` on x86_64, and the start of the line it must give.
const FAULTS: &[(&str, &str)] = &[
    ("unmapped-read", "fault: page fault: not present on read"),
    ("null-read", "fault: page fault: not present on read"),
    ("write-rodata", "fault: page fault: protection violation on write"),
    ("write-text", "fault: page fault: protection violation on write"),
    // Vtables and the GOT are in the read-only segment: no call can be redirected.
    ("write-vtable", "fault: page fault: protection violation on write"),
    ("write-got", "fault: page fault: protection violation on write"),
    ("nx-exec", "fault: page fault: protection violation on execute"),
    ("xol-write", "fault: page fault: protection violation on write"),
    ("stack-overflow", "fault: page fault: not present on write"),
    ("undefined", "fault: invalid opcode (#UD)"),
    ("privileged", "fault: general protection (#GP)"),
    ("divide-error", "fault: divide error (#DE)"),
    ("sse", "fault: invalid opcode (#UD)"),
    ("avx", "fault: invalid opcode (#UD)"),
    ("int3", "fault: breakpoint (int3) not placed by a probe"),
    // Every gate but `int3`'s and `int 0x80`'s has DPL 0: the error code names
    // gate 0x41 of the IDT, (0x41 << 3) | 2.
    ("int-unclaimed", "fault: general protection (#GP): selector error code 0x20a"),
];

/// Timer ticks each spinner waits for. While both spinners live, each tick that
/// lands on one of them hands the CPU to another thread (round robin, and the
/// other spinner is always ready), so each is preempted at least `SPIN_TICKS - 1`
/// times whatever the host's speed: the last tick may find the other one gone.
const SPIN_TICKS: u64 = 20;

/// The boot arguments of the whole suite of one boot: tasks, preemption, every
/// fault kind, bad probe specifications.
fn full_suite_bootargs() -> String {
    let mut bootargs =
        String::from("test=hello test=threads:4 test=syscalls bogus-word probe=hello:nosuchsym probe=hello:0x10");
    bootargs.push_str(&format!(" test=spin:a,{SPIN_TICKS},fp test=spin:b,{SPIN_TICKS},fp"));
    bootargs.push_str(&every_fault());
    bootargs
}

/// The self-tests passed, and the unexpected-vector one was reported as such.
fn check_self_tests(run: &Run) {
    run.expect_line_starting("selftests: 9 ok, 0 failed");
    run.expect_lines_in_order(&["irq: unexpected vector 0x41 ignored (no handler)", "selftest unexpected-vectors: ok"]);
}

/// Both spinners were preempted by the tick at least `SPIN_TICKS - 1` times each,
/// and kept their registers across every switch.
fn check_spinners(run: &Run) {
    // Neither spinner ever yields: only the timer's tick can switch between them,
    // the kernel counts each time it did, and each spinner checks its 15
    // registers kept their pattern across every switch.
    for name in ["a", "b"] {
        let checked = run.expect_line_starting(&format!("spin {name}: general registers checked in "));
        if !checked.ends_with(", 0 mismatches") {
            run.fail(&format!("registers changed under preemption: {checked}"));
        }
        run.expect_line_starting(&format!("spin {name}: done"));
        let title = format!("spin {name} {SPIN_TICKS} fp");
        run.expect_test_ok(&title);
        let preempted = run.preemptions(&title);
        if preempted < SPIN_TICKS - 1 {
            run.fail(&format!("spin {name} was preempted only {preempted} times in {SPIN_TICKS} ticks"));
        }
    }
}

/// What a boot with [`full_suite_bootargs`] must print.
fn check_full_suite(run: &Run) {
    run.expect_exit(0);
    run.expect_lines_in_order(&[
        "brk-path kernel ",
        "board:   UEFI PC (firmware ",
        "cpu:     ",
        "entered: ring 0, long mode, UEFI ",
        "ram:     ",
        "caches:  coherent instruction fetch, no cache maintenance for written code",
        "timer:   local APIC timer (",
        "console: GOP framebuffer 1280x800 BGR at 0x",
    ]);
    check_self_tests(run);
    run.expect_line_starting("bootargs: unknown argument 'bogus-word' ignored");
    run.expect_line_starting("probe hello:nosuchsym: refused: hello has no function named 'nosuchsym'");
    run.expect_line_starting("probe hello:0x10: refused: address 0x10 is not in hello's text");
    run.expect_line_starting("boot: first ring-3 instruction at TSC=");
    run.expect_line_starting("hello from ring 3: pid ");
    run.expect_line_starting("threads: counter = 40000");
    run.expect_line_starting("syscalls: 0 checks wrong");
    run.expect_no_line_containing("WRONG");
    check_spinners(run);
    expect_each_fault_killed_alone(run);
    for title in ["hello", "threads 4", "syscalls"] {
        run.expect_test_ok(title);
    }
    let audit = run.expect_line_starting("wx-audit: ");
    if !audit.ends_with(", 0 writable+executable mappings") {
        run.fail(&format!("an address space has a W+X page: {audit}"));
    }
    run.expect_line_starting("tasks: 0 test failure(s)");
    run.expect_last_line("power off: status 0 (success)");
}

#[test]
fn x86_64_boots_runs_tasks_and_kills_each_faulting_process_alone() {
    // The suite's two spinners count their preemptions, which only one
    // processor for all makes certain: with two, the last two processes
    // left would have one each.
    check_full_suite(&UefiBoot::new(&full_suite_bootargs()).smp("1").run());
}

/// The `timer:` banner line says the TSC's frequency came `from` that clock.
fn check_tsc_source(run: &Run, from: &str) {
    let line = run.expect_line_starting("timer:   local APIC timer (");
    if !line.contains(&format!(" Hz (from {from}")) {
        run.fail(&format!("the TSC frequency should come from {from}: {line:?}"));
    }
}

/// A q35 without a PIT (as a chipset that gates the PIT's clock), on the newest
/// CPU model, passes the whole suite: the tick is the local APIC timer, the TSC is
/// measured against the HPET. Without an HPET too, the ACPI PM timer measures the
/// TSC, on the q35 and on the i440fx `pc`; the tick preempts there as well.
#[test]
fn x86_64_q35_without_a_pit_and_pcs_without_an_hpet_tick_from_the_local_apic() {
    let spinners = format!("test=spin:a,{SPIN_TICKS},fp test=spin:b,{SPIN_TICKS},fp");
    let runs = run_all(vec![
        // `-cpu max` offers SMEP, SMAP, XSAVE and AVX: the kernel turns the first
        // two on, and leaves ring 3 no SSE or AVX state it would not save, even
        // when it starts with AVX on, as a PC's firmware may leave it.
        UefiBoot::new(&format!("firmware-left-avx-on {}", full_suite_bootargs()))
            .machine("q35,pit=off")
            .cpu("max")
            .smp("1"),
        // One processor: the two spinners share it, so only the tick switches
        // between them (with two, each would have a processor of its own).
        UefiBoot::new(&spinners).machine("q35,pit=off,hpet=off").smp("1"),
        UefiBoot::new(&spinners).machine("pc,hpet=off").smp("1"),
    ]);
    check_full_suite(&runs[0]);
    check_tsc_source(&runs[0], "the HPET at 0x");
    runs[0].expect_line_starting(
        "firmware-left-avx-on: CR4.OSXSAVE set and XCR0 = x87 | SSE | AVX, as a firmware may leave them",
    );
    runs[0].expect_line_starting("cpu:     NX, WP, global pages on; SMEP on, SMAP on; SSE, AVX (XSAVE) and x87 off");
    for (run, port) in [(&runs[1], "0x608"), (&runs[2], "0xb008")] {
        run.expect_exit(0);
        check_tsc_source(run, &format!("the ACPI PM timer at port {port} "));
        run.expect_line_starting("timer:   no HPET: ");
        check_self_tests(run);
        check_spinners(run);
        run.expect_line_starting("tasks: 0 test failure(s)");
    }
}

#[test]
fn x86_64_a_failing_task_or_a_kernel_fault_fails_the_run_with_its_status() {
    let runs = boot_all(&["test=faults:undefined test=hello".to_string(), "inject=el1-data-abort".to_string()]);
    let failing = &runs[0];
    failing.expect_exit(4);
    failing.expect_line_starting("tasks: 1 test failure(s)");
    failing.expect_test_ok("hello");
    failing.expect_last_line("power off: status 4 (task test failed)");
    let kernel_fault = &runs[1];
    kernel_fault.expect_exit(3);
    kernel_fault.expect_line_starting("unexpected exception: ");
    kernel_fault.expect_last_line("power off: status 3 (unexpected exception)");
}

/// Every probe point of `user/probed` under `policy`/`simulate`, with a return probe
/// on the recursive `fib_rec`.
fn probed_bootargs(policy: &str, simulate: &str) -> String {
    let mut args = format!("test=probed xol-policy={policy} simulate={simulate} report retprobe=probed:fib_rec");
    for (at, _) in PROBED_POINTS_X86_64 {
        args.push_str(&format!(" probe=probed:{at}"));
    }
    args
}

#[test]
fn x86_64_probes_on_every_class_leave_results_identical_under_every_policy() {
    let settings = [("reuse", "all"), ("fresh", "branches")];
    let mut bootargs = vec!["test=probed".to_string()];
    bootargs.extend(settings.iter().map(|(policy, simulate)| probed_bootargs(policy, simulate)));
    let runs = boot_all(&bootargs);
    let plain = &runs[0];
    plain.expect_exit(0);
    let expected = probed_results(plain);
    assert!(expected.len() > PROBED_POINTS_X86_64.len(), "the unprobed run printed too little");

    for ((policy, simulate), run) in settings.iter().zip(&runs[1..]) {
        run.expect_exit(0);
        if probed_results(run) != expected {
            run.fail(&format!("{policy}/{simulate}: probed results differ from the unprobed run:\n{:?}", expected));
        }
        let (mut simulated, mut stepped) = (0, 0);
        for (at, class) in PROBED_POINTS_X86_64 {
            let symbol = format!("probed:{}", at.strip_suffix("+0x0").unwrap_or(at));
            let registered = run.expect_line_starting(&format!("probe probed:{at}: uprobe at "));
            let simulates = *class == "simulate" || (*class == "all-only" && *simulate == "all");
            let treatment_ok =
                if simulates { registered.contains("(simulate ") } else { registered.contains("(step out of line;") };
            if !treatment_ok {
                run.fail(&format!("{policy}/{simulate}: {at} ({class}) registered as {registered:?}"));
            }
            let (hits, _) = run.probe_counts(&symbol);
            assert_eq!(hits, 50, "{policy}/{simulate}: hits of {symbol}");
            if simulates {
                simulated += hits;
            } else {
                stepped += hits;
            }
        }
        // fib_rec(15): 1973 calls, each entry stepped (`cmp rdi, 2`) and each return counted.
        let (calls, returns) = run.probe_counts("probed:fib_rec");
        assert_eq!((calls, returns), (1973, 1973), "{policy}/{simulate}: fib_rec calls and returns");
        stepped += calls;
        assert_eq!(run.counter("simulated"), simulated, "{policy}/{simulate}: simulated");
        assert_eq!(run.counter("stepped"), stepped, "{policy}/{simulate}: stepped");
        assert_eq!(run.counter("hits"), simulated + stepped, "{policy}/{simulate}: hits");
        assert_eq!(run.counter("slot_written") + run.counter("slot_reused"), stepped, "{policy}/{simulate}: slots");
        if *policy == "fresh" {
            assert_eq!(run.counter("slot_written"), stepped, "fresh writes a slot on every step");
        } else {
            assert!(run.counter("slot_written") <= 16, "reuse writes each stepped probe's slot about once");
        }
        // x86 keeps instruction fetch coherent: no cache line is ever maintained.
        assert_eq!(run.counter("dc_cvau_lines"), 0, "{policy}/{simulate}: DC CVAU lines");
        assert_eq!(run.counter("ic_ivau_lines"), 0, "{policy}/{simulate}: IC IVAU lines");
        assert_eq!(run.counter("ic_iallu"), 0, "{policy}/{simulate}: IC IALLUIS");
        run.expect_line_starting("report-json-begin");
        run.expect_line_starting("    \"dc_cvau_lines\": 0,");
        run.expect_line_starting("report-json-end");
    }
}

#[test]
fn x86_64_the_trace_disassembles_and_says_why_a_jcc_went_where_it_did() {
    let run = boot_uefi("test=probed probe=probed:step_rip_load probe=probed:cls_jcc8+0x7 trace");
    run.expect_exit(0);
    // The probed RIP-relative load, then the slot's copy with the operand rewritten.
    run.expect_lines_in_order(&[
        "trace: 48 8b 05 ",
        "trace: slot 1 (NeverWritten): written 48 8b 81 ",
        "trace: iretq to slot ",
        "trace: #DB (vector 1, single step) at ",
    ]);
    let probed = run.expect_line_starting("trace: 48 8b 05 ");
    assert!(probed.contains(" mov rax, qword [rip + 0x"), "{probed}");
    let written = run.expect_line_starting("trace: slot 1 (NeverWritten): written 48 8b 81 ");
    assert!(written.contains(" mov rax, qword [rcx + 0x"), "{written}");
    // cls_jcc8: `cmp rdi, 500` then `jg` (2 bytes, 5 ahead). Every line says
    // taken or not from ZF, SF, OF as `jg` reads them, and resumes there.
    let registered = run.expect_line_starting("probe probed:cls_jcc8+0x7: uprobe at ");
    let jg = hex_after(registered, "uprobe at ").unwrap_or_else(|| run.fail(registered));
    let mut taken = [0, 0];
    for line in run.lines().filter(|line| line.starts_with("trace: simulated 7f 05 jg $+0x5 (")) {
        let rflags = hex_after(line, "(RFLAGS=").unwrap_or_else(|| run.fail(line));
        let [zf, sf, of] = [6, 7, 11].map(|bit| rflags >> bit & 1);
        let was_taken = line.contains("): jg taken: ");
        assert!(was_taken || line.contains("): jg not taken: "), "{line}");
        assert_eq!(was_taken, zf == 0 && sf == of, "{line}");
        assert!(line.contains(&format!(" ZF={zf} SF={sf} OF={of} (RFLAGS=")), "{line}");
        assert_eq!(hex_after(line, "resume at "), Some(if was_taken { jg + 7 } else { jg + 2 }), "{line}");
        taken[usize::from(was_taken)] += 1;
    }
    assert!(taken[0] > 0 && taken[1] > 0, "jg should go both ways over probed's arguments: {taken:?}");
    assert_eq!(taken[0] + taken[1], run.probe_counts("probed:cls_jcc8+0x7").0);
}

#[test]
fn x86_64_probe_system_calls_threads_and_hostile_programs() {
    let runs = boot_all(&[
        "xol-slots=1 test=probes:threads,4,300 test=probes:unregister,20 test=scenarios:register-bad \
         test=scenarios:retdepth,100 test=scenarios:longjmp test=scenarios:race,100 \
         expect-fault=scenarios:xol-write expect-fault=scenarios:xol-jump,37 \
         expect-fault=scenarios:xol-jump,0 expect-fault=scenarios:own-brk test=hello \
         expect-fault=probed:fault probe=probed:fault_load"
            .to_string(),
        // `preempt-steps` switches threads as soon as a step is armed, so with one
        // step slot the next thread to hit must wait for it, whatever the timing.
        "preempt-steps xol-slots=1 test=probes:threads,4,300".to_string(),
    ]);
    let waiting = &runs[1];
    waiting.expect_exit(0);
    waiting.expect_line_starting("probes: threads: 4 threads x 300 calls, probe hits 1200, expected 1200");
    if waiting.counter("slot_waits") == 0 {
        waiting.fail("with xol-slots=1 and preempt-steps some thread must wait for the slot");
    }
    let run = &runs[0];
    run.expect_exit(0);
    for line in [
        "probes: threads: 4 threads x 300 calls, probe hits 1200, expected 1200",
        "probes: unregister: hits after probe_unregister returned: 0",
        "probes: unregister: text restored after 20 of 20 unregistrations",
        "scenarios: register in kernel space: invalid argument",
        "scenarios: register unaligned: skipped (x86_64 instructions have no alignment",
        "scenarios: register on the trampoline: invalid argument",
        "scenarios: register in the XOL page: invalid argument",
        "scenarios: register on a stack: invalid argument",
        "scenarios: register on flood_sled again: already exists",
        "scenarios: flood_sled(0) = 17000, probe hits 1",
        "scenarios: retdepth: depth(100) = 100, 101 entries, 64 returns, 37 skipped",
        "scenarios: longjmp: jumped out of 11 probed calls -> 77: 11 entries, 0 returns; again out of 4 -> 77: 15 entries, 0 returns",
        "scenarios: race: 4 threads, 100 rounds, hits after unregister 0, text restored 100 of 100",
        "fault: page fault: protection violation on write (pid 7 scenarios xol-write, tid ",
        "fault: breakpoint (int3) not placed by a probe (pid 10 scenarios own-brk, tid ",
    ] {
        run.expect_line_starting(line);
    }
    // The slot the thread jumped into was never written: zero bytes, `add [rax], al`
    // with rax = 0. Slot 0 is the trampoline, reached with no return probe armed.
    run.expect_line_starting("fault: page fault: not present on read (pid 8 scenarios xol-jump 37, tid ");
    run.expect_line_starting(
        "fault: breakpoint (int3): the return-probe trampoline, reached with no return probe armed (pid 9 scenarios xol-jump 0, tid ",
    );
    // A fault in the stepped instruction is reported where the program has it, not
    // at the XOL slot it ran in.
    let report = run.expect_line_starting(
        "fault: page fault: not present on read (stepping a probed instruction out of line) (pid 12 probed fault, tid ",
    );
    if !report.contains(" at probed:fault_load;") || report.contains("RIP=0x7fffff") {
        run.fail(&format!("the fault should be reported at the probed instruction: {report:?}"));
    }
    run.expect_test_ok("hello");
    run.expect_line_starting("tasks: 0 test failure(s)");
}

#[test]
fn x86_64_generated_programs_behave_the_same_with_a_probe_on_every_instruction() {
    let settings = [("reuse", "all"), ("reuse", "branches"), ("fresh", "all"), ("fresh", "branches")];
    // `cargo xtask soak` offsets the run seeds (and rebuilds with a new GEN_SEED).
    let base = seed_from_env("GEN_RUN_SEED", 0);
    let bootargs: Vec<String> = settings
        .iter()
        .enumerate()
        .map(|(i, (policy, simulate))| {
            format!("test=gen-transparency:{} xol-policy={policy} simulate={simulate}", base * 4 + i as u64 + 1)
        })
        .collect();
    let mut probed = 0;
    // Two processors in one TCG thread: the blocks step lock-prefixed
    // instructions, which QEMU's multi-threaded TCG gets wrong under
    // RFLAGS.TF (`UefiBoot::single_tcg_thread`).
    let boots = bootargs.iter().map(|args| UefiBoot::new(args).single_tcg_thread()).collect();
    for ((policy, simulate), run) in settings.iter().zip(run_all(boots)) {
        let line = run.line_starting("gen: build seed ").map(String::from).unwrap_or_default();
        if run.line_starting("gen: ok").is_none() || run.status != Some(0) {
            let details: Vec<&str> = run.lines().filter(|l| l.starts_with("gen: ")).take(40).collect();
            run.fail(&format!("{policy}/{simulate}: the probed runs differ\n{}", details.join("\n")));
        }
        if !line.ends_with(" 0 refused, 0 mismatches") {
            run.fail(&format!("{policy}/{simulate}: {line}"));
        }
        probed += line
            .split(", ")
            .find_map(|part| part.strip_suffix(" instructions probed"))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| run.fail(&format!("no probed-instruction count in {line:?}")));
        assert_eq!(run.counter("hits"), run.counter("simulated") + run.counter("stepped"), "{policy}/{simulate}");
        assert_eq!(run.counter("dc_cvau_lines") + run.counter("ic_ivau_lines"), 0, "{policy}/{simulate}");
    }
    assert!(probed >= 10_000, "only {probed} probed instructions");
}

/// The generated programs with every probe sent to its branch trampoline
/// where the instruction is 5 bytes or more and no jump of its block lands
/// inside it (`probe-mode=trampoline`); the rest keep their `int3`.
#[test]
fn x86_64_generated_programs_behave_the_same_through_branch_trampolines() {
    let seed = seed_from_env("GEN_RUN_SEED", 0) * 4 + 5;
    let run = UefiBoot::new(&format!("test=gen-transparency:{seed} probe-mode=trampoline")).single_tcg_thread().run();
    qemu_tests::expect_generated_runs_ok(&run, &format!("trampolines, run seed {seed}"));
    let (hits, trampolined) = (run.counter("hits"), run.counter("trampolined"));
    assert_eq!(hits, trampolined + run.counter("simulated") + run.counter("stepped"), "every hit is counted once");
    assert!(trampolined > 0, "no hit went through a trampoline");
}

#[test]
fn x86_64_syscall_fuzzing_and_a_fast_tick_and_preemption_inside_steps() {
    let runs = run_all(vec![
        // One TCG thread for the generated blocks' lock-prefixed steps
        // (`UefiBoot::single_tcg_thread`).
        UefiBoot::new(&format!(
            "tick-us=50 xol-slots=2 test=scenarios:fuzz,20000,{} test=gen-transparency:99 test=hello",
            seed_from_env("FUZZ_SEED", 1)
        ))
        .single_tcg_thread(),
        // One processor with its clock on the instruction count, no screen to
        // draw (slow under icount): the worker is mid-step whenever its sibling
        // runs (`probes.rs`, `a_process_killed_with_a_slot_in_flight_...`).
        UefiBoot::new(
            "preempt-steps expect-fault=probes:die-stepping test=probed probe=probed:step_load+0x7 \
             probe=probed:step_alu test=probes:threads,4,300",
        )
        .smp("1")
        .display(&["-nographic", "-vga", "none", "-serial", "stdio"])
        .instruction_counted(),
    ]);
    let stepping = &runs[1];
    stepping.expect_exit(0);
    // With `preempt-steps` every armed step is switched away from at once, so the
    // process dies with a step in flight; everyone else, stepping all the time
    // too, is exact.
    stepping.expect_line_starting("fault: invalid opcode (#UD) (pid 1 probes die-stepping, tid ");
    let line = stepping.expect_line_starting("task: pid 1 ends with ");
    if !line.contains("probe step(s) in flight") {
        stepping.fail(&format!("the kill should find a step in flight: {line:?}"));
    }
    assert_eq!(stepping.probe_counts("probed:step_load+0x7").0, 50);
    assert_eq!(stepping.probe_counts("probed:step_alu").0, 50);
    stepping.expect_line_starting("probes: threads: 4 threads x 300 calls, probe hits 1200, expected 1200");
    stepping.expect_line_starting("probed: done");
    let run = &runs[0];
    run.expect_exit(0);
    run.expect_no_line_containing("not a value or an ABI error");
    run.expect_line_starting("scenarios: fuzz: 0 undefined results");
    run.expect_line_starting("gen: ok");
    run.expect_test_ok("hello");
}

#[test]
fn x86_64_a_pc_without_qemus_exit_port_is_powered_off_by_the_firmware() {
    // A real PC has no isa-debug-exit: the kernel powers off through the
    // firmware's ResetSystem, whose runtime code it keeps callable.
    let firmware = UefiBoot::new("test=hello").without_debug_exit().run();
    // QEMU's own status: 0 when the guest powered the machine off.
    firmware.expect_exit(0);
    let paging = firmware.expect_line_starting("paging:  identity map ");
    if !paging.contains("; the firmware's runtime code read-only and executable (") {
        firmware.fail("the firmware's runtime code was not mapped for ResetSystem");
    }
    firmware.expect_test_ok("hello");
    firmware.expect_consecutive_lines(&[
        "power off: status 0 (success)",
        "power off: asking the firmware to power the machine off (ResetSystem, EfiResetShutdown)",
    ]);
    firmware
        .expect_last_line("power off: asking the firmware to power the machine off (ResetSystem, EfiResetShutdown)");
}

/// What the kernel prints last when nobody answers QEMU's exit port: the
/// firmware then powers off, and under `-no-shutdown` QEMU keeps the display.
const POWERING_OFF: &str = "power off: asking the firmware to power the machine off (ResetSystem, EfiResetShutdown)";
/// The kernel's first line: everything before it on COM1 is OVMF's.
const FIRST_LINE: &str = "brk-path kernel ";

#[test]
fn x86_64_the_gop_screen_shows_every_kernel_line_pixel_for_pixel_before_com1_does() {
    // QEMU's standard VGA, which OVMF drives with a GOP (1280x800 BGR), and COM1.
    let (run, screen) = UefiBoot::new("run=hello")
        .display(&["-display", "none", "-vga", "std", "-serial", "stdio"])
        .screendump(Finished::SerialLine(POWERING_OFF));
    run.expect_line_starting(
        "console: GOP framebuffer 1280x800 BGR at 0x80000000, 182x50 text cells; 16550 UART at 0x3f8 (COM1: no SPCR table)",
    );
    run.expect_selftests_pass();
    assert_eq!((screen.width, screen.height), (1280, 800));
    // OVMF's own lines and escape sequences come first on COM1; the kernel's
    // screen starts cleared, with its own first line.
    let Some(start) = run.transcript.find(FIRST_LINE) else { run.fail("no kernel banner on COM1") };
    expect_screen_shows(&run, &screen, &run.transcript[start..]);
}

#[test]
fn x86_64_without_a_serial_port_the_screen_still_shows_the_boot() {
    // q35 with no serial device at all: no 16550 answers at 0x3f8, and the
    // screen is the only console. Its end is read from the screen itself.
    // One processor: without a transcript, the QEMU log's resets of an
    // application processor cannot be matched with the kernel's `cores:` lines.
    let (run, screen) = UefiBoot::new("run=hello")
        .smp("1")
        .machine("q35")
        .display(&["-display", "none", "-vga", "std", "-serial", "none"])
        .screendump(Finished::ScreenRow(POWERING_OFF));
    let rows = screen.height / text_screen::GLYPH_HEIGHT;
    for start in [
        FIRST_LINE,
        "console: GOP framebuffer 1280x800 BGR at 0xc0000000, 182x50 text cells; no 16550 answered at 0x3f8 (COM1: no SPCR table)",
        "selftests: 9 ok, 0 failed",
        "tasks: 0 test failure(s)",
    ] {
        if !(0..rows).any(|row| screen.row_shows(row, start)) {
            run.fail(&format!("no row of the {}x{} screendump starts with {start:?}", screen.width, screen.height));
        }
    }
}

#[test]
fn x86_64_without_a_gop_the_firmware_console_shows_the_banner_until_exit_boot_services() {
    // No display device: OVMF has no GOP, and its ConOut is the terminal it
    // runs on COM1. So the banner's lines come twice there (ConOut's copy and
    // the kernel's own UART's), and the lines after ExitBootServices once.
    let run = UefiBoot::new("run=hello").display(&["-nographic", "-vga", "none", "-serial", "stdio"]).run();
    run.expect_exit(0);
    let console = "console: no screen (the firmware offers no Graphics Output Protocol), firmware ConOut until \
                   ExitBootServices; 16550 UART at 0x3f8 (COM1: no SPCR table)";
    // The harness puts `probe-mode=brk` first (`qemu_tests::BREAKPOINT_PATH`).
    let args = format!("args:    {}", qemu_tests::with_breakpoint_path(Some("run=hello")));
    for (line, times) in [(FIRST_LINE, 2), (console, 2), (args.as_str(), 2), ("selftests: ", 1), ("paging:  ", 1)] {
        let seen = run.lines().filter(|l| l.contains(line)).count();
        if seen != times {
            run.fail(&format!("{line:?} is on COM1 {seen} time(s), not {times}"));
        }
    }
}

/// An ACPI SPCR table (Microsoft's "Serial Port Console Redirection Table",
/// revision 4) without its 36-byte header, which QEMU's `-acpitable` adds:
/// a 16550 at I/O port `port`, 115200 baud, namespace ".".
fn spcr_body(port: u16) -> Vec<u8> {
    let mut body = vec![0u8 /* full 16550 */, 0, 0, 0];
    body.extend([1u8 /* system I/O */, 8, 0, 1 /* byte access */]);
    body.extend(u64::from(port).to_le_bytes());
    body.extend([1u8 /* 8259 interrupt */, 3]);
    body.extend(0u32.to_le_bytes()); // global system interrupt
    body.extend([7u8 /* 115200 */, 0, 1, 0, 0 /* VT100 */, 0]);
    body.extend(0xffffu16.to_le_bytes()); // PCI device id: not a PCI device
    body.extend(0xffffu16.to_le_bytes()); // PCI vendor id
    body.extend([0u8, 0, 0]);
    body.extend(0u32.to_le_bytes()); // PCI flags
    body.push(0); // PCI segment
    body.extend(0u32.to_le_bytes()); // UART clock: unknown
    body.extend(0u32.to_le_bytes()); // precise baud rate: the configured one
    body.extend(2u16.to_le_bytes()); // namespace string length
    body.extend(88u16.to_le_bytes()); // its offset: right after these fields
    body.extend(b".\0");
    body
}

#[test]
fn x86_64_the_uart_is_the_one_the_spcr_table_names() {
    // The SPCR says the console is COM2 (0x2f8), where the kernel writes; OVMF
    // writes its own lines to both ports, COM1 discarded here.
    let table = std::env::temp_dir().join(format!("brk-spcr-{}.bin", std::process::id()));
    std::fs::write(&table, spcr_body(0x2f8)).expect("writing the SPCR table");
    let acpitable = format!("sig=SPCR,rev=4,data={}", table.display());
    let run = UefiBoot::new("run=hello")
        .display(&["-display", "none", "-vga", "std", "-acpitable", &acpitable, "-serial", "null", "-serial", "stdio"])
        .run();
    let _ = std::fs::remove_file(&table);
    run.expect_exit(0);
    if run.lines().filter(|l| l.starts_with(FIRST_LINE)).count() != 1 {
        run.fail("the kernel's first line is not on COM2 once");
    }
    run.expect_line_starting(
        "console: GOP framebuffer 1280x800 BGR at 0x80000000, 182x50 text cells; 16550 UART at 0x2f8 (SPCR)",
    );
    if !run.expect_line_starting("acpi:    ").contains(" SPCR") {
        run.fail("the acpi: line does not list the SPCR table");
    }
}
