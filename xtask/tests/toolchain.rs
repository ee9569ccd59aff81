//! `cargo xtask toolchain` against a fake `rustup` on `PATH`: the check every building
//! command runs first. The fake reports a toolchain that lacks some of the targets
//! `rust-toolchain.toml` names and records every call, so the test sees exactly what
//! xtask asked rustup to do. No QEMU, no real toolchain change.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// A scratch folder with an executable `rustup` script in it.
struct FakeRustup {
    dir: PathBuf,
}

impl FakeRustup {
    /// A fake whose active toolchain has `targets` and `components` installed.
    fn new(name: &str, targets: &[&str], components: &[String]) -> Self {
        let dir = std::env::temp_dir().join(format!("xtask-fake-rustup-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let script = format!(
            r#"#!/bin/sh
echo "$*" >> "{log}"
case "$*" in
  "show active-toolchain") echo "1.95.0-x86_64-unknown-linux-gnu (overridden by '/somewhere/rust-toolchain.toml')" ;;
  "target list --installed --toolchain 1.95.0-x86_64-unknown-linux-gnu") printf '%s\n' {targets} ;;
  "component list --installed --toolchain 1.95.0-x86_64-unknown-linux-gnu") printf '%s\n' {components} ;;
  "target add "*|"component add "*) ;;
  *) echo "fake rustup: unexpected call: $*" >&2; exit 1 ;;
esac
"#,
            log = dir.join("calls.log").display(),
            targets = targets.join(" "),
            components = components.join(" "),
        );
        let path = dir.join("rustup");
        fs::write(&path, script).unwrap();
        make_executable(&path);
        FakeRustup { dir }
    }

    /// Runs `xtask toolchain` with the fake first on `PATH`.
    fn run_xtask(&self) -> Output {
        let path = std::env::join_paths(
            std::iter::once(self.dir.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("toolchain")
            .env("PATH", path)
            .env_remove("RUSTUP_TOOLCHAIN")
            .output()
            .expect("xtask runs")
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("calls.log")).unwrap_or_default().lines().map(str::to_string).collect()
    }
}

impl Drop for FakeRustup {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The host triple rustup appends to host components (from xtask's build script).
const HOST: &str = env!("XTASK_HOST");

fn host_components(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!("{n}-{HOST}")).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn missing_targets_are_added_with_the_command_printed() {
    let fake = FakeRustup::new(
        "missing",
        &["x86_64-unknown-linux-gnu", "aarch64-unknown-none"],
        &host_components(&["cargo", "rustfmt", "clippy"]),
    );
    let out = fake.run_xtask();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "xtask toolchain failed:\n{stdout}\n{}", text(&out.stderr));
    let add = "target add --toolchain 1.95.0-x86_64-unknown-linux-gnu aarch64-unknown-none-softfloat x86_64-unknown-uefi x86_64-unknown-none";
    assert!(stdout.contains(&format!("+ rustup {add}\n")), "the install command is not printed:\n{stdout}");
    assert!(stdout.contains("lacks what rust-toolchain.toml names"), "no reason given:\n{stdout}");
    let calls = fake.calls();
    assert_eq!(calls.iter().filter(|c| c.contains(" add ")).collect::<Vec<_>>(), [add], "rustup calls: {calls:?}");
}

#[test]
fn missing_components_are_added_too() {
    let all_targets =
        ["aarch64-unknown-none", "aarch64-unknown-none-softfloat", "x86_64-unknown-uefi", "x86_64-unknown-none"];
    let fake = FakeRustup::new("components", &all_targets, &host_components(&["cargo"]));
    let out = fake.run_xtask();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let calls = fake.calls();
    let adds: Vec<_> = calls.iter().filter(|c| c.contains(" add ")).collect();
    assert_eq!(adds, ["component add --toolchain 1.95.0-x86_64-unknown-linux-gnu rustfmt clippy"]);
}

#[test]
fn nothing_is_installed_when_nothing_is_missing() {
    let all_targets =
        ["aarch64-unknown-none", "aarch64-unknown-none-softfloat", "x86_64-unknown-uefi", "x86_64-unknown-none"];
    let fake = FakeRustup::new("complete", &all_targets, &host_components(&["cargo", "rustfmt", "clippy"]));
    let out = fake.run_xtask();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let calls = fake.calls();
    assert!(calls.iter().all(|c| !c.contains(" add ")), "installed although nothing was missing: {calls:?}");
    assert_eq!(calls.len(), 3, "show, target list, component list: {calls:?}");
}

#[test]
fn a_failing_rustup_fails_the_command_with_its_reason() {
    let fake = FakeRustup::new("broken", &[], &host_components(&["cargo", "rustfmt", "clippy"]));
    // The fake answers `target add` with success; make it fail instead.
    let script = fake.dir.join("rustup");
    let broken = fs::read_to_string(&script).unwrap().replace(
        r#""target add "*|"component add "*) ;;"#,
        r#""target add "*) echo "error: no network" >&2; exit 1 ;;"#,
    );
    fs::write(&script, broken).unwrap();
    let out = fake.run_xtask();
    assert!(!out.status.success(), "a failed rustup target add must fail xtask");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("rustup target add --toolchain 1.95.0-x86_64-unknown-linux-gnu"),
        "the failed command is not named:\n{stderr}"
    );
}

#[test]
fn without_rustup_the_error_names_what_to_install() {
    // PATH holds only a fake rustc whose sysroot has no target libraries at all.
    let dir = std::env::temp_dir().join(format!("xtask-no-rustup-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let sysroot = dir.join("sysroot");
    fs::create_dir_all(sysroot.join("bin")).unwrap();
    fs::create_dir_all(dir.join("bin")).unwrap();
    let rustc = dir.join("bin").join("rustc");
    fs::write(&rustc, format!("#!/bin/sh\necho '{}'\n", sysroot.display())).unwrap();
    make_executable(&rustc);
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("toolchain")
        .env("PATH", dir.join("bin"))
        .env_remove("RUSTC")
        .output()
        .expect("xtask runs");
    fs::remove_dir_all(&dir).unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    for needed in
        ["rustup is not on PATH", "aarch64-unknown-none-softfloat", "x86_64-unknown-uefi", "rustfmt", "clippy"]
    {
        assert!(stderr.contains(needed), "the error does not name {needed}:\n{stderr}");
    }
}
