//! `cargo xtask tour`: a guided run through the brk path in chapters. Each
//! chapter boots the kernel with its own `cargo xtask qemu` flags, picks the
//! trace lines that matter out of the transcript (by their stable prefixes),
//! and shows each one beside the source lines behind it. Before a line is
//! shown the reader is asked to predict it, and Enter reveals it (`--no-pause`
//! prints question and answer at once, for CI). Every chapter ends with an
//! exercise of docs/exercises.md.
//!
//! The source locations are never written down: each is found when the tour
//! runs, by searching the kernel's sources for a marker (the stable part of a
//! format string, a `match` arm, a signature) that must occur exactly once, so
//! a `file:line` shown is always where that code is now.

use std::{
    collections::HashMap,
    io::{BufRead, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser};

use crate::{
    build::{self, Board},
    exercise,
    qemu::{self, Outcome, Qemu},
    summary::Summary,
    uefi, Arch, Cli, Command,
};

#[derive(Args)]
pub struct TourArgs {
    /// Print each question and its answer at once instead of waiting for Enter (for CI)
    #[arg(long)]
    no_pause: bool,
    /// Only this chapter (1 to 7)
    #[arg(long, value_name = "N")]
    chapter: Option<usize>,
    /// List the chapters and the flags each one boots with, then stop
    #[arg(long)]
    list: bool,
}

/// One chapter of the tour.
pub struct Chapter {
    pub title: &'static str,
    /// What the chapter is about, before anything runs.
    pub text: &'static str,
    /// The `cargo xtask qemu` flags of each boot the chapter needs.
    pub runs: &'static [&'static [&'static str]],
    /// The lines to predict, in the order they come.
    pub reveals: &'static [Reveal],
    /// Runs whose `counters:` lines are set side by side at the end, with a label each.
    pub counters_table: &'static [(&'static str, usize)],
    /// The exercises of docs/exercises.md the chapter ends with.
    pub exercises: &'static [usize],
}

/// One line of a transcript to predict, and the code behind it.
pub struct Reveal {
    /// Which of the chapter's runs printed it.
    pub run: usize,
    pub question: &'static str,
    /// The first line after the previous reveal's (of the same run) that
    /// starts with `prefix` and contains `contains`.
    pub prefix: &'static str,
    pub contains: &'static str,
    /// (what the code does, a marker found exactly once in the kernel's sources).
    pub sources: &'static [(&'static str, &'static str)],
}

/// The probed run most chapters read: two calls of every function of `user/probed`,
/// one probe. The tour follows the breakpoint path (`--probe-mode brk`); the
/// trampolines of the default mode are docs/brk-path.md's "One exception instead of two".
const STEP_ALU: &[&str] = &["--run", "probed:2", "--probe", "probed:step_alu", "--probe-mode", "brk", "--trace"];
const NOP_SIMULATED: &[&str] = &["--run", "probed:2", "--probe", "probed:cls_nop", "--probe-mode", "brk", "--trace"];
const NOP_STEPPED: &[&str] =
    &["--run", "probed:2", "--probe", "probed:cls_nop", "--simulate", "branches", "--probe-mode", "brk", "--trace"];
const RETPROBE: &[&str] = &["--run", "probed:2", "--retprobe", "probed:cls_ret", "--probe-mode", "brk", "--trace"];
/// Two stepped probes, 200 hits each, without a trace: the counters tell.
const FRESH: &[&str] = &[
    "--run",
    "probed:200",
    "--probe",
    "probed:step_alu",
    "--probe",
    "probed:step_madd",
    "--xol-policy",
    "fresh",
    "--probe-mode",
    "brk",
];
const REUSE: &[&str] = &[
    "--run",
    "probed:200",
    "--probe",
    "probed:step_alu",
    "--probe",
    "probed:step_madd",
    "--xol-policy",
    "reuse",
    "--probe-mode",
    "brk",
];
const X86_64: &[&str] =
    &["--arch", "x86_64", "--run", "probed:2", "--probe", "probed:step_rip_load", "--probe-mode", "brk", "--trace"];

