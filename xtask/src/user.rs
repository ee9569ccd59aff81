//! The user programs: build every program under `user/` (each folder with a
//! Cargo.toml, except the runtime `rt`) for an architecture, add any outside ELF
//! named with `--run path/to/prog.elf`, and collect them in the folder the kernel
//! build packs (`BRK_USER_PROGRAMS`): `target/images/programs/NAME.elf` for
//! aarch64, `target/images/x86_64/programs/NAME.elf` for x86_64.
//!
//! Which architectures a program supports is in its Cargo.toml:
//!
//! ```toml
//! [package.metadata.brk]
//! arches = ["aarch64", "x86_64"]
//! ```
//!
//! A program without that key is built for aarch64 only.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::{build::target_dir, cmd::Cmd};

/// User programs are hard-float (they use NEON); the kernel is soft-float.
pub const USER_TARGET: &str = "aarch64-unknown-none";
/// The x86_64 programs are soft-float: the kernel leaves SSE off in ring 3.
pub const X86_64_USER_TARGET: &str = "x86_64-unknown-none";
/// Folders under `user/` that are not programs.
const NOT_PROGRAMS: &[&str] = &["rt"];
/// The manifest section and key that list a program's architectures.
const ARCHES_SECTION: &str = "package.metadata.brk";
const ARCHES_KEY: &str = "arches";

/// An architecture a user program can be built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserArch {
    Aarch64,
    X86_64,
}

impl UserArch {
    const ALL: [UserArch; 2] = [UserArch::Aarch64, UserArch::X86_64];

    /// The name in `arches = [...]`.
    pub fn name(self) -> &'static str {
        match self {
            UserArch::Aarch64 => "aarch64",
            UserArch::X86_64 => "x86_64",
        }
    }

    /// The Rust target the programs are built for.
    pub fn target(self) -> &'static str {
        match self {
            UserArch::Aarch64 => USER_TARGET,
            UserArch::X86_64 => X86_64_USER_TARGET,
        }
    }

    fn from_name(name: &str) -> Option<UserArch> {
        Self::ALL.into_iter().find(|arch| arch.name() == name)
    }
}

/// A program under `user/`: its package name and the architectures it supports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub name: String,
    pub arches: Vec<UserArch>,
}

/// The programs under `user/`, sorted by name.
pub fn programs() -> Result<Vec<Program>> {
    let mut programs = Vec::new();
    for entry in fs::read_dir("user").context("reading user/")? {
        let dir = entry?.path();
        let manifest = dir.join("Cargo.toml");
        let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !manifest.is_file() || NOT_PROGRAMS.contains(&folder) {
            continue;
        }
        let text = fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
        let name = package_name(&text).with_context(|| format!("no package name in {}", manifest.display()))?;
        let arches = program_arches(&text).with_context(|| format!("in {}", manifest.display()))?;
        programs.push(Program { name, arches });
    }
    programs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(programs)
}

/// The package names of the programs under `user/` that build for `arch`, sorted.
pub fn program_names_for(arch: UserArch) -> Result<Vec<String>> {
    Ok(programs()?.into_iter().filter(|program| program.arches.contains(&arch)).map(|program| program.name).collect())
}

/// `name = "..."` of a manifest's `[package]` section.
fn package_name(manifest: &str) -> Option<String> {
    let package = manifest.split("[package]").nth(1)?;
    package
        .lines()
        .take_while(|line| !line.trim_start().starts_with('['))
        .find_map(|line| line.trim().strip_prefix("name")?.trim().strip_prefix('=').map(str::trim))
        .map(|value| value.trim_matches('"').to_string())
}

