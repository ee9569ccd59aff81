//! `cargo xtask rpi4`: the Raspberry Pi 4 SD card folder (`kernel8.img` and
//! `config.txt`), copying it to a mounted boot partition (`--sd`), and fetching the
//! Pi 4 device tree from Debian's arm64 kernel package for the raspi4b tests
//! (`--fetch-dtb`). docs/rpi4.md is the walk-through.

use std::{
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Context, Result};

use crate::{
    build::{self, Board},
    cmd::{self, Cmd},
};

#[derive(clap::Args)]
pub struct Rpi4Args {
    /// Also copy kernel8.img and config.txt to this mounted FAT boot partition (the
    /// folder that holds start4.elf); nothing else there is changed
    #[arg(long, value_name = "PATH")]
    sd: Option<PathBuf>,
    /// Write the folder here instead of target/rpi4-sd
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Build with cargo's dev profile instead of --release
    #[arg(long)]
    debug: bool,
    /// Only fetch (and cache) bcm2711-rpi-4-b.dtb from Debian's arm64 kernel package, for
    /// `cargo xtask qemu --board rpi4 --dtb ...`, and print its path
    #[arg(long)]
    fetch_dtb: bool,
    /// Put the UART chain-loader on the card as kernel8.img instead of the kernel; then
    /// each new kernel is sent with `cargo xtask chainboot --serial DEV`
    #[arg(long)]
    chainloader: bool,
}

/// The files the firmware loads from the boot partition that come from us.
pub const OUR_FILES: [&str; 2] = ["kernel8.img", "config.txt"];

/// The first line of our `config.txt`: how `--sd` recognises a file it wrote itself.
const CONFIG_MARKER: &str = "# brk-path kernel: written by `cargo xtask rpi4`";

/// The firmware's settings for this kernel. Every line is there for a reason.
pub fn config_txt() -> String {
    format!(
        "{CONFIG_MARKER}
# (docs/rpi4.md). The Pi 4 boot ROM and EEPROM bootloader read this file.

# Start the cores in AArch64 and load kernel8.img.
arm_64bit=1
kernel=kernel8.img
# Load it at 0x80000, where it is linked (newer firmware otherwise picks 0x200000).
kernel_address=0x80000

# The UART reference clock the kernel computes its 115200 baud divisor from.
init_uart_clock=48000000
# Keep the core clock fixed, so the firmware's own UART output is readable too.
enable_uart=1
# Uncomment to see the firmware's boot log on the same pins (GPIO 14/15, 115200):
# the first thing to try when the kernel prints nothing.
#uart_2ndstage=1
"
    )
}

/// Firmware files a Pi 4 boot partition needs besides ours, each with what it is.
pub const FIRMWARE_FILES: [(&str, &str); 3] = [
    ("start4.elf", "the GPU firmware that reads config.txt and starts the ARM cores"),
    ("fixup4.dat", "the memory layout table that goes with start4.elf"),
    ("bcm2711-rpi-4-b.dtb", "the Pi 4 Model B device tree the firmware passes in x0 (Pi 400: bcm2711-rpi-400.dtb, CM4: bcm2711-rpi-cm4.dtb)"),
];

/// Where to get the firmware files.
pub const FIRMWARE_SOURCE: &str = "the `boot/` folder of the Raspberry Pi firmware repository, \
https://github.com/raspberrypi/firmware/tree/master/boot, or the boot partition of a Raspberry Pi OS \
image (copy start4.elf, fixup4.dat and bcm2711-rpi-4-b.dtb; a Pi 4 needs no bootcode.bin)";

pub const DEFAULT_FOLDER: &str = "rpi4-sd";