const PRINTED_BY: &str = "printed by";

pub const CHAPTERS: &[Chapter] = &[
    Chapter {
        title: "The trap and its vector",
        text: "A probe is a `brk #0x5` the kernel wrote over an instruction of the program. When the program \
               executes it, the CPU leaves EL0 for EL1 through the vector table, with ESR_EL1 saying why and \
               ELR_EL1 saying where. The vector reads the exception class from ESR_EL1 and takes the \
               breakpoint's fast route to the kernel's dispatcher.",
        runs: &[STEP_ALU],
        reveals: &[
            Reveal {
                run: 0,
                question: "probed calls step_alu, whose first instruction is now `brk #0x5`. Which exception class \
                           will ESR_EL1 hold, and at which address will the kernel say the brk is?",
                prefix: "trace: brk #0x5 at ",
                contains: "",
                sources: &[
                    ("the vector a brk from EL0 enters", "// lower_aarch64_synchronous"),
                    ("routed as a breakpoint by its exception class", "cmp     x1, #0x3c"),
                    (PRINTED_BY, "\"brk #{:#x} at {:#x}"),
                ],
            },
            Reveal {
                run: 0,
                question: "The instruction then runs in an XOL slot with single-step armed. Which exception class \
                           comes back, and where does the kernel send the PC?",
                prefix: "trace: step exception ",
                contains: "",
                sources: &[
                    ("routed as a step by its exception class", "cmp     x1, #0x32"),
                    (PRINTED_BY, "\"step exception at {:#x}: {}; PC = "),
                ],
            },
        ],
        counters_table: &[],
        exercises: &[4],
    },
    Chapter {
        title: "The thread's tree",
        text: "Which probe is this? Each thread keeps its own tree of the probes it has hit: no lock, no other \
               thread. Only on a miss does the kernel take the registry's lock, and it caches the answer.",
        runs: &[STEP_ALU],
        reveals: &[
            Reveal {
                run: 0,
                question: "First hit of step_alu in thread 1, whose tree is empty. Where is the probe found?",
                prefix: "trace: tree miss; registry: ",
                contains: "",
                sources: &[
                    ("the thread's tree", "pub fn lookup(&mut self, vaddr: u64) -> TreeLookup<A>"),
                    (PRINTED_BY, "\"tree miss; registry: "),
                ],
            },
            Reveal {
                run: 0,
                question: "Second hit. What does the tree say now, and which slot does it remember?",
                prefix: "trace: tree hit: ",
                contains: "",
                sources: &[
                    (
                        "the slot remembered after a step",
                        "pub fn remember_slot(&mut self, vaddr: u64, slot: SlotIndex)",
                    ),
                    (PRINTED_BY, "\"tree hit: {}, slot last time: {}\""),
                ],
            },
        ],
        counters_table: &[],
        exercises: &[3],
    },
    Chapter {
        title: "The XOL slot and cache maintenance",
        text: "The probed instruction cannot run at its own address: the brk is there. It runs out of line, in a \
               slot of the XOL page. A slot written with a new instruction must be made visible to instruction \
               fetch first: the D-cache and I-cache of an Arm core are not coherent.",
        runs: &[STEP_ALU],
        reveals: &[
            Reveal {
                run: 0,
                question: "step_alu's `add` does not care where it runs. Simulate it, or step it?",
                prefix: "trace: 0x",
                contains: "runs the same anywhere",
                sources: &[(PRINTED_BY, "runs the same anywhere{}: step it out of line in an XOL slot")],
            },
            Reveal {
                run: 0,
                question: "Slot 1 was never written. After writing the word through the kernel's alias, which \
                           operations must run, in which order, before EL0 may execute it?",
                prefix: "trace: slot ",
                contains: "(NeverWritten): written",
                sources: &[
                    ("the sequence", "ops: &mut impl CacheMaintenance,"),
                    (PRINTED_BY, "\"slot {} ({:?}): written {} through the kernel alias {:#x}; {}\""),
                    ("the maintenance part", "\"DC CVAU {} line(s) at {:#x}, DSB ISH, IC IVAU"),
                ],
            },
            Reveal {
                run: 0,
                question: "Second hit, --xol-policy reuse (the default). What is written, what is maintained?",
                prefix: "trace: slot ",
                contains: "(Remembered): already holds",
                sources: &[
                    (PRINTED_BY, "\"slot {} ({:?}): already holds {}: {}\""),
                    ("on aarch64", "const SLOT_UNCHANGED: &'static str = \"no write, no cache maintenance\""),
                ],
            },
        ],
        counters_table: &[],
        exercises: &[1, 2],
    },
    Chapter {
        title: "Simulate or step",
        text: "Some instructions are cheaper to simulate on the saved registers than to step: one exception \
               instead of two. `--simulate all` (the default) simulates `nop` and the frame push too; \
               `--simulate branches` steps them and simulates only what cannot run anywhere else.",
        runs: &[NOP_SIMULATED, NOP_STEPPED],
        reveals: &[
            Reveal {
                run: 0,
                question: "cls_nop starts with a `nop`. Under --simulate all, how many exceptions does a hit take, \
                           and where does it resume?",
                prefix: "trace: simulated ",
                contains: "",
                sources: &[(PRINTED_BY, "\"simulated {0} ({1}): {3}resume at {2:#x}, one exception in all\"")],
            },
            Reveal {
                run: 1,
                question: "Under --simulate branches the nop is stepped in a slot. Which two bits arm the step?",
                prefix: "trace: eret to slot ",
                contains: "",
                sources: &[
                    (
                        "SPSR_EL1.SS in the frame, MDSCR_EL1.SS on the core",
                        "pub fn arm_single_step(frame: &mut ExceptionFrame)",
                    ),
                    (PRINTED_BY, "\"eret to slot {:#x} with MDSCR_EL1.SS=1"),
                ],
            },
            Reveal {
                run: 1,
                question: "The step exception arrives. Which of the two bits must the kernel clear itself?",
                prefix: "trace: step exception ",
                contains: "",
                sources: &[
                    ("disarmed", "fn disarm_step(_frame: &mut ExceptionFrame, _step: &())"),
                    (PRINTED_BY, "\"step exception at {:#x}: {}; PC = "),
                ],
            },
        ],
        counters_table: &[],
        exercises: &[4],
    },
    Chapter {
        title: "Return probes",
        text: "A return probe counts a function's returns too. At the entry hit the kernel saves the real \
               return address on the thread's return stack and points x30 at the trampoline, slot 0 of the XOL \
               page, which holds `brk #0x6`.",
        runs: &[RETPROBE],
        reveals: &[
            Reveal {
                run: 0,
                question: "cls_ret is entered. What happens to x30?",
                prefix: "trace: return probe armed: ",
                contains: "",
                sources: &[
                    ("the return stack", "pub fn push("),
                    (PRINTED_BY, "\"return probe armed: {} {:#x} -> trampoline {:#x}"),
                ],
            },
            Reveal {
                run: 0,
                question: "cls_ret returns. Where does it land, and how does the kernel know where to go on?",
                prefix: "trace: trampoline: return from ",
                contains: "",
                sources: &[
                    ("matched by SP", "pub fn pop_chain("),
                    (PRINTED_BY, "\"trampoline: return from {} to {:#x}"),
                ],
            },
        ],
        counters_table: &[],
        exercises: &[5],
    },
    Chapter {
        title: "Fresh vs reuse, with the numbers",
        text: "Two stepped probes, step_alu and step_madd, 200 hits each. Under --xol-policy fresh (Linux \
               before the slot-reuse patch) every hit takes a slot, writes it and maintains its cache lines. \
               Under reuse a breakpoint gets back the slot it used last time, which still holds its instruction.",
        runs: &[FRESH, REUSE],
        reveals: &[
            Reveal {
                run: 0,
                question: "Fresh: how many slot writes, DC CVAU lines and IC IVAU lines for the 400 hits?",
                prefix: "counters: ",
                contains: "",
                sources: &[
                    ("fresh: the lowest free slot, always written", "XolPolicy::Fresh => slots.try_take(None)"),
                    (PRINTED_BY, "println!(\"counters: {}\", counters_line());"),
                ],
            },
            Reveal {
                run: 1,
                question: "Reuse: and now?",
                prefix: "counters: ",
                contains: "",
                sources: &[("reuse: the remembered slot first", "pub fn choose_slot<W: BitmapWord>(")],
            },
        ],
        counters_table: &[("fresh", 0), ("reuse", 1)],
        exercises: &[6],
    },
    Chapter {
        title: "The same on x86_64",
        text: "The x86_64 UEFI kernel runs the very same hit path and probe core; only the machine's half \
               differs: `int3` (one byte, CC) instead of `brk`, the trap flag instead of MDSCR_EL1.SS, \
               instructions of 1 to 15 bytes, and no cache maintenance at all.",
        runs: &[X86_64],
        reveals: &[
            Reveal {
                run: 0,
                question: "step_rip_load is hit. Which vector, and where does RIP point after the int3?",
                prefix: "trace: #BP (vector 3)",
                contains: "",
                sources: &[(PRINTED_BY, "\"#BP (vector 3) with RIP {:#x}: int3 at {:#x}")],
            },
            Reveal {
                run: 0,
                question: "step_rip_load reads memory relative to RIP, and the slot is 256 GiB from the text. \
                           What becomes of its operand?",
                prefix: "trace: ",
                contains: "RIP-relative operand is rewritten",
                sources: &[(PRINTED_BY, "\" once its RIP-relative operand is rewritten to [{} + disp32]\"")],
            },
            Reveal {
                run: 0,
                question: "The slot is written. Which cache maintenance follows on x86_64?",
                prefix: "trace: slot ",
                contains: "(NeverWritten): written",
                sources: &[(
                    PRINTED_BY,
                    "\"no cache maintenance (x86 keeps instruction fetch coherent; iretq serializes)\"",
                )],
            },
            Reveal {
                run: 0,
                question: "The step ends. Which vector, and what does the kernel give back to the program?",
                prefix: "trace: #DB (vector 1",
                contains: "",
                sources: &[(PRINTED_BY, "\"#DB (vector 1, single step) at {:#x}")],
            },
        ],
        counters_table: &[],
        exercises: &[2],
    },
];

