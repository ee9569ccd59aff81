//! A program built outside the workspace, exactly as `user/template/README.md`
//! tells a student to, runs with `cargo xtask qemu --run path/to/prog`.

use std::{path::PathBuf, process::Command};

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
    let ran = Command::new("cargo")
        .args(["xtask", "qemu", "--run"])
        .arg(format!("{}:student,args", elf.display()))
        .args(["--timeout", "60"])
        .env("BRK_IMAGES_DIR", &images)
        .current_dir(&root)
        .output()
        .expect("cargo xtask runs");
    let stdout = String::from_utf8_lossy(&ran.stdout);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    let _ = std::fs::remove_dir_all(&project);
    assert_eq!(ran.status.code(), Some(0), "cargo xtask qemu --run {} failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}", elf.display());
    assert!(stdout.contains("task: started pid 1 myprog student args"), "the program was not started:\n{stdout}");
    assert!(
        stdout.lines().any(|l| l.trim_end().starts_with("  pid 1 myprog student args: exited with status 0")),
        "the program did not exit with status 0:\n{stdout}"
    );
}
