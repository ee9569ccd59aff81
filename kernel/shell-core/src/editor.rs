//! The line editor: the bytes a terminal sends in, the echo it should show
//! and the finished lines out.
//!
//! What it understands: printable ASCII (inserted at the end of the line),
//! backspace (`0x08`) and DEL (`0x7f`, what most terminals send for the
//! backspace key), CR or LF (or CR LF) to end the line, and the arrow keys
//! up and down (`ESC [ A`, `ESC [ B`) to walk a history of the last
//! [`HISTORY_LINES`] lines. Other escape sequences are read to their end and
//! dropped (a byte that cannot continue one, such as Enter, ends it and counts
//! for itself); other control bytes and bytes above `0x7e` are dropped. A line
//! holds at most [`MAX_LINE`] characters: what is typed beyond that is not
//! echoed, and the line is answered with [`Entered::TooLong`] instead of being
//! run. The echo erases with `BS SP BS`, which every terminal understands.

use alloc::{collections::VecDeque, string::String};

/// The longest line the shell takes, in characters.
pub const MAX_LINE: usize = 160;
/// How many lines the history keeps.
pub const HISTORY_LINES: usize = 32;

/// A line the user finished with Enter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entered {
    /// The line as edited (possibly empty).
    Line(String),
    /// More than [`MAX_LINE`] characters were typed: the line is discarded.
    TooLong,
}

/// Where the editor is in an escape sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    /// After `ESC`.
    Started,
    /// After `ESC [`: parameter bytes until a final byte (`0x40..=0x7e`).
    ControlSequence,
    /// After `ESC O` (the application-mode keys): one more byte.
    SingleShift,
}

/// One terminal's line being typed, and its history.
#[derive(Debug)]
pub struct LineEditor {
    line: String,
    /// Characters were typed past [`MAX_LINE`] since the line began.
    overflowed: bool,
    history: VecDeque<String>,
    /// Which history line is shown (0: the newest), while walking it.
    browsing: Option<usize>,
    escape: Escape,
    /// The last byte was CR: a LF right after it ends nothing more.
    after_cr: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

const ESC: u8 = 0x1b;
const BACKSPACE: u8 = 0x08;
const DEL: u8 = 0x7f;
/// What erases one character on a terminal: back, blank it, back.
const ERASE: &str = "\x08 \x08";

impl LineEditor {
    pub const fn new() -> Self {
        Self {
            line: String::new(),
            overflowed: false,
            history: VecDeque::new(),
            browsing: None,
            escape: Escape::None,
            after_cr: false,
        }
    }

    /// The line typed so far.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The history, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &str> {
        self.history.iter().map(String::as_str)
    }

    /// Take one byte from the terminal; `echo` gets what the terminal should
    /// show for it. Returns the line when this byte ended one.
    pub fn feed(&mut self, byte: u8, echo: &mut impl FnMut(&str)) -> Option<Entered> {
        let after_cr = core::mem::replace(&mut self.after_cr, byte == b'\r');
        match self.escape {
            Escape::Started if byte == b'[' => {
                self.escape = Escape::ControlSequence;
                return None;
            }
            Escape::Started if byte == b'O' => {
                self.escape = Escape::SingleShift;
                return None;
            }
            Escape::SingleShift if (0x20..=0x7e).contains(&byte) => {
                self.escape = Escape::None;
                return None;
            }
            Escape::ControlSequence if (0x20..=0x3f).contains(&byte) => return None,
            Escape::ControlSequence if (0x40..=0x7e).contains(&byte) => {
                self.escape = Escape::None;
                match byte {
                    b'A' => self.history_up(echo),
                    b'B' => self.history_down(echo),
                    _ => {}
                }
                return None;
            }
            // Not (or no longer) a sequence: the byte counts for itself, so
            // that an Enter after a stray ESC still ends the line.
            _ => self.escape = Escape::None,
        }
        match byte {
            ESC => self.escape = Escape::Started,
            b'\n' if after_cr => {}
            b'\r' | b'\n' => {
                echo("\n");
                return Some(self.finish());
            }
            BACKSPACE | DEL if self.line.pop().is_some() => echo(ERASE),
            0x20..=0x7e => {
                if self.line.len() < MAX_LINE {
                    self.line.push(byte as char);
                    let mut text = [0u8; 1];
                    echo((byte as char).encode_utf8(&mut text));
                } else {
                    self.overflowed = true;
                }
            }
            _ => {}
        }
        None
    }

    /// Enter: the line (remembered in the history unless empty, too long or
    /// the same as the newest), and a fresh one.
    fn finish(&mut self) -> Entered {
        self.browsing = None;
        let line = core::mem::take(&mut self.line);
        if core::mem::replace(&mut self.overflowed, false) {
            return Entered::TooLong;
        }
        let trimmed = line.trim();
        if !trimmed.is_empty() && self.history.back().map(String::as_str) != Some(trimmed) {
            if self.history.len() == HISTORY_LINES {
                self.history.pop_front();
            }
            self.history.push_back(String::from(trimmed));
        }
        Entered::Line(line)
    }

    fn history_up(&mut self, echo: &mut impl FnMut(&str)) {
        if self.history.is_empty() {
            return;
        }
        let shown = self.browsing.map_or(0, |newer| (newer + 1).min(self.history.len() - 1));
        self.browsing = Some(shown);
        self.show(self.history[self.history.len() - 1 - shown].clone(), echo);
    }