/// The folders whose files the markers are searched in.
const SOURCE_DIRS: &[&str] = &["kernel/src", "kernel/probe-core/src"];
/// A generous bound on one boot: a hang is cut here, never a slow machine (a
/// boot takes seconds; the x86_64 one goes through the firmware first).
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// Where a marker is: the file, its 1-based line, and that line's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLine {
    pub file: PathBuf,
    pub line: usize,
    pub text: String,
}

/// The kernel's sources, read once.
pub struct Sources(Vec<(PathBuf, String)>);

impl Sources {
    /// Every `.rs` and `.s` file under [`SOURCE_DIRS`] of the workspace at `root`.
    pub fn read(root: &Path) -> Result<Self> {
        let mut files = Vec::new();
        for dir in SOURCE_DIRS {
            collect(root, Path::new(dir), &mut files)?;
        }
        Ok(Sources(files))
    }

    /// The one line holding `marker`; an error if it is in none or in several.
    pub fn find(&self, marker: &str) -> Result<SourceLine> {
        let hits: Vec<SourceLine> = self
            .0
            .iter()
            .flat_map(|(file, text)| {
                text.lines().enumerate().filter(|(_, line)| line.contains(marker)).map(|(index, line)| SourceLine {
                    file: file.clone(),
                    line: index + 1,
                    text: line.trim().to_string(),
                })
            })
            .collect();
        match hits.as_slice() {
            [one] => Ok(one.clone()),
            [] => bail!("the marker {marker:?} is in no file under {}", SOURCE_DIRS.join(", ")),
            several => {
                let places: Vec<String> = several.iter().map(|s| format!("{}:{}", s.file.display(), s.line)).collect();
                bail!("the marker {marker:?} is in {} places: {}", several.len(), places.join(", "))
            }
        }
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(PathBuf, String)>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(dir))
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    entries.sort();
    for name in entries {
        let path = dir.join(name);
        if root.join(&path).is_dir() {
            collect(root, &path, files)?;
        } else if path.extension().is_some_and(|e| e == "rs" || e == "s") {
            let text =
                std::fs::read_to_string(root.join(&path)).with_context(|| format!("reading {}", path.display()))?;
            files.push((path, text));
        }
    }
    Ok(())
}

