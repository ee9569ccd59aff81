//! `cargo xtask build`: the kernel ELF for a board, flattened into the raw image
//! the board's loader takes, with a copy of the ELF beside it for gdb.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use crate::{cmd::Cmd, image};

/// The kernel's only target: xtask passes it explicitly, `.cargo/config.toml` does not
/// set `build.target`. Soft-float, so the kernel never touches FP/SIMD registers and
/// EL0's FP/SIMD state survives every trap without being saved.
pub const KERNEL_TARGET: &str = "aarch64-unknown-none-softfloat";

/// The machines the kernel is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Board {
    /// QEMU's `virt` machine (RAM at 0x4000_0000, image at 0x4008_0000)
    Virt,
    /// Raspberry Pi 4 (image at 0x8_0000), or QEMU's `raspi4b` machine
    Rpi4,
}

impl Board {
    pub fn name(self) -> &'static str {
        match self {
            Board::Virt => "virt",
            Board::Rpi4 => "rpi4",
        }
    }

    /// The kernel's cargo feature selection for this board (`board-virt` is its default).
    pub fn cargo_features(self) -> &'static [&'static str] {
        match self {
            Board::Virt => &[],
            Board::Rpi4 => &["--no-default-features", "--features", "board-rpi4"],
        }
    }

    /// The environment variable through which the QEMU tests find this board's image.
    pub fn image_env_var(self) -> &'static str {
        match self {
            Board::Virt => "BRK_KERNEL_IMAGE_VIRT",
            Board::Rpi4 => "BRK_KERNEL_IMAGE_RPI4",
        }
    }

    /// The oldest QEMU major version that has this board's machine.
    pub fn min_qemu_major(self) -> u32 {
        match self {
            Board::Virt => 0,
            // QEMU 9.0 added `raspi4b`.
            Board::Rpi4 => 9,
        }
    }
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where cargo puts build output (`CARGO_TARGET_DIR` if set, else `target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target"))
}

/// Where the images (and the packed programs) go: `BRK_IMAGES_DIR` if set, else
/// `target/images`. A test that packs an extra program uses its own folder, so the
/// images other tests boot stay as they are.
pub fn images_dir() -> PathBuf {
    std::env::var_os("BRK_IMAGES_DIR").map(PathBuf::from).unwrap_or_else(|| target_dir().join("images"))
}

/// The files `build` produces for a board.
#[derive(Debug, Clone)]
pub struct Images {
    /// The raw arm64 Image to boot.
    pub image: PathBuf,
    /// The ELF it was made from, with symbols, for gdb.
    pub elf: PathBuf,
}

impl Images {
    pub fn for_board(board: Board) -> Self {
        let dir = images_dir().join(board.name());
        Images { image: dir.join("kernel.img"), elf: dir.join("kernel.elf") }
    }
}

/// Builds the user programs (plus `outside_programs`, ELFs built elsewhere) and the
/// kernel for `board` with them packed in, and writes its image and ELF under
/// `target/images/<board>/`.
pub fn build(board: Board, debug: bool, outside_programs: &[PathBuf]) -> Result<Images> {
    let profile = if debug { Profile::Dev } else { Profile::Release };
    build_with(board, profile, outside_programs, &[], Images::for_board(board))
}

/// The release kernel with one more cargo feature of the kernel crate (an
/// exercise's deliberate breakage, docs/exercises.md), written to
/// `target/images/<board>-<feature>/` so the normal image stays as it is.
pub fn build_with_kernel_feature(board: Board, feature: &str) -> Result<Images> {
    let dir = images_dir().join(format!("{}-{feature}", board.name()));
    let images = Images { image: dir.join("kernel.img"), elf: dir.join("kernel.elf") };
    build_with(board, Profile::Release, &[], &["--features", feature], images)
}

/// The kernel's checked build: optimised as `--release`, with debug assertions
/// and overflow checks on (`[profile.checked]` in Cargo.toml), written to
/// `target/images/<board>-checked/` so the release image stays as it is.
pub fn build_checked(board: Board) -> Result<Images> {
    let dir = images_dir().join(format!("{}-checked", board.name()));
    build_with(board, Profile::Checked, &[], &[], Images { image: dir.join("kernel.img"), elf: dir.join("kernel.elf") })
}

/// The cargo profiles the kernel is built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Profile {
    Release,
    Dev,
    Checked,
}

impl Profile {
    fn cargo_args(self) -> &'static [&'static str] {
        match self {
            Profile::Release => &["--release"],
            Profile::Dev => &[],
            Profile::Checked => &["--profile", "checked"],
        }
    }

    /// The folder under `target/<triple>/` cargo writes the profile's output to.
    fn dir(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Dev => "debug",
            Profile::Checked => "checked",
        }
    }
}

fn build_with(
    board: Board,
    profile: Profile,
    outside_programs: &[PathBuf],
    extra_cargo_args: &[&str],
    images: Images,
) -> Result<Images> {
    let programs = crate::user::build_programs(outside_programs)?;
    Cmd::new("cargo")
        .args(["build", "-p", "kernel", "--target", KERNEL_TARGET])
        .env("BRK_USER_PROGRAMS", programs.display().to_string())
        .args(profile.cargo_args().iter().copied())
        .args(board.cargo_features().iter().copied())
        .args(extra_cargo_args.iter().copied())
        .run()?;

    let built = target_dir().join(KERNEL_TARGET).join(profile.dir()).join("kernel");
    let dir = images.image.parent().expect("images live in a directory");
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let elf = fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    let flat = image::flatten_elf(&elf).with_context(|| format!("flattening {}", built.display()))?;
    write(&images.elf, &elf)?;
    write(&images.image, &flat.bytes)?;
    println!(
        "image: {} ({} bytes, loads at {:#x}; ELF for gdb: {})",
        images.image.display(),
        flat.bytes.len(),
        flat.load_address,
        images.elf.display()
    );
    if !flat.entry_is_first_byte() {
        println!(
            "warning: the ELF entry {:#x} is not the image's first byte {:#x}; loaders of a raw Image start at its first byte",
            flat.entry, flat.load_vaddr
        );
    }
    Ok(images)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Builds the bare-metal package `package` for [`KERNEL_TARGET`] (release unless
/// `debug`) and returns each of its binaries `bins`, as (ELF, flattened image).
/// For the small images beside the kernel: the chain-loader, the armstub.
pub fn build_flat_binaries(package: &str, bins: &[&str], debug: bool) -> Result<Vec<(Vec<u8>, image::FlatImage)>> {
    let mut cargo = Cmd::new("cargo").args(["build", "-p", package, "--target", KERNEL_TARGET]);
    if !debug {
        cargo = cargo.arg("--release");
    }
    cargo.run()?;
    let profile = if debug { "debug" } else { "release" };
    bins.iter()
        .map(|bin| {
            let path = target_dir().join(KERNEL_TARGET).join(profile).join(bin);
            let elf = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let flat = image::flatten_elf(&elf).with_context(|| format!("flattening {}", path.display()))?;
            Ok((elf, flat))
        })
        .collect()
}
