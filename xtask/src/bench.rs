//! `cargo xtask bench`: boots the kernel once per configuration (XOL policy x
//! simulate setting) with the user program `bench-uprobes`, collects its
//! `bench: case=...` lines, and prints the patch-shaped table, per-case figures,
//! and guest instructions per hit from a second pass under `-icount shift=0`.
//! `--arch x86_64` does the same with the x86_64 UEFI kernel under OVMF.
//! See docs/benchmarks.md.

use std::{
    collections::BTreeMap,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::{build::Board, qemu, uefi, Arch};

/// What `cargo xtask bench` was asked for.
pub struct Options {
    pub arch: Arch,
    pub quick: bool,
    /// Only the `-icount` pass: guest instructions per case, no timed boots,
    /// no core-scaling pass.
    pub icount_only: bool,
    pub json: Option<PathBuf>,
    pub chart: Option<PathBuf>,
}

/// One configuration of the kernel's hit path (three boot arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Config {
    pub policy: &'static str,
    pub simulate: &'static str,
    /// `probe-mode=`: `brk` (the breakpoint path) or `trampoline` (a branch to
    /// the probe's own trampoline: one exception per hit, no XOL slot).
    pub mode: &'static str,
}

pub const CONFIGS: [Config; 5] = [
    Config { policy: "fresh", simulate: "branches", mode: "brk" },
    Config { policy: "reuse", simulate: "branches", mode: "brk" },
    Config { policy: "fresh", simulate: "all", mode: "brk" },
    Config { policy: "reuse", simulate: "all", mode: "brk" },
    Config { policy: "reuse", simulate: "all", mode: "trampoline" },
];

impl Config {
    fn bootargs(&self) -> String {
        format!("xol-policy={} simulate={} probe-mode={}", self.policy, self.simulate, self.mode)
    }
    fn label(&self) -> String {
        match self.mode {
            "brk" => format!("{}/{}", self.policy, self.simulate),
            mode => mode.to_string(),
        }
    }
}

/// One `bench: case=...` line: one repetition of one case.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub case: String,
    pub threads: u64,
    pub probes: u64,
    pub rep: u64,
    pub iters: u64,
    pub ticks: u64,
    pub freq: u64,
    pub hits: u64,
    pub slot_written: u64,
    pub dc_cvau: u64,
    pub ic_ivau: u64,
    pub lock_waits: u64,
    /// Hits that went through their probe's branch trampoline.
    pub trampolined: u64,
}

impl Sample {
    /// Units of work (calls, requests) per second.
    pub fn rate(&self) -> f64 {
        if self.ticks == 0 || self.freq == 0 {
            return 0.0;
        }
        self.iters as f64 * self.freq as f64 / self.ticks as f64
    }
    /// Guest instructions per unit of work, under `-icount shift=0` (1 ns per instruction).
    pub fn insns_per_iter(&self) -> f64 {
        if self.iters == 0 || self.freq == 0 {
            return 0.0;
        }
        self.ticks as f64 * 1e9 / self.freq as f64 / self.iters as f64
    }
}

/// Parses one console line; `None` for anything that is not a `bench: case=` line.
pub fn parse_line(line: &str) -> Option<Sample> {
    let rest = line.trim().strip_prefix("bench: ")?;
    if !rest.starts_with("case=") {
        return None;
    }
    let mut s = Sample::default();
    for field in rest.split_whitespace() {
        let (key, value) = field.split_once('=')?;
        let number = || value.parse::<u64>().ok();
        match key {
            "case" => s.case = value.to_string(),
            "threads" => s.threads = number()?,
            "probes" => s.probes = number()?,
            "rep" => s.rep = number()?,
            "iters" => s.iters = number()?,
            "ticks" => s.ticks = number()?,
            "freq" => s.freq = number()?,
            "hits" => s.hits = number()?,
            "slot_written" => s.slot_written = number()?,
            "dc_cvau" => s.dc_cvau = number()?,
            "ic_ivau" => s.ic_ivau = number()?,
            "lock_waits" => s.lock_waits = number()?,
            "trampolined" => s.trampolined = number()?,
            _ => {}
        }
    }
    (!s.case.is_empty()).then_some(s)
}

/// `bench: memory probes=<n> heap_per_probe=<b> heap_per_tree_entry=<b>` as the two byte counts.
pub fn parse_memory_line(transcript: &str) -> Option<(f64, f64)> {
    let line = transcript.lines().find_map(|l| l.trim().strip_prefix("bench: memory "))?;
    let field = |name: &str| -> Option<f64> {
        line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    Some((field("heap_per_probe")?, field("heap_per_tree_entry")?))
}

/// `boot: first EL0 instruction at CNTVCT=<n> (<f> Hz)` (aarch64) or
/// `boot: first ring-3 instruction at TSC=<n> (<f> Hz)` (x86_64) as (n, f).
pub fn parse_boot_line(transcript: &str) -> Option<(u64, u64)> {
    transcript.lines().find_map(|line| {
        let line = line.trim();
        let rest = line
            .strip_prefix("boot: first EL0 instruction at CNTVCT=")
            .or_else(|| line.strip_prefix("boot: first ring-3 instruction at TSC="))?;
        let (count, rest) = rest.split_once(' ')?;
        let freq = rest.trim().strip_prefix('(')?.strip_suffix(" Hz)")?;
        Some((count.parse().ok()?, freq.parse().ok()?))
    })
}

/// Median, minimum, maximum and standard deviation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub stddev: f64,
}

