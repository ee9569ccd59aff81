//! The kernel on every CPU model CI boots on `virt`: Cortex-A53, A57, A72, A76 and
//! QEMU's `max`. Each reports its own cache geometry (the banner reads CTR_EL0), and
//! the probe tests pass on each: probes on every class of instruction in
//! `user/probed` leave its results exactly as an unprobed run computes them, and
//! the slot writes are made visible the way the core's I-cache needs: `IC IVAU`
//! by the kernel's alias where the I-cache is PIPT, `IC IALLUIS` where it may
//! alias (the Cortex-A53's is VIPT), nothing with CTR_EL0.DIC.

use qemu_tests::{boot, probed_probe_args, probed_results, Boot, PROBED_POINTS};

/// Boots the probe tests on `cpu`; returns the banner's `caches:` line.
fn probes_pass_on(cpu: &str) -> String {
    let plain = boot(&Boot::default().cpu(cpu).append("test=probed"));
    plain.expect_exit(0);
    let caches = plain.expect_line_starting("caches:  D-line ").to_string();
    for field in ["I-line ", "CTR_EL0.IDC=", " DIC=", " L1Ip="] {
        assert!(caches.contains(field), "{cpu}: the caches line lacks {field:?}: {caches:?}");
    }
    let dic = caches.contains(" DIC=1");
    let aliasing = caches.contains("(may alias");
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
        // Every slot write (4 bytes: one I-line) made visible as this I-cache needs.
        let written = run.counter("slot_written");
        let (ivau, iallu) = match (dic, aliasing) {
            (true, _) => (0, 0),
            (false, true) => (0, written),
            (false, false) => (written, 0),
        };
        assert_eq!(run.counter("ic_ivau_lines"), ivau, "{cpu}/{policy}: IC IVAU lines ({caches})");
        assert_eq!(run.counter("ic_iallu"), iallu, "{cpu}/{policy}: IC IALLUIS ({caches})");
    }
    caches
}

#[test]
fn cpu_cortex_a53_probes_pass() {
    // The Cortex-A53's L1 I-cache is VIPT (TRM, CTR_EL0.L1Ip = 0b10): the run
    // that takes the whole-I-cache path.
    let caches = probes_pass_on("cortex-a53");
    assert!(caches.contains("L1Ip=VIPT (may alias"), "the Cortex-A53 should report a VIPT I-cache: {caches}");
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
