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