pub fn stats(values: &[f64]) -> Stats {
    if values.is_empty() {
        return Stats::default();
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = if n > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
    Stats { median, min: v[0], max: v[n - 1], stddev: var.sqrt() }
}

/// One record of `--json` (the field names are the issue's).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Record {
    pub case: String,
    pub policy: String,
    pub simulate: String,
    /// `brk` or `trampoline` (the boot's `probe-mode=`).
    pub mode: String,
    pub threads: u64,
    pub probes: u64,
    pub hits_per_sec_median: f64,
    pub hits_per_sec_min: f64,
    pub hits_per_sec_max: f64,
    pub ns_per_hit: f64,
    pub x_null_svc: Option<f64>,
    pub slot_writes_per_hit: Option<f64>,
    pub dc_cvau_per_hit: Option<f64>,
    pub ic_ivau_per_hit: Option<f64>,
    pub guest_insns_per_hit: Option<f64>,
    /// The share of hits that went through a branch trampoline (0 to 1).
    pub trampolined_per_hit: Option<f64>,
    /// Wall-clock nanoseconds a hit adds to its unprobed base case (the
    /// probed case's time per call minus its base's, per hit); what the
    /// trampoline targets compare with the null svc where a call makes more
    /// than one hit or does work of its own (the kv store).
    pub ns_per_hit_over_base: Option<f64>,
    /// Not one of the fields: the spread the table prints after `±`.
    pub hits_per_sec_stddev: f64,
    pub repetitions: usize,
}

type Key = (String, u64, u64);

fn group(samples: &[Sample]) -> BTreeMap<Key, Vec<Sample>> {
    let mut groups: BTreeMap<Key, Vec<Sample>> = BTreeMap::new();
    for s in samples {
        groups.entry((s.case.clone(), s.threads, s.probes)).or_default().push(s.clone());
    }
    groups
}

/// The unprobed case a probed case's guest instructions are measured against.
pub fn base_of(case: &str) -> Option<String> {
    if let Some(target) = case.strip_prefix("trig-uprobe-").or_else(|| case.strip_prefix("trig-uretprobe-")) {
        return Some(format!("trig-base-{target}"));
    }
    match case {
        "scale-uprobe" | "threads-uprobe" => Some("scale-base".into()),
        "kv-uprobe" | "kv-uretprobe" => Some("kv-base".into()),
        _ => None,
    }
}

/// Guest instructions per hit from an icount pass: for a probed case, its
/// instructions per call minus those of its unprobed base, per probe hit; for
/// the floor (null svc/brk), instructions per loop iteration.
pub fn guest_insns(icount: &[Sample]) -> BTreeMap<Key, f64> {
    let groups = group(icount);
    let per_iter =
        |samples: &Vec<Sample>| stats(&samples.iter().map(Sample::insns_per_iter).collect::<Vec<_>>()).median;
    let mut out = BTreeMap::new();
    for (key, samples) in &groups {
        let case = key.0.as_str();
        let value = if case == "null-svc" || case == "null-brk" {
            Some(per_iter(samples))
        } else if let Some(base) = base_of(case) {
            let base = groups.iter().find(|((c, _, _), _)| *c == base).map(|(_, s)| per_iter(s));
            let hits: u64 = samples.iter().map(|s| s.hits).sum();
            let iters: u64 = samples.iter().map(|s| s.iters).sum();
            match base {
                Some(base) if hits > 0 => Some((per_iter(samples) - base) * iters as f64 / hits as f64),
                _ => None,
            }
        } else {
            None
        };
        if let Some(v) = value {
            out.insert(key.clone(), v);
        }
    }
    out
}

/// The records of one configuration's timed run (and its icount pass, if any).
pub fn records(config: Config, timed: &[Sample], icount: &[Sample]) -> Vec<Record> {
    let groups = group(timed);
    let insns = guest_insns(icount);
    let rate_stats = |samples: &Vec<Sample>| stats(&samples.iter().map(Sample::rate).collect::<Vec<_>>());
    let null_svc_ns = groups.iter().find(|((c, _, _), _)| c == "null-svc").map(|(_, s)| 1e9 / rate_stats(s).median);
    let ns_per_call = |case: &str, threads: u64, probes: u64| {
        let samples = groups
            .get(&(case.to_string(), threads, probes))
            .or_else(|| groups.iter().find(|((c, _, _), _)| c == case).map(|(_, samples)| samples))?;
        let median = rate_stats(samples).median;
        (median > 0.0).then(|| 1e9 / median)
    };
    let mut out = Vec::new();
    for (key, samples) in &groups {
        let st = rate_stats(samples);
        let ns = if st.median > 0.0 { 1e9 / st.median } else { 0.0 };
        let hits: u64 = samples.iter().map(|s| s.hits).sum();
        let per_hit =
            |f: fn(&Sample) -> u64| (hits > 0).then(|| samples.iter().map(f).sum::<u64>() as f64 / hits as f64);
        let calls: u64 = samples.iter().map(|s| s.iters).sum();
        let over_base = base_of(&key.0)
            .and_then(|base| ns_per_call(&base, 1, 0))
            .filter(|_| hits > 0 && ns > 0.0)
            .map(|base| (ns - base) * calls as f64 / hits as f64);
        out.push(Record {
            case: key.0.clone(),
            policy: config.policy.into(),
            simulate: config.simulate.into(),
            mode: config.mode.into(),
            threads: key.1,
            probes: key.2,
            hits_per_sec_median: st.median,
            hits_per_sec_min: st.min,
            hits_per_sec_max: st.max,
            ns_per_hit: ns,
            x_null_svc: null_svc_ns.map(|svc| ns / svc),
            slot_writes_per_hit: per_hit(|s| s.slot_written),
            dc_cvau_per_hit: per_hit(|s| s.dc_cvau),
            ic_ivau_per_hit: per_hit(|s| s.ic_ivau),
            guest_insns_per_hit: insns.get(key).copied(),
            trampolined_per_hit: per_hit(|s| s.trampolined),
            ns_per_hit_over_base: over_base,
            hits_per_sec_stddev: st.stddev,
            repetitions: samples.len(),
        });
    }
    out
}

