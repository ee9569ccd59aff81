//! `cargo xtask quotes`: every transcript quoted in README.md and docs/ is real output
//! of the kernel, and a quote that no longer matches what the kernel prints fails
//! `cargo xtask test`.
//!
//! # The marker
//!
//! A quoted transcript is a fenced block right after an HTML comment (Markdown
//! renders neither the comment nor its lines) that names the command that printed it
//! and which of its lines the block shows:
//!
//! ````text
//! <!-- quote: cargo xtask qemu --run probed:2 --probe probed:step_alu --trace
//! line: ^trace: brk .*\(probed:step_alu\)
//! until: slot \d+ released$
//! -->
//! ```text
//! (the lines, written by `cargo xtask quotes --update`)
//! ```
//! ````
//!
//! The first line is a `cargo xtask qemu` command exactly as a reader types it, with
//! any of its flags but `--gdb` and `--report`. Each further line is a pick, a regular
//! expression (the `regex` crate's syntax) searched in the kernel's console, that is
//! QEMU's output without xtask's own `+ ...` lines, from the line after the previous
//! pick on:
//!
//! - `line: REGEX` picks the first line that matches;
//! - `until: REGEX` picks every line up to and including the first that matches.
//!
//! Where two picked lines are not next to each other in the console, the block has a
//! `...` line between them: a block is always one run's lines in the order the kernel
//! printed them, with every omission shown. A block without a marker is not checked:
//! it must then say (in the doc's text) that it is a format, or where it comes from.
//!
//! `cargo xtask quotes --update` boots each distinct command once (`cargo xtask qemu`'s
//! own build and boot, both architectures, the console kept instead of shown) and
//! rewrites every block whose lines differ, beyond what is normalised, from the fresh
//! picks. `cargo xtask quotes --check`, which `cargo xtask test` runs as a step of its
//! plan, boots the same commands and fails naming the doc, the block and its first
//! differing line.
//!
//! # Normalised: what varies without anything having changed
//!
//! A doc keeps the values of the run that last wrote it; the comparison replaces each
//! of these values by `<varies>` on both sides first (see [`NORMALISED`]):
//!
//! - `CNTVCT=` and `TSC=` on the `boot: first ... instruction` line: the time the first
//!   user instruction ran, different in every run;
//! - the TSC's frequency (on that line and on x86_64's first `timer:` line) and the local
//!   APIC timer's (on its last `timer:` line): measured against another clock at every
//!   boot (aarch64's `CNTFRQ_EL0` is a constant of the machine, and compared);
//! - `ran N ms`, `N tick(s)` and `preempted N time(s)` on a process's end-of-run line:
//!   how fast the host ran the guest;
//! - the kernel's alias of an XOL slot (`through the kernel alias 0x...`) and the cache
//!   lines maintained there (`line(s) at 0x...`): frames the allocator hands out after
//!   the kernel image, so they move whenever the kernel's size changes;
//! - where OVMF loaded the x86_64 kernel (`image 0x...-0x...` on the `paging:` line),
//!   which also follows the kernel's size.
//!
//! Trailing blanks are dropped (Markdown does not show them). Nothing else is
//! normalised: user addresses, instruction words, slot numbers and counts are the same
//! in every run of one build of the programs, and a reader compares them with what
//! `cargo xtask qemu` prints. A program that changes (new code, other addresses) or a
//! new output format is a real difference: the check says to run `--update` and read
//! the diff.

use std::{
    collections::BTreeMap,
    fmt,
    ops::Range,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::LazyLock,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use clap::Parser;
use regex::Regex;

use crate::{
    build::Board,
    qemu::{self, Console, Outcome},
    summary::Summary,
    Arch, Cli, Command, QemuArgs,
};

/// What `cargo xtask quotes` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Fail on every quote that no longer matches.
    Check,
    /// Rewrite every quote that no longer matches.
    Update,
}

