//! The x86_64 UEFI port, as xtask drives it: building the UEFI kernel with its
//! x86_64 programs packed in, the EFI system partition (ESP) folder it boots from,
//! finding `qemu-system-x86_64` and the OVMF firmware, the QEMU command line, and
//! the exit-status convention of QEMU's `isa-debug-exit` device.
//!
//! The ESP is a plain folder that QEMU presents to the firmware as a FAT disk
//! (`-drive format=raw,file=fat:rw:<folder>`):
//!
//! ```text
//! <esp>/EFI/BOOT/BOOTX64.EFI   the kernel (the removable-media boot path every UEFI firmware tries)
//! <esp>/bootargs.txt           the boot arguments, the same words as the aarch64 kernel's -append
//! ```
//!
//! The same folder, copied to a FAT32 USB stick, boots a real PC (docs/x86_64.md).

use std::{
    fs,
    path::{Path, PathBuf},
    process::ExitStatus,
};

use anyhow::{bail, Context, Result};

use crate::{
    build::{images_dir, target_dir},
    cmd::{self, Cmd},
    qemu::{self, Qemu},
    user,
};

/// The kernel's target: a PE32+ UEFI application.
pub const UEFI_TARGET: &str = "x86_64-unknown-uefi";
/// The kernel's package (the one `kernel` crate, built for the UEFI target).
pub const KERNEL_PACKAGE: &str = "kernel";
pub const QEMU_BINARY: &str = "qemu-system-x86_64";
/// Where distributions put an OVMF build that QEMU can take with `-bios`, in the
/// order tried (`OVMF=/path` overrides). Debian's 4 MiB variant (`OVMF_CODE_4M.fd`)
/// only works as a pflash drive, not with `-bios`, so it is not listed.
pub const OVMF_CANDIDATES: &[&str] = &[
    "/usr/share/OVMF/OVMF_CODE.fd",
    "/usr/share/ovmf/OVMF.fd",
    "/usr/share/qemu/OVMF.fd",
    "/usr/share/edk2/ovmf/OVMF_CODE.fd",
    "/usr/share/edk2/x64/OVMF_CODE.fd",
];
/// The I/O port of QEMU's `isa-debug-exit` device (`iobase=0xf4`).
pub const EXIT_PORT: u16 = 0xf4;
/// The kernel writes `EXIT_BIAS + status` to [`EXIT_PORT`]; QEMU then exits with
/// `(value << 1) | 1`. The bias keeps every kernel status apart from QEMU's own
/// failures (status 1), which `(0 << 1) | 1` would otherwise look like.
pub const EXIT_BIAS: i32 = 0x10;
/// Guest RAM: QEMU's default of 128 MiB leaves the kernel about 120 MiB after
/// the firmware; a busy run (many threads, 10,000 probes) wants more.
pub const MEMORY: &str = "512M";
/// The file in the ESP's root that holds the boot arguments.
pub const BOOTARGS_FILE: &str = "bootargs.txt";
/// The removable-media boot path of an x86_64 UEFI firmware.
pub const BOOT_PATH: &str = "EFI/BOOT/BOOTX64.EFI";

/// The kernel status the QEMU exit status stands for, if the kernel wrote one:
/// `33 + 2 * status` (see [`EXIT_BIAS`]).
pub fn kernel_status(qemu_status: i32) -> Option<i32> {
    let written = (qemu_status - 1) / 2;
    (qemu_status % 2 == 1 && written >= EXIT_BIAS).then_some(written - EXIT_BIAS)
}

