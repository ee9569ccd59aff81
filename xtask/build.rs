//! Passes the triple xtask is built for to its code as `XTASK_HOST`: the host of the
//! toolchain that builds it, which rustup appends to host-specific component names.

fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=XTASK_HOST={target}");
}
