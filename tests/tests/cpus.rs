//! The kernel on every CPU model CI boots on `virt`: Cortex-A53, A57, A72, A76 and
//! QEMU's `max`. Each reports its own cache geometry (the banner reads CTR_EL0), and
//! the probe tests pass on each: probes on every class of instruction in
//! `user/probed` leave its results exactly as an unprobed run computes them.

use qemu_tests::{boot, Boot, Run};

/// The probe points of `user/probed` (as in probes.rs), one class of instruction each.
const PROBE_POINTS: &[&str] = &[
    "cls_b+0x0", "cls_bl+0x8", "cls_bcond+0x4", "cls_cbz+0x0", "cls_tbnz+0x0", "cls_br+0x4", "cls_blr+0xc",
    "cls_ret+0x4", "cls_adr+0x0", "cls_adrp+0x0", "cls_ldr_literal+0x0", "cls_ldrsw_literal+0x0", "cls_nop+0x0",
    "cls_push+0x0", "step_alu+0x0", "step_madd+0x4", "step_csel+0x4", "step_mrs_nzcv+0x4", "step_load+0x8",
    "step_store+0x8", "step_pair+0x8", "step_simd+0x4",
];

fn results(run: &Run) -> Vec<String> {
    run.lines().filter(|l| l.starts_with("probed: ")).map(String::from).collect()
}

fn probes_pass_on(cpu: &str) {
    let plain = boot(&Boot::default().cpu(cpu).append("test=probed"));
    plain.expect_exit(0);
    let caches = plain.expect_line_starting("caches:  D-line ");
    for field in ["I-line ", "CTR_EL0.IDC=", " DIC="] {
        assert!(caches.contains(field), "{cpu}: the caches line lacks {field:?}: {caches:?}");
    }
    let expected = results(&plain);
    assert!(expected.len() >= PROBE_POINTS.len(), "{cpu}: the unprobed run printed too little");

    let probes: Vec<String> = PROBE_POINTS.iter().map(|at| format!("probe=probed:{at}")).collect();
    for policy in ["reuse", "fresh"] {
        let args = format!("test=probed {} retprobe=probed:fib_rec xol-policy={policy}", probes.join(" "));
        let run = boot(&Boot::default().cpu(cpu).append(&args));
        run.expect_exit(0);
        if results(&run) != expected {
            run.fail(&format!("{cpu}/{policy}: the probed results differ from the unprobed run"));
        }
        let hits = run
            .expect_line_starting("counters: ")
            .split_whitespace()
            .find_map(|f| f.strip_prefix("hits="))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| run.fail("no hits counter"));
        // 50 passes over every point, plus fib_rec's 1973 entries.
        assert_eq!(hits, 50 * PROBE_POINTS.len() as u64 + 1973, "{cpu}/{policy}: hits");
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
