//! The shell on the serial console (docs/shell.md), driven as a user drives
//! it: each command is typed into QEMU's serial port once the prompt is seen,
//! and the answers are read back from the transcript. Nothing waits on the
//! clock: a wait ends when its line appears, or fails at a generous timeout.

use qemu_tests::{file_from_env, seed_from_env, session::Session, DTB_ENV_RPI4};

/// A program that runs until killed, calling `task_info` in a loop.
const SPINNER: &str = "spin s 1000000";
const PROBE: &str = "spin:user_rt::sys::task_info";

/// The hits `probe list` shows for probe `id`.
fn hits_of(answer: &str, id: u32) -> Option<u64> {
    let line = answer.lines().find(|line| line.trim_start().starts_with(&format!("probe {id} ")))?;
    let (_, after) = line.split_once(": ")?;
    after.split(' ').next()?.parse().ok()
}

#[test]
fn a_session_runs_probes_and_kills_a_running_program_then_powers_off() {
    let mut shell = Session::virt("shell");
    shell.wait_for("shell: ready; `help` lists the commands, `poweroff` ends the run");

    let help = shell.command("help");
    for usage in ["run PROGRAM [ARGS]", "ps", "kill PID", "probe add PROGRAM:SYMBOL[+OFF] [ret]", "trace on|off [ID]"] {
        assert!(help.contains(usage), "help lacks {usage:?}:\n{help}");
    }
    assert!(shell.command("help kill").contains("kill PID: end process PID"));

    assert!(shell.command(&format!("run {SPINNER}")).contains(&format!("task: started pid 1 {SPINNER}")));
    let ps = shell.command("ps");
    assert!(ps.contains(&format!("pid 1 {SPINNER}: 1 live thread(s)")), "{ps}");
    assert!(ps.contains("tid 1: "), "{ps}");

    // Added while the program runs: it goes into the running process.
    let added = shell.command(&format!("probe add {PROBE}"));
    assert!(added.contains(&format!("probe {PROBE}: uprobe at 0x")) && added.contains(" in pid 1 "), "{added}");
    let mut list = shell.command("probe list");
    while hits_of(&list, 1).unwrap_or(0) == 0 {
        assert!(list.contains("probes: 1 live"), "{list}");
        list = shell.command("probe list");
    }
    assert!(list.contains("in pid 1, uprobe: "), "{list}");

    let xol = shell.command("xol 1");
    assert!(xol.contains("xol: pid 1 spin s 1000000: page 0x"), "{xol}");
    assert!(xol.contains("remembered by tid 1 for probe 1 user_rt::sys::task_info"), "{xol}");
    let tree = shell.command("tree 1");
    assert!(tree.contains("tid 1: 1 breakpoint(s)") && tree.contains("probe 1 spin:user_rt::sys::task_info"), "{tree}");

    // The trace of one probe, on and off again.
    assert!(shell.command("trace on 1").contains("trace: on for probe 1 (spin:user_rt::sys::task_info)"));
    shell.wait_for("trace: ");
    assert!(shell.command("trace off 1").contains("trace: off for probe 1"));

    assert!(shell.command("policy fresh").contains("policy: fresh"));
    let stats = shell.command("stats");
    assert!(stats.contains("counters: hits=") && stats.contains("options: xol-policy=fresh"), "{stats}");
    assert!(shell.command("simulate branches").contains("simulate: only what cannot run out of line"));
    assert!(shell.command("mem").contains("mem: page frames "));

    // Bad input: one line each, and the shell goes on.
    assert!(shell.command("frobnicate").contains("shell: unknown command 'frobnicate' (help lists the commands)"));
    assert!(shell.command("kill me").contains("shell: PID 'me' is not a number"));
    assert!(shell.command("kill 99").contains("kill: no process 99"));
    assert!(shell.command("probe add spin").contains("expected PROGRAM:SYMBOL[+OFFSET] or PROGRAM:0xADDRESS"));
    assert!(shell.command("probe add nosuch:main").contains("no program 'nosuch' is packed into this kernel"));
    assert!(shell.command("probe del 7").contains("probe del: no live probe 7"));
    assert!(shell.command(&"x".repeat(200)).contains("shell: line longer than 160 characters: ignored"));

    // Line editing: a typo erased with DEL, then the history's newest line again.
    let edited = shell.command("mx\x7fem");
    assert!(edited.contains("mem: page frames "), "{edited:?}");
    assert!(shell.command("\x1b[A").contains("mem: page frames "));

    let deleted = shell.command("probe del 1");
    assert!(deleted.contains("probe 1 deleted: ") && deleted.contains(" in pid 1"), "{deleted}");
    assert!(shell.command("probe list").contains("probes: 0 live"));
    assert!(shell.command("kill 1").contains(&format!("task: pid 1 {SPINNER} killed (killed from the shell)")));
    assert!(shell.command("ps").contains("ps: no process runs"));

    // The last process has ended and the kernel is still here.
    assert!(shell.command("run hello").contains("task: started pid 2 hello"));
    shell.wait_for("task: pid 2 hello exited with status 0");
    let run = shell.power_off();
    run.expect_exit(0);
    run.expect_lines_in_order(&[
        "tasks: all 2 processes ended",
        &format!("  pid 1 {SPINNER}: killed (killed from the shell)"),
        "  pid 2 hello: exited with status 0",
        "probes: 1 registered",
        "tasks: 0 test failure(s)",
    ]);
    // The report says how the probe went: `probe del`, not its process's end.
    assert!(
        run.lines().any(|l| l.starts_with("  probe 1 ") && l.ends_with(", retired (unregistered)")),
        "no report line for probe 1 ending in `, retired (unregistered)`"
    );
    run.expect_last_line("power off: status 0 (success)");
}

