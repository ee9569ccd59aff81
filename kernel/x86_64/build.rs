//! Build script: packs the user programs named by `BRK_USER_PROGRAMS` (a folder
//! of `NAME.elf`, x86_64 builds: `target/images/x86_64/programs`) into the
//! kernel as a table of `include_bytes!` (read by `src/programs.rs`, the
//! aarch64 kernel's file).

use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=BRK_USER_PROGRAMS");
    let mut programs: Vec<PathBuf> = match env::var_os("BRK_USER_PROGRAMS") {
        Some(folder) => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(&folder).display());
            fs::read_dir(&folder)
                .unwrap_or_else(|e| panic!("BRK_USER_PROGRAMS={}: {}", PathBuf::from(&folder).display(), e))
                .filter_map(|entry| Some(entry.ok()?.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "elf"))
                .collect()
        }
        None => Vec::new(),
    };
    programs.sort();
    let mut table = String::from(
        "/// (name, ELF image) of every packed program.\npub static USER_PROGRAMS: &[(&str, &[u8])] = &[\n",
    );
    for path in &programs {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_stem().expect("NAME.elf").to_string_lossy();
        let absolute = path.canonicalize().expect("program path");
        table += &format!("    ({:?}, include_bytes!({:?})),\n", name, absolute.display().to_string());
    }
    table += "];\n";
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("user_programs.rs");
    fs::write(out, table).expect("write user_programs.rs");
}
