//! Build script: links the loader with `linker/chainloader.ld` and its test payload
//! with `linker/chainload-payload.ld`.

use std::path::Path;

fn main() {
    let linker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../linker");
    let linker = linker.canonicalize().expect("the linker/ folder");
    for (bin, script) in [("chainloader", "chainloader.ld"), ("chainload-payload", "chainload-payload.ld")] {
        println!("cargo:rustc-link-arg-bin={bin}=-T{}", linker.join(script).display());
        println!("cargo:rerun-if-changed={}", linker.join(script).display());
    }
    println!("cargo:rerun-if-changed=src/entry.s");
}
