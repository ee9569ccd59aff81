//! Build script: on aarch64, picks the board's linker script (the x86_64 kernel
//! is a UEFI application, laid out by the target's own PE linker); on both, packs
//! the user programs named by `BRK_USER_PROGRAMS` (a folder of `NAME.elf`) into
//! the kernel.

use std::{env, fs, path::Path};

fn main() {
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("aarch64") {
        link_with_the_boards_script();
    }
    pack_user_programs();
}

fn link_with_the_boards_script() {
    let linker_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../linker");
    let linker_dir = linker_dir.canonicalize().expect("linker/ folder next to kernel/");
    let script = if env::var_os("CARGO_FEATURE_BOARD_RPI4").is_some() { "kernel-rpi4.ld" } else { "kernel-virt.ld" };
    // `-L` so that `INCLUDE kernel-common.ld` is found.
    println!("cargo:rustc-link-arg=-L{}", linker_dir.display());
    println!("cargo:rustc-link-arg=-T{}", linker_dir.join(script).display());
    println!("cargo:rerun-if-changed={}", linker_dir.display());
}

fn pack_user_programs() {
    println!("cargo:rerun-if-env-changed=BRK_USER_PROGRAMS");
    let mut entries = Vec::new();
    if let Some(dir) = env::var_os("BRK_USER_PROGRAMS") {
        let dir = Path::new(&dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("BRK_USER_PROGRAMS={}: {}", dir.display(), e))
            .map(|entry| entry.expect("readable folder entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "elf"))
            .collect();
        files.sort();
        for path in files {
            println!("cargo:rerun-if-changed={}", path.display());
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let path = path.canonicalize().expect("program path");
            entries.push(format!("    ({:?}, include_bytes!({:?})),\n", name, path.display().to_string()));
        }
    }
    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("user_programs.rs");
    let table = format!(
        "/// (name, ELF image) of every packed program.\npub static USER_PROGRAMS: &[(&str, &[u8])] = &[\n{}];\n",
        entries.concat()
    );
    fs::write(out, table).expect("write user_programs.rs");
}
