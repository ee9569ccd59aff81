//! A program's function symbols, so reports can say `demo:compute+0x8`
//! instead of a bare address.

use alloc::{string::String, vec::Vec};
use core::fmt;

struct Symbol {
    start: u64,
    size: u64,
    name: String,
}

/// Function symbols of one program, sorted by address.
#[derive(Default)]
pub struct Symbols {
    functions: Vec<Symbol>,
}

/// `program:function+0xoff`, or `program:0xaddr` where no function covers it.
pub struct Located<'a> {
    program: &'a str,
    symbol: Option<(&'a str, u64)>,
    address: u64,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.symbol {
            Some((name, 0)) => write!(f, "{}:{}", self.program, name),
            Some((name, offset)) => write!(f, "{}:{}+{:#x}", self.program, name, offset),
            None => write!(f, "{}:{:#x}", self.program, self.address),
        }
    }
}

impl Symbols {
    /// Add a function; Rust's mangled names are stored demangled without the hash
    /// (`faults::main`, not `_ZN6faults4main17h6ab8...E`).
    pub fn add(&mut self, name: &str, start: u64, size: u64) {
        let name = alloc::format!("{:#}", rustc_demangle::demangle(name));
        self.functions.push(Symbol { start, size, name });
    }

    /// Sort once all symbols are in.
    pub fn finish(&mut self) {
        self.functions.sort_by_key(|symbol| symbol.start);
    }

    /// The function containing `address` and the offset into it.
    pub fn find(&self, address: u64) -> Option<(&str, u64)> {
        let after = self.functions.partition_point(|symbol| symbol.start <= address);
        let symbol = self.functions[..after].last()?;
        let offset = address - symbol.start;
        // A zero-sized symbol (hand-written assembly) covers only its first instruction.
        (offset < symbol.size.max(4)).then_some((symbol.name.as_str(), offset))
    }

    /// The start and size of the function containing `address`, if a
    /// function symbol with a size covers it (hand-written assembly often has
    /// none).
    pub fn function_bounds(&self, address: u64) -> Option<(u64, u64)> {
        let after = self.functions.partition_point(|symbol| symbol.start <= address);
        let symbol = self.functions[..after].last()?;
        (address - symbol.start < symbol.size).then_some((symbol.start, symbol.size))
    }

    /// The address of function `name` (demangled, as reports print it).
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.functions.iter().find(|symbol| symbol.name == name).map(|symbol| symbol.start)
    }

    pub fn locate<'a>(&'a self, program: &'a str, address: u64) -> Located<'a> {
        Located { program, symbol: self.find(address), address }
    }
}