/// Finds the lines each reveal asks for, in order within each run: the index
/// into `transcript.lines()` of each, or which one is missing.
pub fn select_lines(transcripts: &[String], reveals: &[Reveal]) -> Vec<Result<String, String>> {
    let mut after: HashMap<usize, usize> = HashMap::new();
    reveals
        .iter()
        .map(|reveal| {
            let start = after.get(&reveal.run).copied().unwrap_or(0);
            let lines = transcripts.get(reveal.run).map(String::as_str).unwrap_or("");
            let found = lines
                .lines()
                .enumerate()
                .skip(start)
                .find(|(_, line)| line.starts_with(reveal.prefix) && line.contains(reveal.contains));
            match found {
                Some((index, line)) => {
                    after.insert(reveal.run, index + 1);
                    Ok(line.to_string())
                }
                None => Err(format!(
                    "no line starting with {:?}{} after line {start} of run {}",
                    reveal.prefix,
                    if reveal.contains.is_empty() {
                        String::new()
                    } else {
                        format!(" and containing {:?}", reveal.contains)
                    },
                    reveal.run + 1
                )),
            }
        })
        .collect()
}

/// The `name=value` fields of a `counters:` line.
pub fn parse_counters(line: &str) -> HashMap<String, u64> {
    let fields = line.strip_prefix("counters:").unwrap_or("");
    fields
        .split_whitespace()
        .filter_map(|field| field.split_once('='))
        .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
        .collect()
}