pub fn run(args: Rpi4Args) -> Result<ExitCode> {
    if args.fetch_dtb {
        return match fetch_dtb() {
            Ok(path) => {
                println!("device tree: {}", path.display());
                println!("boot it with: cargo xtask qemu --board rpi4 --dtb {}", path.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(reason) => bail!("{reason}"),
        };
    }
    // Refuse a wrong --sd before spending time on a build.
    if let Some(sd) = &args.sd {
        check_boot_partition(sd)?;
    }
    let image = if args.chainloader {
        crate::chainboot::build_loader(args.debug)?
    } else {
        build::build(Board::Rpi4, args.debug, &[])?.image
    };
    let folder = args.out.unwrap_or_else(|| build::target_dir().join(DEFAULT_FOLDER));
    write_folder(&folder, &image)?;
    if args.chainloader {
        println!(
            "kernel8.img is the chain-loader: after booting it, send kernels with `cargo xtask chainboot --serial DEV`"
        );
    }
    println!("SD card folder: {}", folder.display());
    for name in OUR_FILES {
        println!("    {}", folder.join(name).display());
    }
    let Some(sd) = args.sd else {
        println!(
            "\nCopy both files to the FAT boot partition of a Pi 4 SD card, next to the firmware files\n\
             (or run `cargo xtask rpi4 --sd /path/to/mounted/boot/partition`). The partition must also hold:"
        );
        for (name, what) in FIRMWARE_FILES {
            println!("    {name:<20} {what}");
        }
        println!("from {FIRMWARE_SOURCE}.");
        println!(
            "\nThen connect a 3.3 V USB-serial adapter (its RX to GPIO 14 = header pin 8, its TX to GPIO 15 = pin 10,\n\
             GND to pin 6; not its power pin), open it at 115200 8N1, and power the Pi. docs/rpi4.md has the rest."
        );
        return Ok(ExitCode::SUCCESS);
    };
    copy_to_card(&folder, &sd)?;
    let missing = missing_firmware(&sd);
    if missing.is_empty() {
        println!(
            "{}: ready. Unmount it (`sync; umount {}`), put the card in the Pi and power it.",
            sd.display(),
            sd.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("error: {} lacks firmware files the Pi 4 cannot boot without:", sd.display());
    for name in &missing {
        let what = FIRMWARE_FILES.iter().find(|(n, _)| n == name).map(|(_, w)| *w).unwrap_or("");
        eprintln!("    {name:<20} {what}");
    }
    eprintln!("Copy them there from {FIRMWARE_SOURCE}.");
    Ok(ExitCode::FAILURE)
}

/// `folder/kernel8.img` (a copy of the rpi4 image) and `folder/config.txt`; nothing else.
pub fn write_folder(folder: &Path, image: &Path) -> Result<()> {
    fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    // The folder holds exactly what we put on the card: drop anything else left over.
    for entry in fs::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name();
        if !OUR_FILES.iter().any(|f| name == *f) && entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
        }
    }
    fs::copy(image, folder.join("kernel8.img"))
        .with_context(|| format!("copying {} to {}", image.display(), folder.display()))?;
    fs::write(folder.join("config.txt"), config_txt())?;
    Ok(())
}

/// Whether `path` is a Pi boot partition: the root of a mounted FAT file system, or
/// a folder that already holds the Pi firmware (start4.elf, start.elf or bootcode.bin).
pub fn check_boot_partition(path: &Path) -> Result<()> {
    if !path.is_dir() {
        bail!(
            "{} is not a folder: give --sd the folder where the SD card's FAT boot partition is mounted \
             (e.g. /media/$USER/bootfs or /run/media/$USER/boot)",
            path.display()
        );
    }
    let has_firmware = ["start4.elf", "start.elf", "bootcode.bin"].iter().any(|f| path.join(f).is_file());
    if has_firmware {
        return Ok(());
    }
    let canonical = fs::canonicalize(path)?;
    match mount_of(&canonical) {
        Some((mount_point, fs_type)) if mount_point == canonical && is_fat(&fs_type) => Ok(()),
        Some((mount_point, fs_type)) if is_fat(&fs_type) => bail!(
            "{} is a folder inside the FAT file system mounted at {}: the firmware reads kernel8.img and \
             config.txt only from the partition's top folder; give --sd {}",
            path.display(),
            mount_point.display(),
            mount_point.display()
        ),
        Some((mount_point, fs_type)) => bail!(
            "{} is not a Raspberry Pi boot partition: it is on a {fs_type} file system (mounted at {}) and holds \
             no start4.elf. The boot partition is the SD card's first partition, FAT32, usually mounted at \
             /media/$USER/bootfs; nothing was copied",
            path.display(),
            mount_point.display()
        ),
        None => bail!(
            "{} is not a Raspberry Pi boot partition: it holds no start4.elf and is not the top of a mounted \
             FAT file system; nothing was copied",
            path.display()
        ),
    }
}

fn is_fat(fs_type: &str) -> bool {
    matches!(fs_type, "vfat" | "msdos" | "fat" | "exfat" | "msdosfs")
}

/// The mount point holding `path` and its file-system type, from /proc/self/mounts.
fn mount_of(path: &Path) -> Option<(PathBuf, String)> {
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            // The kernel writes spaces and tabs in mount points as octal escapes.
            let mount_point =
                PathBuf::from(fields.next()?.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\"));
            let fs_type = fields.next()?.to_string();
            path.starts_with(&mount_point).then_some((mount_point, fs_type))
        })
        .max_by_key(|(mount_point, _)| mount_point.as_os_str().len())
}

/// Copies our two files. A `config.txt` we did not write is kept as
/// `config.txt.before-brk-path` first (only if no such copy exists yet).
pub fn copy_to_card(folder: &Path, card: &Path) -> Result<()> {
    let config = card.join("config.txt");
    if config.is_file() {
        let old = fs::read_to_string(&config).unwrap_or_default();
        let backup = card.join("config.txt.before-brk-path");
        if !old.starts_with(CONFIG_MARKER) && !backup.exists() {
            fs::copy(&config, &backup)?;
            println!("kept the card's own config.txt as {}", backup.display());
        }
    }
    for name in OUR_FILES {
        let to = card.join(name);
        fs::copy(folder.join(name), &to).with_context(|| format!("writing {}", to.display()))?;
        println!("wrote {}", to.display());
    }
    Ok(())
}

/// The firmware files `card` lacks.
pub fn missing_firmware(card: &Path) -> Vec<&'static str> {
    FIRMWARE_FILES.iter().map(|(name, _)| *name).filter(|name| !card.join(name).is_file()).collect()
}