/// `trig-uprobe-nop: 0.916 ± 0.001M/s`, as the patch prints it.
pub fn table_line(r: &Record) -> String {
    let mut name = r.case.clone();
    if r.case.starts_with("scale") || r.case.starts_with("threads") {
        name = format!("{}[threads={},probes={}]", r.case, r.threads, r.probes);
    }
    format!("{name}: {:.3} ± {:.3}M/s", r.hits_per_sec_median / 1e6, r.hits_per_sec_stddev / 1e6)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "-".into())
}

pub fn detail_line(r: &Record) -> String {
    format!(
        "  {:<16} {:<15} thr={:<2} probes={:<5} {:>7.3} M/s (min {:.3}, max {:.3}) {:>8.0} ns {:>6}x svc  writes {:>5} dc {:>5} ic {:>5} /hit  insns {:>6}",
        r.case,
        if r.mode == "brk" { format!("{}/{}", r.policy, r.simulate) } else { r.mode.clone() },
        r.threads,
        r.probes,
        r.hits_per_sec_median / 1e6,
        r.hits_per_sec_min / 1e6,
        r.hits_per_sec_max / 1e6,
        r.ns_per_hit,
        opt(r.x_null_svc, 2),
        opt(r.slot_writes_per_hit, 3),
        opt(r.dc_cvau_per_hit, 3),
        opt(r.ic_ivau_per_hit, 3),
        opt(r.guest_insns_per_hit, 0),
    )
}

/// The whole `--json` document.
#[derive(Serialize)]
struct Document<'a> {
    /// `aarch64` or `x86_64`.
    arch: &'a str,
    records: &'a [Record],
    floor: Vec<Floor>,
    footprint: Footprint,
    /// The core-scaling pass (`threads-uprobe` on 1, 2 and 4 cores).
    cores: &'a [ScalingRow],
    iterations: u64,
    repetitions: u64,
}

#[derive(Serialize)]
struct Floor {
    policy: String,
    simulate: String,
    mode: String,
    null_svc_ns: Option<f64>,
    null_brk_ns: Option<f64>,
    null_svc_guest_insns: Option<f64>,
    null_brk_guest_insns: Option<f64>,
}

#[derive(Serialize, Default)]
struct Footprint {
    kernel_image_bytes: u64,
    kernel_text_bytes: Option<u64>,
    boot_guest_insns_to_first_el0: Option<f64>,
    /// Kernel heap bytes, from the `memory_info` system call around 10,000 registrations.
    bytes_per_registered_probe: Option<f64>,
    bytes_per_tree_entry: Option<f64>,
}

/// Runs QEMU quietly (console captured, not echoed), with a timeout.
fn run_quiet(program: &str, args: &[String], timeout: Duration) -> Result<(Option<i32>, String)> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not start {program}"))?;
    let mut out = child.stdout.take().expect("stdout was piped");
    let reader = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = out.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    Ok((status, reader.join().unwrap_or_default()))
}

/// The kernel the benchmark boots, and how.
enum Machine {
    /// The aarch64 image on QEMU's `virt`.
    Virt { qemu: qemu::Qemu, image: PathBuf, elf: PathBuf },
    /// The x86_64 UEFI kernel under OVMF, from an ESP folder of its own.
    Uefi { qemu: qemu::Qemu, ovmf: PathBuf, efi: PathBuf },
}

impl Machine {
    fn build(arch: Arch) -> Result<Self> {
        Ok(match arch {
            Arch::Aarch64 => {
                let qemu = qemu::ensure()?;
                let images = crate::build::build(Board::Virt, false, &[])?;
                Machine::Virt { qemu, image: images.image, elf: images.elf }
            }
            Arch::X86_64 => {
                let (qemu, ovmf) = uefi::ensure()?;
                Machine::Uefi { qemu, ovmf, efi: uefi::build(false)? }
            }
        })
    }

    /// What the machine loads (its size is the footprint's image size).
    fn image(&self) -> &Path {
        match self {
            Machine::Virt { image, .. } => image,
            Machine::Uefi { efi, .. } => efi,
        }
    }

    /// The file whose text sections are the kernel's `.text`.
    fn symbols(&self) -> &Path {
        match self {
            Machine::Virt { elf, .. } => elf,
            Machine::Uefi { efi, .. } => efi,
        }
    }

    /// One boot with `append` as the boot arguments; the console transcript of a
    /// run that finished with status 0 and `bench: done`.
    fn boot(&self, append: String, icount: bool) -> Result<String> {
        self.boot_on_cores(append, icount, 1)
    }

