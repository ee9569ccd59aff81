//! The x86_64 UEFI kernel on more than one processor (q35 under OVMF): every
//! processor the ACPI MADT lists is started with INIT-SIPI-SIPI and named by
//! its APIC id in one `cores:` line, `cores=N` leaves the rest parked, the
//! processors the MADT lists as not enabled are reported, and one that never
//! answers (`inject=ap-no-sipi`) is reported by name while the kernel goes on.
//! Each run still ends with its program's status 0, and its QEMU log stays
//! clean: no reset beyond the start-up's, the firmware's INITs and one INIT
//! per processor the kernel started (tests/src/lib.rs).
//!
//! Only lines and exit statuses are asserted, never times. Every test's name
//! starts with `x86_64_` (`cargo xtask test` runs them with the x86_64 suite).

use qemu_tests::{Run, UefiBoot};
use std::thread;

/// The program every run ends with.
const PROGRAM: &str = "test=hello";

/// A q35 boot with `-smp smp` and `bootargs` after [`PROGRAM`].
fn q35(smp: &str, bootargs: &str) -> UefiBoot {
    UefiBoot::new(&format!("{PROGRAM} {bootargs}")).machine("q35").smp(smp)
}

/// Runs every boot at once.
fn run_all(boots: Vec<UefiBoot>) -> Vec<Run> {
    let handles: Vec<_> = boots.into_iter().map(|boot| thread::spawn(move || boot.run())).collect();
    handles.into_iter().map(|h| h.join().expect("a boot thread panicked")).collect()
}

/// The run's program passed and the kernel exited with status 0.
fn expect_program_passed(run: &Run) {
    run.expect_test_ok("hello");
    run.expect_exit(0);
}

#[test]
fn x86_64_smp_every_processor_comes_up_named_by_its_apic_id() {
    let runs = run_all(vec![q35("2", ""), q35("4", "")]);
    runs[0]
        .expect_consecutive_lines(&["cores:   core 0 (APIC id 0) up: the boot core", "cores:   core 1 (APIC id 1) up"]);
    runs[1].expect_consecutive_lines(&[
        "cores:   core 0 (APIC id 0) up: the boot core",
        "cores:   core 1 (APIC id 1) up",
        "cores:   core 2 (APIC id 2) up",
        "cores:   core 3 (APIC id 3) up",
    ]);
    for run in &runs {
        run.expect_no_line_containing("not started");
        run.expect_no_line_containing("did not answer");
        expect_program_passed(run);
    }
}

#[test]
fn x86_64_smp_cores_parked_not_enabled_and_not_answering_are_reported() {
    let runs = run_all(vec![q35("4", "cores=2"), q35("2,maxcpus=4", ""), q35("4", "inject=ap-no-sipi")]);

    // cores=2: the boot core and the first other one; the rest stay parked.
    runs[0].expect_consecutive_lines(&[
        "cores:   core 0 (APIC id 0) up: the boot core",
        "cores:   core 1 (APIC id 1) up",
        "cores:   APIC id 2 left parked (cores=2 asked for 2 core(s))",
        "cores:   APIC id 3 left parked (cores=2 asked for 2 core(s))",
    ]);

    // Two processors present, two more possible: QEMU's MADT lists those
    // two as not enabled, and they are reported in one line.
    runs[1].expect_consecutive_lines(&[
        "cores:   core 0 (APIC id 0) up: the boot core",
        "cores:   core 1 (APIC id 1) up",
        "cores:   not started, as the MADT says: APIC id 2 ",
    ]);
    let not_started = runs[1].expect_line_starting("cores:   not started, as the MADT says:");
    for id in [2, 3] {
        if !not_started.contains(&format!("APIC id {id} ")) {
            runs[1].fail(&format!("APIC id {id} is not among the processors reported not started"));
        }
    }

    // The last processor gets INIT and no STARTUP: reported by name, and the
    // kernel goes on with the others.
    runs[2].expect_consecutive_lines(&[
        "cores:   inject=ap-no-sipi: APIC id 3 gets INIT and no STARTUP IPI",
        "cores:   core 0 (APIC id 0) up: the boot core",
        "cores:   core 1 (APIC id 1) up",
        "cores:   core 2 (APIC id 2) up",
        "cores:   APIC id 3 did not answer within 1000 ms: going on without it",
    ]);

    for run in &runs {
        expect_program_passed(run);
    }
}

/// Probes hit on both processors at once (docs/brk-path.md, "Several cores at
/// once"): the race scenario, whose workers 0 and 1 are pinned on the two
/// processors while the main thread registers and unregisters the probe they
/// call, with the XOL page's slots and with one slot for all; and generated
/// blocks with a probe on every instruction, one run pinned on each
/// processor. The generated runs use one TCG thread for both processors
/// (`UefiBoot::single_tcg_thread`: QEMU's multi-threaded TCG steps their
/// lock-prefixed instructions wrongly); the race runs use one thread each.
#[test]
fn x86_64_smp_probes_are_hit_on_both_processors_at_once() {
    let runs = run_all(vec![
        UefiBoot::new("test=scenarios:race,200").smp("2"),
        UefiBoot::new("xol-slots=1 test=scenarios:race,200").smp("2"),
        UefiBoot::new("test=gen-transparency:40,0 test=gen-transparency:41,1").smp("2").single_tcg_thread(),
    ]);
    for run in &runs[..2] {
        run.expect_exit(0);
        run.expect_line_starting(
            "scenarios: race: 4 threads, 200 rounds, hits after unregister 0, text restored 200 of 200",
        );
        for core in 0..2 {
            run.expect_line_starting(&format!("scenarios: race: worker {core} pinned, ran on core {core}, some calls"));
        }
        for worker in 2..4 {
            run.expect_line_starting(&format!("scenarios: race: worker {worker} not pinned (no core {worker})"));
        }
        if run.counter("hits") != run.counter("simulated") + run.counter("stepped") {
            run.fail("the counters do not add up");
        }
    }
    let generated = &runs[2];
    generated.expect_exit(0);
    for (seed, core) in [(40, 0), (41, 1)] {
        generated.expect_line_starting(&format!("gen: run seed {seed} on core {core}"));
    }
    let own_hits: u64 = generated
        .lines()
        .filter(|line| line.starts_with("gen: build seed "))
        .map(|line| {
            if !line.ends_with(" 0 refused, 0 mismatches") {
                generated.fail(&format!("a generated run differs: {line}"));
            }
            line.split(", ")
                .find_map(|part| part.strip_suffix(" hits (its own probes' counts)"))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| generated.fail(&format!("no own hit count in {line:?}")))
        })
        .sum();
    if generated.lines().filter(|line| *line == "gen: ok").count() != 2 || own_hits != generated.counter("hits") {
        generated.fail("both runs should pass, and their own hit counts sum to the kernel's");
    }
}