/// The file name of the Pi 4 Model B device tree in Debian's kernel package.
pub const DTB_NAME: &str = "bcm2711-rpi-4-b.dtb";

/// Where the fetched device tree is cached.
pub fn dtb_cache() -> PathBuf {
    build::target_dir().join("rpi4-dtb").join(DTB_NAME)
}

/// How to get the device tree by hand, for the reason a fetch could not run.
fn dtb_help() -> String {
    format!(
        "get {DTB_NAME} from Debian's arm64 kernel package (`apt-get download linux-image-<version>-arm64:arm64`, \
         then `dpkg -x` it; the file is usr/lib/linux-image-<version>-arm64/broadcom/{DTB_NAME}) or from the \
         Raspberry Pi firmware's boot/ folder, and put it at {} or name it with BRK_RPI4_DTB=/path/to/{DTB_NAME}",
        dtb_cache().display()
    )
}

/// The Pi 4 device tree: `BRK_RPI4_DTB`, else the cache, else fetched into the
/// cache from Debian's arm64 kernel package with apt-get (root only: it is run with
/// its own lists under target/, so the system's apt set-up is not touched). The
/// error is the reason it is not there and how to get it.
pub fn fetch_dtb() -> std::result::Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("BRK_RPI4_DTB").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() { Ok(path) } else { Err(format!("BRK_RPI4_DTB={} is not a file", path.display())) };
    }
    let cached = dtb_cache();
    if cached.is_file() {
        return Ok(cached);
    }
    for tool in ["apt-get", "apt-cache", "dpkg-deb", "tar"] {
        if cmd::find_program(tool).is_none() {
            return Err(format!("no device tree cached and no {tool} to fetch one: {}", dtb_help()));
        }
    }
    if !running_as_root() {
        return Err(format!("no device tree cached, and fetching it with apt-get needs root: {}", dtb_help()));
    }
    let keyring = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
    if !keyring.is_file() {
        return Err(format!(
            "no device tree cached and no Debian archive keyring ({}) to fetch one: {}",
            keyring.display(),
            dtb_help()
        ));
    }
    fetch_with_apt(&cached, keyring).map_err(|e| format!("fetching the device tree failed ({e:#}): {}", dtb_help()))?;
    Ok(cached)
}

fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// The URI of the configured Debian source whose suites include `codename`:
/// first the deb822 files (`/etc/apt/sources.list.d/*.sources`), then the
/// one-line `/etc/apt/sources.list`.
fn debian_archive_uri(codename: &str) -> Option<String> {
    let mut deb822: Vec<_> = fs::read_dir("/etc/apt/sources.list.d")
        .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    deb822.retain(|path| path.extension().is_some_and(|ext| ext == "sources"));
    deb822.sort();
    for path in deb822 {
        if let Some(uri) = fs::read_to_string(&path).ok().and_then(|text| uri_from_deb822(&text, codename)) {
            return Some(uri);
        }
    }
    fs::read_to_string("/etc/apt/sources.list").ok().and_then(|text| uri_from_one_line(&text, codename))
}

