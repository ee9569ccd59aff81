//! The UART chain-loader end to end in QEMU: its `kernel8.img` boots on `raspi4b`
//! with the guest's serial line on a Unix socket or a pty, and `cargo xtask
//! chainboot --serial ...` (or this test, speaking the protocol itself) sends it an
//! image, which it checks, copies to 0x80000 and jumps to.
//!
//! The image sent is the loader's test payload (`chainload-payload`, a few
//! instructions that check the registers they were entered with and exit QEMU with
//! status 0): QEMU's PL011 receives about 8 KiB/s, so the 1 MiB kernel would take
//! minutes. Test names start with `raspi4b_`: `cargo xtask test` runs them in the
//! raspi4b step.

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use qemu_tests::{
    file_from_env, raspi4b_machine, run_from_parts, strict_log_complaint, with_strict_log, Run, IMAGE_ENV_CHAINLOADER,
};
use wait_timeout::ChildExt;

/// Hang cut-offs only, far beyond what a loaded machine needs (see
/// `qemu_tests::DEFAULT_TIMEOUT`).
const TIMEOUT: Duration = Duration::from_secs(180);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn payload() -> PathBuf {
    let loader = file_from_env(IMAGE_ENV_CHAINLOADER);
    let payload = loader.with_file_name("chainload-payload.img");
    assert!(payload.is_file(), "{} is missing: `cargo xtask test` builds it with the loader", payload.display());
    payload
}

/// QEMU booting the loader with its serial line on `serial` (`pty` or `unix:...`);
/// QEMU's own messages (stdout and stderr) come through the channel: it names the
/// pty on stdout.
/// The fourth value is QEMU's strict log file (`qemu_tests::with_strict_log`), for
/// [`expect_no_guest_errors`].
fn start_loader(serial: &str) -> (Child, mpsc::Receiver<String>, String, PathBuf) {
    let loader = file_from_env(IMAGE_ENV_CHAINLOADER);
    let qemu = std::env::var("QEMU").ok().filter(|q| !q.is_empty()).unwrap_or("qemu-system-aarch64".into());
    let mut args = raspi4b_machine(serial);
    args.extend(["-semihosting".to_string(), "-kernel".to_string(), loader.display().to_string()]);
    let (args, log) = with_strict_log(&args);
    let command_line = format!("{qemu} {}", args.join(" "));
    let mut child = Command::new(&qemu)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start `{command_line}`: {e}"));
    let (sender, lines) = mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] =
        [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
    for pipe in pipes {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
    }
    (child, lines, command_line, log)
}

/// Nothing in QEMU's strict log: no access to an address it does not implement,
/// none against a device's rules (see `qemu_tests::STRICT_LOG`).
fn expect_no_guest_errors(log: &Path) {
    if let Some(complaint) = strict_log_complaint(log) {
        panic!("{complaint}");
    }
}

