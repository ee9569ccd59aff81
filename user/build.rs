//! Build script shared by every user program (`build = "../build.rs"` in each
//! program's Cargo.toml): links the program with `linker/user.ld`.
//!
//! `cargo:rustc-link-arg` only reaches the package that prints it, so the runtime
//! crate cannot pass the script on behalf of the programs; each program runs this
//! file instead. The script is found by walking up from the program's folder to
//! the first ancestor that has `linker/user.ld`, so a program copied anywhere
//! inside the repository links without edits.

use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let script = find_linker_script(&manifest_dir).unwrap_or_else(|| {
        panic!(
            "no linker/user.ld in {} or any folder above it",
            manifest_dir.display()
        )
    });
    println!("cargo:rustc-link-arg=-T{}", script.display());
    // Pad segments in the file to 4 KiB pages (lld's AArch64 default is 64 KiB).
    println!("cargo:rustc-link-arg=-zmax-page-size=4096");
    println!("cargo:rerun-if-changed={}", script.display());
}

fn find_linker_script(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join("linker").join("user.ld"))
        .find(|script| script.is_file())
}
