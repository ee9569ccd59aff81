//! Probes hit on every core at once (docs/brk-path.md, "Several cores at
//! once"): the race scenario with a worker pinned on each core while core 0
//! registers and unregisters the probe they call; the same with one XOL slot
//! for all of them; generated blocks checked on every core at once, pinned
//! and moving between cores under a fast tick.
//!
//! `GEN_RUN_SEED` offsets the generated runs' seeds (`cargo xtask soak` sets
//! it). Every boot has four cores (`qemu_tests::VIRT_CORES`). The assertions are on
//! what the programs and the kernel count and print, never on timing: where a
//! worker ran is what `core_index` answered once it was pinned there.

use qemu_tests::{boot, seed_from_env, Boot, Run, LONG_TIMEOUT, VIRT_CORES};

/// A `key=value` field of the kernel's `counters:` line.
fn counter(run: &Run, name: &str) -> u64 {
    let line = run.expect_line_starting("counters: ");
    line.split_whitespace()
        .find_map(|field| field.strip_prefix(&format!("{name}=")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| run.fail(&format!("no {name} in {line:?}")))
}

/// The kernel's counters add up: every hit simulated or stepped, every step
/// in a reused or a written slot.
#[track_caller]
fn expect_counters_add_up(run: &Run) {
    let (hits, simulated, stepped) = (counter(run, "hits"), counter(run, "simulated"), counter(run, "stepped"));
    if hits != simulated + stepped || stepped != counter(run, "slot_reused") + counter(run, "slot_written") {
        run.fail("the counters do not add up");
    }
}

#[track_caller]
fn expect_workers_on_every_core(run: &Run) {
    assert_eq!(VIRT_CORES, 4, "the race scenario pins four workers");
    for core in 0..VIRT_CORES {
        run.expect_line_starting(&format!("scenarios: race: worker {core} pinned, ran on core {core}, some calls"));
    }
}

#[test]
fn a_worker_on_every_core_hits_a_probe_that_core_0_keeps_registering_and_unregistering() {
    let run = boot(&Boot::default().append("test=scenarios:race,300").timeout(LONG_TIMEOUT));
    run.expect_exit(0);
    run.expect_line_starting(
        "scenarios: race: 4 threads, 300 rounds, hits after unregister 0, text restored 300 of 300",
    );
    expect_workers_on_every_core(&run);
    run.expect_line_starting("scenarios: race: some hits in all, some calls");
    expect_counters_add_up(&run);
}

#[test]
fn four_cores_stepping_in_one_xol_slot_take_turns_and_the_counts_add_up() {
    let run = boot(&Boot::default().append("xol-slots=1 test=scenarios:race,200").timeout(LONG_TIMEOUT));
    run.expect_exit(0);
    run.expect_line_starting(
        "scenarios: race: 4 threads, 200 rounds, hits after unregister 0, text restored 200 of 200",
    );
    expect_workers_on_every_core(&run);
    expect_counters_add_up(&run);
    if counter(&run, "slot_written") + counter(&run, "slot_reused") == 0 {
        run.fail("nothing was stepped: the race target should be stepped out of line");
    }
}

/// Each `gen:` summary line's own hit count (`N hits (its own probes' counts)`).
fn own_hits(run: &Run) -> u64 {
    run.lines()
        .filter(|line| line.starts_with("gen: build seed "))
        .map(|line| {
            if !line.ends_with(" 0 refused, 0 mismatches") {
                run.fail(&format!("a generated run differs: {line}"));
            }
            line.split(", ")
                .find_map(|part| part.strip_suffix(" hits (its own probes' counts)"))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| run.fail(&format!("no own hit count in {line:?}")))
        })
        .sum()
}

#[test]
fn generated_blocks_behave_the_same_with_one_run_pinned_on_every_core() {
    let seed = |core: usize| seed_from_env("GEN_RUN_SEED", 0) * 16 + 40 + core as u64;
    let programs: Vec<String> =
        (0..VIRT_CORES).map(|core| format!("test=gen-transparency:{},{core}", seed(core))).collect();
    let run = boot(&Boot::default().append(&programs.join(" ")).timeout(LONG_TIMEOUT));
    run.expect_exit(0);
    for core in 0..VIRT_CORES {
        run.expect_line_starting(&format!("gen: run seed {} on core {core}", seed(core)));
    }
    if run.lines().filter(|line| *line == "gen: ok").count() != VIRT_CORES {
        run.fail("every run should end with gen: ok");
    }
    // Every probe of this boot is one of the four runs': their own counts sum
    // to the kernel's.
    if own_hits(&run) != counter(&run, "hits") {
        run.fail("the runs' own hit counts do not sum to the kernel's hits");
    }
    expect_counters_add_up(&run);
}

#[test]
fn generated_blocks_behave_the_same_moving_between_cores_under_a_fast_tick() {
    // Six runs on four cores with a 200 us tick: threads are preempted (some
    // between a breakpoint and its step) and resumed by whichever core is free.
    let base = seed_from_env("GEN_RUN_SEED", 0) * 16 + 60;
    let programs: Vec<String> = (0..6).map(|i| format!("test=gen-transparency:{},any", base + i)).collect();
    let run = boot(&Boot::default().append(&format!("tick-us=200 {}", programs.join(" "))).timeout(LONG_TIMEOUT));
    run.expect_exit(0);
    if run.lines().filter(|line| *line == "gen: ok").count() != 6 {
        run.fail("every run should end with gen: ok");
    }
    if own_hits(&run) != counter(&run, "hits") {
        run.fail("the runs' own hit counts do not sum to the kernel's hits");
    }
    expect_counters_add_up(&run);
}
