//! The EL0 programs: build every program under `user/` (each folder with a
//! Cargo.toml, except the runtime `rt`), add any outside ELF named with
//! `--run path/to/prog.elf`, and collect them as `target/images/programs/NAME.elf`,
//! the folder the kernel build packs (`BRK_USER_PROGRAMS`).

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::{build::target_dir, cmd::Cmd};

/// User programs are hard-float (they use NEON); the kernel is soft-float.
pub const USER_TARGET: &str = "aarch64-unknown-none";
/// Folders under `user/` that are not programs.
const NOT_PROGRAMS: &[&str] = &["rt"];

/// The package names of the programs under `user/`, sorted.
pub fn program_names() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir("user").context("reading user/")? {
        let dir = entry?.path();
        let manifest = dir.join("Cargo.toml");
        let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !manifest.is_file() || NOT_PROGRAMS.contains(&folder) {
            continue;
        }
        let text = fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
        names.push(package_name(&text).with_context(|| format!("no package name in {}", manifest.display()))?);
    }
    names.sort();
    Ok(names)
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

/// The name a program gets inside the kernel: an outside ELF's file stem.
pub fn name_of_outside_program(path: &Path) -> Result<String> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if stem.is_empty() || !stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("{}: a program's file name must be letters, digits, '-' or '_' before .elf", path.display());
    }
    Ok(stem.to_string())
}

/// Build every program and gather them, with `outside` ELFs, in one folder.
pub fn build_programs(outside: &[PathBuf]) -> Result<PathBuf> {
    let names = program_names()?;
    let mut cargo = Cmd::new("cargo").args(["build", "--release", "--target", USER_TARGET]);
    for name in &names {
        cargo = cargo.args(["-p", name.as_str()]);
    }
    cargo.run()?;

    let dir = crate::build::images_dir().join("programs");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let built = target_dir().join(USER_TARGET).join("release");
    for name in &names {
        copy(&built.join(name), &dir.join(format!("{name}.elf")))?;
    }
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

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
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
    fn outside_program_names_come_from_the_file_stem() {
        assert_eq!(name_of_outside_program(Path::new("/tmp/my_prog.elf")).unwrap(), "my_prog");
        assert!(name_of_outside_program(Path::new("/tmp/bad name.elf")).is_err());
    }
}
