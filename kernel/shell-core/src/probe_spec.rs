//! Where a probe goes, as a user writes it: `PROGRAM:SYMBOL[+OFFSET]` or
//! `PROGRAM:0xADDRESS`. The boot arguments (`probe=`, `retprobe=`) and the
//! shell's `probe add` read it with the same [`ProbeTarget::parse`], so both
//! accept and refuse the same words with the same messages.

use alloc::{
    format,
    string::{String, ToString},
};

/// Where in a program a probe goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeLocation {
    /// `SYMBOL[+OFFSET]`, resolved through the program's symbol table.
    Symbol { name: String, offset: u64 },
    /// A raw address (`0x...`).
    Address(u64),
}

/// A probe's program and location, and the words they were read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeTarget {
    /// As the user wrote it, for messages.
    pub spec: String,
    pub program: String,
    pub location: ProbeLocation,
}

/// A number in decimal or, after `0x`, in hexadecimal.
pub fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

impl ProbeTarget {
    /// Read `spec`; the error is one line naming what is wrong.
    pub fn parse(spec: &str) -> Result<ProbeTarget, String> {
        let (program, location) = spec
            .split_once(':')
            .filter(|(program, location)| !program.is_empty() && !location.is_empty())
            .ok_or_else(|| format!("probe '{}': expected PROGRAM:SYMBOL[+OFFSET] or PROGRAM:0xADDRESS", spec))?;
        let number =
            |text: &str| parse_number(text).ok_or_else(|| format!("probe '{}': '{}' is not a number", spec, text));
        let location = if location.starts_with("0x") {
            ProbeLocation::Address(number(location)?)
        } else {
            match location.split_once('+') {
                Some((name, offset)) => ProbeLocation::Symbol { name: name.to_string(), offset: number(offset)? },
                None => ProbeLocation::Symbol { name: location.to_string(), offset: 0 },
            }
        };
        Ok(ProbeTarget { spec: spec.to_string(), program: program.to_string(), location })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_offsets_and_addresses() {
        let target = ProbeTarget::parse("demo:checksum+0x8").unwrap();
        assert_eq!(target.program, "demo");
        assert_eq!(target.location, ProbeLocation::Symbol { name: "checksum".to_string(), offset: 8 });
        assert_eq!(
            ProbeTarget::parse("demo:fib").unwrap().location,
            ProbeLocation::Symbol { name: "fib".to_string(), offset: 0 }
        );
        assert_eq!(ProbeTarget::parse("demo:0x400010").unwrap().location, ProbeLocation::Address(0x400010));
    }

    #[test]
    fn malformed_specs_say_why() {
        assert_eq!(
            ProbeTarget::parse("demo").unwrap_err(),
            "probe 'demo': expected PROGRAM:SYMBOL[+OFFSET] or PROGRAM:0xADDRESS"
        );
        assert_eq!(
            ProbeTarget::parse(":fib").unwrap_err(),
            "probe ':fib': expected PROGRAM:SYMBOL[+OFFSET] or PROGRAM:0xADDRESS"
        );
        assert_eq!(ProbeTarget::parse("demo:fib+x").unwrap_err(), "probe 'demo:fib+x': 'x' is not a number");
        assert_eq!(ProbeTarget::parse("demo:0xzz").unwrap_err(), "probe 'demo:0xzz': '0xzz' is not a number");
    }
}