/// `arches = [...]` of a manifest's `[package.metadata.brk]` section, or aarch64
/// alone when there is no such key. The array may span lines; an unknown name,
/// a duplicate or an empty list is an error.
fn program_arches(manifest: &str) -> Result<Vec<UserArch>> {
    let Some(value) = section_value(manifest, ARCHES_SECTION, ARCHES_KEY) else {
        return Ok(vec![UserArch::Aarch64]);
    };
    let inner = value.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).with_context(|| {
        format!(
            "[{ARCHES_SECTION}] {ARCHES_KEY} must be an array of strings, like [\"aarch64\", \"x86_64\"], not {value}"
        )
    })?;
    let mut arches = Vec::new();
    for item in inner.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let name = item
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .with_context(|| format!("[{ARCHES_SECTION}] {ARCHES_KEY}: {item} is not a quoted string"))?;
        let arch = UserArch::from_name(name).with_context(|| {
            let known: Vec<&str> = UserArch::ALL.iter().map(|arch| arch.name()).collect();
            format!("[{ARCHES_SECTION}] {ARCHES_KEY}: unknown architecture \"{name}\" (known: {})", known.join(", "))
        })?;
        if arches.contains(&arch) {
            bail!("[{ARCHES_SECTION}] {ARCHES_KEY}: \"{name}\" is listed twice");
        }
        arches.push(arch);
    }
    if arches.is_empty() {
        bail!("[{ARCHES_SECTION}] {ARCHES_KEY} is empty: a program builds for at least one architecture");
    }
    Ok(arches)
}

/// The value of `key = ...` in the manifest section `[section]`, with comments
/// dropped and an array that spans lines joined into one string; `None` if the
/// section or the key is missing.
fn section_value(manifest: &str, section: &str, key: &str) -> Option<String> {
    let header = format!("[{section}]");
    let mut lines = manifest
        .lines()
        // A `#` starts a comment; the values read here never contain one.
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .skip_while(|line| *line != header)
        .skip(1)
        .take_while(|line| !line.starts_with('['));
    let first = lines.find_map(|line| {
        let (name, value) = line.split_once('=')?;
        (name.trim() == key).then(|| value.trim().to_string())
    })?;
    let mut value = first;
    // An array left open on its line continues on the following ones.
    if value.starts_with('[') {
        for line in lines.by_ref() {
            if value.contains(']') {
                break;
            }
            value.push_str(line);
        }
    }
    Some(value)
}

/// The name a program gets inside the kernel: an outside ELF's file stem.
pub fn name_of_outside_program(path: &Path) -> Result<String> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if stem.is_empty() || !stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("{}: a program's file name must be letters, digits, '-' or '_' before .elf", path.display());
    }
    Ok(stem.to_string())
}

/// Build every aarch64 program and gather them, with `outside` ELFs, in one
/// folder (`target/images/programs`).
pub fn build_programs(outside: &[PathBuf]) -> Result<PathBuf> {
    let dir = build_for(UserArch::Aarch64, &crate::build::images_dir().join("programs"))?;
    for path in outside {
        let name = name_of_outside_program(path)?;
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if !bytes.starts_with(b"\x7fELF") {
            bail!("{}: not an ELF file", path.display());
        }
        copy(path, &dir.join(format!("{name}.elf")))?;
    }
    Ok(fs::canonicalize(&dir)?)
}

/// Build every program that supports x86_64 and gather them in
/// `target/images/x86_64/programs`; returns that folder (canonical).
pub fn build_x86_64_programs() -> Result<PathBuf> {
    let dir = build_for(UserArch::X86_64, &crate::build::images_dir().join("x86_64").join("programs"))?;
    Ok(fs::canonicalize(&dir)?)
}

/// Builds the programs that support `arch` (release, one cargo run) and copies
/// them to `dir` as `NAME.elf`, removing every other file there so no program of
/// an earlier build lingers. A file that already holds the program's bytes is left
/// as it is: the kernel's build watches the folder and would otherwise be redone on
/// every run. Returns `dir`.
fn build_for(arch: UserArch, dir: &Path) -> Result<PathBuf> {
    let names = program_names_for(arch)?;
    if names.is_empty() {
        bail!("no program under user/ lists \"{}\" in [{ARCHES_SECTION}] {ARCHES_KEY}", arch.name());
    }
    let mut cargo = Cmd::new("cargo").args(["build", "--release", "--target", arch.target()]);
    for name in &names {
        cargo = cargo.args(["-p", name.as_str()]);
    }
    cargo.run()?;

    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let wanted: Vec<String> = names.iter().map(|name| format!("{name}.elf")).collect();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if !wanted.iter().any(|w| entry.file_name() == w.as_str()) {
            let path = entry.path();
            if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) }
                .with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let built = target_dir().join(arch.target()).join("release");
    for name in &names {
        let elf = built.join(name);
        let bytes = fs::read(&elf).with_context(|| format!("reading {}", elf.display()))?;
        crate::relro::check(name, &bytes)?;
        copy(&elf, &dir.join(format!("{name}.elf")))?;
    }
    Ok(dir.to_path_buf())
}

