//! QEMU: finding it (and installing or explaining how to install it), checking its
//! version, the command line that boots the kernel, and running it with a timeout.

use std::{
    path::Path,
    process::{Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{
    build::Board,
    cmd::{self, Cmd},
};

pub const DEFAULT_BINARY: &str = "qemu-system-aarch64";

/// The oldest QEMU with every machine the project uses (`raspi4b` arrived in 9.0).
pub const RECOMMENDED_MAJOR: u32 = 9;

/// `major.minor.patch` as QEMU prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Reads the version from `qemu-system-* --version` output, whose first line is
/// `QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)`.
/// Builds from git print e.g. `9.2.50 (v9.2.0-1234-g...)`; a missing patch is 0.
pub fn parse_version(output: &str) -> Option<Version> {
    let first = output.lines().next()?;
    let rest = first.trim().strip_prefix("QEMU emulator version ")?;
    let number = rest.split_whitespace().next()?;
    let mut parts = number.split('.');
    let mut next = |required: bool| -> Option<u32> {
        match parts.next() {
            Some(p) => {
                // Tolerate suffixes such as `10.0.2-rc1` or `8.2.2+ds`.
                let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            }
            None if required => None,
            None => Some(0),
        }
    };
    Some(Version { major: next(true)?, minor: next(true)?, patch: next(false)? })
}

/// A QEMU binary that exists, and its version if it could be read.
#[derive(Clone, Debug)]
pub struct Qemu {
    /// What to run: the `QEMU` variable as given, or the full path found on `PATH`.
    pub program: String,
    pub version: Option<Version>,
}

impl Qemu {
    /// Whether this QEMU has the machine `board` needs.
    pub fn supports(&self, board: Board) -> bool {
        // An unreadable version gets the benefit of the doubt; QEMU itself will say no.
        self.version.is_none_or(|v| v.major >= board.min_qemu_major())
    }
}

/// Finds QEMU (`QEMU=/path` overrides), installs it when that is possible and
/// harmless (root with apt-get, through `.ci/provision-qemu.sh`), else says how.
/// A QEMU older than 9 is a warning: the Raspberry Pi 4 runs will be skipped.
pub fn ensure() -> Result<Qemu> {
    let overridden = std::env::var("QEMU").ok().filter(|q| !q.is_empty());
    let wanted = overridden.clone().unwrap_or_else(|| DEFAULT_BINARY.to_string());

    let mut found = cmd::find_program(&wanted);
    if found.is_none() {
        if let Some(q) = &overridden {
            bail!("QEMU={q} is not an executable file (unset QEMU to use {DEFAULT_BINARY} from PATH)");
        }
        if can_provision() {
            Cmd::new("bash").arg(".ci/provision-qemu.sh").run()?;
            found = cmd::find_program(&wanted);
        }
    }
    let Some(path) = found else {
        eprintln!("{}", install_help());
        bail!("{DEFAULT_BINARY} not found");
    };

    // Keep a `QEMU` value as given (it is what the user typed); otherwise the full path.
    let program = overridden.unwrap_or_else(|| path.display().to_string());
    let output = Cmd::new(program.as_str()).arg("--version").output()?;
    let version = parse_version(&output);
    match version {
        None => println!(
            "warning: could not read a version from `{program} --version`: {:?}",
            output.lines().next().unwrap_or("")
        ),
        Some(v) if v.major < RECOMMENDED_MAJOR => println!(
            "warning: QEMU {v} is older than {RECOMMENDED_MAJOR}.0, which has no `raspi4b` machine: \
             Raspberry Pi 4 runs will be skipped. {}",
            upgrade_hint()
        ),
        Some(_) => {}
    }
    Ok(Qemu { program, version })
}

pub fn can_provision() -> bool {
    running_as_root() && cmd::find_program("apt-get").is_some() && Path::new(".ci/provision-qemu.sh").is_file()
}

fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // On Linux `/proc/self` belongs to the process's effective user.
        std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

fn upgrade_hint() -> &'static str {
    "On Debian 12 (QEMU 7.2), as root: `bash .ci/provision-qemu.sh` installs QEMU 10 from bookworm-backports."
}

/// What to tell someone without QEMU.
pub fn install_help() -> String {
    format!(
        "{DEFAULT_BINARY} was not found on PATH. Install QEMU {RECOMMENDED_MAJOR} or newer:\n\
         \x20 Debian/Ubuntu: sudo apt-get install qemu-system-arm\n\
         \x20                (Debian 12 ships QEMU 7.2, without raspi4b: enable bookworm-backports, then\n\
         \x20                 sudo apt-get install -t bookworm-backports qemu-system-arm;\n\
         \x20                 as root, bash .ci/provision-qemu.sh does both)\n\
         \x20 Fedora:        sudo dnf install qemu-system-aarch64\n\
         \x20 Arch:          sudo pacman -S qemu-system-aarch64\n\
         \x20 macOS:         brew install qemu\n\
         or point QEMU=/path/to/{DEFAULT_BINARY} at one you have."
    )
}

/// How one QEMU run is set up (the `cargo xtask qemu` flags).
#[derive(Clone, Debug, Default)]
pub struct BootOptions {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub el2: bool,
    pub gdb: bool,
    pub append: Option<String>,
    /// `-dtb`: a device tree for a machine that has none of its own (raspi4b boots
    /// without one unless given the Pi 4's).
    pub dtb: Option<std::path::PathBuf>,
    /// `-smp N` on virt (`None` or 1: QEMU's one core). raspi4b always has 4;
    /// its count is the boot argument `cores=N` instead.
    pub smp: Option<u32>,
}

pub const VIRT_DEFAULT_CPU: &str = "cortex-a72";
pub const VIRT_DEFAULT_MEMORY: &str = "1G";

/// The QEMU arguments (without the program) that boot `image` on `board`, as in
/// docs/kernel-contract.md. `-semihosting` is always there: it is how the kernel
/// reports its exit status.
pub fn boot_args(board: Board, options: &BootOptions, image: &Path) -> Result<Vec<String>> {
    let mut args: Vec<String> = Vec::new();
    let mut push = |words: &[&str]| args.extend(words.iter().map(|w| w.to_string()));
    match board {
        Board::Virt => {
            // `virtualization=on` gives the guest EL2, so the kernel enters there.
            let machine = if options.el2 { "virt,virtualization=on" } else { "virt" };
            push(&["-M", machine]);
            push(&["-cpu", options.cpu.as_deref().unwrap_or(VIRT_DEFAULT_CPU)]);
            push(&["-m", options.memory.as_deref().unwrap_or(VIRT_DEFAULT_MEMORY)]);
            if let Some(cores) = options.smp.filter(|&n| n > 1) {
                push(&["-smp", &cores.to_string()]);
            }
        }
        Board::Rpi4 => {
            if options.el2 {
                bail!("--el2 is for virt: raspi4b always enters the kernel at EL2");
            }
            // The machine fixes its CPU (Cortex-A72) and RAM (2 GiB); pass them only if asked.
            push(&["-M", "raspi4b"]);
            if let Some(cpu) = &options.cpu {
                push(&["-cpu", cpu]);
            }
            if let Some(memory) = &options.memory {
                push(&["-m", memory]);
            }
        }
    }
    // `-nic none`: without it `virt` adds a virtio NIC whose option ROM (efi-virtio.rom)
    // a minimal QEMU install lacks, and QEMU refuses to start. The kernel has no network.
    push(&["-nic", "none"]);
    push(&["-display", "none"]);
    push(&["-monitor", "none"]);
    push(&["-serial", "stdio"]);
    // Semihosting is how the kernel reports its exit status: never boot without it.
    push(&["-semihosting"]);
    push(&["-kernel", image.to_str().context("the image path is not UTF-8")?]);
    if let Some(dtb) = &options.dtb {
        push(&["-dtb", dtb.to_str().context("the device tree path is not UTF-8")?]);
    }
    if let Some(append) = &options.append {
        push(&["-append", append]);
    }
    if options.gdb {
        // -s: gdb server on tcp::1234; -S: wait for gdb before the first instruction.
        push(&["-s", "-S"]);
    }
    Ok(args)
}

/// How a QEMU run ended.
#[derive(Debug)]
pub enum Outcome {
    Exited(ExitStatus),
    TimedOut(Duration),
}

/// Whether a run's console is shown as it comes (and QEMU reads our stdin) or
/// only kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    Shown,
    Kept,
}

