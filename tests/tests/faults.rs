//! Faults injected with boot arguments end the run with their own exit status and
//! report (docs/kernel-contract.md, "Boot arguments" and "Exit").

use qemu_tests::{boot, hex_field, Boot};

/// ESR_EL1.EC (bits 31:26) for a data abort taken without a change in exception level.
const EC_DATA_ABORT_SAME_EL: u64 = 0x25;

#[test]
fn el1_data_abort_is_reported_and_exits_3() {
    let run = boot(&Boot::default().append("inject=el1-data-abort"));
    run.expect_exit(3);
    // The fault comes after the self-tests.
    let found = run.expect_lines_in_order(&["selftests:", "unexpected exception: "]);
    let report = found[1];
    if !report.to_lowercase().contains("data abort") {
        run.fail(&format!("the exception line does not name a data abort: {report:?}"));
    }
    let Some(esr) = hex_field(report, "ESR_EL1") else { run.fail(&format!("no ESR_EL1=0x... in {report:?}")) };
    if (esr >> 26) & 0x3f != EC_DATA_ABORT_SAME_EL {
        run.fail(&format!("ESR_EL1={esr:#x} has EC {:#x}, not a data abort at EL1 (0x25)", (esr >> 26) & 0x3f));
    }
    for field in ["FAR_EL1", "ELR_EL1"] {
        if hex_field(report, field).is_none() {
            run.fail(&format!("no {field}=0x... in {report:?}"));
        }
    }
    run.expect_last_line("power off: status 3 (unexpected exception)");
}

#[test]
fn injected_panic_is_reported_and_exits_2() {
    let run = boot(&Boot::default().append("inject=panic"));
    run.expect_exit(2);
    let found = run.expect_lines_in_order(&["selftests:", "kernel panic at "]);
    let panic = found[1];
    // `kernel panic at <file>:<line>: <message>`
    let well_formed = panic.strip_prefix("kernel panic at ").and_then(|rest| rest.split_once(": ")).is_some_and(
        |(location, message)| {
            location.rsplit_once(':').is_some_and(|(file, line)| !file.is_empty() && line.parse::<u32>().is_ok())
                && message == "injected panic"
        },
    );
    if !well_formed {
        run.fail(&format!("the panic line {panic:?} is not `kernel panic at <file>:<line>: injected panic`"));
    }
    run.expect_last_line("power off: status 2 (panic)");
}
