//! `cargo xtask qemu` probe flags as a user types them: `--probe` by symbol and
//! by raw address, `--retprobe`, and `--report PATH` writing the JSON report.

use std::{path::PathBuf, process::Command};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Run `cargo xtask qemu ARGS` with its own images folder; returns stdout.
fn xtask_qemu(args: &[&str]) -> String {
    let root = workspace();
    let output = Command::new("cargo")
        .args(["xtask", "qemu"])
        .args(args)
        .args(["--timeout", "60"])
        .env("BRK_IMAGES_DIR", root.join("target/images-xtask-flags-test"))
        .current_dir(&root)
        .output()
        .expect("cargo xtask runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "cargo xtask qemu {args:?} failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn report_path_gets_the_json_and_raw_addresses_probe_like_symbols() {
    let report = std::env::temp_dir().join(format!("brk-report-{}.json", std::process::id()));
    let report_arg = report.display().to_string();
    let stdout = xtask_qemu(&["--run", "demo", "--probe", "demo:compute", "--retprobe", "demo:fib", "--report", &report_arg]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("--report wrote the file")).expect("the report is JSON");
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