/// Runs `cargo xtask chainboot --serial <serial> --image <payload>` while QEMU runs
/// the loader; both must end by themselves, QEMU with the payload's status.
fn chainboot(mut qemu: Child, qemu_line: String, serial: &str) -> Run {
    let started = Instant::now();
    let sender = Command::new("cargo")
        .args(["xtask", "chainboot", "--serial", serial, "--wait", "30", "--image"])
        .arg(payload())
        .current_dir(workspace())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo xtask chainboot runs");
    let status = qemu.wait_timeout(TIMEOUT).expect("waiting for QEMU");
    let timed_out = status.is_none();
    if timed_out {
        let _ = qemu.kill();
    }
    let status = status.unwrap_or_else(|| qemu.wait().expect("reaping QEMU"));
    // With QEMU gone the line closes and the sender ends; give it a moment.
    let mut sender = sender;
    if sender.wait_timeout(HANDSHAKE_TIMEOUT).expect("waiting for xtask").is_none() {
        let _ = sender.kill();
    }
    let output = sender.wait_with_output().expect("xtask's output");
    run_from_parts(
        if timed_out { None } else { status.code() },
        status.to_string(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        format!("xtask chainboot ({}): {}", output.status, String::from_utf8_lossy(&output.stderr)),
        timed_out,
        TIMEOUT,
        started.elapsed(),
        format!("{qemu_line} (fed by cargo xtask chainboot --serial {serial})"),
    )
}

fn expect_handover(run: &Run) {
    run.expect_exit(0);
    run.expect_lines_in_order(&[
        "chainload: ready v1 max ",
        "chainload: ack header ",
        "chainload: ack crc 0x",
        "chainload: jumping to 0x00080000 with the device tree at 0x100",
        "chainload payload: entered at EL2 with the loader's x0 and x1-x3 zero",
    ]);
}

fn socket_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("brk-chainboot-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn wait_for_socket(path: &Path) {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    while !path.exists() {
        assert!(Instant::now() < deadline, "QEMU did not create {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn raspi4b_chainboot_over_a_unix_socket() {
    let socket = socket_path("xtask");
    let (qemu, _stderr, line, log) = start_loader(&format!("unix:{},server=on,wait=off", socket.display()));
    wait_for_socket(&socket);
    let run = chainboot(qemu, line, &socket.display().to_string());
    let _ = std::fs::remove_file(&socket);
    expect_handover(&run);
    expect_no_guest_errors(&log);
}

#[test]
fn raspi4b_chainboot_over_a_pty() {
    let (mut qemu, stderr, line, log) = start_loader("pty");
    // QEMU says `char device redirected to /dev/pts/N (label serial0)`.
    let pty = loop {
        match stderr.recv_timeout(HANDSHAKE_TIMEOUT) {
            Ok(l) => {
                if let Some(at) = l.find("/dev/pts/") {
                    break l[at..].split_whitespace().next().unwrap().to_string();
                }
            }
            Err(_) => {
                let _ = qemu.kill();
                panic!("QEMU named no pty: {line}");
            }
        }
    };
    let run = chainboot(qemu, line, &pty);
    expect_handover(&run);
    expect_no_guest_errors(&log);
}

/// The protocol by hand: a header of another version and an image whose CRC does
/// not match are refused, and the loader is ready again after each.
#[test]
fn raspi4b_chainloader_refuses_a_wrong_version_and_a_wrong_crc() {
    let socket = socket_path("protocol");
    let (mut qemu, _stderr, line, log) = start_loader(&format!("unix:{},server=on,wait=off", socket.display()));
    wait_for_socket(&socket);
    let mut stream = UnixStream::connect(&socket).expect("connecting to QEMU's serial socket");
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT)).unwrap();
    let mut seen = String::new();
    let mut wait_for = |stream: &mut UnixStream, needle: &str| {
        let mut chunk = [0u8; 1024];
        while !seen.contains(needle) {
            let n = stream.read(&mut chunk).unwrap_or(0);
            assert!(n > 0, "no {needle:?} from the loader ({line}); it said:\n{seen}");
            seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
        seen = seen.split_off(seen.find(needle).unwrap() + needle.len());
    };
    let payload = std::fs::read(payload()).unwrap();
    let header = |version: u16, crc: u32| {
        let mut h = b"BRKL".to_vec();
        h.extend(version.to_le_bytes());
        h.extend(0u16.to_le_bytes());
        h.extend((payload.len() as u32).to_le_bytes());
        h.extend(crc.to_le_bytes());
        h
    };
    let crc = crc32(&payload);

    wait_for(&mut stream, "chainload: ready v1");
    stream.write_all(&header(2, crc)).unwrap();
    wait_for(&mut stream, "chainload: nak version");
    wait_for(&mut stream, "chainload: ready v1");
    stream.write_all(&header(1, crc ^ 1)).unwrap();
    stream.write_all(&payload).unwrap();
    wait_for(&mut stream, "chainload: nak crc");
    wait_for(&mut stream, "chainload: ready v1");
    stream.write_all(&header(1, crc)).unwrap();
    stream.write_all(&payload).unwrap();
    wait_for(&mut stream, "chainload: ack crc");
    let status = qemu.wait_timeout(TIMEOUT).expect("waiting for QEMU");
    let _ = std::fs::remove_file(&socket);
    if status.is_none() {
        let _ = qemu.kill();
    }
    assert_eq!(status.and_then(|s| s.code()), Some(0), "the payload did not exit cleanly after the good transfer");
    expect_no_guest_errors(&log);
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