/// Builds the x86_64 user programs, then the UEFI kernel that packs them.
/// Returns the kernel (`target/images/x86_64/kernel.efi`).
pub fn build(debug: bool) -> Result<PathBuf> {
    let programs = user::build_x86_64_programs()?;
    let profile = if debug { "debug" } else { "release" };
    let mut cargo = Cmd::new("cargo").args(["build", "--target", UEFI_TARGET, "-p", KERNEL_PACKAGE]);
    if !debug {
        cargo = cargo.arg("--release");
    }
    let programs = programs.to_str().context("the programs folder's path is not UTF-8")?;
    cargo.env("BRK_USER_PROGRAMS", programs).run()?;
    let built = target_dir().join(UEFI_TARGET).join(profile).join(format!("{KERNEL_PACKAGE}.efi"));
    let dir = images_dir().join("x86_64");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let efi = dir.join("kernel.efi");
    fs::copy(&built, &efi).with_context(|| format!("copying {} to {}", built.display(), efi.display()))?;
    Ok(efi)
}

/// Writes an ESP folder at `esp`: the kernel at the removable-media boot path and
/// the boot arguments (an empty file when there are none). Anything else already
/// in `esp` stays.
pub fn write_esp(esp: &Path, efi: &Path, bootargs: &str) -> Result<()> {
    let boot = esp.join(BOOT_PATH);
    let boot_dir = boot.parent().expect("the boot path has a folder");
    fs::create_dir_all(boot_dir).with_context(|| format!("creating {}", boot_dir.display()))?;
    fs::copy(efi, &boot).with_context(|| format!("copying {} to {}", efi.display(), boot.display()))?;
    let args = esp.join(BOOTARGS_FILE);
    fs::write(&args, format!("{bootargs}\n")).with_context(|| format!("writing {}", args.display()))?;
    Ok(())
}

/// The QEMU arguments that boot the ESP folder `esp` under `ovmf`.
pub fn qemu_args(ovmf: &Path, esp: &Path, gdb: bool, smp: u32) -> Result<Vec<String>> {
    let ovmf = ovmf.to_str().context("the OVMF path is not UTF-8")?;
    let esp = esp.to_str().context("the ESP path is not UTF-8")?;
    let mut args: Vec<String> =
        ["-nographic", "-monitor", "none", "-serial", "stdio", "-net", "none", "-m", MEMORY, "-bios", ovmf]
            .iter()
            .map(|w| w.to_string())
            .collect();
    // vvfat: the folder as a FAT disk, rebuilt by QEMU at every start.
    args.extend(["-drive".to_string(), format!("format=raw,file=fat:rw:{esp}")]);
    args.extend(["-device".to_string(), format!("isa-debug-exit,iobase={EXIT_PORT:#x},iosize=0x04")]);
    if smp > 1 {
        args.extend(["-smp".to_string(), smp.to_string()]);
    }
    if gdb {
        args.extend(["-s".to_string(), "-S".to_string()]);
    }
    Ok(args)
}

/// Finds `qemu-system-x86_64` (`QEMU_X86_64=/path` overrides) and OVMF (`OVMF=/path`),
/// installing both when that is possible and harmless (root with apt-get), else
/// saying how.
pub fn ensure() -> Result<(Qemu, PathBuf)> {
    let overridden = std::env::var("QEMU_X86_64").ok().filter(|q| !q.is_empty());
    let wanted = overridden.clone().unwrap_or_else(|| QEMU_BINARY.to_string());
    let mut found = cmd::find_program(&wanted);
    let ovmf_given = std::env::var_os("OVMF").is_some_and(|p| !p.is_empty());
    if (found.is_none() || find_ovmf().is_none()) && overridden.is_none() && !ovmf_given && qemu::can_provision() {
        Cmd::new("bash").arg(".ci/provision-qemu.sh").run()?;
        found = cmd::find_program(&wanted);
    }
    let Some(path) = found else {
        eprintln!("{}", install_help());
        bail!("{wanted} not found");
    };
    let Some(ovmf) = find_ovmf() else {
        if let Some(given) = std::env::var_os("OVMF").filter(|p| !p.is_empty()) {
            bail!("OVMF={} is not a file (unset OVMF to look in the usual places)", PathBuf::from(given).display());
        }
        eprintln!("{}", install_help());
        bail!("no OVMF firmware found (looked in {}; OVMF=/path overrides)", OVMF_CANDIDATES.join(", "));
    };
    let program = overridden.unwrap_or_else(|| path.display().to_string());
    let output = Cmd::new(program.as_str()).arg("--version").output()?;
    Ok((Qemu { program, version: qemu::parse_version(&output) }, ovmf))
}