/// How long one quoted run may take before it counts as hung, unless its command says
/// `--timeout` (a boot takes seconds; the longest quoted run, thousands of traced hits
/// on x86_64, well under a minute).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// The docs that may quote, relative to the workspace `root`: README.md and every
/// Markdown file under docs/.
fn docs_under(root: &Path) -> Result<Vec<PathBuf>> {
    let mut docs = Vec::new();
    let mut folders = vec![PathBuf::from("docs")];
    while let Some(folder) = folders.pop() {
        let path = root.join(&folder);
        for entry in std::fs::read_dir(&path).with_context(|| format!("reading {}", path.display()))? {
            let name = folder.join(entry?.file_name());
            if root.join(&name).is_dir() {
                folders.push(name);
            } else if name.extension().is_some_and(|e| e == "md") {
                docs.push(name);
            }
        }
    }
    docs.sort();
    docs.insert(0, PathBuf::from("README.md"));
    Ok(docs)
}

/// One pick of a marker.
#[derive(Clone, Debug)]
pub enum Pick {
    /// `line: REGEX`: the first matching line.
    Line(Regex),
    /// `until: REGEX`: every line through the first matching one.
    Until(Regex),
}

impl Pick {
    fn regex(&self) -> &Regex {
        match self {
            Pick::Line(regex) | Pick::Until(regex) => regex,
        }
    }
}

impl fmt::Display for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pick::Line(regex) => write!(f, "line: {regex}"),
            Pick::Until(regex) => write!(f, "until: {regex}"),
        }
    }
}

/// One marked block of a doc.
#[derive(Clone, Debug)]
pub struct Quote {
    /// The doc's line (from 1) of the marker's first line.
    pub line: usize,
    /// The command as the marker writes it.
    pub command: String,
    pub picks: Vec<Pick>,
    /// The doc's lines (indices from 0) between the block's fences.
    pub body: Range<usize>,
    /// Those lines.
    pub quoted: Vec<String>,
}

const MARKER: &str = "<!-- quote:";

/// The marked blocks of a doc's `text`; an error names the line of a malformed
/// marker.
pub fn parse(text: &str) -> Result<Vec<Quote>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut quotes = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(command) = lines[i].trim().strip_prefix(MARKER) else {
            i += 1;
            continue;
        };
        let line = i + 1;
        let command = command.trim().to_string();
        if command.is_empty() || command.ends_with("-->") {
            return Err(format!("line {line}: a quote marker is `{MARKER} COMMAND`, then one pick a line, then `-->`"));
        }
        let mut picks = Vec::new();
        i += 1;
        loop {
            let Some(pick) = lines.get(i).map(|l| l.trim()) else {
                return Err(format!("line {line}: the quote marker has no closing `-->`"));
            };
            i += 1;
            if pick == "-->" {
                break;
            }
            picks.push(parse_pick(pick).map_err(|why| format!("line {i}: {why}"))?);
        }
        if picks.is_empty() {
            return Err(format!("line {line}: the quote marker picks no line (`line: REGEX` or `until: REGEX`)"));
        }
        let fence = lines.get(i).map(|l| l.trim_end()).unwrap_or("");
        if !fence.starts_with("```") {
            return Err(format!("line {}: a fenced block (```) must follow the quote marker of line {line}", i + 1));
        }
        let ticks = fence.chars().take_while(|&c| c == '`').count();
        let start = i + 1;
        let Some(end) = (start..lines.len()).find(|&j| {
            let close = lines[j].trim();
            close.len() >= ticks && close.chars().all(|c| c == '`')
        }) else {
            return Err(format!("line {}: the block opened here is never closed", i + 1));
        };
        let quoted = lines[start..end].iter().map(|l| l.to_string()).collect();
        quotes.push(Quote { line, command, picks, body: start..end, quoted });
        i = end + 1;
    }
    Ok(quotes)
}

fn parse_pick(text: &str) -> Result<Pick, String> {
    let (kind, pattern) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not a pick: `line: REGEX`, `until: REGEX` or the closing `-->`"))?;
    let regex = Regex::new(pattern.trim()).map_err(|e| format!("`{text}`: {e}"))?;
    match kind.trim() {
        "line" => Ok(Pick::Line(regex)),
        "until" => Ok(Pick::Until(regex)),
        other => Err(format!("`{other}` is not a pick: `line: REGEX` or `until: REGEX`")),
    }
}

