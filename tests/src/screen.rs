//! Reading a screen back: boot QEMU with a QMP socket, wait until the kernel
//! has finished, take a screendump, and compare it with what the text should
//! look like, drawn on the host by the kernel's own `text-screen` code and font
//! from the serial transcript.
//!
//! "Finished" is whichever comes first of: the line a [`Finished`] names (on the
//! serial console, or on the screen itself for a machine without one, read back
//! from screendumps), or QMP's `SHUTDOWN` event (a guest that powers off under
//! `-no-shutdown` stops there and keeps its display). Every wait is cut off by
//! the boot's timeout with a message saying what never came.
//!
//! The comparison is exact, pixel by pixel: the console draws grey levels of one
//! bitmap font, which QEMU's screendump (PPM, 8 bits per colour) keeps as they
//! are. The kernel draws every message on the screen before it sends it to the
//! UART, so once a line is on the serial console it is on the screen too.

use crate::{check_log, run_from_parts, Run, StrictLog};
use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};
use text_screen::{PixelBuffer, GLYPH_HEIGHT, GLYPH_WIDTH};
use wait_timeout::ChildExt;

/// A screendump: `0x00RRGGBB` pixels, row after row.
pub type Screen = PixelBuffer;

/// What says that the kernel has finished drawing (besides QMP's `SHUTDOWN`
/// event, which always does).
#[derive(Clone, Copy, Debug)]
pub enum Finished<'a> {
    /// A serial console line containing this.
    SerialLine(&'a str),
    /// A text row of the screen starting with this, for a machine without a
    /// serial console: screendumps are taken until one shows it.
    ScreenRow(&'a str),
}

/// How often a [`Finished::ScreenRow`] wait looks at the screen. Only the
/// cost of polling depends on it, never the outcome: the boot's timeout bounds
/// the wait.
const SCREEN_POLL: Duration = Duration::from_millis(250);

/// One QEMU boot whose screen is read back.
pub struct ScreenBoot<'a> {
    /// The QEMU binary.
    pub qemu: String,
    pub args: Vec<String>,
    pub finished: Finished<'a>,
    pub timeout: Duration,
    /// Which QEMU log the run keeps and what in it fails the run.
    pub strict_log: StrictLog,
}

/// Boots QEMU (`QEMU`, default `qemu-system-aarch64`) with `args` and a strict
/// log, waits until the serial console prints a line containing `until`, then
/// takes a screendump through QMP and quits QEMU ([`ScreenBoot::run`]).
pub fn boot_and_screendump(args: &[String], until: &str, timeout: Duration) -> (Run, Screen) {
    let qemu = std::env::var("QEMU").ok().filter(|q| !q.is_empty()).unwrap_or_else(|| "qemu-system-aarch64".into());
    ScreenBoot {
        qemu,
        args: args.to_vec(),
        finished: Finished::SerialLine(until),
        timeout,
        strict_log: StrictLog::Aarch64,
    }
    .run()
}

/// What the two reader threads report.
enum Event {
    /// A serial console line.
    Serial(String),
    /// QEMU closed its stdout: it has ended.
    SerialClosed,
    /// A line from the QMP socket (an answer or an event).
    Qmp(String),
    /// The QMP socket closed.
    QmpClosed,
}

impl ScreenBoot<'_> {
    /// Boots, waits until the kernel has finished, takes a screendump and quits
    /// QEMU. Every step is cut off by `timeout`; a hang, or QEMU ending before
    /// the kernel has finished, fails the test with the transcript.
    pub fn run(&self) -> (Run, Screen) {
        let dir = std::env::temp_dir().join(format!("brk-screen-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("a scratch folder for the QMP socket and the dump");
        let (socket, dump) = (dir.join("qmp.sock"), dir.join("screen.ppm"));
        let mut args = self.args.clone();
        args.extend(["-qmp".to_string(), format!("unix:{},server=on,wait=off", socket.display())]);
        let log = dir.join("qemu.log");
        args.extend(self.strict_log.args(&log));
        let qemu = &self.qemu;
        let command_line = format!("{qemu} {}", args.join(" "));

        let started = Instant::now();
        let mut child = Command::new(qemu)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {command_line}: {e}"));
        let (events_tx, events) = mpsc::channel::<Event>();
        let mut stdout = child.stdout.take().expect("stdout was piped");
        let serial_tx = events_tx.clone();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while let Ok(1) = stdout.read(&mut byte) {
                all.push(byte[0]);
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    let _ = serial_tx.send(Event::Serial(String::from_utf8_lossy(&line).into_owned()));
                    line.clear();
                }
            }
            let _ = serial_tx.send(Event::SerialClosed);
            String::from_utf8_lossy(&all).into_owned()
        });
        let mut stderr_pipe = child.stderr.take().expect("stderr was piped");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            text
        });

        let deadline = started + self.timeout;
        let outcome = Qmp::connect(&socket, events_tx, events, deadline)
            .and_then(|mut qmp| qmp.screendump_when_finished(self.finished, &dump, deadline));
        let (status, timed_out) =
            match child.wait_timeout(deadline.saturating_duration_since(Instant::now())).expect("waiting for QEMU") {
                Some(status) => (status, false),
                None => {
                    let _ = child.kill();
                    (child.wait().expect("reaping QEMU"), true)
                }
            };
        let run = run_from_parts(
            status.code(),
            status.to_string(),
            reader.join().unwrap_or_default(),
            stderr.join().unwrap_or_default(),
            timed_out,
            self.timeout,
            started.elapsed(),
            command_line,
        );
        check_log(&run, &log, self.strict_log);
        let _ = std::fs::remove_dir_all(&dir);
        match outcome {
            Ok(screen) => (run, screen),
            Err(why) => run.fail(&why),
        }
    }
}

