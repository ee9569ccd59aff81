//! A64 instructions as the probe trace shows them: the encoding, then the
//! disassembly (`0x91002400 add x0, x0, #0x9`), by `yaxpeax-arm`, the
//! disassembler the probe core's oracle tests check the classifier against.
//! Decoded only when displayed, so only a printed trace line pays for it.

use core::fmt;
use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::InstDecoder;

/// An instruction word, displayed as its encoding and its disassembly.
pub struct Disassembly(pub u32);

impl fmt::Display for Disassembly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x} ", self.0)?;
        let bytes = self.0.to_le_bytes();
        match InstDecoder::default().decode(&mut U8Reader::new(&bytes)) {
            Ok(instruction) => write!(f, "{instruction}"),
            Err(error) => write!(f, "(not an instruction: {error})"),
        }
    }
}
