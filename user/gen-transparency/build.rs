//! Generates the instruction blocks of `gen-transparency` for the target's
//! architecture (and links the program with its linker script, like
//! `user/build.rs`). This file holds what both generators share: the seeded
//! random numbers, the layout of a block's forward branch targets, the build
//! settings and the generated Rust tables; `build/aarch64.rs` (A64) and
//! `build/x86_64.rs` choose the instructions.
//!
//! `GEN_SEED` (default 1), `GEN_BLOCKS` (default 48) and `GEN_BLOCK_LEN`
//! (default 64) choose the blocks; the same values give the same program. Each
//! block is a straight run of instructions from every class the classifier
//! accepts, with forward branches only (so no block loops), ending in a branch
//! to the harness's common exit `gen_exit`.
//!
//! Output (in `OUT_DIR`): `gen.s`, the blocks for `global_asm!`, and `gen.rs`,
//! `GEN_SEED` and `TEXTS` (the assembly text of every probed instruction of
//! every block, in address order, for the program's messages).

use std::{fmt::Write as _, path::PathBuf};

#[path = "build/aarch64.rs"]
mod aarch64;
#[path = "build/x86_64.rs"]
mod x86_64;

/// SplitMix64: small, seedable, and the same on every host.
pub struct Rng(u64);

impl Rng {
    // An endless generator, not an Iterator: `next` never returns None.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The seed of block `index`'s generator: every block is independent of the
/// others, so `GEN_BLOCKS` changes the number of blocks, not their contents.
pub fn block_rng(seed: u64, index: usize) -> Rng {
    Rng(seed ^ (index as u64).wrapping_mul(0xd6e8_feb8_6659_fd93))
}

/// Farthest a forward branch reaches, in lines.
const MAX_SKIP: usize = 12;

/// The body of one block as it is generated: its lines, which of them are
/// branch targets, and which lines belong together. A unit of several lines
/// (`adr x16, t` + `br x16`; `mov ecx, 3` + `rep movsb`) must run from its
/// first line, so a branch aimed inside one lands on its first line instead.
pub struct Layout<L> {
    pub block: usize,
    /// Lines in the body, the final branch to `gen_exit` included.
    pub len: usize,
    pub lines: Vec<L>,
    labels: Vec<bool>,
    /// The first line of the unit each line belongs to.
    unit_start: Vec<usize>,
}

impl<L> Layout<L> {
    pub fn new(block: usize, len: usize) -> Self {
        Self { block, len, lines: Vec::new(), labels: vec![false; len], unit_start: Vec::new() }
    }

    /// The index of the next line.
    pub fn at(&self) -> usize {
        self.lines.len()
    }

    /// True once only the final branch is missing.
    pub fn body_full(&self) -> bool {
        self.lines.len() >= self.len - 1
    }

    /// Lines left before the final branch, counting line `at`.
    pub fn room(&self, at: usize) -> usize {
        self.len - 1 - at
    }

    /// The label of line `line`.
    pub fn label(&self, line: usize) -> String {
        format!(".Lg{}_{}", self.block, line)
    }

    /// A label between `min_skip` and [`MAX_SKIP`] lines after `at` (never
    /// past the final branch), marked as a target.
    pub fn forward(&mut self, rng: &mut Rng, at: usize, min_skip: usize) -> String {
        let last = self.len - 1;
        let lo = (at + min_skip).min(last);
        let hi = (at + MAX_SKIP).min(last);
        let target = rng.range(lo as i64, hi as i64) as usize;
        self.labels[target] = true;
        self.label(target)
    }

    /// Appends `unit`, or `filler` alone if the unit would not fit before the
    /// final branch.
    pub fn push_unit(&mut self, mut unit: Vec<L>, filler: impl FnOnce() -> L) {
        let at = self.at();
        if at + unit.len() > self.len - 1 {
            unit = vec![filler()];
        }
        for _ in 0..unit.len() {
            self.unit_start.push(at);
        }
        self.lines.extend(unit);
    }

    /// Appends the final branch.
    pub fn finish(&mut self, exit: L) {
        self.unit_start.push(self.lines.len());
        self.lines.push(exit);
    }

    /// The lines whose labels go right before line `line`: its own if it
    /// starts a unit, and those of the later lines of the unit it starts.
    pub fn labels_before(&self, line: usize) -> Vec<usize> {
        if self.unit_start[line] != line {
            return Vec::new();
        }
        (line..self.lines.len()).take_while(|&j| self.unit_start[j] == line).filter(|&j| self.labels[j]).collect()
    }
}

/// What an architecture's generator returns.
pub struct Generated {
    /// The assembly: every block (`gen_block_<n>`) and the tables the harness
    /// reads.
    pub asm: String,
    /// Per block, the text of each probed instruction in address order.
    pub texts: Vec<Vec<String>>,
    /// More items for `gen.rs`, for the architecture's harness.
    pub rust: String,
}

fn env_number(name: &str, default: u64) -> u64 {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build");
    // The target's architecture, not the host's (cargo sets it for build scripts).
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");

    // Link like every user program (user/build.rs).
    let script_name = match arch.as_str() {
        "aarch64" => "user.ld",
        "x86_64" => "user-x86_64.ld",
        other => {
            panic!("gen-transparency builds for aarch64-unknown-none or x86_64-unknown-none, not target_arch {other}")
        }
    };
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let script = manifest_dir
        .ancestors()
        .map(|d| d.join("linker").join(script_name))
        .find(|s| s.is_file())
        .unwrap_or_else(|| panic!("no linker/{script_name} above the program"));
    println!("cargo:rustc-link-arg=-T{}", script.display());
    println!("cargo:rustc-link-arg=-zmax-page-size=4096");
    if arch == "x86_64" {
        // A fixed-address executable, not the target's default static PIE
        // (user/build.rs says why).
        println!("cargo:rustc-link-arg=-static");
        println!("cargo:rustc-link-arg=--no-pie");
    }
    println!("cargo:rerun-if-changed={}", script.display());

    let seed = env_number("GEN_SEED", 1);
    let blocks = env_number("GEN_BLOCKS", 48) as usize;
    let len = env_number("GEN_BLOCK_LEN", 64).clamp(8, 200) as usize;

    let generated = match arch.as_str() {
        "x86_64" => x86_64::generate(seed, blocks, len),
        _ => aarch64::generate(seed, blocks, len),
    };
    let mut rust = String::new();
    writeln!(rust, "pub const GEN_SEED: u64 = {seed};").unwrap();
    writeln!(rust, "pub static TEXTS: [&[&str]; {blocks}] = [").unwrap();
    for lines in &generated.texts {
        writeln!(rust, "    &{lines:?},").unwrap();
    }
    writeln!(rust, "];").unwrap();
    rust.push_str(&generated.rust);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    std::fs::write(out.join("gen.s"), generated.asm).unwrap();
    std::fs::write(out.join("gen.rs"), rust).unwrap();
}