    /// [`Machine::boot`] with `cores` processors (QEMU `-smp`).
    fn boot_on_cores(&self, append: String, icount: bool, cores: usize) -> Result<String> {
        let (qemu, mut args) = match self {
            Machine::Virt { qemu, image, .. } => {
                let options = qemu::BootOptions { append: Some(append), ..Default::default() };
                (qemu, qemu::boot_args(Board::Virt, &options, image)?)
            }
            Machine::Uefi { qemu, ovmf, efi } => {
                let esp = uefi::scratch_esp("bench-esp")?;
                uefi::write_esp(&esp, efi, &append)?;
                let mut args = uefi::qemu_args(ovmf, &esp, false, 1)?;
                // No display adapter: the kernel would draw every line of the
                // report (10,000 probes) on the GOP screen, which under
                // `-icount` took longer than a boot's 300 s; the serial
                // console carries the lines the bench reads.
                args.extend(["-vga".to_string(), "none".to_string()]);
                (qemu, args)
            }
        };
        if icount {
            args.splice(0..0, ["-icount".to_string(), "shift=0".to_string()]);
        }
        if cores > 1 {
            args.splice(0..0, ["-smp".to_string(), cores.to_string()]);
        }
        let shown: Vec<String> =
            args.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect();
        println!("+ {} {}", qemu.program, shown.join(" "));
        let (status, transcript) = run_quiet(&qemu.program, &args, Duration::from_secs(300))?;
        let status = match self {
            Machine::Virt { .. } => status,
            Machine::Uefi { .. } => status.and_then(uefi::kernel_status),
        };
        if status != Some(0) || !transcript.contains("bench: done") {
            let tail: Vec<&str> = transcript.lines().filter(|l| !l.starts_with("  probe ")).collect();
            let tail = tail[tail.len().saturating_sub(15)..].join("\n");
            bail!("the bench run did not finish (kernel status {status:?}); last lines:\n{tail}");
        }
        for line in transcript.lines().filter(|l| l.starts_with("bench: error")) {
            println!("  {line}");
        }
        Ok(transcript)
    }
}

fn samples_of(transcript: &str) -> Vec<Sample> {
    transcript.lines().filter_map(parse_line).collect()
}

