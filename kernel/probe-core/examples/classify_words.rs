//! Classify A64 instruction words read from standard input (little-endian,
//! 4 bytes each) and print one line per word: the word, then `SIM <what>`,
//! `STEP` or `REJ <why>`. `tools/objdump_oracle.py` compares this output
//! with GNU objdump's disassembly of the same bytes (see README.md, "How the
//! decode tables were checked").

use probe_core::insn::{aarch64, Classification, SimulatePolicy};
use std::io::{BufWriter, Read, Write};

fn main() -> std::io::Result<()> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for chunk in bytes.chunks_exact(4) {
        let word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        match aarch64::classify_with(word, SimulatePolicy::All) {
            Classification::Simulate(simulation) => writeln!(out, "{word:08x} SIM {simulation:?}")?,
            Classification::Step => writeln!(out, "{word:08x} STEP")?,
            Classification::Reject(reason) => writeln!(out, "{word:08x} REJ {reason:?}")?,
        }
    }
    Ok(())
}