/// The table of chapter 6: per policy, the counters per hit.
pub fn counters_table(rows: &[(&str, HashMap<String, u64>)]) -> Result<String> {
    let mut table = format!(
        "{:<8} {:>6} {:>13} {:>12} {:>15} {:>15} {:>16} {:>18}\n",
        "policy",
        "hits",
        "slot_written",
        "slot_reused",
        "dc_cvau_lines",
        "ic_ivau_lines",
        "writes per hit",
        "cache lines per hit"
    );
    for (label, counters) in rows {
        let get = |name: &str| counters.get(name).copied().with_context(|| format!("{label}: no {name} counter"));
        let hits = get("hits")?;
        if hits == 0 {
            bail!("{label}: no probe was hit");
        }
        let (written, reused) = (get("slot_written")?, get("slot_reused")?);
        let lines = get("dc_cvau_lines")? + get("ic_ivau_lines")?;
        table.push_str(&format!(
            "{:<8} {:>6} {:>13} {:>12} {:>15} {:>15} {:>16.3} {:>18.3}\n",
            label,
            hits,
            written,
            reused,
            get("dc_cvau_lines")?,
            get("ic_ivau_lines")?,
            written as f64 / hits as f64,
            lines as f64 / hits as f64
        ));
    }
    Ok(table)
}

/// Boots the kernel for the tour, building each architecture's kernel once,
/// and keeps each transcript (chapters share runs).
struct Booter {
    aarch64: Option<(Qemu, PathBuf)>,
    x86_64: Option<(Qemu, PathBuf, PathBuf)>,
    transcripts: HashMap<&'static [&'static str], String>,
}

impl Booter {
    fn new() -> Self {
        Booter { aarch64: None, x86_64: None, transcripts: HashMap::new() }
    }