pub fn run(options: Options) -> Result<()> {
    let started = Instant::now();
    let (iters, reps, icount_iters) = if options.quick { (2_000u64, 5u64, 500u64) } else { (20_000, 7, 2_000) };
    let machine = Machine::build(options.arch)?;
    if options.icount_only {
        return icount_only(&machine, icount_iters, started);
    }
    let steps = CONFIGS.len() * 2 + SCALING_CORES.len() * LOOKUPS.len();
    let mut step = 0;
    let mut progress = |what: &str| {
        step += 1;
        println!("bench: [{step}/{steps}] {what} ({:.0} s so far)", started.elapsed().as_secs_f64());
    };

    let mut timed = BTreeMap::new();
    let mut memory = None;
    for config in CONFIGS {
        progress(&format!("timing {} ({iters} calls x {reps} repetitions per case)", config.label()));
        let append = format!("run=bench-uprobes:all,{iters},{reps} {}", config.bootargs());
        let transcript = machine.boot(append, false)?;
        memory = memory.or_else(|| parse_memory_line(&transcript));
        timed.insert(config, samples_of(&transcript));
    }
    let mut icount = BTreeMap::new();
    let mut boot_insns = None;
    for config in CONFIGS {
        progress(&format!("counting guest instructions under -icount shift=0, {}", config.label()));
        let append = format!("run=bench-uprobes:all,{icount_iters},1 {}", config.bootargs());
        let transcript = machine.boot(append, true)?;
        if let Some((count, freq)) = parse_boot_line(&transcript) {
            boot_insns = Some(count as f64 * 1e9 / freq as f64);
        }
        icount.insert(config, samples_of(&transcript));
    }

    let mut scaling = Vec::new();
    for cores in SCALING_CORES {
        for lookup in LOOKUPS {
            progress(&format!("threads-uprobe on {cores} core(s), lookup={lookup} (reuse/all)"));
            let append =
                format!("run=bench-uprobes:threads,{iters},{reps} xol-policy=reuse simulate=all lookup={lookup}");
            let transcript = machine.boot_on_cores(append, false, cores)?;
            scaling.extend(scaling_rows(cores, lookup, &samples_of(&transcript)));
        }
    }

    let mut all = Vec::new();
    for config in CONFIGS {
        all.extend(records(config, &timed[&config], &icount[&config]));
    }

    println!();
    println!("== table (median ± standard deviation of {reps} repetitions, M calls/s) ==");
    for config in CONFIGS {
        println!("{} ({})", config.label(), config.bootargs());
        for r in
            all.iter().filter(|r| r.policy == config.policy && r.simulate == config.simulate && r.mode == config.mode)
        {
            println!("{}", table_line(r));
        }
    }
    println!();
    println!("== per case: M/s median (min, max), ns per hit, x null svc, slot writes / DC CVAU / IC IVAU lines per hit, guest instructions per hit (icount) ==");
    for r in &all {
        println!("{}", detail_line(r));
    }

    let floor: Vec<Floor> = CONFIGS
        .iter()
        .map(|c| {
            let find = |case: &str| {
                all.iter()
                    .find(|r| r.case == case && r.policy == c.policy && r.simulate == c.simulate && r.mode == c.mode)
            };
            Floor {
                policy: c.policy.into(),
                simulate: c.simulate.into(),
                mode: c.mode.into(),
                null_svc_ns: find("null-svc").map(|r| r.ns_per_hit),
                null_brk_ns: find("null-brk").map(|r| r.ns_per_hit),
                null_svc_guest_insns: find("null-svc").and_then(|r| r.guest_insns_per_hit),
                null_brk_guest_insns: find("null-brk").and_then(|r| r.guest_insns_per_hit),
            }
        })
        .collect();
    let footprint = Footprint {
        kernel_image_bytes: std::fs::metadata(machine.image()).map(|m| m.len()).unwrap_or(0),
        kernel_text_bytes: text_size(machine.symbols()),
        boot_guest_insns_to_first_el0: boot_insns,
        bytes_per_registered_probe: memory.map(|(probe, _)| probe),
        bytes_per_tree_entry: memory.map(|(_, entry)| entry),
    };
    println!();
    println!("== footprint ==");
    println!("  kernel image: {} bytes (user programs packed in it included)", footprint.kernel_image_bytes);
    if let Some(text) = footprint.kernel_text_bytes {
        println!("  kernel .text: {text} bytes");
    }
    println!("  boot, reset to the first user-mode instruction: {} guest instructions (icount)", opt(boot_insns, 0));
    println!(
        "  kernel heap per registered probe: {} bytes; per breakpoint-tree entry: {} bytes (memory_info, 10,000 probes)",
        opt(footprint.bytes_per_registered_probe, 0),
        opt(footprint.bytes_per_tree_entry, 0)
    );

    println!();
    println!("== cores: threads-uprobe, one thread per core, each its own probe (reuse/all; median of {reps}) ==");
    println!("  (QEMU runs each guest core on a host thread: with fewer host cores than guest cores, they take turns)");
    for line in scaling_table(&scaling) {
        println!("  {line}");
    }

    println!();
    println!("== targets ==");
    for line in targets(&all) {
        println!("  {line}");
    }

    if let Some(path) = &options.json {
        let arch = match options.arch {
            Arch::Aarch64 => "aarch64",
            Arch::X86_64 => "x86_64",
        };
        let doc =
            Document { arch, records: &all, floor, footprint, cores: &scaling, iterations: iters, repetitions: reps };
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("json: {}", path.display());
    }
    if let Some(path) = &options.chart {
        chart(path, &all)?;
        println!("chart: {}", path.display());
    }
    println!("bench: finished in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `--icount-only`: one boot per configuration under `-icount shift=0`, and
/// the guest instructions per hit (per iteration for the null calls) of each
/// case; the figures `run` prints in its per-case lines' `insns` column.
fn icount_only(machine: &Machine, iters: u64, started: Instant) -> Result<()> {
    let mut lines = Vec::new();
    for (step, config) in CONFIGS.iter().enumerate() {
        println!(
            "bench: [{}/{}] counting guest instructions under -icount shift=0, {} ({:.0} s so far)",
            step + 1,
            CONFIGS.len(),
            config.label(),
            started.elapsed().as_secs_f64()
        );
        let append = format!("run=bench-uprobes:all,{iters},1 {}", config.bootargs());
        let transcript = machine.boot(append, true)?;
        for ((case, threads, probes), insns) in guest_insns(&samples_of(&transcript)) {
            lines.push(format!(
                "  {:<16} {:<15} thr={:<2} probes={:<5} insns {:>6.0}",
                case,
                config.label(),
                threads,
                probes,
                insns
            ));
        }
    }
    println!();
    println!("== per case: guest instructions per hit (icount; per iteration for null-svc, null-brk) ==");
    for line in lines {
        println!("{line}");
    }
    println!("bench: finished in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The core counts the scaling pass boots with (QEMU `-smp`).
pub const SCALING_CORES: [usize; 3] = [1, 2, 4];
/// How a hit finds its probe: the thread's tree (the registry on a miss), or
/// the registry under its exclusive lock on every hit (`lookup=registry`, the
/// situation before the per-thread tree).
pub const LOOKUPS: [&str; 2] = ["tree", "registry"];

/// One row of the core-scaling table: `threads-uprobe` with `threads`
/// threads on `cores` cores.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ScalingRow {
    pub cores: usize,
    pub lookup: String,
    pub threads: u64,
    pub hits_per_sec_median: f64,
    /// Hits that found a lock of the hit path held by another core, per hit.
    pub lock_waits_per_hit: f64,
}

/// The `threads-uprobe` samples of one scaling boot, as rows (threads =
/// cores, and every thread count the program ran, for the JSON).
pub fn scaling_rows(cores: usize, lookup: &str, samples: &[Sample]) -> Vec<ScalingRow> {
    group(samples)
        .into_iter()
        .filter(|((case, _, _), _)| case == "threads-uprobe")
        .map(|((_, threads, _), runs)| {
            let rates: Vec<f64> = runs.iter().map(|s| s.rate()).collect();
            let hits: u64 = runs.iter().map(|s| s.hits).sum();
            let waits: u64 = runs.iter().map(|s| s.lock_waits).sum();
            ScalingRow {
                cores,
                lookup: lookup.to_string(),
                threads,
                hits_per_sec_median: stats(&rates).median,
                lock_waits_per_hit: if hits == 0 { 0.0 } else { waits as f64 / hits as f64 },
            }
        })
        .collect()
}

/// The scaling table: per core count, the tree and the registry side by
/// side with as many threads as cores, and how each scales against 1 core.
pub fn scaling_table(rows: &[ScalingRow]) -> Vec<String> {
    let row = |cores: usize, lookup: &str| {
        rows.iter().find(|r| r.cores == cores && r.lookup == lookup && r.threads == cores as u64)
    };
    let mut lines = vec![format!(
        "{:>5}  {:>26}  {:>26}  {:>10}",
        "cores", "tree: M hits/s (waits/hit)", "registry: M hits/s (waits/hit)", "tree/registry"
    )];
    for cores in SCALING_CORES {
        let (Some(tree), Some(registry)) = (row(cores, "tree"), row(cores, "registry")) else { continue };
        let scale = |r: &ScalingRow, lookup: &str| {
            row(1, lookup)
                .map_or(String::new(), |one| format!(" {:.2}x", r.hits_per_sec_median / one.hits_per_sec_median))
        };
        lines.push(format!(
            "{:>5}  {:>26}  {:>26}  {:>10.2}x",
            cores,
            format!("{:.3}{} ({:.4})", tree.hits_per_sec_median / 1e6, scale(tree, "tree"), tree.lock_waits_per_hit),
            format!(
                "{:.3}{} ({:.4})",
                registry.hits_per_sec_median / 1e6,
                scale(registry, "registry"),
                registry.lock_waits_per_hit
            ),
            tree.hits_per_sec_median / registry.hits_per_sec_median
        ));
    }
    lines
}

fn text_size(elf: &Path) -> Option<u64> {
    use object::{Object, ObjectSection};
    let bytes = std::fs::read(elf).ok()?;
    let file = object::File::parse(&*bytes).ok()?;
    Some(file.sections().filter(|s| s.kind() == object::SectionKind::Text).map(|s| s.size()).sum())
}

fn find<'a>(
    all: &'a [Record],
    case: &str,
    policy: &str,
    simulate: &str,
    threads: u64,
    probes: u64,
) -> Option<&'a Record> {
    all.iter().find(|r| {
        r.case == case
            && r.policy == policy
            && r.simulate == simulate
            && r.mode == "brk"
            && r.threads == threads
            && r.probes == probes
    })
}

/// The trampoline configuration's targets: every probed case at most 1.3x the
/// null svc of the same boot in wall-clock time per hit, and at most 200
/// guest instructions per hit. A case whose hits did not go through
/// trampolines (an x86_64 instruction shorter than the 5-byte `jmp rel32`)
/// is reported as such, not judged.
pub fn trampoline_targets(all: &[Record]) -> Vec<String> {
    let svc = all.iter().find(|r| r.case == "null-svc" && r.mode == "trampoline").map(|r| r.ns_per_hit);
    let mut lines = Vec::new();
    for r in all.iter().filter(|r| r.mode == "trampoline" && base_of(&r.case).is_some() && r.threads == 1) {
        let label = if r.case.starts_with("scale") {
            format!("trampoline hit ({}, {} probe(s))", r.case, r.probes)
        } else {
            format!("trampoline hit ({})", r.case)
        };
        let share = r.trampolined_per_hit.unwrap_or(0.0);
        if share < 0.99 {
            lines.push(format!(
                "n/a: {label}: {:.0} % of its hits went through a trampoline; the rest took the breakpoint path (the registration line says why)",
                share * 100.0
            ));
            continue;
        }
        // kv requests make several hits each and do work of their own:
        // what a hit adds to an unprobed request is the figure to compare.
        let ns = if r.case.starts_with("kv") { r.ns_per_hit_over_base } else { Some(r.ns_per_hit) };
        if let (Some(ns), Some(svc)) = (ns, svc) {
            let x = ns / svc;
            lines
                .push(format!("{}: {label}: {x:.2}x null svc (target <= 1.3x; {ns:.0} ns per hit)", verdict(x <= 1.3)));
        }
        if let Some(insns) = r.guest_insns_per_hit {
            lines.push(format!(
                "{}: {label}: {insns:.0} guest instructions per hit (target <= 200)",
                verdict(insns <= 200.0)
            ));
        }
    }
    lines
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "MISSED"
    }
}

