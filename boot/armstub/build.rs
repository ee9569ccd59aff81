//! Build script: links the armstub at address 0 with `linker/armstub.ld`.

use std::path::Path;

fn main() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../linker/armstub.ld");
    let script = script.canonicalize().expect("linker/armstub.ld");
    println!("cargo:rustc-link-arg-bin=armstub=-T{}", script.display());
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=src/armstub.s");
}
