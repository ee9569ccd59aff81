//! The toolchain `rust-toolchain.toml` pins, checked before anything is built: the
//! targets and components it names that the active toolchain lacks are installed with
//! `rustup` (printed like every other command), or, without rustup, named in an error
//! that says what to install.
//!
//! rustup installs a file's targets only when it installs the toolchain itself; a
//! toolchain that was already there (installed earlier, or by another project) keeps
//! the targets it had, and the first bare-metal build then fails with "can't find
//! crate for `core`". This check closes that gap for every `cargo xtask` command
//! that builds.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::cmd::{find_program, Cmd};

/// The file that pins the toolchain, at the workspace root.
pub const TOOLCHAIN_FILE: &str = "rust-toolchain.toml";

/// The triple xtask was built for, which is the toolchain's host (`build.rs`).
const HOST: &str = env!("XTASK_HOST");

/// What `rust-toolchain.toml` asks for.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Pinned {
    pub channel: String,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
}

#[derive(Deserialize)]
struct ToolchainFile {
    toolchain: Pinned,
}

impl Pinned {
    /// Parses the text of a `rust-toolchain.toml`.
    pub fn parse(text: &str) -> Result<Self> {
        let file: ToolchainFile = toml::from_str(text).context("parsing the [toolchain] table")?;
        Ok(file.toolchain)
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }
}

/// What the active toolchain lacks of what is pinned.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Missing {
    pub targets: Vec<String>,
    pub components: Vec<String>,
}

impl Missing {
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && self.components.is_empty()
    }
}

/// Compares the pinned targets and components with what `rustup target list
/// --installed` and `rustup component list --installed` printed.
///
/// rustup lists host-specific components with the host triple appended
/// (`clippy-x86_64-unknown-linux-gnu`) and the others bare (`rust-src`).
pub fn missing(pinned: &Pinned, installed_targets: &str, installed_components: &str, host: &str) -> Missing {
    let targets: Vec<&str> = installed_targets.lines().map(str::trim).collect();
    let components: Vec<&str> = installed_components.lines().map(str::trim).collect();
    let has_component = |name: &str| {
        let with_host = format!("{name}-{host}");
        components.iter().any(|c| *c == name || *c == with_host)
    };
    Missing {
        targets: pinned.targets.iter().filter(|t| !targets.contains(&t.as_str())).cloned().collect(),
        components: pinned.components.iter().filter(|c| !has_component(c)).cloned().collect(),
    }
}

/// The toolchain name `rustup show active-toolchain` printed: its first word
/// (`1.95.0-x86_64-unknown-linux-gnu (overridden by '.../rust-toolchain.toml')`).
pub fn active_toolchain_name(shown: &str) -> Option<&str> {
    shown.split_whitespace().next()
}

/// The rustup commands that install what is missing, one per kind.
pub fn install_commands(toolchain: &str, missing: &Missing) -> Vec<Cmd> {
    let mut commands = Vec::new();
    if !missing.targets.is_empty() {
        commands.push(
            Cmd::new("rustup").args(["target", "add", "--toolchain", toolchain]).args(missing.targets.iter().cloned()),
        );
    }
    if !missing.components.is_empty() {
        commands.push(
            Cmd::new("rustup")
                .args(["component", "add", "--toolchain", toolchain])
                .args(missing.components.iter().cloned()),
        );
    }
    commands
}

/// Without rustup: the pinned targets whose standard library is not under the
/// sysroot (`<sysroot>/lib/rustlib/<target>/lib`), and the pinned components whose
/// program is not in `<sysroot>/bin`.
pub fn missing_in_sysroot(pinned: &Pinned, sysroot: &Path) -> Missing {
    let rustlib = sysroot.join("lib").join("rustlib");
    Missing {
        targets: pinned.targets.iter().filter(|t| !rustlib.join(t).join("lib").is_dir()).cloned().collect(),
        components: pinned
            .components
            .iter()
            .filter(|c| !sysroot.join("bin").join(component_program(c)).is_file())
            .cloned()
            .collect(),
    }
}

