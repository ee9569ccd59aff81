//! Build script shared by every user program (`build = "../build.rs"` in each
//! program's Cargo.toml): links the program with the linker script of the
//! architecture it is built for, `linker/user.ld` (aarch64) or
//! `linker/user-x86_64.ld` (x86_64).
//!
//! `cargo:rustc-link-arg` only reaches the package that prints it, so the runtime
//! crate cannot pass the script on behalf of the programs; each program runs this
//! file instead. The script is found by walking up from the program's folder to
//! the first ancestor that has it, so a program copied anywhere inside the
//! repository links without edits.

use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    // The target's architecture, not the host's (cargo sets it for build scripts).
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let script_name = match arch.as_str() {
        "aarch64" => "user.ld",
        "x86_64" => "user-x86_64.ld",
        other => panic!("user programs build for aarch64-unknown-none or x86_64-unknown-none, not target_arch {other}"),
    };
    let script = find_linker_script(&manifest_dir, script_name)
        .unwrap_or_else(|| panic!("no linker/{script_name} in {} or any folder above it", manifest_dir.display()));
    println!("cargo:rustc-link-arg=-T{}", script.display());
    // Pad segments in the file to 4 KiB pages (lld's AArch64 default is 64 KiB;
    // the kernel maps 4 KiB pages on both architectures).
    println!("cargo:rustc-link-arg=-zmax-page-size=4096");
    if arch == "x86_64" {
        // x86_64-unknown-none links a static PIE by default (`-pie`): relocations
        // the kernel's loader would have to apply and a dynamic section. The
        // programs are linked at a fixed address instead; `--no-pie` comes after
        // rustc's `-pie` and wins.
        println!("cargo:rustc-link-arg=-static");
        println!("cargo:rustc-link-arg=--no-pie");
    }
    println!("cargo:rerun-if-changed={}", script.display());
}

fn find_linker_script(start: &Path, name: &str) -> Option<PathBuf> {
    start.ancestors().map(|dir| dir.join("linker").join(name)).find(|script| script.is_file())
}
