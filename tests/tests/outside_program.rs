//! A program built outside the workspace, exactly as `user/template/README.md`
//! tells a student to, runs with `cargo xtask qemu --run path/to/prog`; one the
//! kernel cannot start is reported, the others run, and the run fails with
//! status 5 (docs/kernel-contract.md).

use std::{path::PathBuf, process::Command};

/// One `cargo xtask qemu` at a time: each builds the kernel into the same
/// target file with its own programs packed, so two at once could boot each
/// other's kernel. (The tests of this file run on parallel threads.)
static XTASK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn xtask_lock() -> std::sync::MutexGuard<'static, ()> {
    XTASK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

#[test]
fn a_program_built_outside_the_workspace_runs_with_run_path() {
    let root = workspace();
    let project = std::env::temp_dir().join(format!("brk-outside-program-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(project.join("src")).unwrap();
    // The recipe from user/template/README.md, with real paths.
    std::fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"myprog\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[[bin]]\nname = \"myprog\"\ntest = false\nbench = false\n\n[dependencies]\nuser-rt = {{ path = \"{}\" }}\n",
            root.join("user/rt").display()
        ),
    )
    .unwrap();
    let script = root.join("linker/user.ld");
    std::fs::write(
        project.join("build.rs"),
        format!(
            "fn main() {{\n    println!(\"cargo:rustc-link-arg=-T{0}\");\n    println!(\"cargo:rustc-link-arg=-zmax-page-size=4096\");\n    println!(\"cargo:rerun-if-changed={0}\");\n}}\n",
            script.display()
        ),
    )
    .unwrap();
    std::fs::copy(root.join("user/template/src/main.rs"), project.join("src/main.rs")).unwrap();

    let built = Command::new("cargo")
        .args(["build", "--release", "--target", "aarch64-unknown-none"])
        .current_dir(&project)
        .output()
        .expect("cargo runs");
    assert!(built.status.success(), "building the outside program failed:\n{}", String::from_utf8_lossy(&built.stderr));
    let elf = project.join("target/aarch64-unknown-none/release/myprog");

    // Its own images folder, so the image the other tests boot is left alone.
    let images = root.join("target/images-outside-program-test");
    let _one_at_a_time = xtask_lock();
    let ran = Command::new("cargo")
        .args(["xtask", "qemu", "--run"])
        .arg(format!("{}:student,args", elf.display()))
        .args(["--timeout", "300"])
        .env("BRK_IMAGES_DIR", &images)
        .current_dir(&root)
        .output()
        .expect("cargo xtask runs");
    let stdout = String::from_utf8_lossy(&ran.stdout);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    let _ = std::fs::remove_dir_all(&project);
    assert_eq!(
        ran.status.code(),
        Some(0),
        "cargo xtask qemu --run {} failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        elf.display()
    );
    assert!(stdout.contains("task: started pid 1 myprog student args"), "the program was not started:\n{stdout}");
    assert!(
        stdout.lines().any(|l| l.trim_end().starts_with("  pid 1 myprog student args: exited with status 0")),
        "the program did not exit with status 0:\n{stdout}"
    );
}

/// A minimal AArch64 static executable: one PT_LOAD segment of `flags` at
/// `vaddr` covering the whole file, entry at its last four bytes (`ret`).
fn tiny_elf(vaddr: u64, flags: u32) -> Vec<u8> {
    const EHDR: u64 = 64;
    const PHDR: u64 = 56;
    let size = EHDR + PHDR + 4;
    let mut elf = Vec::new();
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"); // 64-bit, little-endian, version 1
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    elf.extend_from_slice(&1u32.to_le_bytes()); // e_version
    elf.extend_from_slice(&(vaddr + EHDR + PHDR).to_le_bytes()); // e_entry
    elf.extend_from_slice(&EHDR.to_le_bytes()); // e_phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    elf.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for half in [EHDR as u16, PHDR as u16, 1, 64, 0, 0] {
        // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
        elf.extend_from_slice(&half.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&flags.to_le_bytes());
    for word in [0, vaddr, vaddr, size, size, 0x1000] {
        // p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
        elf.extend_from_slice(&word.to_le_bytes());
    }
    elf.extend_from_slice(&0xd65f_03c0u32.to_le_bytes()); // ret
    assert_eq!(elf.len() as u64, size);
    elf
}

#[test]
fn programs_the_kernel_cannot_start_fail_the_run_after_the_others_ran() {
    const USER_BASE: u64 = 0x40_0000_0000;
    // The lowest of the 64 thread stack slots' guard page (brk_abi::layout:
    // STACKS_TOP - (STACK_SIZE + GUARD_SIZE) * 64): no program may reach it.
    const LOWEST_STACK_GUARD: u64 = 0x7f_0000_0000 - (64 * 1024 + 4096) * 64;
    const PF_X: u32 = 1;
    const PF_W: u32 = 2;
    const PF_R: u32 = 4;
    let root = workspace();
    let dir = std::env::temp_dir().join(format!("brk-bad-programs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bad = [
        (
            "wx",
            tiny_elf(USER_BASE, PF_R | PF_W | PF_X),
            "wx: segment at 0x4000000000 is writable and executable (refused: W^X)",
        ),
        ("low", tiny_elf(0x1000, PF_R | PF_X), "low: segment at 0x1000 is outside the user program range"),
        (
            "guard",
            tiny_elf(LOWEST_STACK_GUARD, PF_R | PF_X),
            "guard: segment at 0x7effbc0000 is outside the user program range",
        ),
        ("broken", b"\x7fELF\x02\x01".to_vec(), "broken: not an ELF file"),
    ];
    let mut command = Command::new("cargo");
    command.args(["xtask", "qemu", "--run", "hello"]);
    for (name, bytes, _) in &bad {
        let path = dir.join(format!("{name}.elf"));
        std::fs::write(&path, bytes).unwrap();
        command.arg("--run").arg(&path);
    }
    let _one_at_a_time = xtask_lock();
    let ran = command
        .args(["--run", "threads:2", "--timeout", "300"])
        .env("BRK_IMAGES_DIR", root.join("target/images-bad-program-test"))
        .current_dir(&root)
        .output()
        .expect("cargo xtask runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&ran.stdout);
    let context = format!("--- stdout ---\n{stdout}\n--- stderr ---\n{}", String::from_utf8_lossy(&ran.stderr));
    assert_eq!(ran.status.code(), Some(5), "a program that cannot start must end the run with status 5\n{context}");
    for (name, _, reason) in &bad {
        let line = format!("task: cannot start '{name}': {reason}");
        assert!(stdout.lines().any(|l| l.starts_with(&line)), "no line {line:?}\n{context}");
    }
    // The others started before and after the bad ones, and ran to the end.
    for program in ["hello", "threads 2"] {
        assert!(
            stdout.lines().any(|l| l.starts_with("  pid ") && l.contains(&format!(" {program}: exited with status 0"))),
            "{program} did not run to the end\n{context}"
        );
    }
    assert!(stdout.contains("tasks: 4 requested program(s) could not be started"), "{context}");
    assert!(stdout.contains("power off: status 5 (program not started)"), "{context}");
}