    /// The transcript of `cargo xtask qemu <flags>`; an error unless the kernel powered off with status 0.
    fn transcript(&mut self, flags: &'static [&'static str]) -> Result<String> {
        if let Some(transcript) = self.transcripts.get(flags) {
            return Ok(transcript.clone());
        }
        let words = ["cargo xtask", "qemu"].into_iter().chain(flags.iter().copied());
        let Command::Qemu(args) = Cli::try_parse_from(words)?.command else { bail!("not a qemu command") };
        let (bootargs, _) = crate::bootargs_of(&args)?;
        let bootargs = bootargs.join(" ");
        println!("+ cargo xtask qemu {}   (boot arguments: {bootargs})", flags.join(" "));
        let (outcome, transcript) = match args.arch {
            Arch::Aarch64 => {
                if self.aarch64.is_none() {
                    let images = build::build(Board::Virt, false, &[])?;
                    self.aarch64 = Some((qemu::ensure()?, images.image));
                }
                let (qemu, image) = self.aarch64.as_ref().expect("built above");
                let options = qemu::BootOptions { append: Some(bootargs), ..Default::default() };
                let outcome = qemu::run_with(
                    qemu,
                    &qemu::boot_args(Board::Virt, &options, image)?,
                    Some(BOOT_TIMEOUT),
                    qemu::Console::Kept,
                )?;
                let succeeded = matches!(&outcome.0, Outcome::Exited(status) if status.success());
                (succeeded.then_some(()).ok_or(outcome.0), outcome.1)
            }
            Arch::X86_64 => {
                if self.x86_64.is_none() {
                    let (qemu, ovmf) = uefi::ensure()?;
                    self.x86_64 = Some((qemu, ovmf, uefi::build(false)?));
                }
                let (qemu, ovmf, efi) = self.x86_64.as_ref().expect("built above");
                let esp = uefi::scratch_esp("tour")?;
                uefi::write_esp(&esp, efi, &bootargs)?;
                let outcome = qemu::run_with(
                    qemu,
                    &uefi::qemu_args(ovmf, &esp, false, 1)?,
                    Some(BOOT_TIMEOUT),
                    qemu::Console::Kept,
                )?;
                let succeeded = matches!(&outcome.0, Outcome::Exited(status)
                    if status.code().and_then(uefi::kernel_status) == Some(0));
                (succeeded.then_some(()).ok_or(outcome.0), outcome.1)
            }
        };
        if let Err(outcome) = outcome {
            let tail: Vec<&str> = transcript.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!("the kernel did not power off with status 0 ({outcome:?}); its last lines:\n{}", tail.join("\n"));
        }
        self.transcripts.insert(flags, transcript.clone());
        Ok(transcript)
    }
}

/// How one chapter went: the lines and source links it showed, and what was missing.
pub struct ChapterOutcome {
    pub lines_shown: usize,
    pub links_shown: usize,
    pub problems: Vec<String>,
}

/// Runs one chapter: boots, then asks, reveals and links each line.
fn run_chapter(
    number: usize,
    chapter: &Chapter,
    booter: &mut Booter,
    sources: &Sources,
    pause: bool,
) -> ChapterOutcome {
    let mut outcome = ChapterOutcome { lines_shown: 0, links_shown: 0, problems: Vec::new() };
    println!();
    println!("== Chapter {number}: {} ==", chapter.title);
    println!();
    println!("{}", wrap(chapter.text));
    println!();
    let mut transcripts = Vec::new();
    for flags in chapter.runs {
        match booter.transcript(flags) {
            Ok(transcript) => transcripts.push(transcript),
            Err(e) => {
                outcome.problems.push(format!("`cargo xtask qemu {}`: {e:#}", flags.join(" ")));
                transcripts.push(String::new());
            }
        }
    }
    for (reveal, line) in chapter.reveals.iter().zip(select_lines(&transcripts, chapter.reveals)) {
        println!();
        println!("? {}", wrap(reveal.question));
        if pause {
            print!("  (think, then press Enter) ");
            let _ = std::io::stdout().flush();
            let mut answer = String::new();
            let _ = std::io::stdin().lock().read_line(&mut answer);
        }
        match line {
            Ok(line) => {
                println!("> {line}");
                outcome.lines_shown += 1;
            }
            Err(why) => outcome.problems.push(why),
        }
        for (what, marker) in reveal.sources {
            match sources.find(marker) {
                Ok(source) => {
                    println!("    {what}: {}:{}", source.file.display(), source.line);
                    println!("        {}", source.text);
                    outcome.links_shown += 1;
                }
                Err(e) => outcome.problems.push(format!("{e:#}")),
            }
        }
    }
    if !chapter.counters_table.is_empty() {
        let rows: Vec<(&str, HashMap<String, u64>)> = chapter
            .counters_table
            .iter()
            .map(|&(label, run)| {
                let line = transcripts[run].lines().find(|l| l.starts_with("counters: ")).unwrap_or("");
                (label, parse_counters(line))
            })
            .collect();
        match counters_table(&rows) {
            Ok(table) => {
                println!();
                println!("The counters of the two runs, per hit:");
                print!("{table}");
            }
            Err(e) => outcome.problems.push(format!("the counters table: {e:#}")),
        }
    }
    println!();
    for &number in chapter.exercises {
        match exercise::find(number) {
            Ok(exercise) => {
                println!("Exercise {number} ({}): {}", exercise.title, wrap(exercise.question));
                println!("    check your answer: {}   (docs/exercises.md)", exercise::answer_command(exercise));
            }
            Err(e) => outcome.problems.push(format!("{e:#}")),
        }
    }
    for problem in &outcome.problems {
        println!("tour: chapter {number}: {problem}");
    }
    outcome
}

