//! `cargo xtask qemu` probe flags as a user types them: `--probe` by symbol and
//! by raw address, `--retprobe`, `--report PATH` writing the JSON report, and a
//! probe that can never be installed, warned about and reported.

use qemu_tests::cargo_xtask;

/// One `cargo xtask qemu` at a time: each builds the kernel into the same
/// target file with its own programs packed, so two at once could boot each
/// other's kernel. (The tests of this file run on parallel threads.)
static XTASK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn xtask_lock() -> std::sync::MutexGuard<'static, ()> {
    XTASK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Run `cargo xtask qemu ARGS` with its own images folder; returns stdout.
fn xtask_qemu(args: &[&str]) -> String {
    xtask_qemu_with_stderr("target/images-xtask-flags-test", args).0
}

/// Run `cargo xtask qemu ARGS` with the images folder `images` (one per test, as
/// the tests run at once), which must exit 0; returns stdout and stderr.
fn xtask_qemu_with_stderr(images: &str, args: &[&str]) -> (String, String) {
    let _one_at_a_time = xtask_lock();
    cargo_xtask(images, &[&["qemu"], args, &["--timeout", "300"]].concat())
}

#[test]
fn report_path_gets_the_json_and_raw_addresses_probe_like_symbols() {
    let report = std::env::temp_dir().join(format!("brk-report-{}.json", std::process::id()));
    let report_arg = report.display().to_string();
    let stdout =
        xtask_qemu(&["--run", "demo", "--probe", "demo:compute", "--retprobe", "demo:fib", "--report", &report_arg]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("--report wrote the file"))
            .expect("the report is JSON");
    let _ = std::fs::remove_file(&report);
    let probes = json["probes"].as_array().expect("probes");
    let compute = probes.iter().find(|p| p["symbol"] == "compute").expect("compute in the report");
    let address = compute["address"].as_u64().expect("a numeric address");
    let hits = compute["hits"].as_u64().expect("hits");
    assert!(hits > 0, "compute was called: {stdout}");
    let fib = probes.iter().find(|p| p["symbol"] == "fib").expect("fib in the report");
    assert_eq!(fib["kind"], "uretprobe");
    assert_eq!(fib["hits"], fib["return_hits"]);
    assert_eq!(json["counters"]["hits"].as_u64(), Some(hits + fib["hits"].as_u64().unwrap()));

    // The same instruction named by its address instead.
    let by_address = format!("demo:{address:#x}");
    let stdout = xtask_qemu(&["--run", "demo", "--probe", &by_address]);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("  probe 1 demo:compute ("))
        .unwrap_or_else(|| panic!("a probe at {by_address} should be reported as demo:compute:\n{stdout}"));
    assert!(line.contains(&format!(": {hits} hits")), "{line:?} should count {hits} hits");
}

#[test]
fn a_probe_that_is_never_installed_is_warned_about_and_reported() {
    let report = std::env::temp_dir().join(format!("brk-report-unused-{}.json", std::process::id()));
    let report_arg = report.display().to_string();
    let (stdout, stderr) = xtask_qemu_with_stderr(
        "target/images-xtask-unused-probe-test",
        &["--run", "hello", "--probe", "demo:compute", "--probe", "hello:nosuchsym", "--report", &report_arg],
    );
    assert!(
        stderr.contains("warning: the probe demo:compute names demo, which no --run"),
        "xtask should warn before boot that demo never runs:\n{stderr}"
    );
    assert!(!stderr.contains("hello:nosuchsym names"), "hello runs, so no warning for it:\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("probes: 2 requested on the command line never installed:"))
        .unwrap_or_else(|| panic!("the final report should list both probes:\n{stdout}"));
    assert_eq!(lines[at + 1], "  demo:compute: no process of demo was started", "{stdout}");
    assert_eq!(lines[at + 2], "  hello:nosuchsym: refused: hello has no function named 'nosuchsym'", "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("--report wrote the file"))
            .expect("the report is JSON");
    let _ = std::fs::remove_file(&report);
    let not_installed = json["not_installed"].as_array().expect("not_installed in the JSON report");
    assert_eq!(not_installed.len(), 2, "{json}");
    assert_eq!(not_installed[0]["spec"], "demo:compute");
    assert_eq!(not_installed[0]["reason"], "no process of demo was started");
}
