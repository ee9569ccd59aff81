//! The kernel on every CPU model CI boots on `virt`: Cortex-A53, A57, A72, A76 and
//! QEMU's `max`. Each reports its own cache geometry (the banner reads CTR_EL0), and
//! the probe tests pass on each: probes on every class of instruction in
//! `user/probed` leave its results exactly as an unprobed run computes them.

use qemu_tests::{boot, probed_probe_args, probed_results, Boot, PROBED_POINTS};



fn probes_pass_on(cpu: &str) {
    let plain = boot(&Boot::default().cpu(cpu).append("test=probed"));
    plain.expect_exit(0);
    let caches = plain.expect_line_starting("caches:  D-line ");
    for field in ["I-line ", "CTR_EL0.IDC=", " DIC="] {
        assert!(caches.contains(field), "{cpu}: the caches line lacks {field:?}: {caches:?}");
    }
    let expected = probed_results(&plain);
    assert!(expected.len() >= PROBED_POINTS.len(), "{cpu}: the unprobed run printed too little");

    let probes: Vec<String> = probed_probe_args();
    for policy in ["reuse", "fresh"] {
        let args = format!("test=probed {} retprobe=probed:fib_rec xol-policy={policy}", probes.join(" "));
        let run = boot(&Boot::default().cpu(cpu).append(&args));
        run.expect_exit(0);
        if probed_results(&run) != expected {
            run.fail(&format!("{cpu}/{policy}: the probed results differ from the unprobed run"));
        }
        let hits = run
            .expect_line_starting("counters: ")
            .split_whitespace()
            .find_map(|f| f.strip_prefix("hits="))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| run.fail("no hits counter"));
        // 50 passes over every point, plus fib_rec's 1973 entries.
        assert_eq!(hits, 50 * PROBED_POINTS.len() as u64 + 1973, "{cpu}/{policy}: hits");
    }
}

#[test]
fn cpu_cortex_a53_probes_pass() {
    probes_pass_on("cortex-a53");
}

#[test]
fn cpu_cortex_a57_probes_pass() {
    probes_pass_on("cortex-a57");
}

#[test]
fn cpu_cortex_a72_probes_pass() {
    probes_pass_on("cortex-a72");
}

#[test]
fn cpu_cortex_a76_probes_pass() {
    probes_pass_on("cortex-a76");
}

#[test]
fn cpu_max_probes_pass() {
    probes_pass_on("max");
}