/// One line per target of the issue, with the figures.
pub fn targets(all: &[Record]) -> Vec<String> {
    let mut lines = Vec::new();
    for target in ["nop", "push"] {
        let case = format!("trig-uprobe-{target}");
        if let (Some(f), Some(r)) =
            (find(all, &case, "fresh", "branches", 1, 1), find(all, &case, "reuse", "branches", 1, 1))
        {
            let ratio = r.hits_per_sec_median / f.hits_per_sec_median;
            lines.push(format!(
                "{}: reuse/fresh on {case}, simulate=branches: {ratio:.2}x (target >= 3x; {:.3} vs {:.3} M/s)",
                verdict(ratio >= 3.0),
                r.hits_per_sec_median / 1e6,
                f.hits_per_sec_median / 1e6
            ));
        }
    }
    for threads in [1, 8] {
        for simulate in ["branches", "all"] {
            if let Some(r) = find(all, "threads-uprobe", "reuse", simulate, threads, threads) {
                let w = r.slot_writes_per_hit.unwrap_or(0.0);
                let c = r.dc_cvau_per_hit.unwrap_or(0.0) + r.ic_ivau_per_hit.unwrap_or(0.0);
                lines.push(format!(
                    "{}: reuse steady state, {threads} thread(s), simulate={simulate}: {w:.4} slot writes, {c:.4} cache lines per hit (target 0)",
                    verdict(w == 0.0 && c == 0.0)
                ));
            }
        }
    }
    // Simulated: nop under simulate=all; stepped: the scaling target (an ALU instruction).
    for (label, case, simulate, probes, limit) in [
        ("simulated hit (trig-uprobe-nop, reuse/all)", "trig-uprobe-nop", "all", 1, 1.3),
        ("stepped hit (trig-uprobe-nop, reuse/branches)", "trig-uprobe-nop", "branches", 1, 2.2),
        ("stepped hit (scale-uprobe, 1 probe, reuse/all)", "scale-uprobe", "all", 1, 2.2),
    ] {
        if let Some(r) = find(all, case, "reuse", simulate, 1, probes) {
            let x = r.x_null_svc.unwrap_or(f64::NAN);
            lines.push(format!(
                "{}: {label}: {x:.2}x null svc (target <= {limit}x; {:.0} ns)",
                verdict(x <= limit),
                r.ns_per_hit
            ));
        }
        if let Some(r) = find(all, case, "reuse", simulate, 1, probes) {
            let limit = if limit < 2.0 { 150.0 } else { 300.0 };
            if let Some(insns) = r.guest_insns_per_hit {
                lines.push(format!(
                    "{}: {label}: {insns:.0} guest instructions per hit (target <= {limit:.0})",
                    verdict(insns <= limit)
                ));
            }
        }
    }
    lines.extend(trampoline_targets(all));
    for simulate in ["branches", "all"] {
        for policy in ["reuse", "fresh"] {
            if let (Some(one), Some(many)) = (
                find(all, "scale-uprobe", policy, simulate, 1, 1),
                find(all, "scale-uprobe", policy, simulate, 1, 10_000),
            ) {
                let x = one.hits_per_sec_median / many.hits_per_sec_median;
                lines.push(format!(
                    "{}: 10,000 probes vs 1, {policy}/{simulate}: {x:.2}x the cost (target <= 1.2x; {:.0} vs {:.0} ns)",
                    verdict(x <= 1.2),
                    many.ns_per_hit,
                    one.ns_per_hit
                ));
            }
        }
    }
    lines
}