/// The program a component puts in the sysroot's `bin`.
fn component_program(component: &str) -> &str {
    match component {
        "clippy" => "cargo-clippy",
        other => other,
    }
}

/// Makes the active toolchain hold every target and component `rust-toolchain.toml`
/// names, installing the missing ones with rustup; without rustup, fails with what to
/// install. Every `cargo xtask` command that builds calls this first.
pub fn ensure() -> Result<()> {
    let pinned = Pinned::read(Path::new(TOOLCHAIN_FILE))?;
    if find_program("rustup").is_none() {
        return ensure_without_rustup(&pinned);
    }
    let shown = Cmd::new("rustup").args(["show", "active-toolchain"]).output()?;
    let Some(toolchain) = active_toolchain_name(&shown) else {
        bail!("`rustup show active-toolchain` printed no toolchain name: {shown:?}");
    };
    let targets = Cmd::new("rustup").args(["target", "list", "--installed", "--toolchain", toolchain]).output()?;
    let components =
        Cmd::new("rustup").args(["component", "list", "--installed", "--toolchain", toolchain]).output()?;
    let missing = missing(&pinned, &targets, &components, HOST);
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "toolchain: {toolchain} lacks what {TOOLCHAIN_FILE} names (targets: {}; components: {}); installing",
        list_or_none(&missing.targets),
        list_or_none(&missing.components)
    );
    for command in install_commands(toolchain, &missing) {
        command.run()?;
    }
    Ok(())
}