/// The kernel's console as lines: carriage returns, terminal escape sequences (OVMF
/// clears the screen with them) and trailing blanks removed.
pub fn console_lines(output: &str) -> Vec<String> {
    static ESCAPE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\x1b(\[[0-9;=?]*[A-Za-z]|.)").expect("the escape pattern is valid"));
    output.lines().map(|line| ESCAPE.replace_all(line, "").replace('\r', "").trim_end().to_string()).collect()
}

/// The omission line between two picks that are not next to each other.
pub const OMITTED: &str = "...";

/// The lines `picks` select from `console`, in order, with [`OMITTED`] between picks
/// that are not adjacent. An error names the pick that matched nothing.
pub fn select(console: &[String], picks: &[Pick]) -> Result<Vec<String>, String> {
    let mut selected = Vec::new();
    let mut next = 0;
    for pick in picks {
        let found = console[next..]
            .iter()
            .position(|line| pick.regex().is_match(line))
            .map(|offset| next + offset)
            .ok_or_else(|| format!("`{pick}` matches no line of the run after line {next} of its console"))?;
        let first = match pick {
            Pick::Line(_) => found,
            Pick::Until(_) => next,
        };
        if next > 0 && first > next {
            selected.push(OMITTED.to_string());
        }
        selected.extend(console[first..=found].iter().cloned());
        next = found + 1;
    }
    Ok(selected)
}

/// What varies between runs and builds with nothing changed, as patterns whose
/// groups are each replaced by `<varies>` before comparing (the module doc says why
/// each).
pub const NORMALISED: &[&str] = &[
    r"CNTVCT=(\d+)",
    r"TSC=(\d+) \((\d+) Hz\)",
    r"TSC (\d+) Hz",
    r"counts at (\d+) Hz",
    r"ran (\d+) ms, (\d+) tick\(s\), preempted (\d+) time\(s\)",
    r"kernel alias (0x[0-9a-f]+)",
    r"line\(s\) at (0x[0-9a-f]+)",
    r"image (0x[0-9a-f]+)\.\.(0x[0-9a-f]+) mapped",
];

/// `line` with every value of [`NORMALISED`] replaced by `<varies>`.
pub fn normalise(line: &str) -> String {
    static RULES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
        NORMALISED.iter().map(|pattern| Regex::new(pattern).expect("the normalising patterns are valid")).collect()
    });
    let mut line = line.trim_end().to_string();
    for rule in RULES.iter() {
        line = rule
            .replace_all(&line, |caps: &regex::Captures| {
                let whole = caps.get(0).expect("group 0 is the match");
                let mut out = String::new();
                let mut at = whole.start();
                for value in caps.iter().skip(1).flatten() {
                    out.push_str(&line[at..value.start()]);
                    out.push_str("<varies>");
                    at = value.end();
                }
                out.push_str(&line[at..whole.end()]);
                out
            })
            .into_owned();
    }
    line
}

/// Where a quote first differs from the fresh picks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The block's line (from 0).
    pub index: usize,
    /// The doc's line there, if the block is that long.
    pub quoted: Option<String>,
    /// The kernel's, if the picks are that long.
    pub printed: Option<String>,
}

/// The first line where `quoted` and `printed` differ once both are normalised.
pub fn first_difference(quoted: &[String], printed: &[String]) -> Option<Difference> {
    let len = quoted.len().max(printed.len());
    (0..len)
        .find(|&i| quoted.get(i).map(|l| normalise(l)) != printed.get(i).map(|l| normalise(l)))
        .map(|index| Difference { index, quoted: quoted.get(index).cloned(), printed: printed.get(index).cloned() })
}