/// Policies side by side per case (bars), and the two scaling curves.
fn chart(path: &Path, all: &[Record]) -> Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (1200, 1100)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (top, bottom) = root.split_vertically(600);
    let (left, right) = bottom.split_horizontally(600);
    let err = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("drawing the chart: {e:?}");
    let colors = [
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0x94, 0x67, 0xbd),
    ];

    let cases: Vec<&str> = [
        "null-svc",
        "null-brk",
        "trig-uprobe-nop",
        "trig-uprobe-push",
        "trig-uprobe-ret",
        "trig-uretprobe-nop",
        "trig-uretprobe-push",
        "trig-uretprobe-ret",
    ]
    .into_iter()
    .filter(|c| all.iter().any(|r| r.case == *c))
    .collect();
    let ymax = all
        .iter()
        .filter(|r| cases.contains(&r.case.as_str()))
        .map(|r| r.hits_per_sec_median / 1e6)
        .fold(0.0, f64::max)
        * 1.15;
    let n = cases.len().max(1) as f64;
    let mut bars = ChartBuilder::on(&top)
        .caption("M hits/s per case (median), one bar per xol-policy/simulate", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..n, 0.0..ymax.max(0.01))
        .map_err(err)?;
    let labels = cases.clone();
    bars.configure_mesh()
        .disable_x_mesh()
        .x_labels(cases.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < labels.len() {
                labels[i].replace("trig-", "")
            } else {
                String::new()
            }
        })
        .y_desc("M hits/s")
        .draw()
        .map_err(err)?;
    for (k, config) in CONFIGS.iter().enumerate() {
        let color = colors[k];
        let rects: Vec<_> = cases
            .iter()
            .enumerate()
            .filter_map(|(i, case)| {
                let r = all.iter().find(|r| {
                    r.case == *case
                        && r.policy == config.policy
                        && r.simulate == config.simulate
                        && r.mode == config.mode
                })?;
                let x0 = i as f64 + 0.1 + 0.16 * k as f64;
                Some(Rectangle::new([(x0, 0.0), (x0 + 0.14, r.hits_per_sec_median / 1e6)], color.filled()))
            })
            .collect();
        bars.draw_series(rects)
            .map_err(err)?
            .label(config.label())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    bars.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;

    for (area, case, xs, title, xdesc) in [
        (&left, "scale-uprobe", vec![1u64, 100, 10_000], "ns per hit vs probes registered", "probes registered (log)"),
        (&right, "threads-uprobe", vec![1u64, 2, 4, 8], "aggregate M hits/s vs threads", "threads (log)"),
    ] {
        let value = |r: &Record| if case == "scale-uprobe" { r.ns_per_hit } else { r.hits_per_sec_median / 1e6 };
        let points = |c: &Config| -> Vec<(f64, f64)> {
            xs.iter()
                .filter_map(|&x| {
                    let r = all.iter().find(|r| {
                        r.case == case
                            && r.policy == c.policy
                            && r.simulate == c.simulate
                            && r.mode == c.mode
                            && if case == "scale-uprobe" { r.probes == x } else { r.threads == x }
                    })?;
                    Some((x as f64, value(r)))
                })
                .collect()
        };
        let ymax = CONFIGS.iter().flat_map(&points).map(|p| p.1).fold(0.0, f64::max) * 1.2;
        let xmax = *xs.last().unwrap() as f64 * 1.5;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((0.7..xmax).log_scale(), 0.0..ymax.max(0.01))
            .map_err(err)?;
        chart.configure_mesh().x_desc(xdesc).draw().map_err(err)?;
        for (k, config) in CONFIGS.iter().enumerate() {
            let color = colors[k];
            chart
                .draw_series(LineSeries::new(points(config), color.stroke_width(2)))
                .map_err(err)?
                .label(config.label())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color.stroke_width(2)));
            chart.draw_series(points(config).into_iter().map(|p| Circle::new(p, 3, color.filled()))).map_err(err)?;
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    }
    root.present().map_err(|e| anyhow::anyhow!("writing {}: {e:?}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "bench: case=trig-uprobe-nop threads=1 probes=1 rep=2 iters=2000 ticks=125000 freq=62500000 hits=2000 simulated=2000 stepped=0 slot_written=4 slot_reused=0 dc_cvau=4 ic_ivau=4 slot_waits=0";

    #[test]
    fn parses_a_case_line() {
        let s = parse_line(LINE).unwrap();
        assert_eq!(s.case, "trig-uprobe-nop");
        assert_eq!(
            (s.threads, s.probes, s.rep, s.iters, s.ticks, s.freq, s.hits),
            (1, 1, 2, 2000, 125000, 62_500_000, 2000)
        );
        assert_eq!((s.slot_written, s.dc_cvau, s.ic_ivau), (4, 4, 4));
        // 2000 calls in 2 ms.
        assert!((s.rate() - 1e6).abs() < 1e-6);
        assert!((s.insns_per_iter() - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn ignores_other_lines() {
        assert_eq!(parse_line("bench: start sections=all iters=2 reps=1 freq=1"), None);
        assert_eq!(parse_line("bench: done"), None);
        assert_eq!(parse_line("probe 1 bench-uprobes:kv_get (0x40) uprobe: 3 hits"), None);
        assert_eq!(parse_line("bench: case=x ticks=notanumber"), None);
    }

    #[test]
    fn parses_the_memory_line() {
        let t = "bench: case=x\nbench: memory probes=10000 heap_per_probe=212 heap_per_tree_entry=48\n";
        assert_eq!(parse_memory_line(t), Some((212.0, 48.0)));
        assert_eq!(parse_memory_line("nothing"), None);
    }

    #[test]
    fn parses_the_boot_line() {
        let t = "timer: ...\nboot: first EL0 instruction at CNTVCT=2920557 (62500000 Hz)\n";
        assert_eq!(
            parse_boot_line("boot: first ring-3 instruction at TSC=9150396463 (2599936757 Hz)"),
            Some((9150396463, 2599936757))
        );
        assert_eq!(parse_boot_line(t), Some((2_920_557, 62_500_000)));
        assert_eq!(parse_boot_line("nothing"), None);
    }

    #[test]
    fn statistics() {
        let s = stats(&[3.0, 1.0, 2.0, 5.0, 4.0]);
        assert_eq!((s.median, s.min, s.max), (3.0, 1.0, 5.0));
        assert!((s.stddev - 2.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(stats(&[1.0, 3.0]).median, 2.0);
        assert_eq!(stats(&[]), Stats::default());
    }

    fn sample(case: &str, ticks: u64, hits: u64, written: u64) -> Sample {
        Sample {
            case: case.into(),
            threads: 1,
            probes: 1,
            iters: 1000,
            ticks,
            freq: 1_000_000_000,
            hits,
            slot_written: written,
            dc_cvau: written,
            ic_ivau: written,
            ..Default::default()
        }
    }

    #[test]
    fn records_relate_to_the_null_svc_and_the_base() {
        let config = Config { policy: "reuse", simulate: "all", mode: "brk" };
        let timed = [sample("null-svc", 1_000_000, 0, 0), sample("trig-uprobe-nop", 2_000_000, 1000, 10)];
        let icount = [sample("trig-base-nop", 5_000, 0, 0), sample("trig-uprobe-nop", 105_000, 1000, 0)];
        let records = records(config, &timed, &icount);
        let r = records.iter().find(|r| r.case == "trig-uprobe-nop").unwrap();
        assert!((r.ns_per_hit - 2000.0).abs() < 1e-6);
        assert!((r.x_null_svc.unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(r.slot_writes_per_hit, Some(0.01));
        assert!((r.guest_insns_per_hit.unwrap() - 100.0).abs() < 1e-9);
        let svc = records.iter().find(|r| r.case == "null-svc").unwrap();
        assert_eq!(svc.slot_writes_per_hit, None);
        let json = serde_json::to_value(r).unwrap();
        for field in [
            "case",
            "policy",
            "simulate",
            "threads",
            "probes",
            "hits_per_sec_median",
            "hits_per_sec_min",
            "hits_per_sec_max",
            "ns_per_hit",
            "x_null_svc",
            "slot_writes_per_hit",
            "dc_cvau_per_hit",
            "ic_ivau_per_hit",
            "guest_insns_per_hit",
        ] {
            assert!(json.get(field).is_some(), "{field} missing");
        }
        assert_eq!(table_line(r), "trig-uprobe-nop: 0.500 ± 0.000M/s");
    }

    #[test]
    fn scaling_rows_give_rates_and_lock_waits_per_hit_and_the_table_compares_the_lookups() {
        let line = |cores: u64, ticks: u64, waits: u64| {
            parse_line(&format!(
                "bench: case=threads-uprobe threads={cores} probes={cores} rep=0 iters=1000 ticks={ticks} freq=1000000 hits=1000 lock_waits={waits}"
            ))
            .unwrap()
        };
        let mut rows = Vec::new();
        for (cores, tree_ticks, registry_ticks) in [(1, 1000, 1000), (2, 500, 900), (4, 250, 1000)] {
            rows.extend(scaling_rows(cores, "tree", &[line(cores as u64, tree_ticks, 0)]));
            rows.extend(scaling_rows(cores, "registry", &[line(cores as u64, registry_ticks, 250)]));
        }
        assert_eq!(rows[0].hits_per_sec_median, 1e6);
        assert_eq!(rows[1].lock_waits_per_hit, 0.25);
        let table = scaling_table(&rows);
        assert_eq!(table.len(), 4, "{table:#?}");
        assert!(table[3].contains("4.000 4.00x (0.0000)"), "{}", table[3]);
        assert!(table[3].contains("1.000 1.00x (0.2500)"), "{}", table[3]);
        assert!(table[3].trim_end().ends_with("4.00x"), "{}", table[3]);
    }

    #[test]
    fn bases() {
        assert_eq!(base_of("trig-uretprobe-push").as_deref(), Some("trig-base-push"));
        assert_eq!(base_of("threads-uprobe").as_deref(), Some("scale-base"));
        assert_eq!(base_of("null-svc"), None);
    }
}
