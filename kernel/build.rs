//! Build script: picks the board's linker script and passes it to rust-lld.

fn main() {
    let linker_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../linker");
    let linker_dir = linker_dir.canonicalize().expect("linker/ folder next to kernel/");
    let script = if std::env::var_os("CARGO_FEATURE_BOARD_RPI4").is_some() {
        "kernel-rpi4.ld"
    } else {
        "kernel-virt.ld"
    };
    // `-L` so that `INCLUDE kernel-common.ld` is found.
    println!("cargo:rustc-link-arg=-L{}", linker_dir.display());
    println!("cargo:rustc-link-arg=-T{}", linker_dir.join(script).display());
    println!("cargo:rerun-if-changed={}", linker_dir.display());
    println!("cargo:rerun-if-changed=../boot/boot.s");
}