    fn history_down(&mut self, echo: &mut impl FnMut(&str)) {
        match self.browsing {
            None => {}
            Some(0) => {
                self.browsing = None;
                self.show(String::new(), echo);
            }
            Some(newer) => {
                self.browsing = Some(newer - 1);
                self.show(self.history[self.history.len() - newer].clone(), echo);
            }
        }
    }

    /// Replace the line on the terminal and here with `text`.
    fn show(&mut self, text: String, echo: &mut impl FnMut(&str)) {
        for _ in 0..self.line.len() {
            echo(ERASE);
        }
        echo(&text);
        self.line = text;
        self.overflowed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{string::ToString, vec::Vec};

    /// Feed `bytes`; returns the lines entered and everything echoed.
    fn type_in(editor: &mut LineEditor, bytes: &[u8]) -> (Vec<Entered>, String) {
        let mut echoed = String::new();
        let mut lines = Vec::new();
        for &byte in bytes {
            if let Some(line) = editor.feed(byte, &mut |text| echoed.push_str(text)) {
                lines.push(line);
            }
        }
        (lines, echoed)
    }

    fn line(text: &str) -> Entered {
        Entered::Line(text.to_string())
    }

    #[test]
    fn typed_text_is_echoed_and_entered() {
        let mut editor = LineEditor::new();
        let (lines, echoed) = type_in(&mut editor, b"ps\r");
        assert_eq!(lines, [line("ps")]);
        assert_eq!(echoed, "ps\n");
    }

    #[test]
    fn cr_lf_ends_one_line_and_lf_alone_ends_one() {
        let mut editor = LineEditor::new();
        let (lines, _) = type_in(&mut editor, b"a\r\nb\n\n");
        assert_eq!(lines, [line("a"), line("b"), line("")]);
    }

    #[test]
    fn backspace_and_del_erase_on_screen_and_in_the_line() {
        let mut editor = LineEditor::new();
        let (lines, echoed) = type_in(&mut editor, b"pz\x7fs\x08\x08\x08ps\r");
        assert_eq!(lines, [line("ps")]);
        assert_eq!(echoed, "pz\x08 \x08s\x08 \x08\x08 \x08ps\n", "a backspace on an empty line echoes nothing");
    }

    #[test]
    fn arrows_walk_the_history_and_back() {
        let mut editor = LineEditor::new();
        type_in(&mut editor, b"ps\rstats\rstats\r");
        assert_eq!(editor.history().collect::<Vec<_>>(), ["ps", "stats"], "a repeated line is kept once");
        let (lines, _) = type_in(&mut editor, b"\x1b[A\x1b[A\x1b[A\r");
        assert_eq!(lines, [line("ps")], "up past the oldest stays on the oldest");
        // The history is now ps, stats, ps: up, up, up, down shows stats.
        let (lines, echoed) = type_in(&mut editor, b"\x1b[A\x1b[A\x1b[A\x1b[B\r");
        assert_eq!(lines, [line("stats")]);
        assert!(echoed.starts_with("ps"), "{echoed:?}");
        let (lines, _) = type_in(&mut editor, b"\x1b[A\x1b[Bmem\r");
        assert_eq!(lines, [line("mem")], "down past the newest gives an empty line");
    }

    #[test]
    fn other_escape_sequences_are_dropped() {
        let mut editor = LineEditor::new();
        let (lines, echoed) = type_in(&mut editor, b"m\x1b[C\x1b[1;5De\x1bOAm\r");
        assert_eq!(lines, [line("mem")], "{echoed:?}");
    }

    #[test]
    fn enter_after_a_stray_escape_still_ends_the_line() {
        let mut editor = LineEditor::new();
        assert_eq!(type_in(&mut editor, b"ps\x1b\r").0, [line("ps")]);
        assert_eq!(type_in(&mut editor, b"mem\x1b[1\r").0, [line("mem")]);
        assert_eq!(type_in(&mut editor, b"xol\x1bO\r").0, [line("xol")]);
    }

    #[test]
    fn a_line_too_long_is_refused_whole() {
        let mut editor = LineEditor::new();
        let mut bytes = alloc::vec![b'x'; MAX_LINE + 5];
        bytes.push(b'\r');
        let (lines, echoed) = type_in(&mut editor, &bytes);
        assert_eq!(lines, [Entered::TooLong]);
        assert_eq!(echoed.len(), MAX_LINE + 1, "nothing past the limit is echoed");
        assert_eq!(editor.history().count(), 0);
        let (lines, _) = type_in(&mut editor, b"ps\r");
        assert_eq!(lines, [line("ps")], "the next line is fine");
    }

    #[test]
    fn a_line_at_the_limit_is_fine() {
        let mut editor = LineEditor::new();
        let mut bytes = alloc::vec![b'x'; MAX_LINE];
        bytes.push(b'\r');
        assert_eq!(type_in(&mut editor, &bytes).0, [Entered::Line("x".repeat(MAX_LINE))]);
    }

    #[test]
    fn the_history_is_bounded() {
        let mut editor = LineEditor::new();
        for n in 0..HISTORY_LINES + 10 {
            type_in(&mut editor, alloc::format!("kill {n}\r").as_bytes());
        }
        assert_eq!(editor.history().count(), HISTORY_LINES);
        assert_eq!(editor.history().next(), Some("kill 10"));
    }

    #[test]
    fn control_and_non_ascii_bytes_are_dropped() {
        let mut editor = LineEditor::new();
        let (lines, echoed) = type_in(&mut editor, b"p\x01\x00\xffs\r");
        assert_eq!(lines, [line("ps")]);
        assert_eq!(echoed, "ps\n");
    }
}
