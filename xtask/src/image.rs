//! Flattening the kernel ELF into the raw arm64 Image that QEMU's `-kernel` and the
//! Raspberry Pi firmware load: the file bytes of every loadable segment, placed at
//! their physical addresses relative to the lowest one.

use anyhow::{bail, ensure, Context, Result};
use object::{
    elf,
    read::elf::{FileHeader, ProgramHeader},
};

/// Far more than any kernel here needs; a bigger image means a segment landed at a
/// stray address (e.g. a section placed at 0 next to one at 0x4008_0000), which would
/// otherwise produce a file of a gigabyte of zeros.
const MAX_IMAGE_BYTES: u64 = 64 << 20;

/// A raw image and where it belongs in memory.
#[derive(Debug, PartialEq, Eq)]
pub struct FlatImage {
    /// The image: first byte at `load_address`, gaps between segments zero-filled.
    pub bytes: Vec<u8>,
    /// Physical address of the first byte (the lowest segment's `p_paddr`).
    pub load_address: u64,
    /// Virtual address of the first byte (the same segment's `p_vaddr`).
    pub load_vaddr: u64,
    /// The ELF entry point (`e_entry`, a virtual address).
    pub entry: u64,
}

impl FlatImage {
    /// An arm64 Image is entered at its first byte; an ELF entry elsewhere would be
    /// ignored by every loader that takes the raw image.
    pub fn entry_is_first_byte(&self) -> bool {
        self.entry == self.load_vaddr
    }
}

/// One `PT_LOAD` segment that has bytes in the file.
struct Loaded<'a> {
    paddr: u64,
    vaddr: u64,
    bytes: &'a [u8],
}

/// Flattens a little-endian 64-bit AArch64 ELF executable into a raw image.
///
/// Only `PT_LOAD` segments with `p_filesz > 0` contribute; each segment's file bytes go
/// to `p_paddr - lowest p_paddr`. The part of a segment beyond `p_filesz` (BSS) is not
/// in the image: the boot code zeroes it.
pub fn flatten_elf(data: &[u8]) -> Result<FlatImage> {
    let header = elf::FileHeader64::<object::Endianness>::parse(data).context("not a 64-bit ELF file")?;
    let endian = header.endian().context("unreadable ELF byte order")?;
    ensure!(endian == object::Endianness::Little, "the ELF is big-endian; the kernel is little-endian");
    let machine = header.e_machine(endian);
    ensure!(machine == elf::EM_AARCH64, "the ELF is for machine {:#x}, not AArch64", machine.0);

    let mut segments = Vec::new();
    for phdr in header.program_headers(endian, data).context("unreadable program headers")? {
        if phdr.p_type(endian) != elf::PT_LOAD || phdr.p_filesz(endian) == 0 {
            continue;
        }
        let bytes = phdr.data(endian, data).map_err(|()| anyhow::anyhow!("a PT_LOAD segment lies outside the file"))?;
        segments.push(Loaded { paddr: phdr.p_paddr(endian), vaddr: phdr.p_vaddr(endian), bytes });
    }
    if segments.is_empty() {
        bail!("the ELF has no PT_LOAD segment with file contents");
    }
    segments.sort_by_key(|s| s.paddr);

    let start = segments[0].paddr;
    let mut end = start;
    for s in &segments {
        ensure!(
            s.paddr >= end,
            "PT_LOAD segments overlap at physical address {:#x} (the previous one ends at {end:#x})",
            s.paddr
        );
        end = s.paddr.checked_add(s.bytes.len() as u64).context("a PT_LOAD segment wraps around the address space")?;
    }
    let size = end - start;
    ensure!(
        size <= MAX_IMAGE_BYTES,
        "the image would span {size:#x} bytes ({start:#x}..{end:#x}): is a section linked at a stray address?"
    );

    let mut bytes = vec![0u8; size as usize];
    for s in &segments {
        let offset = (s.paddr - start) as usize;
        bytes[offset..offset + s.bytes.len()].copy_from_slice(s.bytes);
    }
    Ok(FlatImage { bytes, load_address: start, load_vaddr: segments[0].vaddr, entry: header.e_entry(endian) })
}

#[cfg(test)]
mod tests {
    use object::write::elf::{FileHeader, ProgramHeader, Writer};

    use super::*;

    /// A segment for [`make_elf`]: where it goes, its file bytes, and its memory size.
    struct Segment {
        p_type: elf::ProgramType,
        paddr: u64,
        vaddr: u64,
        bytes: Vec<u8>,
        memsz: u64,
    }

    fn load(paddr: u64, bytes: &[u8]) -> Segment {
        Segment { p_type: elf::PT_LOAD, paddr, vaddr: paddr, bytes: bytes.to_vec(), memsz: bytes.len() as u64 }
    }