/// In deb822 text, the `URIs:` of the first stanza whose `Suites:` has `codename`.
fn uri_from_deb822(text: &str, codename: &str) -> Option<String> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| stanza.lines().find_map(|l| l.strip_prefix(name).map(str::trim));
        let suites = field("Suites:")?;
        let uri = field("URIs:")?.split_whitespace().next()?;
        suites.split_whitespace().any(|s| s == codename).then(|| uri.to_string())
    })
}

/// In one-line format (`deb [options] URI SUITE COMPONENTS`), the URI of the
/// first `deb` line for suite `codename`.
fn uri_from_one_line(text: &str, codename: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"deb") {
            return None;
        }
        let uri_at = words.iter().position(|w| w.contains("://"))?;
        (words.get(uri_at + 1) == Some(&codename)).then(|| words[uri_at].to_string())
    })
}

fn fetch_with_apt(dtb: &Path, keyring: &Path) -> Result<()> {
    let cache_dir = dtb.parent().expect("the cache is a folder");
    let apt = std::path::absolute(cache_dir.join("apt"))?;
    for dir in ["state/lists/partial", "cache/archives/partial", "etc/sources.list.d", "etc/preferences.d", "download"]
    {
        fs::create_dir_all(apt.join(dir))?;
    }
    let codename = fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|release| {
            release.lines().find_map(|l| l.strip_prefix("VERSION_CODENAME=").map(|c| c.trim_matches('"').to_string()))
        })
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "bookworm".into());
    // The archive this machine already uses (a mirror or a snapshot stays in use),
    // read from its apt configuration rather than named here.
    let uri = debian_archive_uri(&codename).with_context(|| {
        format!("no Debian apt source for '{codename}' in /etc/apt to take the archive address from")
    })?;
    let sources = apt.join("etc/sources.list");
    fs::write(&sources, format!("deb [arch=arm64 signed-by={}] {uri} {codename} main\n", keyring.display()))?;
    let options: Vec<String> = [
        ("Dir::Etc::SourceList", sources.display().to_string()),
        ("Dir::Etc::SourceParts", apt.join("etc/sources.list.d").display().to_string()),
        ("Dir::Etc::PreferencesParts", apt.join("etc/preferences.d").display().to_string()),
        ("Dir::State", apt.join("state").display().to_string()),
        ("Dir::Cache", apt.join("cache").display().to_string()),
        ("APT::Architecture", "arm64".into()),
        ("APT::Architectures::", "arm64".into()),
        ("Acquire::Languages", "none".into()),
        // Offline, fail within a minute (and skip the device-tree tests) instead of hanging.
        ("Acquire::http::Timeout", "20".into()),
        ("Acquire::Retries", "1".into()),
        // The download folder is ours (root's): no point dropping to the `_apt` user.
        ("APT::Sandbox::User", "root".into()),
    ]
    .iter()
    .flat_map(|(key, value)| ["-o".to_string(), format!("{key}={value}")])
    .collect();
    Cmd::new("apt-get").args(options.iter().cloned()).args(["-q", "update"]).run()?;
    let depends =
        Cmd::new("apt-cache").args(options.iter().cloned()).args(["depends", "linux-image-arm64"]).output()?;
    let package = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-arm64"))
        .map(str::to_string)
        .context("apt-cache found no linux-image-*-arm64 behind linux-image-arm64")?;
    let download = apt.join("download");
    Cmd::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {} && apt-get {} -q download {package}",
            cmd::shell_quote(&download.display().to_string()),
            options.iter().map(|o| cmd::shell_quote(o)).collect::<Vec<_>>().join(" ")
        ))
        .run()?;
    let deb = fs::read_dir(&download)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download left no .deb")?;
    // Only the one file is wanted: stream the package's data out of `dpkg-deb` into
    // `tar` instead of unpacking all of its modules with `dpkg -x`.
    let partial = dtb.with_extension("dtb.partial");
    Cmd::new("sh")
        .arg("-c")
        .arg(format!(
            "dpkg-deb --fsys-tarfile {} | tar -xO --wildcards '*/broadcom/{DTB_NAME}' > {}",
            cmd::shell_quote(&deb.display().to_string()),
            cmd::shell_quote(&partial.display().to_string())
        ))
        .run()?;
    if fs::metadata(&partial)?.len() == 0 {
        bail!("{} has no {DTB_NAME}", deb.display());
    }
    fs::rename(&partial, dtb)?;
    fs::write(
        cache_dir.join("SOURCE"),
        format!(
            "{DTB_NAME} from Debian package {package} ({})\n",
            deb.file_name().unwrap_or_default().to_string_lossy()
        ),
    )?;
    // The package (about 60 MB) and the lists are not needed any more.
    let _ = fs::remove_dir_all(&apt);
    println!("device tree cached: {}", dtb.display());
    Ok(())
}