/// Long texts as they are: one line each; the terminal wraps.
fn wrap(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs the chapters `which` (all if `None`); one outcome per chapter run.
fn run_chapters(which: Option<usize>, pause: bool) -> Result<Vec<(usize, ChapterOutcome)>> {
    let sources = Sources::read(Path::new("."))?;
    let mut booter = Booter::new();
    let mut outcomes = Vec::new();
    for (index, chapter) in CHAPTERS.iter().enumerate() {
        let number = index + 1;
        if which.is_none_or(|n| n == number) {
            outcomes.push((number, run_chapter(number, chapter, &mut booter, &sources, pause)));
        }
    }
    Ok(outcomes)
}

/// `cargo xtask tour`.
pub fn run(args: &TourArgs) -> Result<ExitCode> {
    if let Some(n) = args.chapter.filter(|&n| n == 0 || n > CHAPTERS.len()) {
        bail!("there is no chapter {n}: they are 1 to {}", CHAPTERS.len());
    }
    if args.list {
        for (index, chapter) in CHAPTERS.iter().enumerate() {
            let runs: Vec<String> =
                chapter.runs.iter().map(|flags| format!("cargo xtask qemu {}", flags.join(" "))).collect();
            println!("{}. {}: {}", index + 1, chapter.title, runs.join("; "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let outcomes = run_chapters(args.chapter, !args.no_pause)?;
    let failed = outcomes.iter().filter(|(_, o)| !o.problems.is_empty()).count();
    println!();
    if failed == 0 {
        println!("tour: {} chapter(s), every line and source link shown", outcomes.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("tour: {failed} of {} chapter(s) could not show everything (see above)", outcomes.len());
        Ok(ExitCode::FAILURE)
    }
}

/// `cargo xtask test`'s step: the whole tour without pauses, each chapter one
/// test: it passes when it showed every line it selects and every source link.
pub fn check_all(summary: &mut Summary) -> Result<()> {
    for (number, outcome) in run_chapters(None, false)? {
        let chapter = &CHAPTERS[number - 1];
        let links: usize = chapter.reveals.iter().map(|r| r.sources.len()).sum();
        if outcome.problems.is_empty() && outcome.lines_shown == chapter.reveals.len() && outcome.links_shown == links {
            summary.pass();
        } else {
            summary.fail(format!("tour chapter {number} ({}): {}", chapter.title, outcome.problems.join("; ")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
    }

    #[test]
    fn every_marker_is_in_the_sources_exactly_once() {
        let sources = Sources::read(workspace()).unwrap();
        for chapter in CHAPTERS {
            for reveal in chapter.reveals {
                for (_, marker) in reveal.sources {
                    if let Err(e) = sources.find(marker) {
                        panic!("chapter {:?}: {e:#}", chapter.title);
                    }
                }
            }
        }
    }

    #[test]
    fn a_marker_found_twice_or_never_is_an_error() {
        let sources = Sources(vec![
            (PathBuf::from("a.rs"), "fn one() {}\nlet x = \"tree hit: {}\";\n".into()),
            (PathBuf::from("b.rs"), "fn one() {}\n".into()),
        ]);
        let found = sources.find("\"tree hit: ").unwrap();
        assert_eq!(
            (found.file, found.line, found.text),
            (PathBuf::from("a.rs"), 2, "let x = \"tree hit: {}\";".into())
        );
        assert!(format!("{:#}", sources.find("fn one()").unwrap_err()).contains("in 2 places"));
        assert!(format!("{:#}", sources.find("fn two()").unwrap_err()).contains("in no file"));
    }

    #[test]
    fn lines_are_selected_in_order_within_their_run() {
        let transcripts = vec![
            "trace: brk #0x5 at 1\ntrace: tree miss; registry: probe 1\ntrace: brk #0x5 at 2\ntrace: tree hit: probe 1"
                .into(),
            "counters: hits=3".into(),
        ];
        let reveal = |run, prefix| Reveal { run, question: "", prefix, contains: "", sources: &[] };
        let reveals = [
            reveal(0, "trace: tree miss"),
            reveal(0, "trace: brk #0x5 at "),
            reveal(1, "counters: "),
            reveal(0, "trace: tree miss"),
        ];
        let selected = select_lines(&transcripts, &reveals);
        assert_eq!(selected[0].as_deref(), Ok("trace: tree miss; registry: probe 1"));
        // The brk after the miss, not the first one.
        assert_eq!(selected[1].as_deref(), Ok("trace: brk #0x5 at 2"));
        assert_eq!(selected[2].as_deref(), Ok("counters: hits=3"));
        assert!(selected[3].as_ref().unwrap_err().contains("no line starting with \"trace: tree miss\""));
    }

    #[test]
    fn the_counters_table_divides_by_the_hits_of_its_own_run() {
        let line = "counters: hits=400 simulated=0 stepped=400 slot_reused=0 slot_written=400 dc_cvau_lines=400 \
                    ic_ivau_lines=400 slot_waits=0 return_probes_skipped=0 ic_iallu=0";
        let fresh = parse_counters(line);
        assert_eq!(fresh["slot_written"], 400);
        let reuse = parse_counters("counters: hits=400 slot_reused=398 slot_written=2 dc_cvau_lines=2 ic_ivau_lines=2");
        let table = counters_table(&[("fresh", fresh), ("reuse", reuse)]).unwrap();
        let rows: Vec<&str> = table.lines().collect();
        assert!(rows[1].starts_with("fresh") && rows[1].ends_with("1.000              2.000"), "{table}");
        assert!(rows[2].starts_with("reuse") && rows[2].ends_with("0.005              0.010"), "{table}");
        assert!(counters_table(&[("none", parse_counters("counters: hits=0"))]).is_err());
        assert!(counters_table(&[("missing", HashMap::new())]).is_err());
    }

    #[test]
    fn every_chapter_boots_with_flags_xtask_qemu_accepts_and_ends_with_an_exercise() {
        for chapter in CHAPTERS {
            assert!(!chapter.exercises.is_empty(), "{}", chapter.title);
            for &number in chapter.exercises {
                exercise::find(number).unwrap();
            }
            for flags in chapter.runs {
                let words = ["cargo xtask", "qemu"].into_iter().chain(flags.iter().copied());
                let Command::Qemu(args) = Cli::try_parse_from(words).unwrap().command else { panic!("not qemu") };
                let bootargs = crate::bootargs_of(&args).unwrap().0.join(" ");
                assert!(bootargs.contains("run=probed"), "{bootargs}");
            }
            for reveal in chapter.reveals {
                assert!(reveal.run < chapter.runs.len(), "{}: {}", chapter.title, reveal.question);
            }
            for &(_, run) in chapter.counters_table {
                assert!(run < chapter.runs.len());
            }
        }
        assert!(CHAPTERS.len() == 7);
    }
}