/// Copies `from` to `to` unless `to` already holds the same bytes.
fn copy(from: &Path, to: &Path) -> Result<()> {
    let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    if fs::read(to).is_ok_and(|there| there == bytes) {
        return Ok(());
    }
    fs::write(to, bytes).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_name_is_read_from_the_package_section() {
        let manifest = "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n\n[dependencies]\nname = \"x\"\n";
        assert_eq!(package_name(manifest).as_deref(), Some("demo"));
        assert_eq!(package_name("[dependencies]\nname = \"x\"\n"), None);
    }

    #[test]
    fn arches_default_to_aarch64() {
        let manifest = "[package]\nname = \"demo\"\n\n[dependencies]\nuser-rt = { path = \"../rt\" }\n";
        assert_eq!(program_arches(manifest).unwrap(), vec![UserArch::Aarch64]);
        // The key in another section does not count.
        let elsewhere =
            "[package]\nname = \"demo\"\narches = [\"x86_64\"]\n[package.metadata.other]\narches = [\"x86_64\"]\n";
        assert_eq!(program_arches(elsewhere).unwrap(), vec![UserArch::Aarch64]);
    }

    #[test]
    fn arches_are_read_from_the_metadata_section() {
        let manifest = "[package]\nname = \"hello\"\n\n[package.metadata.brk]\narches = [\"aarch64\", \"x86_64\"] # both\n\n[[bin]]\nname = \"hello\"\n";
        assert_eq!(program_arches(manifest).unwrap(), vec![UserArch::Aarch64, UserArch::X86_64]);
        let x86_only = "[package.metadata.brk]\narches = [\"x86_64\"]\n";
        assert_eq!(program_arches(x86_only).unwrap(), vec![UserArch::X86_64]);
        let multi_line = "[package.metadata.brk]\narches = [\n    \"x86_64\",\n    \"aarch64\",\n]\n[dependencies]\n";
        assert_eq!(program_arches(multi_line).unwrap(), vec![UserArch::X86_64, UserArch::Aarch64]);
        // The package name is still read from [package] only.
        assert_eq!(package_name(manifest).as_deref(), Some("hello"));
    }

    #[test]
    fn bad_arches_are_errors() {
        for bad in [
            "arches = [\"riscv64\"]",
            "arches = []",
            "arches = [\"x86_64\", \"x86_64\"]",
            "arches = \"x86_64\"",
            "arches = [x86_64]",
        ] {
            let manifest = format!("[package.metadata.brk]\n{bad}\n");
            assert!(program_arches(&manifest).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn every_program_in_the_tree_has_valid_arches() {
        // cargo runs unit tests in the package folder; the programs are one up.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace");
        let mut seen = 0;
        for entry in fs::read_dir(root.join("user")).unwrap() {
            let manifest = entry.unwrap().path().join("Cargo.toml");
            if manifest.is_file() {
                let text = fs::read_to_string(&manifest).unwrap();
                program_arches(&text).unwrap_or_else(|error| panic!("{}: {error:#}", manifest.display()));
                seen += 1;
            }
        }
        assert!(seen > 0, "no manifests under {}", root.join("user").display());
    }

    #[test]
    fn outside_program_names_come_from_the_file_stem() {
        assert_eq!(name_of_outside_program(Path::new("/tmp/my_prog.elf")).unwrap(), "my_prog");
        assert!(name_of_outside_program(Path::new("/tmp/bad name.elf")).is_err());
    }
}
