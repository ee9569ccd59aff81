//! What the oracle tests share: the seeded generator their samples come from
//! and the environment knobs that change the sample (`ORACLE_SEED`,
//! `ORACLE_WORDS`, ...). Each oracle test file is its own crate and uses
//! what it needs of this.

#![allow(dead_code)] // each test crate uses a part

/// splitmix64: a tiny seeded generator, so a failing sample is reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next() as usize % items.len()]
    }
}

/// The environment variable `name` as a number (decimal, or hex with `0x`),
/// or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| {
            let v = v.trim();
            v.strip_prefix("0x").map_or_else(|| v.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
        })
        .unwrap_or(default)
}

/// x86_64: push up to two of `prefixes`, maybe a REX prefix, an opcode of one
/// of the four legacy maps (one byte, `0f`, `0f 38`, `0f 3a`) and a ModRM
/// naming a RIP-relative operand (mod 00, r/m 101).
pub fn rip_relative_operand(rng: &mut Rng, bytes: &mut Vec<u8>, prefixes: &[u8]) {
    for _ in 0..rng.next() % 3 {
        bytes.push(rng.pick(prefixes));
    }
    if rng.next().is_multiple_of(2) {
        bytes.push(0x40 | rng.byte() & 0xf);
    }
    match rng.next() % 4 {
        0 => bytes.push(rng.byte()),
        1 => bytes.extend([0x0f, rng.byte()]),
        2 => bytes.extend([0x0f, 0x38, rng.byte()]),
        _ => bytes.extend([0x0f, 0x3a, rng.byte()]),
    }
    bytes.push((rng.byte() & 0x38) | 0b101);
}

/// x86_64: push a three- or two-byte VEX prefix, an opcode and a ModRM naming
/// a RIP-relative operand.
pub fn vex_rip_relative_operand(rng: &mut Rng, bytes: &mut Vec<u8>) {
    if rng.next().is_multiple_of(2) {
        bytes.extend([0xc4, (rng.byte() & 0xe0) | (rng.byte() % 3 + 1), rng.byte()]);
    } else {
        bytes.extend([0xc5, rng.byte()]);
    }
    bytes.push(rng.byte());
    bytes.push((rng.byte() & 0x38) | 0b101);
}

/// Random bytes after `bytes` up to the longest x86_64 instruction, 15.
pub fn pad_to_15_bytes(rng: &mut Rng, bytes: &mut Vec<u8>) {
    while bytes.len() < 15 {
        bytes.push(rng.byte());
    }
}
