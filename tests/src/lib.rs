//! Booting the real kernel image in QEMU from a host test, and asserting on what it
//! printed and how it exited (docs/kernel-contract.md).
//!
//! The image comes from `BRK_KERNEL_IMAGE_VIRT` and QEMU from `QEMU` (default
//! `qemu-system-aarch64`); `cargo xtask test` sets both. Every run has a hard
//! timeout, and a timeout, a signal or a missing exit status is a failure, never a
//! pass: the assertions here refuse to look at the output of such a run as a success.

use std::{
    io::Read,
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use wait_timeout::ChildExt;

/// Run `cargo xtask ARGS` in the workspace with the images folder `images`
/// (relative to the workspace; one per test, so tests that run at once do not
/// build into each other's), which must exit 0; returns stdout and stderr.
pub fn cargo_xtask(images: &str, args: &[&str]) -> (String, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the workspace").to_path_buf();
    let output = Command::new("cargo")
        .arg("xtask")
        .args(args)
        .env("BRK_IMAGES_DIR", root.join(images))
        .current_dir(&root)
        .output()
        .expect("cargo xtask runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "cargo xtask {args:?} failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    (stdout, stderr)
}

pub mod boot_order;
pub mod screen;
pub mod session;

/// Where `cargo xtask test` puts the path of the QEMU virt kernel image.
pub const IMAGE_ENV_VIRT: &str = "BRK_KERNEL_IMAGE_VIRT";

/// When a boot is taken for hung. A boot takes well under a second, a few
/// seconds with many programs; the cut-off is far beyond that so that a loaded
/// 2-core machine (CI, or a CPU hog beside the suite) never reaches it: a timeout
/// must mean a hang, never a slow host.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The cut-off for the longest boots (100,000 fuzzed system calls, thousands of
/// generated probed instructions under every policy), which take up to a minute
/// on a loaded machine.
pub const LONG_TIMEOUT: Duration = Duration::from_secs(300);

/// How many transcript lines a failure message shows.
const TAIL_LINES: usize = 30;

/// The machine and command line of one boot.
#[derive(Clone, Debug)]
pub struct Boot {
    pub cpu: String,
    pub memory: String,
    /// Boot on `virt,virtualization=on`, where the kernel is entered at EL2.
    pub el2: bool,
    /// `-append`: the device tree's `/chosen/bootargs`.
    pub append: Option<String>,
    pub timeout: Duration,
    /// `-smp N`: how many cores `virt` has ([`VIRT_CORES`] unless a test
    /// asks for another count; 1 passes nothing, QEMU's default).
    pub smp: usize,
    /// `-icount shift=0`: see [`Boot::instruction_counted`].
    pub icount: bool,
}

/// The cores every `virt` boot has unless a test says otherwise: the whole
/// suite runs with every core taking threads, as a Pi 4 has four.
pub const VIRT_CORES: usize = 4;

impl Default for Boot {
    fn default() -> Self {
        Boot {
            cpu: "cortex-a72".into(),
            memory: "1G".into(),
            el2: false,
            append: None,
            timeout: DEFAULT_TIMEOUT,
            smp: VIRT_CORES,
            icount: false,
        }
    }
}

impl Boot {
    pub fn cpu(mut self, cpu: &str) -> Self {
        self.cpu = cpu.into();
        self
    }

    pub fn memory(mut self, memory: &str) -> Self {
        self.memory = memory.into();
        self
    }

    pub fn el2(mut self) -> Self {
        self.el2 = true;
        self
    }

    pub fn append(mut self, bootargs: &str) -> Self {
        self.append = Some(bootargs.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Boot `virt` with `cores` cores (`-smp`). (A raspi4b boot always has four;
    /// its boot arguments say how many to run: `cores=N`.)
    pub fn smp(mut self, cores: usize) -> Self {
        self.smp = cores;
        self
    }

    /// Run the guest's clock on its instruction count (`-icount shift=0`: one
    /// instruction is one nanosecond): on one core, the kernel's ticks and
    /// with them every preemption land at the same instruction in every run,
    /// whatever the host's load. For a test whose claim depends on where one
    /// thread is when another acts.
    pub fn instruction_counted(mut self) -> Self {
        self.icount = true;
        self
    }

    /// The QEMU arguments, as in docs/kernel-contract.md (plus `-nic none`,
    /// without which `virt` needs a network option ROM that minimal QEMU
    /// installs lack); boot arguments, if any, start with [`BREAKPOINT_PATH`].
    pub fn qemu_args(&self, image: &str) -> Vec<String> {
        let machine = if self.el2 { "virt,virtualization=on" } else { "virt" };
        let options = [
            ("-M", machine),
            ("-cpu", self.cpu.as_str()),
            ("-m", self.memory.as_str()),
            ("-nic", "none"),
            ("-display", "none"),
            ("-monitor", "none"),
            ("-serial", "stdio"),
        ];
        let mut args: Vec<String> =
            options.iter().flat_map(|(flag, value)| [flag.to_string(), value.to_string()]).collect();
        if self.smp > 1 {
            args.extend(["-smp".to_string(), self.smp.to_string()]);
        }
        if self.icount {
            args.extend(["-icount".to_string(), "shift=0".to_string()]);
        }
        args.push("-semihosting".into());
        args.extend(["-kernel".to_string(), image.to_string()]);
        if let Some(append) = &self.append {
            args.extend(["-append".to_string(), with_breakpoint_path(Some(append))]);
        }
        args
    }

    /// Writes the device tree QEMU would pass to this boot to `path`
    /// (`-M virt,dumpdtb=PATH`), to be changed and given back with `-dtb`.
    pub fn dump_dtb(&self, path: &std::path::Path) {
        let image = file_from_env(IMAGE_ENV_VIRT);
        let mut args = self.qemu_args(&image.display().to_string());
        let machine = args.iter().position(|a| a == "-M").expect("-M") + 1;
        args[machine] = format!("{},dumpdtb={}", args[machine], path.display());
        let qemu = std::env::var("QEMU").unwrap_or_else(|_| "qemu-system-aarch64".into());
        let output = Command::new(&qemu).args(&args).output().unwrap_or_else(|e| panic!("could not run {qemu}: {e}"));
        assert!(path.is_file(), "{qemu} {args:?} wrote no device tree: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Boots the virt kernel image and waits for QEMU to exit or the timeout.
    pub fn run(&self) -> Run {
        let image = std::env::var(IMAGE_ENV_VIRT).unwrap_or_else(|_| {
            panic!("{IMAGE_ENV_VIRT} is not set: run through `cargo xtask test`, which builds the kernel image")
        });
        assert!(
            PathBuf::from(&image).is_file(),
            "{IMAGE_ENV_VIRT}={image} is not a file: run through `cargo xtask test`, which builds the kernel image"
        );
        run_qemu(&self.qemu_args(&image), self.timeout)
    }
}

/// Reads a child's pipe to the end on its own thread, so a chatty guest cannot fill
/// the pipe and stall while we wait for the exit.
fn drain(child: &mut Child, take: impl FnOnce(&mut Child) -> Option<Box<dyn Read + Send>>) -> JoinHandle<String> {
    let mut pipe = take(child).expect("the pipe was requested");
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Boots the virt kernel with `boot`'s settings.
pub fn boot(boot: &Boot) -> Run {
    boot.run()
}

/// Writes to `output` the device tree `input` with its source text changed by
/// `edit` (`dtc` both ways; Debian/Ubuntu: device-tree-compiler).
pub fn patch_dtb(input: &std::path::Path, output: &std::path::Path, edit: impl FnOnce(String) -> String) {
    let source = output.with_extension("dts");
    let dtc = |args: &[&std::ffi::OsStr]| {
        let status = Command::new("dtc").arg("-q").args(args).status().unwrap_or_else(|e| {
            panic!("could not run dtc ({e}): install it (Debian/Ubuntu: sudo apt-get install device-tree-compiler; as root, bash .ci/provision-qemu.sh does it)")
        });
        assert!(status.success(), "dtc {args:?} failed");
    };
    dtc(&[
        "-I".as_ref(),
        "dtb".as_ref(),
        "-O".as_ref(),
        "dts".as_ref(),
        "-o".as_ref(),
        source.as_os_str(),
        input.as_os_str(),
    ]);
    let text = std::fs::read_to_string(&source).expect("reading the decompiled tree");
    std::fs::write(&source, edit(text)).expect("writing the edited tree");
    dtc(&[
        "-I".as_ref(),
        "dts".as_ref(),
        "-O".as_ref(),
        "dtb".as_ref(),
        "-o".as_ref(),
        output.as_os_str(),
        source.as_os_str(),
    ]);
    let _ = std::fs::remove_file(&source);
}

/// Boots the virt kernel with `boot`'s settings and the device tree `dtb`
/// instead of the one QEMU makes.
pub fn boot_with_dtb(boot: &Boot, dtb: &std::path::Path) -> Run {
    let image = file_from_env(IMAGE_ENV_VIRT);
    let mut args = boot.qemu_args(&image.display().to_string());
    args.extend(["-dtb".to_string(), dtb.display().to_string()]);
    run_qemu(&args, boot.timeout)
}

/// One finished (or killed) QEMU run.
#[derive(Clone, Debug)]
pub struct Run {
    /// QEMU's exit code; `None` if it was killed (timeout, signal).
    pub status: Option<i32>,
    /// Everything the guest wrote to the serial console (QEMU's stdout).
    pub transcript: String,
    /// QEMU's own messages.
    pub stderr: String,
    pub timed_out: bool,
    pub timeout: Duration,
    pub elapsed: Duration,
    /// How the exit was reported (`exit status: 3`, `signal: 9 (SIGKILL)`).
    exit: String,
    command_line: String,
}

impl Run {
    /// The transcript's lines, without the `\r` of a `\r\n` console.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.transcript.lines().map(|l| l.trim_end_matches('\r'))
    }

    /// The last line that is not blank.
    pub fn last_line(&self) -> Option<&str> {
        self.lines().filter(|l| !l.trim().is_empty()).last()
    }

    /// Asserts that the self-tests ran and none failed (`selftests: N ok, 0 failed`).
    #[track_caller]
    pub fn expect_selftests_pass(&self) {
        let line = self.expect_line_starting("selftests: ");
        if !line.ends_with(", 0 failed") {
            self.fail(&format!("self-tests failed: {line:?}"));
        }
    }

    /// The first line starting with `prefix`.
    pub fn line_starting(&self, prefix: &str) -> Option<&str> {
        self.lines().find(|l| l.starts_with(prefix))
    }

    /// Fails the test with `reason`, the command line, QEMU's messages and the
    /// transcript's last lines.
    #[track_caller]
    pub fn fail(&self, reason: &str) -> ! {
        let lines: Vec<&str> = self.lines().collect();
        let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
        let mut message = format!(
            "{reason}\n  qemu: {}\n  ended: {} after {:.2} s\n",
            self.command_line,
            if self.timed_out { "killed at the timeout" } else { &self.exit },
            self.elapsed.as_secs_f64()
        );
        if !self.stderr.trim().is_empty() {
            message.push_str(&format!("--- QEMU stderr ---\n{}\n", self.stderr.trim_end()));
        }
        message.push_str(&format!(
            "--- last {} of {} transcript lines ---\n{}\n--- end of transcript ---",
            tail.len(),
            lines.len(),
            tail.join("\n")
        ));
        panic!("{message}");
    }

    /// Asserts that QEMU exited by itself (no timeout, no signal) with `code`.
    #[track_caller]
    pub fn expect_exit(&self, code: i32) -> &Self {
        if self.timed_out {
            self.fail(&format!("QEMU timed out after {} s", self.timeout.as_secs()));
        }
        match self.status {
            None => self.fail(&format!("QEMU ended without an exit status ({}), expected exit {code}", self.exit)),
            Some(c) if c != code => self.fail(&format!("QEMU exited with {c}, expected {code}")),
            Some(_) => self,
        }
    }

    /// `hits` and `returns` of the probe report line for `program:symbol`.
    #[track_caller]
    pub fn probe_counts(&self, symbol: &str) -> (u64, u64) {
        let line = self
            .lines()
            .find(|l| l.starts_with("  probe ") && l.contains(&format!(" {symbol} (")))
            .unwrap_or_else(|| self.fail(&format!("no report line for probe {symbol}")));
        let number_before = |word: &str| -> u64 {
            let before = line.split(&format!(" {word}")).next().unwrap_or_default();
            before
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| self.fail(&format!("no '{word}' count in {line:?}")))
        };
        (number_before("hits"), number_before("returns"))
    }

    /// The end-of-run summary line of the process titled `title`
    /// (`  pid N <title>: exited with status 0, ...`).
    #[track_caller]
    pub fn process_summary(&self, title: &str) -> &str {
        self.lines()
            .find(|line| {
                line.starts_with("  pid ")
                    && line.split_once(": ").is_some_and(|(head, _)| head.ends_with(&format!(" {title}")))
            })
            .unwrap_or_else(|| self.fail(&format!("no end-of-run line for process '{title}'")))
    }

    /// Asserts that the process titled `title` ran as a test and passed.
    #[track_caller]
    pub fn expect_test_ok(&self, title: &str) -> &str {
        let line = self.process_summary(title);
        if !line.ends_with(", test ok") {
            self.fail(&format!("process '{title}' did not pass: {line:?}"));
        }
        line
    }

    /// How many times the kernel says it preempted the process titled `title`
    /// (`preempted N time(s)` on its end-of-run line).
    #[track_caller]
    pub fn preemptions(&self, title: &str) -> u64 {
        let line = self.process_summary(title);
        line.split(", preempted ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| self.fail(&format!("no preemption count in {line:?}")))
    }

    /// The value of counter `name` on the `counters:` line.
    #[track_caller]
    pub fn counter(&self, name: &str) -> u64 {
        let line = self.expect_line_starting("counters: ");
        line.split_whitespace()
            .find_map(|field| field.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| self.fail(&format!("no counter {name} in {line:?}")))
    }

    /// Asserts that some line starts with `prefix` and returns the first such line.
    #[track_caller]
    pub fn expect_line_starting(&self, prefix: &str) -> &str {
        self.line_starting(prefix).unwrap_or_else(|| self.fail(&format!("no line starts with {prefix:?}")))
    }

    /// Asserts that the lines starting with `prefixes` appear, each after the previous.
    #[track_caller]
    pub fn expect_lines_in_order(&self, prefixes: &[&str]) -> Vec<&str> {
        let mut found = Vec::new();
        let mut lines = self.lines();
        for prefix in prefixes {
            match lines.by_ref().find(|l| l.starts_with(prefix)) {
                Some(line) => found.push(line),
                None => self.fail(&format!(
                    "no line starting with {prefix:?} after {:?} (expected, in order: {prefixes:?})",
                    found.last().copied().unwrap_or("the start")
                )),
            }
        }
        found
    }

    /// Asserts that a line starts with `prefixes[0]` and the lines right after it start
    /// with the rest, one each (a block such as the banner); returns the block.
    #[track_caller]
    pub fn expect_consecutive_lines(&self, prefixes: &[&str]) -> Vec<&str> {
        let lines: Vec<&str> = self.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.starts_with(prefixes[0]))
            .unwrap_or_else(|| self.fail(&format!("no line starts with {:?}", prefixes[0])));
        for (i, prefix) in prefixes.iter().enumerate().skip(1) {
            match lines.get(start + i) {
                Some(line) if line.starts_with(prefix) => {}
                other => self.fail(&format!(
                    "line {} of the block starting {:?} is {other:?}, expected it to start with {prefix:?}",
                    i + 1,
                    prefixes[0]
                )),
            }
        }
        lines[start..start + prefixes.len()].to_vec()
    }

    /// Asserts that the last non-blank line is `expected`.
    #[track_caller]
    pub fn expect_last_line(&self, expected: &str) -> &Self {
        match self.last_line() {
            Some(line) if line == expected => self,
            other => self.fail(&format!("the last line is {other:?}, expected {expected:?}")),
        }
    }

    /// Asserts that no line contains `needle`.
    #[track_caller]
    pub fn expect_no_line_containing(&self, needle: &str) -> &Self {
        if let Some(line) = self.lines().find(|l| l.contains(needle)) {
            self.fail(&format!("unexpected line containing {needle:?}: {line:?}"));
        }
        self
    }
}

/// Where `cargo xtask test` puts the path of the Raspberry Pi 4 image (`kernel8.img`).
pub const IMAGE_ENV_RPI4: &str = "BRK_KERNEL_IMAGE_RPI4";
/// Where `cargo xtask test` puts the Pi 4 device tree (`bcm2711-rpi-4-b.dtb`) when it has one.
pub const DTB_ENV_RPI4: &str = "BRK_RPI4_DTB";
/// Where `cargo xtask test` puts the armstub (`boot/armstub`) that boots raspi4b
/// the way the Pi firmware boots a board.
pub const ARMSTUB_ENV: &str = "BRK_ARMSTUB_IMAGE";
/// Where `cargo xtask test` puts the chain-loader's `kernel8.img`.
pub const IMAGE_ENV_CHAINLOADER: &str = "BRK_CHAINLOADER_IMAGE";

/// The file a `cargo xtask test` variable names, or a panic that says how to get it.
#[track_caller]
pub fn file_from_env(variable: &str) -> PathBuf {
    let path = std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: run through `cargo xtask test`, which builds or fetches it")
    });
    assert!(PathBuf::from(&path).is_file(), "{variable}={path} is not a file: run through `cargo xtask test`");
    PathBuf::from(path)
}

/// QEMU's `raspi4b` arguments for `image` (its CPU and RAM are fixed by the machine):
/// the same image a Pi 4 loads as `kernel8.img`, with the Pi 4 device tree if
/// `dtb` is given (raspi4b then fills in `/chosen/bootargs` from `append`).
/// With semihosting, so the kernel's exit status is QEMU's.
pub fn raspi4b_args(image: &std::path::Path, dtb: Option<&std::path::Path>, append: Option<&str>) -> Vec<String> {
    let mut args = raspi4b_args_as_on_a_board(image, dtb, append);
    args.push("-semihosting".to_string());
    args
}

/// QEMU's `raspi4b` with no network, display or monitor, and the guest's
/// serial line on `serial` (`stdio`, `pty`, `unix:...`): what every Pi 4 boot
/// of the tests starts from, before it says what to load and how.
pub fn raspi4b_machine(serial: &str) -> Vec<String> {
    ["-M", "raspi4b", "-nic", "none", "-display", "none", "-monitor", "none", "-serial", serial]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// [`raspi4b_args`] without semihosting: the kernel cannot end QEMU and ends as
/// on a real Pi 4, reporting the status and halting.
pub fn raspi4b_args_as_on_a_board(
    image: &std::path::Path,
    dtb: Option<&std::path::Path>,
    append: Option<&str>,
) -> Vec<String> {
    let mut args = raspi4b_machine("stdio");
    args.extend(["-kernel".to_string(), image.display().to_string()]);
    if let Some(dtb) = dtb {
        args.extend(["-dtb".to_string(), dtb.display().to_string()]);
    }
    // The Pi 4 build starts its shell by default; these scripted boots opt
    // out (tests/tests/shell.rs drives the shell on raspi4b).
    if dtb.is_some() {
        args.extend(["-append".to_string(), format!("{} no-shell", with_breakpoint_path(append))]);
    } else if append.is_some() {
        args.extend(["-append".to_string(), with_breakpoint_path(append)]);
    }
    args
}

/// The two words of the armstub the firmware fills in (boot/armstub/src/armstub.s).
const ARMSTUB_DTB_PTR32: usize = 0xf8;
const ARMSTUB_KERNEL_ENTRY32: usize = 0xfc;
/// Where a firmware-shaped boot puts the device tree: near the top of the first
/// RAM bank, as the firmware does (it chooses the address; the kernel must take any).
const FIRMWARE_DTB_ADDRESS: u32 = 0x3b00_0000;

/// The Pi 4 device tree `text` as the firmware fills it in: `/memory@0`'s
/// empty `reg` given `memory_reg` (the cells inside `reg = <...>`), and
/// `/chosen/bootargs` set to `bootargs`.
pub fn firmware_filled_tree(text: String, memory_reg: &str, bootargs: &str) -> String {
    const EMPTY_REG: &str = "reg = <0x00 0x00 0x00>;";
    let memory = text.find("\tmemory@0 {").expect("the tree's /memory@0");
    let empty = memory + text[memory..].find(EMPTY_REG).expect("an empty reg in /memory@0");
    let text = format!("{}reg = <{memory_reg}>;{}", &text[..empty], &text[empty + EMPTY_REG.len()..]);
    text.replacen("\tchosen {\n", &format!("\tchosen {{\n\t\tbootargs = \"{bootargs}\";\n"), 1)
}

/// QEMU's `raspi4b` arguments that boot the Pi 4 image as the Pi firmware does,
/// without `-kernel`: the armstub (`BRK_ARMSTUB_IMAGE`) at 0, where all four
/// cores start in EL3 and cores 1-3 wait on its spin table at 0xe0-0xf0; the
/// image at 0x80000; the Pi 4 device tree (`BRK_RPI4_DTB`), changed by
/// `edit_tree` (as the firmware fills in `/memory` and `/chosen`), at
/// 0x3b00_0000, its address in the armstub. The GIC has the Security
/// Extensions, as the BCM2711's GIC-400 does. The files are written to `dir`,
/// which the caller removes after the run.
pub fn raspi4b_args_as_the_firmware_boots(
    dir: &std::path::Path,
    edit_tree: impl FnOnce(String) -> String,
) -> Vec<String> {
    let (image, dtb) = (file_from_env(IMAGE_ENV_RPI4), file_from_env(DTB_ENV_RPI4));
    let mut armstub = std::fs::read(file_from_env(ARMSTUB_ENV)).expect("reading the armstub");
    let entry = u32::from_le_bytes(armstub[ARMSTUB_KERNEL_ENTRY32..][..4].try_into().unwrap());
    assert_eq!(entry, 0x80000, "the armstub's kernel_entry32 is not at {ARMSTUB_KERNEL_ENTRY32:#x}");
    armstub[ARMSTUB_DTB_PTR32..][..4].copy_from_slice(&FIRMWARE_DTB_ADDRESS.to_le_bytes());
    std::fs::create_dir_all(dir).unwrap();
    let (stub, tree) = (dir.join("armstub8.bin"), dir.join("bcm2711-rpi-4-b.dtb"));
    std::fs::write(&stub, &armstub).unwrap();
    patch_dtb(&dtb, &tree, edit_tree);
    let mut args = raspi4b_machine("stdio");
    args.extend(["-semihosting", "-global", "arm_gic.has-security-extensions=on"].map(String::from));
    args.extend([
        "-device".to_string(),
        format!("loader,file={},addr=0x0,force-raw=on", stub.display()),
        "-device".to_string(),
        format!("loader,file={},addr=0x80000,force-raw=on", image.display()),
        "-device".to_string(),
        format!("loader,file={},addr={FIRMWARE_DTB_ADDRESS:#x},force-raw=on", tree.display()),
    ]);
    args
}

/// A `gen-transparency` run (docs/proving.md) passed: `gen: ok`, status 0,
/// nothing refused and no mismatch; otherwise fails naming `label` and the
/// program's first `gen:` lines. Returns its `gen: build seed ...` line.
#[track_caller]
pub fn expect_generated_runs_ok<'a>(run: &'a Run, label: &str) -> &'a str {
    let line = run.line_starting("gen: build seed ").unwrap_or_default();
    if run.line_starting("gen: ok").is_none() || run.status != Some(0) {
        let details: Vec<&str> = run.lines().filter(|l| l.starts_with("gen: ")).take(40).collect();
        run.fail(&format!("{label}: the probed runs differ\n{}", details.join("\n")));
    }
    if !line.ends_with(" 0 refused, 0 mismatches") {
        run.fail(&format!("{label}: {line}"));
    }
    line
}

/// Put in front of every boot's arguments by this harness: most tests examine
/// the breakpoint path (simulate, step out of line, XOL slots, cache
/// maintenance), which `probe-mode=brk` gives every probe. The kernel's
/// default, `probe-mode=trampoline` (docs/brk-path.md, "One exception instead
/// of two"), is what a test gets that asks for it after these words (the last
/// word wins): tests/tests/trampolines.rs, the generated programs' trampoline
/// runs. `cargo xtask qemu` boots with the default.
pub const BREAKPOINT_PATH: &str = "probe-mode=brk";

/// `append` with [`BREAKPOINT_PATH`] in front.
pub fn with_breakpoint_path(append: Option<&str>) -> String {
    match append {
        Some(append) if !append.is_empty() => format!("{BREAKPOINT_PATH} {append}"),
        _ => BREAKPOINT_PATH.to_string(),
    }
}

/// Boots the Raspberry Pi 4 image (`BRK_KERNEL_IMAGE_RPI4`) on `raspi4b`.
pub fn boot_raspi4b(dtb: Option<&std::path::Path>, append: Option<&str>) -> Run {
    let image = file_from_env(IMAGE_ENV_RPI4);
    run_qemu(&raspi4b_args(&image, dtb, append), DEFAULT_TIMEOUT)
}

/// Runs QEMU (`QEMU`, default `qemu-system-aarch64`) with `args` until it exits or
/// `timeout` passes, like [`Boot::run`] for any machine.
pub fn run_qemu(args: &[String], timeout: Duration) -> Run {
    let qemu = std::env::var("QEMU").ok().filter(|q| !q.is_empty());
    run_strict(qemu.as_deref().unwrap_or("qemu-system-aarch64"), args, timeout)
}

/// Like [`run_qemu`], for a run in which the guest is meant to make QEMU log
/// exactly `expected` (one line each, e.g. a PSCI call naming a core the
/// machine lacks): the run fails if one of them is missing from the log or
/// anything else is in it.
pub fn run_qemu_expecting_log(args: &[String], timeout: Duration, expected: &[&str]) -> Run {
    let qemu = std::env::var("QEMU").ok().filter(|q| !q.is_empty());
    let (strict, log) = with_strict_log(args);
    let run = run_program(qemu.as_deref().unwrap_or("qemu-system-aarch64"), &strict, timeout);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let lines: Vec<&str> = logged.lines().filter(|l| !l.trim().is_empty()).collect();
    for wanted in expected {
        if !lines.contains(wanted) {
            run.fail(&format!("QEMU did not log {wanted:?} (-d {STRICT_LOG}); it logged {lines:?}"));
        }
    }
    let others: Vec<&str> = lines.iter().copied().filter(|l| !expected.contains(l)).collect();
    if !others.is_empty() {
        run.fail(&format!(
            "QEMU logged {} line(s) of guest errors or unimplemented accesses (-d {STRICT_LOG}) beyond the expected ones:\n{}",
            others.len(),
            others.join("\n")
        ));
    }
    run
}

/// The QEMU log flags every test run gets: accesses the machine does not
/// implement or that break a device's rules (`unimp`, `guest_errors`). Under QEMU
/// they are logged and ignored; on hardware a wrong address hangs the bus or
/// does nothing, so any such line fails the run.
pub const STRICT_LOG: &str = "guest_errors,unimp";

/// Runs QEMU with `args` plus `-d` [`STRICT_LOG`] into a file of its own, and
/// fails the test if anything was logged there.
fn run_strict(qemu: &str, args: &[String], timeout: Duration) -> Run {
    let (strict, log) = with_strict_log(args);
    let run = run_program(qemu, &strict, timeout);
    check_log(&run, &log, StrictLog::Aarch64);
    run
}

/// `args` plus `-d` [`STRICT_LOG`] `-D <a file of this run's own>`, and that file.
pub fn with_strict_log(args: &[String]) -> (Vec<String>, PathBuf) {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let number = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = std::env::temp_dir().join(format!("brk-qemu-{}-{number}.log", std::process::id()));
    let mut strict = args.to_vec();
    strict.extend(["-d".to_string(), STRICT_LOG.to_string(), "-D".to_string(), log.display().to_string()]);
    (strict, log)
}

/// What QEMU logged into `log` ([`with_strict_log`]), as a failure message, if
/// anything; removes the file.
pub fn strict_log_complaint(log: &std::path::Path) -> Option<String> {
    let logged = std::fs::read_to_string(log).unwrap_or_default();
    let _ = std::fs::remove_file(log);
    let lines: Vec<&str> = logged.lines().filter(|l| !l.trim().is_empty()).collect();
    (!lines.is_empty()).then(|| {
        format!(
            "QEMU logged {} line(s) of guest errors or unimplemented accesses (-d {STRICT_LOG}); on hardware these hang or do nothing:\n{}",
            lines.len(),
            lines.iter().take(20).copied().collect::<Vec<_>>().join("\n")
        )
    })
}

/// What a child printed and how it ended ([`collect`]).
struct Collected {
    status: std::process::ExitStatus,
    timed_out: bool,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `command` with its output drained on threads (a chatty child cannot
/// stall on a full pipe) until it exits or `timeout` passes, then kills it.
fn collect(command: &mut Command, timeout: Duration) -> Collected {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {shown}: {e}"));
    let stdout = drain(&mut child, |c| c.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let stderr = drain(&mut child, |c| c.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let started = Instant::now();
    let (status, timed_out) = match child.wait_timeout(timeout).expect("waiting for the child") {
        Some(status) => (status, false),
        None => {
            let _ = child.kill();
            (child.wait().expect("reaping the child"), true)
        }
    };
    Collected {
        status,
        timed_out,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    }
}

/// Runs the QEMU binary `qemu` with `args` until it exits or `timeout` passes.
fn run_program(qemu: &str, args: &[String], timeout: Duration) -> Run {
    let ran = collect(Command::new(qemu).args(args), timeout);
    Run {
        status: if ran.timed_out { None } else { ran.status.code() },
        exit: ran.status.to_string(),
        transcript: ran.stdout,
        stderr: ran.stderr,
        timed_out: ran.timed_out,
        timeout,
        elapsed: ran.elapsed,
        command_line: format!("{qemu} {}", args.join(" ")),
    }
}

/// Runs `command` to its end or `timeout` (then kills it and panics saying so);
/// returns what it printed, stdout then stderr.
pub(crate) fn run_with_timeout(command: &mut Command, timeout: Duration) -> String {
    let shown = format!("{command:?}");
    let ran = collect(command, timeout);
    let output = format!("{}{}", ran.stdout, ran.stderr);
    if ran.timed_out {
        panic!("{shown} was killed after {} s (a hang); it said:\n{output}", timeout.as_secs());
    }
    output
}

/// A [`Run`] assembled from parts, for runs that are not one QEMU process (the
/// chain-loader test reads the console through the sender).
#[allow(clippy::too_many_arguments)]
pub fn run_from_parts(
    status: Option<i32>,
    exit: String,
    transcript: String,
    stderr: String,
    timed_out: bool,
    timeout: Duration,
    elapsed: Duration,
    command_line: String,
) -> Run {
    Run { status, exit, transcript, stderr, timed_out, timeout, elapsed, command_line }
}

/// A seed that `cargo xtask soak` sets in the environment (`GEN_RUN_SEED`,
/// `FUZZ_SEED`), else `default`: the tests run with fixed seeds unless asked.
pub fn seed_from_env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Where `cargo xtask test` puts the x86_64 UEFI kernel (with its programs packed in).
pub const EFI_ENV: &str = "BRK_KERNEL_EFI";
/// Where `cargo xtask test` puts the path of the OVMF firmware.
pub const OVMF_ENV: &str = "BRK_OVMF";
/// A UEFI boot takes about 5 s under QEMU before the kernel runs at all; the
/// batched scenarios of one boot add their own time. As [`LONG_TIMEOUT`]: only a
/// hang reaches it, never a loaded machine.
pub const UEFI_TIMEOUT: Duration = LONG_TIMEOUT;
/// What the kernel adds to its status before writing QEMU's `isa-debug-exit` port,
/// which then exits with `(value << 1) | 1` (xtask/src/uefi.rs).
const UEFI_EXIT_BIAS: i32 = 0x10;

/// Boots the x86_64 UEFI kernel (`BRK_KERNEL_EFI`) under OVMF with `bootargs` on
/// QEMU's default machine ([`UefiBoot`] for another).
pub fn boot_uefi(bootargs: &str) -> Run {
    UefiBoot::new(bootargs).run()
}

/// The QEMU log flags of every x86_64 test run: [`STRICT_LOG`], and every CPU
/// reset, so that a triple fault (which resets the machine) fails the run.
pub const STRICT_LOG_X86: &str = "guest_errors,unimp,cpu_reset";
/// How many times QEMU resets each CPU before the firmware's first instruction
/// (creating the machine, then its system reset), on `pc` and `q35` alike.
const STARTUP_RESETS: usize = 2;
/// How many times OVMF resets each application processor with an INIT while
/// it starts and parks them (its MpInitLib), measured with -smp 2 and -smp 4
/// under the OVMF the tests use: every AP's log shows the start-up resets and
/// these six before the kernel runs.
const FIRMWARE_AP_INITS: usize = 6;

/// One boot of the x86_64 UEFI kernel: the machine, the CPU, the display and
/// serial port, and whether QEMU's `isa-debug-exit` device is there to carry
/// the kernel's status out.
#[derive(Clone, Debug)]
pub struct UefiBoot {
    pub bootargs: String,
    /// `-machine`: QEMU's default (`pc`) unless set, e.g. `q35,pit=off`.
    pub machine: Option<String>,
    /// `-cpu`: QEMU's default (`qemu64`) unless set, e.g. `max`.
    pub cpu: Option<String>,
    /// The display and serial arguments: `-nographic -vga std -serial stdio`
    /// (QEMU's standard VGA, which OVMF drives with a GOP, and COM1) unless set.
    pub display: Vec<String>,
    /// Without the device, the kernel powers off through the firmware
    /// (ResetSystem) and QEMU's own exit status is the run's.
    pub debug_exit: bool,
    /// `-smp`: [`UEFI_PROCESSORS`] unless set, e.g. `4` or `2,maxcpus=4`.
    pub smp: Option<String>,
    /// `-accel tcg,thread=single` ([`UefiBoot::single_tcg_thread`]).
    pub single_tcg_thread: bool,
    /// `-icount shift=0` (see [`Boot::instruction_counted`]).
    pub icount: bool,
}

/// The processors every x86_64 boot has unless a test says otherwise: the
/// whole x86_64 suite runs with an application processor taking threads.
pub const UEFI_PROCESSORS: &str = "2";

impl UefiBoot {
    pub fn new(bootargs: &str) -> Self {
        UefiBoot {
            bootargs: with_breakpoint_path(Some(bootargs)),
            machine: None,
            cpu: None,
            display: ["-nographic", "-vga", "std", "-serial", "stdio"].iter().map(|s| s.to_string()).collect(),
            debug_exit: true,
            smp: Some(UEFI_PROCESSORS.to_string()),
            single_tcg_thread: false,
            icount: false,
        }
    }

    /// [`Boot::instruction_counted`] for the PC: the guest's clock runs on its
    /// instruction count, so on one processor every tick lands at the same
    /// instruction in every run.
    pub fn instruction_counted(mut self) -> Self {
        self.icount = true;
        self
    }

    /// Run every processor in one host thread (`-accel tcg,thread=single`)
    /// instead of one thread each (MTTCG). For the runs that step
    /// lock-prefixed read-modify-write instructions out of line: QEMU 10.0.2's
    /// MTTCG executes such an instruction wrongly when RFLAGS.TF is set (the
    /// generated programs' `lock sbb qword [rbx + 0x16ae], r11` leaves other
    /// values than unstepped), while the same boot with one TCG thread, and
    /// every run with one processor, behaves as unprobed; the kernel's trace
    /// shows one step, RIP advanced by the instruction's length, as it should.
    pub fn single_tcg_thread(mut self) -> Self {
        self.single_tcg_thread = true;
        self
    }

    /// QEMU's `-smp` option: `4` processors, or `2,maxcpus=4` (two present,
    /// two more the MADT lists as not enabled).
    pub fn smp(mut self, smp: &str) -> Self {
        self.smp = Some(smp.to_string());
        self
    }

    pub fn machine(mut self, machine: &str) -> Self {
        self.machine = Some(machine.to_string());
        self
    }

    pub fn cpu(mut self, cpu: &str) -> Self {
        self.cpu = Some(cpu.to_string());
        self
    }

    /// The display and serial port, e.g. `["-vga", "std", "-display", "none", "-serial", "none"]`.
    pub fn display(mut self, display: &[&str]) -> Self {
        self.display = display.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn without_debug_exit(mut self) -> Self {
        self.debug_exit = false;
        self
    }

    /// QEMU's arguments for booting from the ESP folder `esp`.
    fn qemu_args(&self, esp: &UefiEsp) -> Vec<String> {
        let ovmf = file_from_env(OVMF_ENV);
        // No default devices: on q35 QEMU's default CD-ROM and the ESP would sit
        // on its AHCI, whose every interrupt QEMU logs as unimplemented
        // (`ahci: IRQ#0 level:1`, hw/ide/ahci.c) while the firmware reads them.
        // The ESP is a virtio disk, which OVMF boots from on every machine.
        let mut args: Vec<String> =
            ["-nodefaults", "-monitor", "none", "-net", "none", "-m", "512M"].iter().map(|s| s.to_string()).collect();
        if let Some(machine) = &self.machine {
            args.extend(["-machine".to_string(), machine.clone()]);
        }
        if let Some(cpu) = &self.cpu {
            args.extend(["-cpu".to_string(), cpu.clone()]);
        }
        if let Some(smp) = &self.smp {
            args.extend(["-smp".to_string(), smp.clone()]);
        }
        if self.single_tcg_thread {
            args.extend(["-accel".to_string(), "tcg,thread=single".to_string()]);
        }
        if self.icount {
            args.extend(["-icount".to_string(), "shift=0".to_string()]);
        }
        args.extend(["-bios".to_string(), ovmf.display().to_string()]);
        args.extend(["-drive".to_string(), format!("format=raw,file=fat:rw:{},if=virtio", esp.dir.display())]);
        args.extend(self.display.iter().cloned());
        if self.debug_exit {
            args.extend(["-device".to_string(), "isa-debug-exit,iobase=0xf4,iosize=0x04".to_string()]);
        }
        args
    }

    /// Boots from an ESP folder of its own and waits for QEMU to exit or
    /// [`UEFI_TIMEOUT`]. With the debug-exit device the run's `status` is the
    /// kernel's own (QEMU's `33 + 2 * status` decoded), and a QEMU exit without
    /// the kernel writing its exit port counts as no status at all; without it,
    /// the status is QEMU's. The QEMU log ([`STRICT_LOG_X86`]) must hold nothing
    /// but the start-up's CPU resets.
    pub fn run(&self) -> Run {
        let esp = UefiEsp::new(&self.bootargs);
        let log = esp.dir.with_extension("log");
        let mut args = self.qemu_args(&esp);
        args.extend(StrictLog::X86.args(&log));
        let mut run = run_program(&uefi_qemu(), &args, UEFI_TIMEOUT);
        check_log(&run, &log, StrictLog::X86);
        if let (Some(code), true) = (run.status, self.debug_exit) {
            let written = (code - 1) / 2;
            if code % 2 == 1 && written >= UEFI_EXIT_BIAS {
                run.status = Some(written - UEFI_EXIT_BIAS);
            } else {
                run.exit = format!("QEMU exit status {code}, without the kernel writing its exit port");
                run.status = None;
            }
        }
        run
    }

    /// Boots without the exit device, so that the kernel ends halted or powered
    /// off (`-no-shutdown` keeps the display then), and takes a screendump once
    /// it has `finished` ([`screen::ScreenBoot`]).
    pub fn screendump(&self, finished: screen::Finished) -> (Run, screen::Screen) {
        let esp = UefiEsp::new(&self.bootargs);
        let mut args = self.clone().without_debug_exit().qemu_args(&esp);
        args.push("-no-shutdown".into());
        screen::ScreenBoot { qemu: uefi_qemu(), args, finished, timeout: UEFI_TIMEOUT, strict_log: StrictLog::X86 }
            .run()
    }
}

/// Which QEMU log a run keeps, and what in it fails the run.
#[derive(Clone, Copy, Debug)]
pub enum StrictLog {
    /// `-d` [`STRICT_LOG`]: any line.
    Aarch64,
    /// `-d` [`STRICT_LOG_X86`]: any line but the start-up's CPU resets.
    X86,
}

impl StrictLog {
    /// `-d <flags> -D <log>`.
    pub(crate) fn args(self, log: &std::path::Path) -> [String; 4] {
        let flags = match self {
            StrictLog::Aarch64 => STRICT_LOG,
            StrictLog::X86 => STRICT_LOG_X86,
        };
        ["-d".to_string(), flags.to_string(), "-D".to_string(), log.display().to_string()]
    }
}

/// Fails `run` if its QEMU `log` holds what `strict` forbids; removes the file.
pub(crate) fn check_log(run: &Run, log: &std::path::Path, strict: StrictLog) {
    let complaint = match strict {
        StrictLog::Aarch64 => strict_log_complaint(log),
        StrictLog::X86 => x86_strict_log_complaint(log, &run.transcript),
    };
    if let Some(complaint) = complaint {
        run.fail(&complaint);
    }
}

/// The APIC ids the kernel sent an INIT to, from its `cores:` lines: every
/// processor it started, whether it came up (`core N (APIC id X) up`) or not
/// (`APIC id X did not answer ...`).
fn apic_ids_sent_init(transcript: &str) -> Vec<usize> {
    let apic_id = |text: &str| text.split_whitespace().next().and_then(|id| id.trim_end_matches(')').parse().ok());
    transcript
        .lines()
        .filter_map(|line| line.find("cores:").map(|at| &line[at + "cores:".len()..]))
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with("core ") && line.ends_with(") up") {
                line.split("(APIC id ").nth(1).and_then(apic_id)
            } else if line.contains(" did not answer ") {
                line.strip_prefix("APIC id ").and_then(apic_id)
            } else {
                None
            }
        })
        .collect()
}

/// What an x86_64 run's QEMU log ([`STRICT_LOG_X86`]) holds beyond the CPU
/// resets it may hold, as a failure message, if anything; removes the file.
/// A reset's register dump (lines `NAME=...`) belongs to its `CPU Reset` line.
///
/// The resets are counted per CPU (QEMU's CPU index, which is the APIC id on
/// its default topology). CPU 0 may show only the start-up's: any later one is
/// the whole machine's reset (a triple fault on any processor resets them all).
/// An application processor may show the start-up's, the firmware's INITs
/// ([`FIRMWARE_AP_INITS`]) and one more if the kernel started it (its
/// `cores:` lines say which; an INIT that was never followed by a STARTUP may
/// stay pending in QEMU and not be logged, hence "at most").
fn x86_strict_log_complaint(log: &std::path::Path, transcript: &str) -> Option<String> {
    let logged = std::fs::read_to_string(log).unwrap_or_default();
    let _ = std::fs::remove_file(log);
    let is_register_line = |line: &str| {
        let name: String = line.chars().take_while(|&c| c != '=').collect();
        line.contains('=') && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ')
    };
    let mut resets: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
    let mut unreadable = Vec::new();
    for line in logged.lines().filter(|l| l.starts_with("CPU Reset (CPU ")) {
        match line.trim_start_matches("CPU Reset (CPU ").trim_end_matches(')').parse::<usize>() {
            Ok(cpu) => *resets.entry(cpu).or_default() += 1,
            Err(_) => unreadable.push(line),
        }
    }
    let other: Vec<&str> = logged
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("CPU Reset (CPU ") && !is_register_line(l))
        .chain(unreadable)
        .collect();
    if !other.is_empty() {
        return Some(format!(
            "QEMU logged {} line(s) of guest errors or unimplemented accesses (-d {STRICT_LOG_X86}); on hardware these hang or do nothing:\n{}",
            other.len(),
            other.iter().take(20).copied().collect::<Vec<_>>().join("\n")
        ));
    }
    let sent_init = apic_ids_sent_init(transcript);
    let complaints: Vec<String> = resets
        .iter()
        .filter_map(|(&cpu, &count)| {
            let allowed = match cpu {
                0 => STARTUP_RESETS,
                _ => STARTUP_RESETS + FIRMWARE_AP_INITS + usize::from(sent_init.contains(&cpu)),
            };
            (count > allowed).then(|| {
                if cpu == 0 {
                    format!(
                        "CPU 0 was reset {} time(s) after start-up (-d cpu_reset): a triple fault, or a reset nobody asked for",
                        count - allowed
                    )
                } else {
                    format!(
                        "CPU {cpu} was reset {count} time(s), {allowed} allowed (start-up, the firmware's INITs, the kernel's): an INIT nobody asked for"
                    )
                }
            })
        })
        .collect();
    (!complaints.is_empty()).then(|| complaints.join("\n"))
}

/// `QEMU_X86_64`, else `qemu-system-x86_64`.
fn uefi_qemu() -> String {
    std::env::var("QEMU_X86_64").ok().filter(|q| !q.is_empty()).unwrap_or_else(|| "qemu-system-x86_64".into())
}

/// A folder that QEMU presents as the boot disk's FAT ESP: the kernel
/// (`BRK_KERNEL_EFI`) as `EFI/BOOT/BOOTX64.EFI` and `bootargs.txt`. Removed on drop.
struct UefiEsp {
    dir: PathBuf,
}

impl UefiEsp {
    fn new(bootargs: &str) -> UefiEsp {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static BOOTS: AtomicUsize = AtomicUsize::new(0);
        let efi = file_from_env(EFI_ENV);
        let dir = std::env::temp_dir().join(format!(
            "brk-esp-{}-{}",
            std::process::id(),
            BOOTS.fetch_add(1, Ordering::Relaxed)
        ));
        let boot_dir = dir.join("EFI").join("BOOT");
        std::fs::create_dir_all(&boot_dir).expect("creating the ESP folder");
        std::fs::copy(&efi, boot_dir.join("BOOTX64.EFI")).expect("copying the kernel into the ESP");
        std::fs::write(dir.join("bootargs.txt"), format!("{bootargs}\n")).expect("writing bootargs.txt");
        UefiEsp { dir }
    }
}

impl Drop for UefiEsp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The probe points of `user/probed` (its `PROBE_POINTS`): `(symbol+offset,
/// class)`, one class of instruction each. The class is `simulate` (under both
/// `--simulate` settings), `all-only` (simulated only under `--simulate all`) or
/// `step`.
pub const PROBED_POINTS: &[(&str, &str)] = &[
    ("cls_b+0x0", "simulate"),
    ("cls_bl+0x8", "simulate"),
    ("cls_bcond+0x4", "simulate"),
    ("cls_cbz+0x0", "simulate"),
    ("cls_tbnz+0x0", "simulate"),
    ("cls_br+0x4", "simulate"),
    ("cls_blr+0xc", "simulate"),
    ("cls_ret+0x4", "simulate"),
    ("cls_adr+0x0", "simulate"),
    ("cls_adrp+0x0", "simulate"),
    // PC-relative loads cannot run out of line either: simulated under both
    // policies, as Linux did at the time of the slot-reuse patch.
    ("cls_ldr_literal+0x0", "simulate"),
    ("cls_ldrsw_literal+0x0", "simulate"),
    ("cls_nop+0x0", "all-only"),
    ("cls_push+0x0", "all-only"),
    ("step_alu+0x0", "step"),
    ("step_madd+0x4", "step"),
    ("step_csel+0x4", "step"),
    ("step_mrs_nzcv+0x4", "step"),
    ("step_load+0x8", "step"),
    ("step_store+0x8", "step"),
    ("step_pair+0x8", "step"),
    ("step_simd+0x4", "step"),
];

/// The probe points of `user/probed`'s x86_64 build (its x86 `PROBE_POINTS`), in
/// the same shape as [`PROBED_POINTS`]: `(symbol+offset, class)`.
pub const PROBED_POINTS_X86_64: &[(&str, &str)] = &[
    ("cls_nop+0x0", "all-only"),
    ("cls_nop2+0x0", "all-only"),
    ("cls_nop3+0x0", "all-only"),
    ("cls_nop5+0x0", "all-only"),
    ("cls_nop9+0x0", "all-only"),
    ("cls_push+0x0", "all-only"),
    ("cls_push_rex+0x0", "all-only"),
    ("cls_ret+0x4", "simulate"),
    ("cls_call+0x4", "simulate"),
    ("cls_jmp8+0x0", "simulate"),
    ("cls_jmp32+0x0", "simulate"),
    ("cls_jcc8+0x7", "simulate"),
    ("cls_jcc32+0x7", "simulate"),
    ("step_alu+0x0", "step"),
    ("step_add+0x7", "step"),
    ("step_load+0x7", "step"),
    ("step_store+0x7", "step"),
    // RIP-relative operands, stepped with a scratch register for RIP.
    ("step_rip_load+0x0", "step"),
    ("step_rip_lea+0x0", "step"),
    ("step_rip_store+0x0", "step"),
    ("step_cmpxchg+0x13", "step"),
    ("step_pushfq+0x7", "step"),
    ("step_rep_movsb+0x37", "step"),
    ("step_movabs+0x0", "step"),
    ("step_long+0x7", "step"),
    ("step_max_length+0x0", "step"),
];

/// `probe=probed:...` for every probe point of `user/probed`.
pub fn probed_probe_args() -> Vec<String> {
    PROBED_POINTS.iter().map(|(at, _)| format!("probe=probed:{at}")).collect()
}

/// `user/probed`'s result lines (`probed: ...`).
pub fn probed_results(run: &Run) -> Vec<String> {
    run.lines().filter(|l| l.starts_with("probed: ")).map(String::from).collect()
}

/// One kernel self-test result line (docs/kernel-contract.md, "Self-tests").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selftest<'a> {
    Ok { name: &'a str },
    Failed { name: &'a str, reason: &'a str },
}

/// Parses `selftest <name>: ok` or `selftest <name>: FAILED (<reason>)`. A name is
/// one word (letters, digits, `_`, `-`, `.`, `/`); anything else is an error that
/// says what is wrong with the line.
pub fn parse_selftest_line(line: &str) -> Result<Selftest<'_>, String> {
    let rest = line.strip_prefix("selftest ").ok_or("does not start with \"selftest \"")?;
    let (name, verdict) = rest.split_once(": ").ok_or("has no \": \" after the name")?;
    let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c));
    if !name_ok {
        return Err(format!("the name {name:?} is not one word"));
    }
    if verdict == "ok" {
        return Ok(Selftest::Ok { name });
    }
    match verdict.strip_prefix("FAILED (").and_then(|r| r.strip_suffix(')')) {
        Some(reason) if !reason.trim().is_empty() => Ok(Selftest::Failed { name, reason }),
        _ => Err(format!("the verdict {verdict:?} is neither \"ok\" nor \"FAILED (<reason>)\"")),
    }
}

/// Parses the summary `selftests: <N> ok, <M> failed` into `(N, M)`.
pub fn parse_selftest_summary(line: &str) -> Option<(u32, u32)> {
    let rest = line.strip_prefix("selftests: ")?;
    let (ok, failed) = rest.split_once(", ")?;
    let ok = ok.strip_suffix(" ok")?.parse().ok()?;
    let failed = failed.strip_suffix(" failed")?.parse().ok()?;
    Some((ok, failed))
}

/// The value of a `NAME=0x...` field in a line, e.g. `ESR_EL1` in an exception report.
pub fn hex_field(line: &str, name: &str) -> Option<u64> {
    hex_after(line, &format!("{name}="))
}

/// The `0x...` number right after the first `words` in a line (`resume at `).
pub fn hex_after(line: &str, words: &str) -> Option<u64> {
    let start = line.find(&format!("{words}0x"))? + words.len() + 2;
    let digits: String = line[start..].chars().take_while(char::is_ascii_hexdigit).collect();
    u64::from_str_radix(&digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x86_log(text: &str) -> Option<String> {
        let path = std::env::temp_dir().join(format!("brk-x86-log-test-{}-{}", std::process::id(), text.len()));
        std::fs::write(&path, text).unwrap();
        x86_strict_log_complaint(&path, "")
    }

    fn x86_log_after(text: &str, transcript: &str) -> Option<String> {
        let path = std::env::temp_dir().join(format!("brk-x86-log-test-smp-{}-{}", std::process::id(), text.len()));
        std::fs::write(&path, text).unwrap();
        x86_strict_log_complaint(&path, transcript)
    }

    fn reset_of(cpu: usize) -> String {
        RESET.replace("(CPU 0)", &format!("(CPU {cpu})"))
    }

    /// Two start-up resets per CPU, six INITs of the firmware per AP.
    fn firmware_start_up(cpus: usize) -> String {
        (0..cpus).map(|cpu| reset_of(cpu).repeat(if cpu == 0 { 2 } else { 8 })).collect()
    }

    const CORES_UP: &str = "cores:   core 0 (APIC id 0) up: the boot core\ncores:   core 1 (APIC id 1) up\n";

    #[test]
    fn each_processor_the_kernel_started_may_show_one_init_more() {
        let log = firmware_start_up(2) + &reset_of(1);
        assert_eq!(x86_log_after(&log, CORES_UP), None);
        let no_answer = "cores:   APIC id 1 did not answer within 1000 ms: going on without it\n";
        assert_eq!(x86_log_after(&log, no_answer), None);
        // The transcript's own decoration (escape sequences) does not hide a line.
        assert_eq!(x86_log_after(&log, &CORES_UP.replace("cores:   core 1", "\u{1b}[0mcores:   core 1")), None);
        assert_eq!(x86_log_after(&firmware_start_up(4), ""), None);
    }

    #[test]
    fn an_init_the_kernel_did_not_send_or_a_later_reset_of_cpu_0_fails() {
        // The kernel left CPU 1 parked, yet it was reset once more.
        let log = firmware_start_up(2) + &reset_of(1);
        let parked = "cores:   core 0 (APIC id 0) up: the boot core\ncores:   APIC id 1 left parked (cores=1 asked for 1 core(s))\n";
        assert!(x86_log_after(&log, parked).unwrap().contains("CPU 1 was reset 9 time(s), 8 allowed"));
        // CPU 2 got two INITs after the kernel started it once.
        let log = firmware_start_up(3) + &reset_of(2).repeat(2);
        let two_up = format!("{CORES_UP}cores:   core 2 (APIC id 2) up\n");
        assert!(x86_log_after(&log, &two_up).unwrap().contains("CPU 2 was reset 10 time(s), 9 allowed"));
        // A triple fault anywhere resets CPU 0 too.
        let log = firmware_start_up(2) + &reset_of(0);
        assert!(x86_log_after(&log, CORES_UP).unwrap().contains("CPU 0 was reset 1 time(s) after start-up"));
    }

    #[test]
    fn apic_ids_sent_init_come_from_the_cores_lines() {
        let transcript = "cores:   core 0 (APIC id 0) up: the boot core\ncores:   core 1 (APIC id 1) up\ncores:   core 2 (APIC id 3) up\ncores:   APIC id 2 did not answer within 1000 ms: going on without it\ncores:   APIC id 5 left parked (cores=3 asked for 3 core(s))\n";
        assert_eq!(apic_ids_sent_init(transcript), vec![1, 3, 2]);
    }

    const RESET: &str = "CPU Reset (CPU 0)\nEAX=00000000 EBX=00000000 ECX=00000000 EDX=00000000\nES =0000 00000000 00000000 00000000\nCR0=00000000 CR2=00000000 CR3=00000000 CR4=00000000\nXMM00=0000000000000000 0000000000000000\n";

    #[test]
    fn an_x86_log_with_only_the_start_up_resets_is_clean() {
        assert_eq!(x86_log(""), None);
        assert_eq!(x86_log(&RESET.repeat(2)), None);
    }

    #[test]
    fn an_x86_log_with_a_later_reset_or_a_guest_error_fails() {
        assert!(x86_log(&RESET.repeat(3)).unwrap().contains("reset 1 time(s) after start-up"));
        let error = format!("{}Invalid read at addr 0xFEC00000, size 4, region '(null)', reason: rejected\n", RESET);
        assert!(x86_log(&error).unwrap().contains("Invalid read at addr 0xFEC00000"));
    }

    fn run(transcript: &str, status: Option<i32>, timed_out: bool) -> Run {
        Run {
            status,
            transcript: transcript.into(),
            stderr: String::new(),
            timed_out,
            timeout: Duration::from_secs(30),
            elapsed: Duration::from_millis(150),
            exit: status.map(|c| format!("exit status: {c}")).unwrap_or_else(|| "signal: 9 (SIGKILL)".into()),
            command_line: "qemu-system-aarch64 ...".into(),
        }
    }

    fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let err = std::panic::catch_unwind(f).expect_err("expected a failure");
        err.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    fn args_follow_the_contract() {
        let args = Boot::default().smp(1).append("inject=panic").qemu_args("k.img").join(" ");
        assert_eq!(
            args,
            "-M virt -cpu cortex-a72 -m 1G -nic none -display none -monitor none -serial stdio -semihosting \
             -kernel k.img -append probe-mode=brk inject=panic"
        );
        let every_core = Boot::default().qemu_args("k.img").join(" ");
        assert!(every_core.contains(&format!(" -smp {VIRT_CORES} ")), "{every_core}");
        let el2 = Boot::default().el2().cpu("cortex-a53").memory("2G").qemu_args("k.img");
        assert_eq!(el2[..6], ["-M", "virt,virtualization=on", "-cpu", "cortex-a53", "-m", "2G"]);
        let smp = Boot::default().smp(4).qemu_args("k.img").join(" ");
        assert!(smp.contains(" -serial stdio -smp 4 -semihosting "), "{smp}");
    }

    #[test]
    fn a_timeout_is_a_failure_even_with_good_output() {
        let r = run("power off: status 0 (success)\n", None, true);
        let msg = panic_message(move || {
            r.expect_exit(0);
        });
        assert!(msg.starts_with("QEMU timed out after 30 s"), "{msg}");
        assert!(msg.contains("power off: status 0 (success)"), "{msg}");
    }

    #[test]
    fn a_signal_is_a_failure() {
        let r = run("", None, false);
        let msg = panic_message(move || {
            r.expect_exit(0);
        });
        assert!(msg.contains("without an exit status"), "{msg}");
    }

    #[test]
    fn the_failure_shows_only_the_last_30_lines() {
        let transcript: String = (1..=40).map(|i| format!("line {i}\r\n")).collect();
        let r = run(&transcript, Some(1), false);
        let msg = panic_message(move || {
            r.expect_exit(0);
        });
        assert!(msg.contains("QEMU exited with 1, expected 0"), "{msg}");
        assert!(msg.contains("last 30 of 40 transcript lines"), "{msg}");
        assert!(msg.contains("line 11\nline 12") && !msg.contains("line 10\n"), "{msg}");
        assert!(!msg.contains('\r'), "{msg}");
    }

    #[test]
    fn lines_in_order() {
        let r = run("a: 1\nb: 2\nc: 3\n\n", Some(0), false);
        assert_eq!(r.expect_lines_in_order(&["a:", "c:"]), ["a: 1", "c: 3"]);
        assert_eq!(r.expect_exit(0).last_line(), Some("c: 3"));
        let msg = panic_message(move || {
            r.expect_lines_in_order(&["c:", "a:"]);
        });
        assert!(msg.contains("no line starting with \"a:\" after \"c: 3\""), "{msg}");
    }
    #[test]
    fn selftest_lines() {
        assert_eq!(parse_selftest_line("selftest heap: ok"), Ok(Selftest::Ok { name: "heap" }));
        assert_eq!(
            parse_selftest_line("selftest esr_decode: FAILED (EC 0x3c read as 0x3d)"),
            Ok(Selftest::Failed { name: "esr_decode", reason: "EC 0x3c read as 0x3d" })
        );
        for bad in [
            "selftest : ok",
            "selftest two words: ok",
            "selftest heap: okay",
            "selftest heap: FAILED",
            "selftest heap: FAILED ()",
            "selftest heap ok",
            "selftests: 1 ok, 0 failed",
        ] {
            assert!(parse_selftest_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selftest_summary() {
        assert_eq!(parse_selftest_summary("selftests: 7 ok, 0 failed"), Some((7, 0)));
        assert_eq!(parse_selftest_summary("selftests: 6 ok, 1 failed"), Some((6, 1)));
        assert_eq!(parse_selftest_summary("selftests: seven ok, 0 failed"), None);
        assert_eq!(parse_selftest_summary("selftest heap: ok"), None);
    }

    #[test]
    fn hex_fields() {
        let line = "unexpected exception: current_el_spx_synchronous data abort ESR_EL1=0x96000045 \
                    FAR_EL1=0xdead0000 ELR_EL1=0x40081234";
        assert_eq!(hex_field(line, "ESR_EL1"), Some(0x9600_0045));
        assert_eq!(hex_field(line, "FAR_EL1"), Some(0xdead_0000));
        assert_eq!(hex_field(line, "ELR_EL1"), Some(0x4008_1234));
        assert_eq!(hex_field(line, "SPSR_EL1"), None);
    }
}
