//! The shell's input path fuzzed: 100,000 random lines, typed byte by byte
//! into the line editor and parsed, from a fixed seed (`SHELL_FUZZ_SEED`
//! picks another). Nothing may panic, every line must be answered exactly
//! once (a command, an empty line, an error of one line, or "too long"), and
//! no answer may depend on anything but the line.

use brk_shell::{parse, Entered, LineEditor, Parsed, COMMANDS, MAX_LINE};
use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};

const LINES: usize = 100_000;

/// Words the shell knows, so that many random lines get deep into the parser.
const WORDS: &[&str] = &[
    "add",
    "del",
    "list",
    "ret",
    "on",
    "off",
    "fresh",
    "reuse",
    "all",
    "branches",
    "demo:fib",
    "demo:fib+0x4",
    "probed:0x400000",
    "hello",
    "threads",
    "1",
    "0",
    "0x",
    "0xffffffffff",
    "-1",
    "4294967296",
    ":",
    "+",
    "a:b+c",
];

fn seed() -> u64 {
    std::env::var("SHELL_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_5e11)
}

/// One random line's bytes, without its end: random bytes, random words, or
/// a command name followed by random words.
fn random_line(rng: &mut TestRng) -> Vec<u8> {
    let pick = |rng: &mut TestRng, n: usize| (rng.next_u64() % n as u64) as usize;
    match pick(rng, 3) {
        0 => {
            let len = pick(rng, 2 * MAX_LINE);
            // Mostly printable, then anything but the two line ends, which would split the line.
            (0..len)
                .map(|_| match rng.next_u64() % 4 {
                    0 => rng.next_u64() as u8,
                    _ => 0x20 + (rng.next_u64() % 0x5f) as u8,
                })
                .filter(|b| *b != b'\r' && *b != b'\n')
                .collect()
        }
        kind => {
            let mut words: Vec<&str> = Vec::new();
            if kind == 2 {
                words.push(COMMANDS[pick(rng, COMMANDS.len())].name);
            }
            for _ in 0..pick(rng, 5) {
                words.push(WORDS[pick(rng, WORDS.len())]);
            }
            words.join(" ").into_bytes()
        }
    }
}

#[test]
fn every_random_line_is_answered_once_without_a_panic() {
    let mut rng = TestRng::from_seed(RngAlgorithm::XorShift, &seed().to_le_bytes().repeat(2));
    let mut editor = LineEditor::new();
    let (mut commands, mut errors, mut empty, mut too_long) = (0, 0, 0, 0);
    for n in 0..LINES {
        let mut bytes = random_line(&mut rng);
        bytes.push(b'\r');
        let mut echoed = String::new();
        let mut answers = Vec::new();
        for &byte in &bytes {
            if let Some(entered) = editor.feed(byte, &mut |text| echoed.push_str(text)) {
                answers.push(entered);
            }
        }
        assert_eq!(answers.len(), 1, "line {n} ({bytes:?}) was entered {} times", answers.len());
        match answers.pop().unwrap() {
            Entered::TooLong => too_long += 1,
            Entered::Line(line) => {
                assert!(line.len() <= MAX_LINE);
                assert!(line.bytes().all(|b| (0x20..=0x7e).contains(&b)), "line {n}: {line:?}");
                match parse(&line) {
                    Parsed::Command(_) => commands += 1,
                    Parsed::Empty => empty += 1,
                    Parsed::Error(why) => {
                        assert!(!why.is_empty() && !why.contains('\n') && why.len() < 160, "line {n}: {why:?}");
                        errors += 1;
                    }
                }
            }
        }
        assert!(echoed.ends_with('\n'), "line {n}: the line end is echoed");
    }
    // The generator reaches every kind of answer, so the test can fail.
    assert!(commands > 1000 && errors > 1000 && empty > 0 && too_long > 100, "{commands} {errors} {empty} {too_long}");
}