/// `text` with each block's body replaced by its new lines (`replacements`: the
/// block's body range and its lines).
pub fn rewrite(text: &str, replacements: &[(Range<usize>, Vec<String>)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut ordered: Vec<_> = replacements.iter().collect();
    ordered.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    for (range, new) in ordered {
        lines.splice(range.clone(), new.iter().cloned());
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The `cargo xtask qemu` flags of a marker's command.
pub fn qemu_args_of(command: &str) -> Result<QemuArgs, String> {
    let words = shlex::split(command).ok_or_else(|| format!("`{command}` has an unclosed quote"))?;
    if words.len() < 3 || words[..3] != ["cargo", "xtask", "qemu"] {
        return Err(format!("`{command}` is not a `cargo xtask qemu` command"));
    }
    let cli = Cli::try_parse_from(std::iter::once("cargo xtask".to_string()).chain(words[2..].iter().cloned()))
        .map_err(|e| format!("`{command}`: {}", e.to_string().lines().next().unwrap_or("not valid")))?;
    let Command::Qemu(args) = cli.command else { unreachable!("the third word is `qemu`") };
    if args.gdb || args.report.is_some() {
        return Err(format!("`{command}`: a quoted run cannot wait for gdb or write a report"));
    }
    Ok(args)
}

/// What one quoted command printed, or why it cannot run here.
enum Run {
    Console(Vec<String>),
    Unavailable(String),
}

/// Boots `command` as `cargo xtask qemu` would, keeping its console.
fn boot(command: &str) -> Result<Run> {
    let mut args = qemu_args_of(command).map_err(anyhow::Error::msg)?;
    if args.arch == Arch::Aarch64 {
        let board = args.build.board;
        let qemu = qemu::ensure()?;
        if !qemu.supports(board) {
            return Ok(Run::Unavailable(format!(
                "QEMU {} cannot boot {board} (needs {}.0 or newer)",
                qemu.version.map(|v| v.to_string()).unwrap_or_default(),
                board.min_qemu_major()
            )));
        }
        // The Pi 4 device tree is fetched into its cache, as `cargo xtask rpi4 --fetch-dtb` does.
        if board == Board::Rpi4 {
            if let Some(dtb) = args.dtb.as_ref().filter(|d| !d.is_file()) {
                if std::path::absolute(dtb)? != std::path::absolute(crate::rpi4::dtb_cache())? {
                    bail!("`{command}`: no device tree at {}", dtb.display());
                }
                match crate::rpi4::fetch_dtb() {
                    Ok(fetched) => args.dtb = Some(fetched),
                    Err(why) => return Ok(Run::Unavailable(format!("no Pi 4 device tree: {why}"))),
                }
            }
        }
    }
    let boot = crate::prepare_boot(&args)?;
    let timeout = args.timeout.map_or(RUN_TIMEOUT, Duration::from_secs);
    let (outcome, output) = qemu::run_with(&boot.qemu, &boot.argv, Some(timeout), Console::Kept)?;
    match outcome {
        Outcome::Exited(_) => Ok(Run::Console(console_lines(&output))),
        Outcome::TimedOut(after) => {
            bail!("`{command}` was still running after {} s; the last lines:\n{}", after.as_secs(), tail(&output))
        }
    }
}

fn tail(output: &str) -> String {
    let lines = console_lines(output);
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The verdict on one block.
pub enum Verdict {
    Matches,
    /// Rewritten with the fresh lines (`--update`).
    Updated,
    /// Differs (`--check`), or could not be made (a pick that matches nothing, a run
    /// that failed): why, in a sentence or a few lines.
    Failed(String),
    /// Its command cannot run on this machine: why.
    Skipped(String),
}

/// One block and its verdict.
pub struct Checked {
    /// `doc:line`, the marker's place.
    pub place: String,
    pub command: String,
    pub verdict: Verdict,
}

/// Checks or updates every marked block of every doc: each distinct command is
/// booted once. Returns each block's verdict, in doc order.
pub fn run_all(mode: Mode) -> Result<Vec<Checked>> {
    let mut parsed = Vec::new();
    for doc in docs_under(Path::new("."))? {
        let text = std::fs::read_to_string(&doc).with_context(|| format!("reading {}", doc.display()))?;
        let quotes = parse(&text).map_err(|why| anyhow::anyhow!("{}: {why}", doc.display()))?;
        parsed.push((doc, text, quotes));
    }
    let mut runs: BTreeMap<String, Result<Run, String>> = BTreeMap::new();
    for (_, _, quotes) in &parsed {
        for quote in quotes {
            if !runs.contains_key(&quote.command) {
                println!("quotes: booting `{}`", quote.command);
                let run = boot(&quote.command).map_err(|e| format!("{e:#}"));
                runs.insert(quote.command.clone(), run);
            }
        }
    }

    let mut outcomes = Vec::new();
    for (doc, text, quotes) in &parsed {
        let mut replacements = Vec::new();
        for quote in quotes {
            let place = format!("{}:{}", doc.display(), quote.line);
            let verdict = match &runs[&quote.command] {
                Err(why) => Verdict::Failed(why.clone()),
                Ok(Run::Unavailable(why)) => Verdict::Skipped(why.clone()),
                Ok(Run::Console(console)) => match select(console, &quote.picks) {
                    Err(why) => Verdict::Failed(format!("{why} (the output changed: adjust the marker's picks)")),
                    Ok(printed) => match (first_difference(&quote.quoted, &printed), mode) {
                        (None, _) => Verdict::Matches,
                        (Some(_), Mode::Update) => {
                            replacements.push((quote.body.clone(), printed));
                            Verdict::Updated
                        }
                        (Some(difference), Mode::Check) => Verdict::Failed(describe(doc, quote, &difference)),
                    },
                },
            };
            outcomes.push(Checked { place, command: quote.command.clone(), verdict });
        }
        if !replacements.is_empty() {
            std::fs::write(doc, rewrite(text, &replacements)).with_context(|| format!("writing {}", doc.display()))?;
        }
    }
    Ok(outcomes)
}

/// A difference, as the check reports it: the doc's line and the kernel's.
fn describe(doc: &Path, quote: &Quote, difference: &Difference) -> String {
    let line = quote.body.start + difference.index + 1;
    let show =
        |l: &Option<String>| l.as_ref().map_or("(nothing: the block ends here)".to_string(), |l| format!("{l:?}"));
    format!(
        "line {} of the block ({}:{line}) differs:\n    the doc says      {}\n    the kernel prints {}",
        difference.index + 1,
        doc.display(),
        show(&difference.quoted),
        show(&difference.printed)
    )
}

/// What to do about a quote that no longer matches.
pub const UPDATE_HINT: &str = "a quote no longer matches what the kernel prints: if the change is meant (a new output \
                               format, a program rebuilt with other addresses), run `cargo xtask quotes --update` and \
                               read the diff";

impl Checked {
    /// The line that reports it.
    fn report(&self) -> String {
        match &self.verdict {
            Verdict::Matches => format!("quotes: {} matches `{}`", self.place, self.command),
            Verdict::Updated => format!("quotes: {} rewritten from `{}`", self.place, self.command),
            Verdict::Skipped(why) => format!("quotes: {} not checked here: {why}", self.place),
            Verdict::Failed(why) => format!("FAIL quotes: {} (`{}`): {why}", self.place, self.command),
        }
    }
}

/// Prints each block's verdict, and what to do when one failed a check; returns
/// whether none failed.
fn report(checked: &[Checked], mode: Mode) -> bool {
    for block in checked {
        println!("{}", block.report());
    }
    let failed = checked.iter().filter(|b| matches!(b.verdict, Verdict::Failed(_))).count();
    println!("quotes: {} block(s), {failed} failed", checked.len());
    if failed > 0 && mode == Mode::Check {
        println!("{UPDATE_HINT}");
    }
    failed == 0
}

/// `cargo xtask quotes --check | --update`.
pub fn run(mode: Mode) -> Result<ExitCode> {
    let all_good = report(&run_all(mode)?, mode);
    Ok(if all_good { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `cargo xtask test`'s step: `--check`, each block counted as one test.
pub fn run_in_plan(summary: &mut Summary) {
    let checked = match run_all(Mode::Check) {
        Ok(checked) => checked,
        Err(e) => {
            summary.fail(format!("quotes: {e:#}"));
            return;
        }
    };
    report(&checked, Mode::Check);
    for block in checked {
        match block.verdict {
            Verdict::Matches | Verdict::Updated => summary.pass(),
            Verdict::Skipped(why) => summary.skip(format!("quotes: {}", block.place), why),
            Verdict::Failed(_) => summary.fail(format!("quotes: {} (`{}`), see above", block.place, block.command)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    const DOC: &str = "# A doc\n\
        \n\
        <!-- quote: cargo xtask qemu --run probed:2 --trace\n\
        line: ^trace: brk\n\
        until: released$\n\
        -->\n\
        ```text\n\
        old line\n\
        ```\n\
        \n\
        ```text\n\
        an unmarked block: not a quote\n\
        ```\n\
        <!-- quote: cargo xtask qemu\n\
        until: ^power off:\n\
        -->\n\
        ````\n\
        ```\n\
        ````\n";

    #[test]
    fn markers_are_parsed_with_their_picks_and_blocks() {
        let quotes = parse(DOC).unwrap();
        assert_eq!(quotes.len(), 2);
        assert_eq!(quotes[0].line, 3);
        assert_eq!(quotes[0].command, "cargo xtask qemu --run probed:2 --trace");
        assert_eq!(
            quotes[0].picks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["line: ^trace: brk", "until: released$"]
        );
        assert_eq!(quotes[0].body, 7..8);
        assert_eq!(quotes[0].quoted, ["old line"]);
        // A longer fence may hold a shorter one.
        assert_eq!(quotes[1].line, 14);
        assert_eq!(quotes[1].quoted, ["```"]);
    }

    #[test]
    fn malformed_markers_are_named_by_line() {
        let no_picks = "<!-- quote: cargo xtask qemu\n-->\n```\n```\n";
        assert!(parse(no_picks).unwrap_err().starts_with("line 1: the quote marker picks no line"));
        let no_block = "<!-- quote: cargo xtask qemu\nline: x\n-->\n\ntext\n";
        assert!(parse(no_block).unwrap_err().starts_with("line 4: a fenced block"), "{:?}", parse(no_block));
        let bad_pick = "<!-- quote: cargo xtask qemu\nlines: x\n-->\n```\n```\n";
        assert!(parse(bad_pick).unwrap_err().starts_with("line 2: `lines` is not a pick"));
        let bad_regex = "<!-- quote: cargo xtask qemu\nline: (\n-->\n```\n```\n";
        assert!(parse(bad_regex).unwrap_err().starts_with("line 2: `line: (`"));
        let unclosed = "<!-- quote: cargo xtask qemu\nline: x\n";
        assert!(parse(unclosed).unwrap_err().contains("no closing `-->`"));
        let one_line = "<!-- quote: cargo xtask qemu -->\n```\n```\n";
        assert!(parse(one_line).is_err());
        let open_block = "<!-- quote: cargo xtask qemu\nline: x\n-->\n```\nx\n";
        assert!(parse(open_block).unwrap_err().contains("never closed"));
    }

    fn picks(text: &str) -> Vec<Pick> {
        text.lines().map(|l| parse_pick(l).unwrap()).collect()
    }

    const CONSOLE: &str = "brk-path kernel 0.1.0\n\
        trace: brk #0x5 at 0x40 (p:f), tid 1\n\
        trace: tree miss\n\
        trace: step exception, slot 1 released\n\
        p: f = 1\n\
        trace: brk #0x5 at 0x40 (p:f), tid 1\n\
        trace: tree hit\n\
        trace: step exception, slot 1 released\n\
        power off: status 0 (success)";

    #[test]
    fn picks_select_lines_in_order_with_every_gap_shown() {
        let console = lines(CONSOLE);
        assert_eq!(select(&console, &picks("until: ^power off")).unwrap(), console);
        assert_eq!(select(&console, &picks("line: tree hit")).unwrap(), ["trace: tree hit"]);
        // Adjacent picks: no gap; each search starts after the previous pick.
        assert_eq!(
            select(&console, &picks("line: ^trace: brk\nline: tree")).unwrap(),
            ["trace: brk #0x5 at 0x40 (p:f), tid 1", "trace: tree miss"]
        );
        assert_eq!(
            select(&console, &picks("line: ^trace: brk\nline: tree hit\nline: ^power")).unwrap(),
            [
                "trace: brk #0x5 at 0x40 (p:f), tid 1",
                OMITTED,
                "trace: tree hit",
                OMITTED,
                "power off: status 0 (success)"
            ]
        );
        assert_eq!(
            select(&console, &picks("line: tree miss\nline: ^trace: brk\nuntil: released")).unwrap(),
            [
                "trace: tree miss",
                OMITTED,
                "trace: brk #0x5 at 0x40 (p:f), tid 1",
                "trace: tree hit",
                "trace: step exception, slot 1 released"
            ]
        );
    }

    #[test]
    fn a_pick_that_matches_nothing_after_the_previous_one_is_an_error() {
        let console = lines(CONSOLE);
        let why = select(&console, &picks("line: ^power off\nline: ^trace:")).unwrap_err();
        assert_eq!(why, "`line: ^trace:` matches no line of the run after line 9 of its console");
        assert!(select(&console, &picks("line: panic")).is_err());
    }

    #[test]
    fn the_console_loses_escapes_carriage_returns_and_trailing_blanks() {
        let output =
            "\x1b[2J\x1b[01;01H\x1b[=3hBdsDxe: loading\r\nbrk-path kernel 0.1.0\r\ntask: started pid 1 hello \r\n";
        assert_eq!(console_lines(output), ["BdsDxe: loading", "brk-path kernel 0.1.0", "task: started pid 1 hello"]);
    }

    #[test]
    fn only_what_varies_between_runs_is_normalised() {
        let cases = [
            (
                "boot: first EL0 instruction at CNTVCT=7172934 (62500000 Hz)",
                "boot: first EL0 instruction at CNTVCT=<varies> (62500000 Hz)",
            ),
            (
                "boot: first ring-3 instruction at TSC=11471840168 (2445009869 Hz)",
                "boot: first ring-3 instruction at TSC=<varies> (<varies> Hz)",
            ),
            (
                "timer:   local APIC timer (one-shot) at 0xfee00000; TSC 2445009869 Hz (from the HPET at 0xfed00000)",
                "timer:   local APIC timer (one-shot) at 0xfee00000; TSC <varies> Hz (from the HPET at 0xfed00000)",
            ),
            (
                "timer:   local APIC timer counts at 999568531 Hz (measured against the TSC), one shot per tick",
                "timer:   local APIC timer counts at <varies> Hz (measured against the TSC), one shot per tick",
            ),
            (
                "  pid 1 demo: exited with status 0, 1 thread(s), ran 4 ms, 12 tick(s), preempted 3 time(s)",
                "  pid 1 demo: exited with status 0, 1 thread(s), ran <varies> ms, <varies> tick(s), preempted <varies> time(s)",
            ),
            (
                "trace: slot 1 (NeverWritten): written 0x91002400 through the kernel alias 0x4052f004; DC CVAU 1 line(s) at 0x4052f000, DSB ISH, IC IVAU 1 line(s) at 0x4052f000, DSB ISH, ISB",
                "trace: slot 1 (NeverWritten): written 0x91002400 through the kernel alias <varies>; DC CVAU 1 line(s) at <varies>, DSB ISH, IC IVAU 1 line(s) at <varies>, DSB ISH, ISB",
            ),
            (
                "paging:  identity map 0..0x100000000 (ring 0), image 0x1cd09000..0x1de62000 mapped by its 5 PE sections",
                "paging:  identity map 0..0x100000000 (ring 0), image <varies>..<varies> mapped by its 5 PE sections",
            ),
            ("task: started pid 1 demo ", "task: started pid 1 demo"),
        ];
        for (line, normalised) in cases {
            assert_eq!(normalise(line), normalised);
        }
        // User addresses, instruction words, slots, counts and exit statuses stay.
        for kept in [
            "trace: return probe armed: x30 0x4000000608 -> trampoline 0x7fffff0000 (0 abandoned frames dropped)",
            "trace: slot 1 (Remembered): already holds 0x91002400: no write, no cache maintenance",
            "counters: hits=4 simulated=0 stepped=4 slot_reused=2 slot_written=2 dc_cvau_lines=2",
            "wx-audit: 1 address spaces, 27 user pages, 0 writable+executable mappings",
        ] {
            assert_eq!(normalise(kept), kept);
        }
    }

    #[test]
    fn the_first_difference_is_found_after_normalising() {
        let quoted = lines("boot: at CNTVCT=1 (62500000 Hz)\ntrace: x30 0x4000000608\npower off");
        let same = lines("boot: at CNTVCT=2 (62500000 Hz)\ntrace: x30 0x4000000608\npower off");
        assert_eq!(first_difference(&quoted, &same), None);
        let moved = lines("boot: at CNTVCT=2 (62500000 Hz)\ntrace: x30 0x4000000690\npower off");
        assert_eq!(
            first_difference(&quoted, &moved),
            Some(Difference {
                index: 1,
                quoted: Some("trace: x30 0x4000000608".into()),
                printed: Some("trace: x30 0x4000000690".into())
            })
        );
        let longer = lines("boot: at CNTVCT=2 (62500000 Hz)\ntrace: x30 0x4000000608\npower off\nmore");
        assert_eq!(first_difference(&quoted, &longer).map(|d| (d.index, d.quoted)), Some((3, None)));
    }

    #[test]
    fn a_check_names_the_doc_block_and_line() {
        let quote = &parse(DOC).unwrap()[0];
        let difference = Difference { index: 0, quoted: Some("old line".into()), printed: Some("new line".into()) };
        let described = describe(Path::new("docs/a.md"), quote, &difference);
        assert_eq!(
            described,
            "line 1 of the block (docs/a.md:8) differs:\n    the doc says      \"old line\"\n    the kernel prints \"new line\""
        );
    }

    #[test]
    fn rewriting_replaces_only_the_blocks_bodies() {
        let quotes = parse(DOC).unwrap();
        let rewritten =
            rewrite(DOC, &[(quotes[0].body.clone(), lines("new 1\nnew 2")), (quotes[1].body.clone(), Vec::new())]);
        let again = parse(&rewritten).unwrap();
        assert_eq!(again[0].quoted, ["new 1", "new 2"]);
        assert!(again[1].quoted.is_empty());
        assert!(rewritten.contains("an unmarked block: not a quote"));
        assert!(rewritten.ends_with("````\n````\n"));
        // Rewriting with what is there changes nothing.
        let bodies: Vec<_> = again.iter().map(|q| (q.body.clone(), q.quoted.clone())).collect();
        assert_eq!(rewrite(&rewritten, &bodies), rewritten);
    }

    #[test]
    fn a_marker_names_a_cargo_xtask_qemu_command() {
        let args =
            qemu_args_of("cargo xtask qemu --arch x86_64 --run probed:2 --probe probed:cls_push --trace").unwrap();
        assert_eq!(args.arch, Arch::X86_64);
        assert_eq!(args.run, ["probed:2"]);
        assert!(args.trace);
        let args = qemu_args_of("cargo xtask qemu --append 'inject=panic extra'").unwrap();
        assert_eq!(args.append.as_deref(), Some("inject=panic extra"));
        assert!(qemu_args_of("cargo xtask test").is_err());
        assert!(qemu_args_of("qemu-system-aarch64 -M virt").is_err());
        assert!(qemu_args_of("cargo xtask qemu --no-such-flag").err().unwrap().contains("--no-such-flag"));
        assert!(qemu_args_of("cargo xtask qemu --gdb").is_err());
        assert!(qemu_args_of("cargo xtask qemu --report r.json").is_err());
    }

    /// Every marker in the docs parses and names a command `cargo xtask qemu` takes.
    #[test]
    fn every_quote_in_the_docs_is_well_formed() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut count = 0;
        for doc in docs_under(root).unwrap() {
            let text = std::fs::read_to_string(root.join(&doc)).unwrap();
            for quote in parse(&text).unwrap_or_else(|why| panic!("{}: {why}", doc.display())) {
                qemu_args_of(&quote.command).unwrap_or_else(|why| panic!("{}:{}: {why}", doc.display(), quote.line));
                count += 1;
            }
        }
        assert!(count > 0, "no quote found in the docs");
    }
}
