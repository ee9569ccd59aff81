//! The end-of-run probe report: a readable table, and with `report` (xtask's
//! `--report PATH`) the same figures as JSON between two marker lines, which
//! xtask cuts out of the console and writes to PATH.
//!
//! JSON fields: per probe `id`, `program`, `symbol`, `address`, `kind`
//! (`uprobe` or `uretprobe`), `hits`, `return_hits`, `retired`, `retired_by`,
//! `mode` (`"trampoline"`: its hits ran through its branch trampoline;
//! `"brk"`: the breakpoint path) and `no_trampoline` (why a probe kept its
//! breakpoint under `probe-mode=trampoline`, else `null`); the global
//! `counters` (`hits`, `simulated`, `stepped`, `slot_reused`, `slot_written`,
//! `dc_cvau_lines`, `ic_ivau_lines`, `slot_waits`, `return_probes_skipped`,
//! `ic_iallu`, `trampolined`);
//! the `options` the run used (`xol_policy`, `simulate`, `probe_mode`); and `not_installed`, each command-line probe that
//! was never installed (`spec`, `reason`).
//!
//! A command-line probe that was never installed (its program never ran, or
//! refused it) is listed even when nothing else is to report: a request is
//! never dropped without a word.

use super::common::{every_probe, mode_name, no_trampoline, options, requests_not_installed, retirement, COUNTERS};
use crate::println;

/// Print the report (nothing if no probe was ever registered and nothing counted).
pub fn print_report() {
    let probes = every_probe();
    let fields = COUNTERS.snapshot().fields();
    let options = options();
    let not_installed = requests_not_installed();
    if !not_installed.is_empty() {
        println!("probes: {} requested on the command line never installed:", not_installed.len());
        for (spec, reason) in &not_installed {
            println!("  {}: {}", spec, reason);
        }
    }
    if probes.is_empty() && fields.iter().all(|(_, value)| *value == 0) && !options.report {
        return;
    }
    println!("probes: {} registered", probes.len());
    for probe in &probes {
        println!(
            "  {} {}:{} ({:#x}) {}: {} hits, {} returns{}",
            probe.id,
            probe.program,
            probe.symbol,
            probe.vaddr,
            probe.kind.as_str(),
            probe.hits(),
            probe.return_hits(),
            retirement(probe).map(|why| alloc::format!(", retired ({})", why.describe())).unwrap_or_default()
        );
    }
    println!("counters: {}", counters_line());

    if !options.report {
        return;
    }
    println!("report-json-begin");
    println!("{{");
    println!("  \"probes\": [");
    for (i, probe) in probes.iter().enumerate() {
        println!(
            "    {{\"id\": {}, \"program\": \"{}\", \"symbol\": \"{}\", \"address\": {}, \"kind\": \"{}\", \"hits\": {}, \"return_hits\": {}, \"retired\": {}, \"retired_by\": {}, \"mode\": \"{}\", \"no_trampoline\": {}}}{}",
            probe.id.0,
            escape(&probe.program),
            escape(&probe.symbol),
            probe.vaddr,
            probe.kind.as_str(),
            probe.hits(),
            probe.return_hits(),
            probe.is_retired(),
            retirement(probe).map(|why| alloc::format!("\"{}\"", why.json_name())).unwrap_or_else(|| "null".into()),
            mode_name(probe),
            no_trampoline(probe)
                .map(|why| alloc::format!("\"{}\"", escape(&alloc::format!("{}", why))))
                .unwrap_or_else(|| "null".into()),
            if i + 1 < probes.len() { "," } else { "" }
        );
    }
    println!("  ],");
    println!("  \"counters\": {{");
    for (i, (name, value)) in fields.iter().enumerate() {
        println!("    \"{}\": {}{}", name, value, if i + 1 < fields.len() { "," } else { "" });
    }
    println!("  }},");
    println!(
        "  \"options\": {{\"xol_policy\": \"{}\", \"simulate\": \"{}\", \"probe_mode\": \"{}\"}},",
        if options.fresh_slots { "fresh" } else { "reuse" },
        if options.simulate_branches_only { "branches" } else { "all" },
        if options.breakpoints_only { "brk" } else { "trampoline" }
    );
    println!("  \"not_installed\": [");
    for (i, (spec, reason)) in not_installed.iter().enumerate() {
        println!(
            "    {{\"spec\": \"{}\", \"reason\": \"{}\"}}{}",
            escape(spec),
            escape(reason),
            if i + 1 < not_installed.len() { "," } else { "" }
        );
    }
    println!("  ]");
    println!("}}");
    println!("report-json-end");
}

/// The counters as the `counters:` line shows them: `hits=.. simulated=.. ...`.
pub fn counters_line() -> alloc::string::String {
    let fields = COUNTERS.snapshot().fields();
    let line: alloc::vec::Vec<alloc::string::String> =
        fields.iter().map(|(name, value)| alloc::format!("{}={}", name, value)).collect();
    line.join(" ")
}

/// JSON string escaping for names (quotes, backslashes, control characters).
fn escape(text: &str) -> alloc::string::String {
    let mut out = alloc::string::String::new();
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&alloc::format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
