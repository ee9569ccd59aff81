//! `cargo xtask gdb`: gdb-multiarch on the kernel ELF, attached to the gdb server of
//! a QEMU started with `cargo xtask qemu --gdb` (`-s`, tcp port 1234).

use std::{path::Path, process::ExitCode};

use anyhow::{bail, Result};

use crate::{
    build::{Board, Images},
    cmd::{self, Cmd},
};

pub const DEFAULT_GDB: &str = "gdb-multiarch";

/// The gdb command line for `elf` (the program is `GDB` if set, else gdb-multiarch).
pub fn command(elf: &Path) -> Cmd {
    Cmd::new(gdb_program()).args(["-q".to_string(), elf.display().to_string()]).args(["-ex", "target remote :1234"])
}

fn gdb_program() -> String {
    std::env::var("GDB").ok().filter(|g| !g.is_empty()).unwrap_or_else(|| DEFAULT_GDB.to_string())
}

pub fn install_help() -> String {
    format!(
        "{DEFAULT_GDB} was not found on PATH. Install a gdb that debugs AArch64:\n\
         \x20 Debian/Ubuntu: sudo apt-get install gdb-multiarch\n\
         \x20 elsewhere:     a gdb built for aarch64 (Arch: aarch64-linux-gnu-gdb; macOS: brew install aarch64-elf-gdb),\n\
         \x20                named with GDB=, e.g. GDB=aarch64-elf-gdb cargo xtask gdb"
    )
}

/// For `cargo xtask test`, whose boot-order checks stop the kernel under gdb:
/// installs gdb-multiarch where that is harmless (root with apt-get, through
/// `.ci/provision-qemu.sh`), else says how; those checks fail with the same
/// words if it is still missing.
pub fn ensure_for_tests() -> Result<()> {
    let program = gdb_program();
    if cmd::find_program(&program).is_some() {
        return Ok(());
    }
    if program == DEFAULT_GDB && crate::qemu::can_provision() {
        Cmd::new("bash").arg(".ci/provision-qemu.sh").run()?;
        if cmd::find_program(&program).is_some() {
            return Ok(());
        }
    }
    eprintln!("{}", install_help());
    eprintln!("warning: without {program}, the boot-order tests (no lock before the MMU is on) will fail");
    Ok(())
}

pub fn run(board: Board) -> Result<ExitCode> {
    let program = gdb_program();
    if cmd::find_program(&program).is_none() {
        eprintln!("{}", install_help());
        bail!("{program} not found");
    }
    let elf = Images::for_board(board).elf;
    if !elf.is_file() {
        bail!(
            "{} does not exist yet: start `cargo xtask qemu --board {board} --gdb` first (it builds it)",
            elf.display()
        );
    }
    let gdb = command(&elf);
    #[cfg(unix)]
    {
        // Replace xtask with gdb, so Ctrl-C and the terminal belong to gdb alone.
        Err(gdb.exec())
    }
    #[cfg(not(unix))]
    {
        let status = gdb.status()?;
        Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_line_is_ready_to_paste() {
        if std::env::var_os("GDB").is_some() {
            return; // the line names the override instead
        }
        let line = command(Path::new("target/images/virt/kernel.elf")).display();
        assert_eq!(line, "gdb-multiarch -q target/images/virt/kernel.elf -ex 'target remote :1234'");
    }
}
