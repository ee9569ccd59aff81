//! Differential transparency at scale (docs/proving.md): `user/gen-transparency`
//! runs 48 generated blocks of 64 A64 instructions (build seed `GEN_SEED`,
//! default 1) unprobed and then twice with a probe on every instruction, and
//! compares every GPR, SP, NZCV, FPSR, TPIDR_EL0, all 32 SIMD/FP registers and
//! its 32 KiB scratch buffer. Once per `xol-policy` x `simulate` setting, each
//! with its own run seed: 4 x 3,072 = 12,288 probed instructions per run.
//!
//! `GEN_RUN_SEED` offsets the run seeds (the soak loop sets it).

use qemu_tests::{boot, seed_from_env, Boot};

fn run_seed_base() -> u64 {
    seed_from_env("GEN_RUN_SEED", 0)
}

#[test]
fn generated_blocks_behave_the_same_with_a_probe_on_every_instruction() {
    let base = run_seed_base();
    let settings = [("reuse", "all"), ("reuse", "branches"), ("fresh", "all"), ("fresh", "branches")];
    let mut probed = 0;
    for (i, (policy, simulate)) in settings.into_iter().enumerate() {
        let seed = base * 4 + i as u64 + 1;
        let run = boot(
            &Boot::default()
                .append(&format!("test=gen-transparency:{seed} xol-policy={policy} simulate={simulate}"))
                .timeout(qemu_tests::LONG_TIMEOUT),
        );
        let line = run.line_starting("gen: build seed ").map(String::from);
        if run.line_starting("gen: ok").is_none() || run.status != Some(0) {
            let details: Vec<&str> = run.lines().filter(|l| l.starts_with("gen: ")).take(40).collect();
            run.fail(&format!("{policy}/{simulate}, run seed {seed}: the probed runs differ\n{}", details.join("\n")));
        }
        let line = line.unwrap_or_default();
        let count: u64 = line
            .split(", ")
            .find_map(|part| part.strip_suffix(" instructions probed"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| run.fail(&format!("no probed-instruction count in {line:?}")));
        if !line.ends_with(" 0 refused, 0 mismatches") {
            run.fail(&format!("{policy}/{simulate}: {line}"));
        }
        // The kernel's counters must agree with the program's sum of probe hits.
        let counters = run.expect_line_starting("counters: ");
        let field = |name: &str| -> u64 {
            counters
                .split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| run.fail(&format!("no {name} in {counters:?}")))
        };
        assert_eq!(field("hits"), field("simulated") + field("stepped"), "{policy}/{simulate}: {counters}");
        assert_eq!(field("stepped"), field("slot_reused") + field("slot_written"), "{policy}/{simulate}: {counters}");
        if policy == "fresh" {
            assert_eq!(field("slot_reused"), 0, "{policy}/{simulate}: {counters}");
        } else {
            assert!(
                field("slot_reused") > 0,
                "{policy}/{simulate}: the second probed run should reuse slots: {counters}"
            );
        }
        probed += count;
    }
    assert!(probed >= 10_000, "only {probed} probed instructions");
    println!("transparency: {probed} probed instructions, 0 mismatches");
}

/// The same generated blocks with every probe sent to its branch trampoline
/// (`probe-mode=trampoline`): each instruction runs relocated in its
/// trampoline, or (where it cannot be relocated) on the breakpoint path.
#[test]
fn generated_blocks_behave_the_same_through_branch_trampolines() {
    let seed = run_seed_base() * 4 + 5;
    let run = boot(
        &Boot::default()
            .append(&format!("test=gen-transparency:{seed} probe-mode=trampoline"))
            .timeout(qemu_tests::LONG_TIMEOUT),
    );
    qemu_tests::expect_generated_runs_ok(&run, &format!("trampolines, run seed {seed}"));
    let (hits, trampolined) = (run.counter("hits"), run.counter("trampolined"));
    assert_eq!(hits, trampolined + run.counter("simulated") + run.counter("stepped"), "every hit is counted once");
    // Every A64 instruction the generator writes is relocatable, but for
    // literal loads whose literal is beyond +-1 MiB of the trampoline.
    assert!(trampolined * 10 >= hits * 9, "only {trampolined} of {hits} hits went through trampolines");
}
