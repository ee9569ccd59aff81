//! Reading a screen back: boot QEMU with a QMP socket, wait for a line on the
//! serial console, take a screendump, and compare it with what the text
//! should look like, drawn on the host by the kernel's own `text-screen` code
//! and font from the serial transcript.
//!
//! The comparison is exact, pixel by pixel: the console draws grey levels of one
//! bitmap font, which QEMU's screendump (PPM, 8 bits per colour) keeps as they
//! are. The kernel draws every message on the screen before it sends it to the
//! UART, so once a line is on the serial console it is on the screen too.

use crate::{check_strict_log, run_from_parts, with_strict_log, Run};
use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};
use text_screen::{PixelBuffer, GLYPH_HEIGHT, GLYPH_WIDTH};
use wait_timeout::ChildExt;

/// A screendump: `0x00RRGGBB` pixels, row after row.
pub type Screen = PixelBuffer;

/// Boots QEMU (`QEMU`, default `qemu-system-aarch64`) with `args`, waits until the
/// serial console prints a line containing `until`, then takes a screendump
/// through QMP and quits QEMU. Every step is cut off by `timeout`; a hang, or
/// QEMU ending before the line, fails the test with the transcript.
pub fn boot_and_screendump(args: &[String], until: &str, timeout: Duration) -> (Run, Screen) {
    let dir = std::env::temp_dir().join(format!("brk-screen-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).expect("a scratch folder for the QMP socket and the dump");
    let (socket, dump) = (dir.join("qmp.sock"), dir.join("screen.ppm"));
    let qemu = std::env::var("QEMU").ok().filter(|q| !q.is_empty()).unwrap_or_else(|| "qemu-system-aarch64".into());
    let mut args = args.to_vec();
    args.extend(["-qmp".to_string(), format!("unix:{},server=on,wait=off", socket.display())]);
    let (args, log) = with_strict_log(&args);
    let command_line = format!("{qemu} {}", args.join(" "));

    let started = Instant::now();
    let mut child = Command::new(&qemu)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {command_line}: {e}"));
    let (lines_tx, lines) = mpsc::channel::<String>();
    let mut stdout = child.stdout.take().expect("stdout was piped");
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while let Ok(1) = stdout.read(&mut byte) {
            all.push(byte[0]);
            line.push(byte[0]);
            if byte[0] == b'\n' {
                let _ = lines_tx.send(String::from_utf8_lossy(&line).into_owned());
                line.clear();
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let mut stderr_pipe = child.stderr.take().expect("stderr was piped");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });

    let deadline = started + timeout;
    let outcome = wait_for_line(&lines, until, deadline).and_then(|()| qmp_screendump(&socket, &dump, deadline));
    let (status, timed_out) = match child.wait_timeout(deadline.saturating_duration_since(Instant::now())).expect("waiting for QEMU") {
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
        timeout,
        started.elapsed(),
        command_line,
    );
    check_strict_log(&run, &log);
    let screen = outcome.and_then(|()| {
        let bytes = std::fs::read(&dump).map_err(|e| format!("reading the screendump {}: {e}", dump.display()))?;
        parse_ppm(&bytes)
    });
    let _ = std::fs::remove_dir_all(&dir);
    match screen {
        Ok(screen) => (run, screen),
        Err(why) => run.fail(&why),
    }
}

fn unique() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Waits for a console line containing `until`.
fn wait_for_line(lines: &mpsc::Receiver<String>, until: &str, deadline: Instant) -> Result<(), String> {
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains(until) => return Ok(()),
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => return Err(format!("no console line containing {until:?} before the timeout (a hang)")),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(format!("QEMU ended before a console line containing {until:?}")),
        }
    }
}

/// Through the QMP socket: `qmp_capabilities`, `screendump` into `dump`, `quit`.
fn qmp_screendump(socket: &Path, dump: &PathBuf, deadline: Instant) -> Result<(), String> {
    let stream = UnixStream::connect(socket).map_err(|e| format!("connecting to QMP at {}: {e}", socket.display()))?;
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    stream.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut greeting = String::new();
    reader.read_line(&mut greeting).map_err(|e| format!("reading QMP's greeting: {e}"))?;
    let mut execute = |command: String| -> Result<(), String> {
        writeln!(writer, "{command}").map_err(|e| format!("sending {command}: {e}"))?;
        loop {
            let mut reply = String::new();
            if reader.read_line(&mut reply).map_err(|e| format!("waiting for the answer to {command}: {e}"))? == 0 {
                return Err(format!("QMP closed before answering {command}"));
            }
            // Events ({"event": ...}) may come first; the answer has "return" or "error".
            if reply.contains("\"error\"") {
                return Err(format!("QMP refused {command}: {}", reply.trim()));
            }
            if reply.contains("\"return\"") {
                return Ok(());
            }
        }
    };
    execute(r#"{"execute": "qmp_capabilities"}"#.to_string())?;
    let path = dump.display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
    execute(format!(r#"{{"execute": "screendump", "arguments": {{"filename": "{path}"}}}}"#))?;
    execute(r#"{"execute": "quit"}"#.to_string())
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
    let number = |i: usize| fields[i].parse::<usize>().map_err(|_| format!("PPM header field {:?} is not a number", fields[i]));
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