/// The armstub's file name: what the Pi firmware calls its own (`armstub8.bin`).
pub const ARMSTUB_FILE: &str = "armstub8.bin";

/// Builds the armstub the firmware-shaped raspi4b boots run at address 0
/// (`boot/armstub`, a test fixture) into `target/images/armstub/armstub8.bin`.
pub fn build_armstub() -> Result<PathBuf> {
    let (_, flat) = build::build_flat_binaries("armstub", &["armstub"], false)?.remove(0);
    if flat.load_address != 0 {
        bail!("the armstub is linked at {:#x}; the Pi 4 starts its cores at 0", flat.load_address);
    }
    let dir = build::images_dir().join("armstub");
    fs::create_dir_all(&dir)?;
    let out = dir.join(ARMSTUB_FILE);
    fs::write(&out, &flat.bytes).with_context(|| format!("writing {}", out.display()))?;
    println!("armstub: {} ({} bytes, linked at 0)", out.display(), flat.bytes.len());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_uri_comes_from_the_configured_source() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n";
        assert_eq!(uri_from_deb822(deb822, "bookworm").as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(uri_from_deb822(deb822, "trixie"), None);
        let one_line = "# comment\ndeb [signed-by=/k.gpg] http://mirror.example/debian bookworm main\n";
        assert_eq!(uri_from_one_line(one_line, "bookworm").as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(uri_from_one_line(one_line, "trixie"), None);
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-rpi4-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn config_txt_loads_kernel8_at_its_link_address_in_aarch64() {
        let config = config_txt();
        for line in ["arm_64bit=1", "kernel=kernel8.img", "kernel_address=0x80000", "init_uart_clock=48000000"] {
            assert!(config.lines().any(|l| l == line), "config.txt lacks {line}");
        }
    }

    #[test]
    fn the_folder_holds_exactly_our_two_files() {
        let dir = scratch("folder");
        let image = dir.join("kernel.img");
        fs::write(&image, b"image").unwrap();
        let folder = dir.join("sd");
        fs::create_dir_all(&folder).unwrap();
        fs::write(folder.join("stale.bin"), b"old").unwrap();
        write_folder(&folder, &image).unwrap();
        let mut names: Vec<_> =
            fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["config.txt", "kernel8.img"]);
        assert_eq!(fs::read(folder.join("kernel8.img")).unwrap(), b"image");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_plain_folder_is_refused_and_a_firmware_folder_accepted() {
        let dir = scratch("partition");
        let err = check_boot_partition(&dir).unwrap_err().to_string();
        assert!(err.contains("not a Raspberry Pi boot partition"), "{err}");
        assert!(check_boot_partition(&dir.join("absent")).unwrap_err().to_string().contains("not a folder"));
        fs::write(dir.join("start4.elf"), b"fw").unwrap();
        check_boot_partition(&dir).unwrap();
        assert_eq!(missing_firmware(&dir), ["fixup4.dat", DTB_NAME]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn copying_keeps_a_foreign_config_and_touches_nothing_else() {
        let dir = scratch("copy");
        let (folder, card) = (dir.join("sd"), dir.join("card"));
        fs::create_dir_all(&card).unwrap();
        let image = dir.join("kernel.img");
        fs::write(&image, b"image").unwrap();
        write_folder(&folder, &image).unwrap();
        fs::write(card.join("config.txt"), "dtparam=audio=on\n").unwrap();
        fs::write(card.join("start4.elf"), b"fw").unwrap();
        copy_to_card(&folder, &card).unwrap();
        assert_eq!(fs::read_to_string(card.join("config.txt.before-brk-path")).unwrap(), "dtparam=audio=on\n");
        assert_eq!(fs::read(card.join("start4.elf")).unwrap(), b"fw");
        assert_eq!(fs::read_to_string(card.join("config.txt")).unwrap(), config_txt());
        // A second copy leaves the saved original alone.
        copy_to_card(&folder, &card).unwrap();
        assert_eq!(fs::read_to_string(card.join("config.txt.before-brk-path")).unwrap(), "dtparam=audio=on\n");
        let _ = fs::remove_dir_all(&dir);
    }
}
