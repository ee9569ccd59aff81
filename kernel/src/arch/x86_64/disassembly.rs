//! x86_64 instructions as the probe trace shows them: the bytes, then the
//! disassembly (`48 8b 05 c9 5e 00 00 mov rax, qword [rip + 0x5ec9]`), by
//! `yaxpeax-x86`, the disassembler the probe core's oracle tests check the
//! classifier and the RIP-relative rewrite against. Decoded only when
//! displayed, so only a printed trace line pays for it.

use core::fmt;
use yaxpeax_x86::long_mode::InstDecoder;

/// An instruction's bytes, displayed as themselves and their disassembly.
pub struct Disassembly<'bytes>(pub &'bytes [u8]);

impl fmt::Display for Disassembly<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x} ")?;
        }
        match InstDecoder::default().decode_slice(self.0) {
            Ok(instruction) => write!(f, "{instruction}"),
            Err(error) => write!(f, "(not an instruction: {error})"),
        }
    }
}