fn ensure_without_rustup(pinned: &Pinned) -> Result<()> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let sysroot = Cmd::new(rustc.as_str())
        .args(["--print", "sysroot"])
        .output()
        .context("rustup is not on PATH, and asking rustc for its sysroot failed")?;
    let sysroot = PathBuf::from(sysroot.trim());
    let missing = missing_in_sysroot(pinned, &sysroot);
    if missing.is_empty() {
        return Ok(());
    }
    bail!(
        "rustup is not on PATH, and the Rust at {} lacks what {TOOLCHAIN_FILE} names: targets: {}; components: {}. \
         Install the standard library of each target and the components for Rust {} with your system's packages, \
         or install rustup (https://rustup.rs), which then installs them on the next `cargo xtask`",
        sysroot.display(),
        list_or_none(&missing.targets),
        list_or_none(&missing.components),
        pinned.channel
    )
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
# a comment
[toolchain]
channel = "1.95.0"
targets = ["aarch64-unknown-none", "aarch64-unknown-none-softfloat", "x86_64-unknown-uefi"]
components = ["rustfmt", "clippy"]
profile = "minimal"
"#;

    #[test]
    fn the_file_is_read_as_rustup_reads_it() {
        let pinned = Pinned::parse(FILE).unwrap();
        assert_eq!(pinned.channel, "1.95.0");
        assert_eq!(pinned.targets, ["aarch64-unknown-none", "aarch64-unknown-none-softfloat", "x86_64-unknown-uefi"]);
        assert_eq!(pinned.components, ["rustfmt", "clippy"]);
        let bare = Pinned::parse("[toolchain]\nchannel = \"stable\"\n").unwrap();
        assert!(bare.targets.is_empty() && bare.components.is_empty());
        assert!(Pinned::parse("channel = \"stable\"").is_err(), "no [toolchain] table");
    }

    #[test]
    fn the_project_file_pins_both_kernels_targets() {
        let pinned = Pinned::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(TOOLCHAIN_FILE)).unwrap();
        for target in [
            crate::build::KERNEL_TARGET,
            crate::user::USER_TARGET,
            crate::uefi::UEFI_TARGET,
            crate::user::X86_64_USER_TARGET,
        ] {
            assert!(
                pinned.targets.iter().any(|t| t == target),
                "{TOOLCHAIN_FILE} lacks {target}, which xtask builds for"
            );
        }
    }

    #[test]
    fn only_what_is_not_installed_is_missing() {
        let pinned = Pinned::parse(FILE).unwrap();
        let host = "x86_64-unknown-linux-gnu";
        let targets = "x86_64-unknown-linux-gnu\naarch64-unknown-none\n";
        let components =
            "cargo-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\nrust-std-x86_64-unknown-linux-gnu\n";
        let lacking = missing(&pinned, targets, components, host);
        assert_eq!(lacking.targets, ["aarch64-unknown-none-softfloat", "x86_64-unknown-uefi"]);
        assert_eq!(lacking.components, ["rustfmt"]);

        let all_targets = "aarch64-unknown-none\naarch64-unknown-none-softfloat\nx86_64-unknown-uefi\n";
        let all_components = "rustfmt-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\n";
        assert!(missing(&pinned, all_targets, all_components, host).is_empty());
    }

    #[test]
    fn a_component_of_another_host_or_a_longer_name_does_not_count() {
        let pinned =
            Pinned { channel: "1.95.0".into(), targets: vec![], components: vec!["rust-src".into(), "rustfmt".into()] };
        let components = "rust-src\nrustfmt-aarch64-apple-darwin\nrustfmt-preview-x86_64-unknown-linux-gnu\n";
        assert_eq!(missing(&pinned, "", components, "x86_64-unknown-linux-gnu").components, ["rustfmt"]);
    }

    #[test]
    fn the_install_commands_name_the_toolchain_and_only_what_is_missing() {
        let none = install_commands("1.95.0-x86_64-unknown-linux-gnu", &Missing::default());
        assert!(none.is_empty());
        let missing =
            Missing { targets: vec!["x86_64-unknown-uefi".into(), "x86_64-unknown-none".into()], components: vec![] };
        let commands: Vec<String> =
            install_commands("1.95.0-x86_64-unknown-linux-gnu", &missing).iter().map(Cmd::display).collect();
        assert_eq!(
            commands,
            ["rustup target add --toolchain 1.95.0-x86_64-unknown-linux-gnu x86_64-unknown-uefi x86_64-unknown-none"]
        );
        let missing = Missing { targets: vec!["a".into()], components: vec!["clippy".into()] };
        let commands: Vec<String> = install_commands("stable", &missing).iter().map(Cmd::display).collect();
        assert_eq!(
            commands,
            ["rustup target add --toolchain stable a", "rustup component add --toolchain stable clippy"]
        );
    }

    #[test]
    fn the_active_toolchain_is_the_first_word_rustup_shows() {
        assert_eq!(
            active_toolchain_name("1.95.0-x86_64-unknown-linux-gnu (overridden by '/w/rust-toolchain.toml')\n"),
            Some("1.95.0-x86_64-unknown-linux-gnu")
        );
        assert_eq!(active_toolchain_name("stable-aarch64-apple-darwin\n"), Some("stable-aarch64-apple-darwin"));
        assert_eq!(active_toolchain_name("\n"), None);
    }

    #[test]
    fn without_rustup_the_sysroot_says_what_is_there() {
        let sysroot = std::env::temp_dir().join(format!("xtask-sysroot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&sysroot);
        std::fs::create_dir_all(sysroot.join("lib/rustlib/aarch64-unknown-none/lib")).unwrap();
        std::fs::create_dir_all(sysroot.join("lib/rustlib/x86_64-unknown-uefi")).unwrap(); // no lib/: not installed
        std::fs::create_dir_all(sysroot.join("bin")).unwrap();
        std::fs::write(sysroot.join("bin/cargo-clippy"), "").unwrap();
        let pinned = Pinned::parse(FILE).unwrap();
        let missing = missing_in_sysroot(&pinned, &sysroot);
        std::fs::remove_dir_all(&sysroot).unwrap();
        assert_eq!(missing.targets, ["aarch64-unknown-none-softfloat", "x86_64-unknown-uefi"]);
        assert_eq!(missing.components, ["rustfmt"]);
    }
}
