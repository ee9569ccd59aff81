//! `cargo xtask chainboot --serial DEV`: sends the kernel to the UART chain-loader
//! (`boot/chainloader`) over a serial line, then shows what the board prints.
//!
//! The protocol, version 1, is described in `boot/chainloader/src/main.rs` and
//! docs/rpi4.md: wait for `chainload: ready v1 max N`, send a 16-byte header (magic
//! `BRKL`, version, length, CRC-32), wait for `ack header`, send the image, wait for
//! `ack crc`. A `nak` or a timeout starts over, up to three times. The line can be a
//! USB-serial adapter (`/dev/ttyUSB0`) or a pseudo-terminal, which is how the tests
//! connect it to QEMU's `-serial pty`.

use std::{
    fs::{self, OpenOptions},
    io::{Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{
    build::{self, Board},
    cmd::Cmd,
};

#[derive(clap::Args)]
pub struct ChainbootArgs {
    /// The serial device the board's UART is on, e.g. /dev/ttyUSB0 (or a pty, or the Unix
    /// socket of QEMU's `-serial unix:PATH,server=on,wait=off`)
    #[arg(long, value_name = "DEV")]
    serial: PathBuf,
    /// Send this image instead of building the rpi4 kernel
    #[arg(long, value_name = "PATH")]
    image: Option<PathBuf>,
    /// How long to wait for the loader to say it is ready (power the board meanwhile)
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    wait: u64,
    /// Stop after the kernel has been handed over instead of showing its output
    #[arg(long)]
    no_console: bool,
}

/// The protocol version this sender speaks.
pub const PROTOCOL_VERSION: u16 = 1;
pub const MAGIC: [u8; 4] = *b"BRKL";
const ATTEMPTS: u32 = 3;
/// How long the loader may take to answer the header, and the payload once sent.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
const BAUD: u32 = 115_200;
/// The test payload's file name, next to the loader's kernel8.img.
pub const PAYLOAD_FILE: &str = "chainload-payload.img";

/// CRC-32 as the loader computes it (IEEE 802.3, reflected 0xEDB88320, as zlib).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// The 16-byte header: magic, version, reserved, length, CRC (little-endian).
pub fn header(payload: &[u8]) -> Result<[u8; 16]> {
    let length = u32::try_from(payload.len()).context("the image is larger than 4 GiB")?;
    let mut header = [0u8; 16];
    header[..4].copy_from_slice(&MAGIC);
    header[4..6].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    header[8..12].copy_from_slice(&length.to_le_bytes());
    header[12..16].copy_from_slice(&crc32(payload).to_le_bytes());
    Ok(header)
}

/// Builds the chain-loader and flattens it into `target/images/chainloader/kernel8.img`.
pub fn build_loader(debug: bool) -> Result<PathBuf> {
    let mut built =
        build::build_flat_binaries("chainloader", &["chainloader", "chainload-payload"], debug)?.into_iter();
    let ((elf, flat), (_, payload)) = (built.next().expect("the loader"), built.next().expect("the payload"));
    let dir = build::images_dir().join("chainloader");
    fs::create_dir_all(&dir)?;
    let out = dir.join("kernel8.img");
    fs::write(&out, &flat.bytes).with_context(|| format!("writing {}", out.display()))?;
    fs::write(dir.join("chainloader.elf"), &elf)?;
    println!("chain-loader: {} ({} bytes, linked at {:#x})", out.display(), flat.bytes.len(), flat.load_address);
    // The test payload goes beside it (the chain-loader test finds it there).
    fs::write(dir.join(PAYLOAD_FILE), &payload.bytes)?;
    Ok(out)
}

pub fn run(args: ChainbootArgs) -> Result<ExitCode> {
    let image = match args.image {
        Some(image) => image,
        None => build::build(Board::Rpi4, false, &[])?.image,
    };
    let payload = fs::read(&image).with_context(|| format!("reading {}", image.display()))?;
    let mut line = SerialLine::open(&args.serial)?;
    println!(
        "waiting up to {} s for the chain-loader on {} (power or reset the board now)",
        args.wait,
        args.serial.display()
    );
    let mut deadline = Instant::now() + Duration::from_secs(args.wait);
    let mut sent = false;
    for attempt in 1..=ATTEMPTS {
        let ready = line.wait_for(&["chainload: ready v"], deadline)?;
        let (version, max) = parse_ready(&ready).with_context(|| format!("the loader said {ready:?}"))?;
        if version != PROTOCOL_VERSION {
            bail!(
                "the loader speaks protocol v{version} and this xtask v{PROTOCOL_VERSION}: put the chain-loader \
                 of this checkout on the card (`cargo xtask rpi4 --chainloader --sd PATH`)"
            );
        }
        if payload.len() > max {
            bail!("{} is {} bytes; the loader has room for {max}", image.display(), payload.len());
        }
        line.write(&header(&payload)?)?;
        let answer = line.wait_for(&["chainload: ack header", "chainload: nak"], Instant::now() + ANSWER_TIMEOUT)?;
        if answer.starts_with("chainload: nak") {
            eprintln!("attempt {attempt}: the loader refused the header: {answer}");
            deadline = Instant::now() + ANSWER_TIMEOUT;
            continue;
        }
        let started = Instant::now();
        for (i, chunk) in payload.chunks(64 * 1024).enumerate() {
            line.write(chunk)?;
            let done = (i * 64 * 1024 + chunk.len()) as f64;
            eprint!("\rsent {:>4.0} KiB of {:.0} KiB", done / 1024.0, payload.len() as f64 / 1024.0);
        }
        eprintln!(" in {:.1} s", started.elapsed().as_secs_f64());
        let answer = line.wait_for(&["chainload: ack crc", "chainload: nak"], Instant::now() + ANSWER_TIMEOUT)?;
        if answer.starts_with("chainload: ack crc") {
            sent = true;
            break;
        }
        eprintln!("attempt {attempt}: {answer}");
        deadline = Instant::now() + ANSWER_TIMEOUT;
    }
    if !sent {
        bail!("the loader did not take the image in {ATTEMPTS} attempts");
    }
    if args.no_console {
        return Ok(ExitCode::SUCCESS);
    }
    // On stderr: stdout carries only what the board sends, and may be mid-line here.
    eprintln!("(the board's console follows; Ctrl-C to quit)");
    line.copy_to_stdout_until_closed();
    Ok(ExitCode::SUCCESS)
}

/// `chainload: ready v1 max 31981568` as (1, 31981568).
pub fn parse_ready(line: &str) -> Option<(u16, usize)> {
    let rest = line.trim().strip_prefix("chainload: ready v")?;
    let mut words = rest.split_whitespace();
    let version = words.next()?.parse().ok()?;
    let max = match (words.next(), words.next()) {
        (Some("max"), Some(n)) => n.parse().ok()?,
        _ => return None,
    };
    Some((version, max))
}

/// The serial device: raw 115200 8N1, written directly, read by a thread that
/// also echoes everything to our stdout.
struct SerialLine {
    port: Box<dyn Write + Send>,
    received: Receiver<Vec<u8>>,
    /// Received bytes not yet matched into a line.
    pending: Vec<u8>,
    closed: bool,
}

impl SerialLine {
    fn open(device: &Path) -> Result<Self> {
        let device_name = device.display().to_string();
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if fs::metadata(device).is_ok_and(|m| m.file_type().is_socket()) {
                // A Unix socket: QEMU's `-serial unix:PATH,server=on`, the fastest way
                // to feed its PL011 (a pty works too, at about half the speed).
                let stream = std::os::unix::net::UnixStream::connect(device)
                    .with_context(|| format!("connecting to {device_name}"))?;
                let reader = stream.try_clone()?;
                return Ok(Self::start(Box::new(stream), Box::new(reader)));
            }
        }
        // Raw: no echo, no CR/LF translation, no flow-control characters, 8N1, and
        // ignore the modem lines (most adapters leave DCD floating).
        let flag = if cfg!(target_os = "macos") { "-f" } else { "-F" };
        Cmd::new("stty")
            .args([
                flag,
                device_name.as_str(),
                &BAUD.to_string(),
                "raw",
                "-echo",
                "-ixon",
                "-ixoff",
                "cs8",
                "-cstopb",
                "-parenb",
                "clocal",
            ])
            .run()
            .with_context(|| {
                format!("setting up {device_name} (is it the right device, and may you open it? try the dialout group)")
            })?;
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // O_NOCTTY: the board's line must not become our controlling terminal.
            options.custom_flags(0o400);
        }
        let port = options.open(device).with_context(|| format!("opening {device_name}"))?;
        let reader = port.try_clone()?;
        Ok(Self::start(Box::new(port), Box::new(reader)))
    }

    fn start(port: Box<dyn Write + Send>, mut reader: Box<dyn Read + Send>) -> Self {
        let (sender, received) = mpsc::channel();
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            // A pty whose other side closed (QEMU exited) reads EIO; a tty that was
            // unplugged reads 0 or an error too. Either ends the line.
            while let Ok(n) = reader.read(&mut chunk) {
                if n == 0 || sender.send(chunk[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        SerialLine { port, received, pending: Vec::new(), closed: false }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.port.write_all(bytes).context("writing to the serial line")?;
        self.port.flush()?;
        Ok(())
    }

    /// Shows what arrives and returns the first whole line starting with one of
    /// `prefixes`; fails at `deadline` or when the line closes.
    fn wait_for(&mut self, prefixes: &[&str], deadline: Instant) -> Result<String> {
        loop {
            while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.pending.drain(..=end).collect();
                let text = String::from_utf8_lossy(&raw);
                let text = text.trim_end_matches(['\r', '\n']);
                if let Some(line) = prefixes.iter().any(|p| text.contains(p)).then(|| {
                    // Noise before the loader's words stays out of the match.
                    let start = prefixes.iter().filter_map(|p| text.find(p)).min().unwrap_or(0);
                    text[start..].to_string()
                }) {
                    return Ok(line);
                }
            }
            if self.closed {
                bail!("the serial line closed while waiting for {prefixes:?}");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.received.recv_timeout(left) {
                Ok(bytes) => {
                    let mut out = std::io::stdout();
                    let _ = out.write_all(&bytes);
                    let _ = out.flush();
                    self.pending.extend_from_slice(&bytes);
                }
                Err(RecvTimeoutError::Timeout) => {
                    bail!("no {prefixes:?} from the loader in time: is the board powered, its TX on our RX, and the chain-loader its kernel8.img?")
                }
                Err(RecvTimeoutError::Disconnected) => self.closed = true,
            }
        }
    }

    fn copy_to_stdout_until_closed(&mut self) {
        let mut out = std::io::stdout();
        while let Ok(bytes) = self.received.recv() {
            let _ = out.write_all(&bytes);
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn header_layout() {
        let h = header(b"123456789").unwrap();
        assert_eq!(&h[..4], b"BRKL");
        assert_eq!(u16::from_le_bytes([h[4], h[5]]), 1);
        assert_eq!(u32::from_le_bytes(h[8..12].try_into().unwrap()), 9);
        assert_eq!(u32::from_le_bytes(h[12..16].try_into().unwrap()), 0xCBF4_3926);
    }

    #[test]
    fn ready_lines() {
        assert_eq!(parse_ready("chainload: ready v1 max 32768000"), Some((1, 32_768_000)));
        assert_eq!(parse_ready("chainload: ready v2 max 5\r"), Some((2, 5)));
        assert_eq!(parse_ready("chainload: ready v1"), None);
    }
}
