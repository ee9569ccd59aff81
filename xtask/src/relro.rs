//! The check every built user program passes before it is packed: the sections
//! a stray write could turn into a hijacked call (vtables in `.data.rel.ro`, the
//! GOT in `.got` / `.got.plt`) lie in segments that are not writable.
//!
//! The programs are static and never relocated at run time, so the linker
//! scripts (`linker/user.ld`, `linker/user-x86_64.ld`) put these sections in
//! the read-only segment; this check makes a change that moves them back (a
//! script edit, a new section name, a toolchain that names them otherwise) fail
//! the build instead of leaving the fuzzer, or a buggy program, able to rewrite
//! where its indirect calls go.

use anyhow::{bail, Context, Result};
use object::{elf, Object, ObjectSection, ObjectSegment, SegmentFlags};

/// Names of the sections that must never be writable at run time.
fn must_be_read_only(name: &str) -> bool {
    name == ".got" || name == ".got.plt" || name == ".data.rel.ro" || name.starts_with(".data.rel.ro.")
}

/// An allocated section: name and address range.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub address: u64,
    pub size: u64,
}

/// A PT_LOAD segment: its address range in memory and whether it is writable.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub address: u64,
    pub size: u64,
    pub writable: bool,
}

/// The sections that must be read-only but lie, in part, in a writable segment,
/// as one line each.
pub fn writable_relro(sections: &[Section], segments: &[Segment]) -> Vec<String> {
    sections
        .iter()
        .filter(|s| s.size > 0 && must_be_read_only(&s.name))
        .filter(|s| {
            let end = s.address + s.size;
            segments.iter().any(|seg| seg.writable && s.address < seg.address + seg.size && seg.address < end)
        })
        .map(|s| format!("{} at {:#x} ({} bytes) is in a writable segment", s.name, s.address, s.size))
        .collect()
}

/// Fails with every offending section if the ELF `bytes` (`name` for messages)
/// has a vtable or GOT section in a writable segment.
pub fn check(name: &str, bytes: &[u8]) -> Result<()> {
    let file = object::File::parse(bytes).with_context(|| format!("{name}: reading the ELF"))?;
    // A static executable's allocated sections are the ones with an address.
    let sections: Vec<Section> = file
        .sections()
        .filter(|s| s.address() != 0)
        .map(|s| Section { name: s.name().unwrap_or_default().to_string(), address: s.address(), size: s.size() })
        .collect();
    // object's ELF segments are the PT_LOAD ones.
    let segments: Vec<Segment> = file
        .segments()
        .map(|seg| Segment {
            address: seg.address(),
            size: seg.size(),
            writable: matches!(seg.flags(), SegmentFlags::Elf { p_flags, .. } if p_flags.contains(elf::PF_W)),
        })
        .collect();
    let problems = writable_relro(&sections, &segments);
    if !problems.is_empty() {
        bail!(
            "{name}: vtables or GOT would be writable at run time (a stray write could redirect calls): {}; \
             the linker script must put them in the read-only segment",
            problems.join("; ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(name: &str, address: u64, size: u64) -> Section {
        Section { name: name.into(), address, size }
    }

    const SEGMENTS: [Segment; 3] = [
        Segment { address: 0x1000, size: 0x1000, writable: false }, // text
        Segment { address: 0x2000, size: 0x1000, writable: false }, // rodata
        Segment { address: 0x3000, size: 0x2000, writable: true },  // data + bss
    ];

    #[test]
    fn vtables_and_got_in_the_read_only_segment_pass() {
        let sections = [
            section(".rodata", 0x2000, 0x100),
            section(".data.rel.ro", 0x2100, 0x80),
            section(".got", 0x2180, 0x18),
            section(".data", 0x3000, 0x10),
        ];
        assert!(writable_relro(&sections, &SEGMENTS).is_empty());
    }

    #[test]
    fn vtables_or_got_in_the_writable_segment_are_named() {
        let sections = [
            section(".data.rel.ro.local", 0x3000, 0x20),
            section(".got", 0x1ff8, 0x10), // straddles into... the read-only rodata: fine
            section(".got.plt", 0x3020, 0x8),
            section(".data", 0x3028, 0x10), // writable data is allowed to be writable
        ];
        let problems = writable_relro(&sections, &SEGMENTS);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with(".data.rel.ro.local at 0x3000"));
        assert!(problems[1].starts_with(".got.plt at 0x3020"));
    }

    #[test]
    fn empty_sections_do_not_count() {
        assert!(writable_relro(&[section(".got", 0x3000, 0)], &SEGMENTS).is_empty());
    }
}
