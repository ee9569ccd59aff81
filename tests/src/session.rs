//! A QEMU run driven through its serial port, as a user at a terminal drives
//! the kernel's shell: what the guest prints is read as it comes, and a
//! command is typed (written to QEMU's stdin, the serial line) only once the
//! prompt that asks for it has been seen, so nothing depends on timing. Every
//! wait is cut by a generous timeout that fails the test with the transcript.

use crate::{
    check_log, file_from_env, raspi4b_machine, with_strict_log, Boot, Run, StrictLog, UefiBoot, UefiEsp,
    DEFAULT_TIMEOUT, IMAGE_ENV_RPI4, IMAGE_ENV_VIRT, UEFI_EXIT_BIAS, UEFI_TIMEOUT,
};
use std::{
    io::{Read, Write},
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};
use wait_timeout::ChildExt;

/// What the kernel's shell prints when it waits for a command.
pub const PROMPT: &str = "brk> ";

/// One QEMU process whose serial line a test types into.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Receiver<Vec<u8>>,
    stderr: Option<thread::JoinHandle<String>>,
    transcript: String,
    /// How far the waits have read the transcript.
    seen: usize,
    /// The last command's answer ended in a prompt that nothing has typed at yet.
    prompt_shown: bool,
    timeout: Duration,
    started: Instant,
    command_line: String,
    log: PathBuf,
    strict: StrictLog,
    /// The x86_64 run's ESP folder, kept until QEMU is done with it.
    _esp: Option<UefiEsp>,
    /// The x86_64 kernel's status comes through `isa-debug-exit`, encoded.
    uefi: bool,
}

impl Session {
    /// The virt kernel with `append` as its boot arguments.
    pub fn virt(append: &str) -> Session {
        let image = file_from_env(IMAGE_ENV_VIRT);
        let args = Boot::default().append(append).qemu_args(&image.display().to_string());
        let (args, log) = with_strict_log(&args);
        Session::spawn(&qemu_aarch64(), &args, log, StrictLog::Aarch64, DEFAULT_TIMEOUT, None)
    }

    /// The Raspberry Pi 4 image on `raspi4b` with the Pi 4 device tree `dtb`
    /// and `append`, with semihosting so that `poweroff` ends QEMU.
    pub fn raspi4b(dtb: &std::path::Path, append: &str) -> Session {
        let image = file_from_env(IMAGE_ENV_RPI4);
        let mut args = raspi4b_machine("stdio");
        args.extend(["-kernel", &image.display().to_string(), "-dtb", &dtb.display().to_string()].map(String::from));
        args.extend(["-append", append, "-semihosting"].map(String::from));
        let (args, log) = with_strict_log(&args);
        Session::spawn(&qemu_aarch64(), &args, log, StrictLog::Aarch64, DEFAULT_TIMEOUT, None)
    }

    /// The x86_64 UEFI kernel under OVMF with `bootargs`, its COM1 on the serial line.
    pub fn uefi(bootargs: &str) -> Session {
        let boot = UefiBoot::new(bootargs);
        let esp = UefiEsp::new(bootargs);
        let log = esp.dir.with_extension("log");
        let mut args = boot.qemu_args(&esp);
        args.extend(StrictLog::X86.args(&log));
        Session::spawn(&crate::uefi_qemu(), &args, log, StrictLog::X86, UEFI_TIMEOUT, Some(esp))
    }

    fn spawn(
        qemu: &str,
        args: &[String],
        log: PathBuf,
        strict: StrictLog,
        timeout: Duration,
        esp: Option<UefiEsp>,
    ) -> Session {
        let command_line = format!("{qemu} {}", args.join(" "));
        let mut child = Command::new(qemu)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {command_line}: {e}"));
        let (sender, output) = mpsc::channel();
        let mut stdout = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            loop {
                match stdout.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(read) => {
                        if sender.send(buffer[..read].to_vec()).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        eprintln!("reading QEMU's serial line: {e}");
                        break;
                    }
                }
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Session {
            stdin: child.stdin.take(),
            child,
            output,
            stderr: Some(stderr),
            transcript: String::new(),
            seen: 0,
            prompt_shown: false,
            timeout,
            started: Instant::now(),
            command_line,
            log,
            strict,
            uefi: esp.is_some(),
            _esp: esp,
        }
    }

    /// Everything the guest printed so far.
    pub fn transcript(&self) -> &str {
        &self.transcript
    }