/// Runs QEMU with inherited stdio, killing it after `timeout` if one is given.
pub fn run(qemu: &Qemu, args: &[String], timeout: Option<Duration>) -> Result<(Outcome, String)> {
    run_with(qemu, args, timeout, Console::Shown)
}

/// Runs QEMU with `console` shown or only kept, killing it after `timeout` if one
/// is given. Returns how it ended and what it printed.
pub fn run_with(
    qemu: &Qemu,
    args: &[String],
    timeout: Option<Duration>,
    console: Console,
) -> Result<(Outcome, String)> {
    let cmd = Cmd::new(qemu.program.as_str()).args(args.iter().cloned());
    println!("+ {}", cmd.display());
    let stdin = if console == Console::Shown { Stdio::inherit() } else { Stdio::null() };
    let mut child = Command::new(&qemu.program)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {}", qemu.program))?;
    // Show the console as it comes (when asked) and keep a copy (for `--report`).
    let mut output = child.stdout.take().expect("stdout was piped");
    let copier = thread::spawn(move || {
        let mut transcript = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut out = std::io::stdout();
        while let Ok(n) = std::io::Read::read(&mut output, &mut chunk) {
            if n == 0 {
                break;
            }
            if console == Console::Shown {
                let _ = std::io::Write::write_all(&mut out, &chunk[..n]);
                let _ = std::io::Write::flush(&mut out);
            }
            transcript.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&transcript).into_owned()
    });
    let deadline = timeout.map(|t| Instant::now() + t);
    let outcome = loop {
        if let Some(status) = child.try_wait()? {
            break Outcome::Exited(status);
        }
        if let (Some(deadline), Some(timeout)) = (deadline, timeout) {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break Outcome::TimedOut(timeout);
            }
        }
        thread::sleep(Duration::from_millis(20));
    };
    let transcript = copier.join().unwrap_or_default();
    Ok((outcome, transcript))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian_backports_version() {
        let out = "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n\
                   Copyright (c) 2003-2025 Fabrice Bellard and the QEMU Project developers\n";
        assert_eq!(parse_version(out), Some(Version { major: 10, minor: 0, patch: 2 }));
    }

    #[test]
    fn parses_other_shapes() {
        let v = |s| parse_version(s).map(|v: Version| (v.major, v.minor, v.patch));
        assert_eq!(v("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)"), Some((7, 2, 15)));
        assert_eq!(v("QEMU emulator version 9.2.50 (v9.2.0-1234-gdeadbeef)"), Some((9, 2, 50)));
        assert_eq!(v("QEMU emulator version 9.1.0"), Some((9, 1, 0)));
        assert_eq!(v("QEMU emulator version 8.2.2 (qemu-8.2.2-1.fc40)\n"), Some((8, 2, 2)));
        assert_eq!(v("QEMU emulator version 10.1"), Some((10, 1, 0)));
        assert_eq!(v("QEMU emulator version 10.0.0-rc1"), Some((10, 0, 0)));
    }

    #[test]
    fn rejects_what_is_not_a_version() {
        assert_eq!(parse_version(""), None);
        assert_eq!(parse_version("bash: qemu-system-aarch64: command not found"), None);
        assert_eq!(parse_version("QEMU emulator version"), None);
        assert_eq!(parse_version("QEMU emulator version ten"), None);
        assert_eq!(parse_version("QEMU emulator version 10"), None);
    }

    #[test]
    fn versions_order_numerically() {
        let v = |s: &str| parse_version(&format!("QEMU emulator version {s}")).unwrap();
        assert!(v("10.0.2") > v("9.2.0"));
        assert!(v("9.0.0") > v("8.2.99"));
    }

    #[test]
    fn an_old_qemu_supports_virt_but_not_raspi4b() {
        let qemu =
            |major| Qemu { program: DEFAULT_BINARY.into(), version: Some(Version { major, minor: 2, patch: 0 }) };
        assert!(qemu(7).supports(Board::Virt));
        assert!(!qemu(7).supports(Board::Rpi4));
        assert!(qemu(9).supports(Board::Rpi4));
    }

    #[test]
    fn virt_boot_args_match_the_contract() {
        let args = boot_args(Board::Virt, &BootOptions::default(), Path::new("target/images/virt/kernel.img")).unwrap();
        assert_eq!(
            args.join(" "),
            "-M virt -cpu cortex-a72 -m 1G -nic none -display none -monitor none -serial stdio -semihosting \
             -kernel target/images/virt/kernel.img"
        );
    }

    #[test]
    fn virt_boot_args_with_every_flag() {
        let options = BootOptions {
            cpu: Some("cortex-a53".into()),
            memory: Some("2G".into()),
            el2: true,
            gdb: true,
            append: Some("inject=panic extra".into()),
            dtb: None,
            smp: Some(4),
        };
        let args = boot_args(Board::Virt, &options, Path::new("k.img")).unwrap();
        assert_eq!(
            args,
            [
                "-M",
                "virt,virtualization=on",
                "-cpu",
                "cortex-a53",
                "-m",
                "2G",
                "-smp",
                "4",
                "-nic",
                "none",
                "-display",
                "none",
                "-monitor",
                "none",
                "-serial",
                "stdio",
                "-semihosting",
                "-kernel",
                "k.img",
                "-append",
                "inject=panic extra",
                "-s",
                "-S",
            ]
        );
    }

    #[test]
    fn raspi4b_takes_its_fixed_cpu_and_memory() {
        let args = boot_args(Board::Rpi4, &BootOptions::default(), Path::new("k.img")).unwrap();
        assert_eq!(args[..2], ["-M", "raspi4b"]);
        assert!(!args.contains(&"-cpu".to_string()));
        assert!(!args.contains(&"-m".to_string()));
        let el2 = BootOptions { el2: true, ..Default::default() };
        assert!(boot_args(Board::Rpi4, &el2, Path::new("k.img")).is_err());
    }

    #[test]
    fn raspi4b_takes_a_device_tree_before_the_command_line() {
        let options = BootOptions {
            dtb: Some("bcm2711-rpi-4-b.dtb".into()),
            append: Some("test=demo".into()),
            ..Default::default()
        };
        let args = boot_args(Board::Rpi4, &options, Path::new("kernel8.img")).unwrap().join(" ");
        assert!(args.ends_with("-kernel kernel8.img -dtb bcm2711-rpi-4-b.dtb -append test=demo"), "{args}");
    }
}