fn unique() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A QMP connection whose incoming lines arrive, with the serial console's, on
/// one channel of [`Event`]s; what arrives is remembered, so nothing awaited is
/// missed while a command's answer is awaited.
struct Qmp {
    writer: UnixStream,
    events: mpsc::Receiver<Event>,
    /// The serial console's lines so far.
    serial: Vec<String>,
    /// QMP has sent the `SHUTDOWN` event: the guest powered off.
    shut_down: bool,
    /// QEMU's stdout or the QMP socket closed: QEMU has ended.
    ended: bool,
}

impl Qmp {
    /// Connects to QEMU's QMP socket (QEMU creates it as it starts: retried
    /// until `deadline`) and leaves capabilities negotiation mode.
    fn connect(
        socket: &Path,
        events_tx: mpsc::Sender<Event>,
        events: mpsc::Receiver<Event>,
        deadline: Instant,
    ) -> Result<Qmp, String> {
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("QEMU's QMP socket {} did not open before the timeout: {e}", socket.display()))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if events_tx.send(Event::Qmp(line)).is_err() {
                    return;
                }
            }
            let _ = events_tx.send(Event::QmpClosed);
        });
        let mut qmp = Qmp { writer: stream, events, serial: Vec::new(), shut_down: false, ended: false };
        qmp.execute(r#"{"execute": "qmp_capabilities"}"#, deadline)?;
        Ok(qmp)
    }

    /// Takes the next event before `until` into account; `None` if there was
    /// none by then.
    fn next(&mut self, until: Instant) -> Option<Event> {
        let event = self.events.recv_timeout(until.saturating_duration_since(Instant::now())).ok()?;
        match &event {
            Event::Serial(line) => self.serial.push(line.clone()),
            Event::Qmp(line) if line.contains(r#""event": "SHUTDOWN""#) => self.shut_down = true,
            Event::Qmp(_) => {}
            Event::SerialClosed | Event::QmpClosed => self.ended = true,
        }
        Some(event)
    }

    /// Sends `command` and waits for its answer.
    fn execute(&mut self, command: &str, deadline: Instant) -> Result<(), String> {
        // One write: QMP acts on a command as soon as its JSON is complete, so
        // after `quit` the socket may be gone before a separate newline.
        self.writer.write_all(format!("{command}\n").as_bytes()).map_err(|e| format!("sending {command}: {e}"))?;
        loop {
            match self.next(deadline) {
                None => return Err(format!("no answer to {command} before the timeout (a hang)")),
                Some(Event::Qmp(reply)) if reply.contains(r#""error""#) => {
                    return Err(format!("QMP refused {command}: {}", reply.trim()))
                }
                Some(Event::Qmp(reply)) if reply.contains(r#""return""#) => return Ok(()),
                Some(Event::QmpClosed) => return Err(format!("QMP closed before answering {command}")),
                Some(_) => {}
            }
        }
    }

    /// A screendump into `dump`, read back.
    fn screendump(&mut self, dump: &Path, deadline: Instant) -> Result<Screen, String> {
        let path = dump.display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
        self.execute(&format!(r#"{{"execute": "screendump", "arguments": {{"filename": "{path}"}}}}"#), deadline)?;
        let bytes = std::fs::read(dump).map_err(|e| format!("reading the screendump {}: {e}", dump.display()))?;
        parse_ppm(&bytes)
    }

    /// Waits until the kernel has `finished` (or powered off), takes the
    /// screendump that shows its end, and quits QEMU.
    fn screendump_when_finished(
        &mut self,
        finished: Finished,
        dump: &Path,
        deadline: Instant,
    ) -> Result<Screen, String> {
        let screen = match finished {
            Finished::SerialLine(until) => {
                let what = format!("console line containing {until:?} and no QMP SHUTDOWN event");
                while !self.shut_down && !self.serial.iter().any(|line| line.contains(until)) {
                    if self.ended {
                        return Err(format!("QEMU ended with no {what}"));
                    }
                    if self.next(deadline).is_none() {
                        return Err(format!("no {what} before the timeout (a hang)"));
                    }
                }
                self.screendump(dump, deadline)?
            }
            Finished::ScreenRow(start) => loop {
                let what = format!("screen row starting {start:?} and no QMP SHUTDOWN event");
                let screen = self.screendump(dump, deadline)?;
                if self.shut_down || (0..screen.height / GLYPH_HEIGHT).any(|row| screen.row_shows(row, start)) {
                    break screen;
                }
                let next_look = Instant::now() + SCREEN_POLL;
                if next_look >= deadline {
                    return Err(format!("no {what} before the timeout (a hang)"));
                }
                while !self.shut_down && !self.ended && self.next(next_look).is_some() {}
                if self.ended {
                    return Err(format!("QEMU ended with no {what}"));
                }
            },
        };
        // QEMU may close the socket before its answer to `quit` is read.
        match self.execute(r#"{"execute": "quit"}"#, deadline) {
            Err(_) if self.ended => Ok(screen),
            result => result.map(|()| screen),
        }
    }
}

/// Fails `run` unless `screen` is, pixel for pixel, `transcript` drawn by the
/// console's code and font on the host.
pub fn expect_screen_shows(run: &Run, screen: &Screen, transcript: &str) {
    let expected = expected_screen(transcript, screen.width, screen.height);
    if let Some((col, row)) = first_different_cell(screen, &expected) {
        run.fail(&format!(
            "the screendump differs from the transcript drawn on the host, first in text cell column {col}, row {row} \
             ({}x{} pixels, {}x{} cells of {}x{})",
            screen.width,
            screen.height,
            screen.width / GLYPH_WIDTH,
            screen.height / GLYPH_HEIGHT,
            GLYPH_WIDTH,
            GLYPH_HEIGHT
        ));
    }
}

/// A binary PPM (`P6`, maxval 255), as QEMU's screendump writes it.
pub fn parse_ppm(bytes: &[u8]) -> Result<Screen, String> {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        if start == at {
            return Err("the screendump ends inside its header".into());
        }
        fields.push(String::from_utf8_lossy(&bytes[start..at]).into_owned());
    }
    let data = &bytes[at + 1..];
    let number =
        |i: usize| fields[i].parse::<usize>().map_err(|_| format!("PPM header field {:?} is not a number", fields[i]));
    let (width, height, maxval) = (number(1)?, number(2)?, number(3)?);
    if fields[0] != "P6" || maxval != 255 {
        return Err(format!("the screendump is not a PPM of 8-bit RGB (header {fields:?})"));
    }
    if data.len() != width * height * 3 {
        return Err(format!("the screendump holds {} bytes for {width}x{height} pixels", data.len()));
    }
    let data = data.chunks_exact(3).map(|p| u32::from(p[0]) << 16 | u32::from(p[1]) << 8 | u32::from(p[2])).collect();
    Ok(PixelBuffer { width, height, data })
}

/// What the screen shows after `transcript`, rendered on the host.
pub fn expected_screen(transcript: &str, width: usize, height: usize) -> Screen {
    text_screen::render(transcript, width, height).expect("a screen of at least one text cell")
}

/// The first text cell (column, row) where `actual` differs from `expected`, if any.
pub fn first_different_cell(actual: &Screen, expected: &Screen) -> Option<(usize, usize)> {
    assert_eq!((actual.width, actual.height), (expected.width, expected.height), "screens of different sizes");
    (0..actual.height)
        .flat_map(|y| (0..actual.width).map(move |x| (x, y)))
        .find(|&(x, y)| actual.at(x, y) != expected.at(x, y))
        .map(|(x, y)| (x / GLYPH_WIDTH, y / GLYPH_HEIGHT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ppm_header_and_its_pixels_are_read() {
        let mut bytes = b"P6\n2 1\n255\n".to_vec();
        bytes.extend([1, 2, 3, 255, 0, 128]);
        let screen = parse_ppm(&bytes).unwrap();
        assert_eq!((screen.width, screen.height), (2, 1));
        assert_eq!(screen.data, [0x010203, 0xff0080]);
    }

    #[test]
    fn a_short_or_foreign_ppm_is_refused() {
        assert!(parse_ppm(b"P6\n2 1\n255\n\x01\x02").is_err());
        assert!(parse_ppm(b"P5\n1 1\n255\n\x01").is_err());
        assert!(parse_ppm(b"P6\n2").is_err());
    }

    #[test]
    fn a_difference_is_found_in_the_cell_that_holds_it() {
        let screen = expected_screen("first\nsecond\n", 20 * GLYPH_WIDTH, 3 * GLYPH_HEIGHT);
        assert!(screen.row_shows(0, "first") && screen.row_shows(1, "second"));
        assert!(!screen.row_shows(0, "second") && !screen.row_shows(2, "first"));
        let mut changed = screen.clone();
        changed.data[GLYPH_HEIGHT / 2 * changed.width + 2] ^= 0x10;
        assert_eq!(first_different_cell(&changed, &screen), Some((0, 0)));
        assert_eq!(first_different_cell(&screen, &screen), None);
    }
}