    /// Waits until `text` appears after what earlier waits have read, and
    /// returns the transcript from there to the end of `text`. Fails the test
    /// with the transcript if it has not appeared within the timeout, or if
    /// QEMU ended first.
    #[track_caller]
    pub fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + self.timeout;
        // Where `text` may start in what has not been searched yet.
        let mut from = self.seen;
        loop {
            if let Some(at) = self.transcript[from..].find(text) {
                let end = from + at + text.len();
                let read = self.transcript[self.seen..end].to_string();
                self.seen = end;
                return read;
            }
            from = floor_char_boundary(&self.transcript, self.transcript.len().saturating_sub(text.len()).max(from));
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.fail(&format!(
                    "{text:?} did not appear within {} s (a hang, or a missing line)",
                    self.timeout.as_secs()
                ));
            }
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.transcript.push_str(&String::from_utf8_lossy(&bytes)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.fail(&format!("QEMU ended before {text:?} appeared")),
            }
        }
    }

    /// Types `bytes` on the serial line.
    pub fn type_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("the serial line is open");
        if let Err(e) = stdin.write_all(bytes).and_then(|()| stdin.flush()) {
            self.fail(&format!("could not type into QEMU's serial line: {e}"));
        }
    }

    /// Waits for the prompt (unless the last answer ended in one), types
    /// `line` and Enter, waits for the next prompt, and returns what came
    /// between them: the echo and the answer, with the `\r` of the console's
    /// line ends taken out.
    #[track_caller]
    pub fn command(&mut self, line: &str) -> String {
        self.await_prompt();
        self.type_bytes(format!("{line}\r").as_bytes());
        let answer = self.wait_for(PROMPT);
        self.prompt_shown = true;
        answer[..answer.len() - PROMPT.len()].replace('\r', "")
    }

    /// Waits for a prompt nothing has been typed at yet.
    #[track_caller]
    fn await_prompt(&mut self) {
        if !std::mem::replace(&mut self.prompt_shown, false) {
            self.wait_for(PROMPT);
        }
    }

    /// Waits for the prompt, types `poweroff`, and returns the run once QEMU
    /// has exited.
    #[track_caller]
    pub fn power_off(mut self) -> Run {
        self.await_prompt();
        self.type_bytes(b"poweroff\r");
        self.finish()
    }

    /// Waits for QEMU to exit, and returns the run.
    #[track_caller]
    pub fn finish(mut self) -> Run {
        drop(self.stdin.take());
        let status = self.child.wait_timeout(self.timeout).expect("waiting for QEMU");
        let timed_out = status.is_none();
        let status = status.unwrap_or_else(|| {
            let _ = self.child.kill();
            self.child.wait().expect("reaping QEMU")
        });
        while let Ok(bytes) = self.output.recv_timeout(Duration::from_secs(5)) {
            self.transcript.push_str(&String::from_utf8_lossy(&bytes));
        }
        let mut code = if timed_out { None } else { status.code() };
        if self.uefi {
            code = code
                .filter(|code| code % 2 == 1 && (code - 1) / 2 >= UEFI_EXIT_BIAS)
                .map(|c| (c - 1) / 2 - UEFI_EXIT_BIAS);
        }
        let run = Run {
            status: code,
            exit: status.to_string(),
            transcript: std::mem::take(&mut self.transcript),
            stderr: self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default(),
            timed_out,
            timeout: self.timeout,
            elapsed: self.started.elapsed(),
            command_line: self.command_line.clone(),
        };
        check_log(&run, &self.log, self.strict);
        run
    }

    /// Fails the test with `reason` and what QEMU printed, after killing it.
    #[track_caller]
    pub fn fail(&mut self, reason: &str) -> ! {
        let exit = match self.child.try_wait() {
            Ok(Some(status)) => status.to_string(),
            _ => String::from("killed by the test"),
        };
        let _ = self.child.kill();
        let _ = self.child.wait();
        let run = Run {
            status: None,
            exit,
            transcript: self.transcript.clone(),
            stderr: self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default(),
            timed_out: false,
            timeout: self.timeout,
            elapsed: self.started.elapsed(),
            command_line: self.command_line.clone(),
        };
        run.fail(reason)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn qemu_aarch64() -> String {
    std::env::var("QEMU").ok().filter(|q| !q.is_empty()).unwrap_or_else(|| "qemu-system-aarch64".into())
}

/// The largest char boundary of `text` at or below `index`.
fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}