#[test]
fn a_probe_added_before_its_program_runs_goes_into_each_later_process() {
    let mut shell = Session::virt("shell");
    let added = shell.command("probe add hello:core::fmt::write");
    assert!(added
        .contains("probe hello:core::fmt::write: no process of hello runs now; every one started from now on gets it"));
    assert!(shell.command("probe list").contains("asked: hello:core::fmt::write in every new process of hello"));
    let started = shell.command("run hello");
    assert!(started.contains("probe hello:core::fmt::write: uprobe at 0x"), "{started}");
    shell.wait_for("task: pid 1 hello exited with status 0");
    let run = shell.power_off();
    run.expect_exit(0);
    let (hits, _) = run.probe_counts("hello:core::fmt::write");
    assert!(hits > 0, "hello prints through core::fmt::write");
}

#[test]
fn random_lines_never_stop_the_shell_and_each_is_answered() {
    // The host fuzz test (kernel/shell-core/tests/fuzz.rs) feeds 100,000 lines
    // to the parser; this types a few hundred into the real kernel.
    let mut state = seed_from_env("SHELL_FUZZ_SEED", 0x5eed);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let words = ["probe", "add", "del", "kill", "trace", "on", "xol", "tree", "0x", "9", "help", "ps", ":", "+"];
    let mut shell = Session::virt("shell");
    for _ in 0..300 {
        let mut line = String::new();
        for _ in 0..next() % 6 {
            if next() % 3 == 0 {
                line.extend((0..next() % 8).map(|_| (0x21 + next() % 0x5e) as u8 as char));
            } else {
                line.push_str(words[(next() % words.len() as u64) as usize]);
            }
            line.push(' ');
        }
        // Never `poweroff` or `run`: the session must end on our word.
        if line.contains("poweroff") || line.trim_start().starts_with("run") {
            continue;
        }
        shell.command(&line);
    }
    let run = shell.power_off();
    run.expect_exit(0);
    run.expect_no_line_containing("kernel panic");
}

#[test]
fn x86_64_the_shell_reads_com1_by_interrupt() {
    let mut shell = Session::uefi("shell");
    shell.wait_for("shell: ready; `help` lists the commands, `poweroff` ends the run");
    assert!(shell.command("run hello").contains("task: started pid 1 hello"));
    shell.wait_for("task: pid 1 hello exited with status 0");
    assert!(shell.command("bogus").contains("shell: unknown command 'bogus'"));
    assert!(shell.command("mem").contains("mem: page frames "));
    let run = shell.power_off();
    run.expect_exit(0);
    run.expect_last_line("power off: status 0 (success)");
}

#[test]
fn raspi4b_with_dtb_the_shell_reads_the_pl011_by_interrupt() {
    let dtb = file_from_env(DTB_ENV_RPI4);
    let mut shell = Session::raspi4b(&dtb, "shell");
    shell.wait_for("shell: ready; `help` lists the commands, `poweroff` ends the run");
    assert!(shell.command("run hello").contains("task: started pid 1 hello"));
    shell.wait_for("task: pid 1 hello exited with status 0");
    assert!(shell.command("ps").contains("ps: no process runs"));
    let run = shell.power_off();
    run.expect_exit(0);
    run.expect_last_line("power off: status 0 (success)");
}