    /// Writes a minimal executable ELF with the given program headers and no sections.
    fn make_elf(machine: elf::Machine, entry: u64, segments: &[Segment]) -> Vec<u8> {
        let mut buffer = Vec::new();
        let mut writer = Writer::new(object::Endianness::Little, true, &mut buffer);
        writer.reserve_file_header();
        writer.reserve_program_headers(segments.len() as u32);
        let offsets: Vec<u64> = segments.iter().map(|s| writer.reserve(s.bytes.len() as u64, 16)).collect();

        writer
            .write_file_header(&FileHeader {
                os_abi: elf::ELFOSABI_NONE,
                abi_version: 0,
                e_type: elf::ET_EXEC,
                e_machine: machine,
                e_entry: entry,
                e_flags: elf::FileFlags(0),
            })
            .unwrap();
        writer.write_align_program_headers();
        for (s, &offset) in segments.iter().zip(&offsets) {
            writer.write_program_header(&ProgramHeader {
                p_type: s.p_type,
                p_flags: elf::ProgramFlags(elf::PF_R.0 | elf::PF_X.0),
                p_offset: offset,
                p_vaddr: s.vaddr,
                p_paddr: s.paddr,
                p_filesz: s.bytes.len() as u64,
                p_memsz: s.memsz,
                p_align: 16,
            });
        }
        for s in segments {
            writer.write_align(16);
            writer.write(&s.bytes);
        }
        buffer
    }

    #[test]
    fn one_segment_is_copied_verbatim() {
        let elf = make_elf(elf::EM_AARCH64, 0x4008_0000, &[load(0x4008_0000, &[1, 2, 3, 4])]);
        let image = flatten_elf(&elf).unwrap();
        assert_eq!(image.bytes, [1, 2, 3, 4]);
        assert_eq!(image.load_address, 0x4008_0000);
        assert!(image.entry_is_first_byte());
    }

    #[test]
    fn gaps_are_zero_filled_and_order_follows_physical_addresses() {
        // Written out of order on purpose: the image follows p_paddr, not the file.
        let elf = make_elf(elf::EM_AARCH64, 0x8_0000, &[load(0x8_0010, &[0xbb; 4]), load(0x8_0000, &[0xaa; 8])]);
        let image = flatten_elf(&elf).unwrap();
        let mut expected = vec![0xaa; 8];
        expected.extend([0; 8]);
        expected.extend([0xbb; 4]);
        assert_eq!(image.bytes, expected);
        assert_eq!(image.load_address, 0x8_0000);
    }

    #[test]
    fn bss_and_non_load_segments_are_left_out() {
        let mut text = load(0x4008_0000, &[7; 8]);
        text.memsz = 0x1000; // a trailing .bss inside the same segment
        let bss_only = Segment { memsz: 0x2000, ..load(0x4009_0000, &[]) };
        let note = Segment { p_type: elf::PT_NOTE, ..load(0x4010_0000, &[9; 4]) };
        let elf = make_elf(elf::EM_AARCH64, 0x4008_0000, &[text, bss_only, note]);
        let image = flatten_elf(&elf).unwrap();
        assert_eq!(image.bytes, [7; 8]);
    }

    #[test]
    fn physical_not_virtual_addresses_place_the_bytes() {
        let high = Segment { vaddr: 0xffff_0000_4008_0000, ..load(0x4008_0000, &[1; 4]) };
        let elf = make_elf(elf::EM_AARCH64, 0xffff_0000_4008_0000, &[high]);
        let image = flatten_elf(&elf).unwrap();
        assert_eq!(image.load_address, 0x4008_0000);
        assert!(image.entry_is_first_byte());
    }

    #[test]
    fn an_entry_past_the_first_byte_is_reported() {
        let elf = make_elf(elf::EM_AARCH64, 0x4008_0004, &[load(0x4008_0000, &[0; 8])]);
        assert!(!flatten_elf(&elf).unwrap().entry_is_first_byte());
    }

    #[test]
    fn overlapping_segments_are_an_error() {
        let elf = make_elf(elf::EM_AARCH64, 0, &[load(0x1000, &[0; 16]), load(0x1008, &[0; 16])]);
        let err = flatten_elf(&elf).unwrap_err().to_string();
        assert!(err.contains("overlap"), "{err}");
    }

    #[test]
    fn a_stray_segment_is_an_error_not_a_huge_file() {
        let elf = make_elf(elf::EM_AARCH64, 0, &[load(0, &[0; 4]), load(0x4008_0000, &[0; 4])]);
        let err = flatten_elf(&elf).unwrap_err().to_string();
        assert!(err.contains("stray"), "{err}");
    }

    #[test]
    fn other_machines_and_empty_files_are_rejected() {
        let x86 = make_elf(elf::EM_X86_64, 0, &[load(0x1000, &[0; 4])]);
        assert!(flatten_elf(&x86).unwrap_err().to_string().contains("not AArch64"));
        let empty = make_elf(elf::EM_AARCH64, 0, &[]);
        assert!(flatten_elf(&empty).unwrap_err().to_string().contains("no PT_LOAD"));
        assert!(flatten_elf(b"\x7fELF").is_err());
        assert!(flatten_elf(b"not an elf at all").is_err());
    }
}