fn find_ovmf() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("OVMF").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    OVMF_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// What to tell someone without QEMU for x86_64 or OVMF.
pub fn install_help() -> String {
    format!(
        "The x86_64 port needs {QEMU_BINARY} and the OVMF UEFI firmware:\n\
         \x20 Debian/Ubuntu: sudo apt-get install qemu-system-x86 ovmf\n\
         \x20                (on Debian 12 with QEMU from bookworm-backports, install both QEMU packages from\n\
         \x20                 there: sudo apt-get install -t bookworm-backports qemu-system-x86 ovmf;\n\
         \x20                 as root, bash .ci/provision-qemu.sh does it)\n\
         \x20 Fedora:        sudo dnf install qemu-system-x86 edk2-ovmf\n\
         \x20 Arch:          sudo pacman -S qemu-system-x86 edk2-ovmf\n\
         or point QEMU_X86_64=/path/to/{QEMU_BINARY} and OVMF=/path/to/OVMF_CODE.fd at ones you have."
    )
}

/// A fresh ESP folder under target/ for one `cargo xtask qemu --arch x86_64` run.
pub fn scratch_esp(name: &str) -> Result<PathBuf> {
    let esp = images_dir().join("x86_64").join(name);
    if esp.exists() {
        fs::remove_dir_all(&esp).with_context(|| format!("clearing {}", esp.display()))?;
    }
    fs::create_dir_all(&esp).with_context(|| format!("creating {}", esp.display()))?;
    Ok(esp)
}

/// What a finished x86_64 QEMU run means, as our exit status: the kernel's own
/// status, or a failure with the reason printed.
pub fn exit_code_of(status: ExitStatus) -> std::process::ExitCode {
    match status.code() {
        Some(code) => match kernel_status(code) {
            Some(kernel) => std::process::ExitCode::from(kernel as u8),
            None => {
                eprintln!("QEMU exited with status {code} without the kernel writing its exit port");
                std::process::ExitCode::FAILURE
            }
        },
        None => {
            eprintln!("QEMU ended without an exit status ({status})");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_exit_statuses_map_back_to_kernel_statuses() {
        assert_eq!(kernel_status(33), Some(0));
        assert_eq!(kernel_status(35), Some(1));
        assert_eq!(kernel_status(41), Some(4));
        // QEMU's own failure, a kill, and an odd status below the bias are not the kernel's.
        assert_eq!(kernel_status(1), None);
        assert_eq!(kernel_status(0), None);
        assert_eq!(kernel_status(31), None);
        assert_eq!(kernel_status(34), None);
    }

    #[test]
    fn the_esp_holds_the_kernel_and_the_boot_arguments() {
        let dir = std::env::temp_dir().join(format!("xtask-esp-test-{}", std::process::id()));
        let efi = dir.join("k.efi");
        fs::create_dir_all(&dir).unwrap();
        fs::write(&efi, b"MZ").unwrap();
        let esp = dir.join("esp");
        write_esp(&esp, &efi, "run=hello trace").unwrap();
        assert_eq!(fs::read(esp.join(BOOT_PATH)).unwrap(), b"MZ");
        assert_eq!(fs::read_to_string(esp.join(BOOTARGS_FILE)).unwrap(), "run=hello trace\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn qemu_args_boot_the_folder_with_the_exit_device() {
        let args = qemu_args(Path::new("/ovmf.fd"), Path::new("/tmp/esp"), false, 1).unwrap().join(" ");
        assert_eq!(
            args,
            "-nographic -monitor none -serial stdio -net none -m 512M -bios /ovmf.fd \
             -drive format=raw,file=fat:rw:/tmp/esp -device isa-debug-exit,iobase=0xf4,iosize=0x04"
        );
    }
}
