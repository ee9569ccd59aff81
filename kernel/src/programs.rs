//! The user programs packed into the kernel image.
//!
//! `cargo xtask` builds the EL0 programs and points the kernel build at them
//! with `BRK_USER_PROGRAMS=<folder of NAME.elf>`; `build.rs` turns the folder
//! into a table of `include_bytes!`. The ELFs keep their symbol tables, so
//! reports can name functions.

include!(concat!(env!("OUT_DIR"), "/user_programs.rs"));

/// The ELF image of program `name`.
pub fn find(name: &str) -> Option<&'static [u8]> {
    USER_PROGRAMS.iter().find(|(program, _)| *program == name).map(|(_, image)| *image)
}

/// Every packed program's name.
pub fn names() -> impl Iterator<Item = &'static str> {
    USER_PROGRAMS.iter().map(|(name, _)| *name)
}
