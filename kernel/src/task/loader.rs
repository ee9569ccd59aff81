//! The ELF loader: a static AArch64 executable into a fresh address space.
//!
//! Parsing is the `elf` crate's (no_std, zero-copy); the checks are ours. Every
//! PT_LOAD segment must lie in the user range and be readable; a segment that
//! asks to be writable and executable is refused (W^X, for EL0 too). Text is
//! mapped EL0 read+execute, rodata read-only, data/bss read+write never
//! executable; bss pages come zeroed from the frame allocator.

use super::{address_space::AddressSpace, symbols::Symbols};
use crate::{arch::mmu::Access, memory::PAGE_SIZE};
use alloc::{format, string::String};
use brk_abi::layout;
use elf::{abi, endian::LittleEndian, ElfBytes};

/// A loaded program, ready for its first thread.
pub struct LoadedProgram {
    pub space: AddressSpace,
    pub entry: u64,
    pub symbols: Symbols,
}

/// Why a program could not be loaded (shown to the user as one line).
pub type LoadError = String;

pub fn load(name: &str, image: &[u8]) -> Result<LoadedProgram, LoadError> {
    let file =
        ElfBytes::<LittleEndian>::minimal_parse(image).map_err(|e| format!("{}: not an ELF file ({})", name, e))?;
    if file.ehdr.e_machine != abi::EM_AARCH64 {
        return Err(format!("{}: not an AArch64 program (e_machine {})", name, file.ehdr.e_machine));
    }
    if file.ehdr.e_type != abi::ET_EXEC {
        return Err(format!("{}: not a static executable (e_type {})", name, file.ehdr.e_type));
    }
    let segments = file.segments().ok_or_else(|| format!("{}: no program headers", name))?;
    let mut space = AddressSpace::new().map_err(|e| format!("{}: {}", name, e.name()))?;
    let mut loaded_any_text = false;

    for segment in segments.iter().filter(|s| s.p_type == abi::PT_LOAD && s.p_memsz > 0) {
        let (writable, executable) = (segment.p_flags & abi::PF_W != 0, segment.p_flags & abi::PF_X != 0);
        if writable && executable {
            return Err(format!(
                "{}: segment at {:#x} is writable and executable (refused: W^X)",
                name, segment.p_vaddr
            ));
        }
        let start = segment.p_vaddr & !(PAGE_SIZE as u64 - 1);
        let end = segment
            .p_vaddr
            .checked_add(segment.p_memsz)
            .map(|end| end.next_multiple_of(PAGE_SIZE as u64))
            .filter(|&end| start >= layout::USER_BASE && end <= layout::STACKS_TOP - layout::STACK_SIZE * 64)
            .ok_or_else(|| format!("{}: segment at {:#x} is outside the user program range", name, segment.p_vaddr))?;
        let file_bytes = image
            .get(segment.p_offset as usize..)
            .and_then(|rest| rest.get(..segment.p_filesz as usize))
            .filter(|_| segment.p_filesz <= segment.p_memsz)
            .ok_or_else(|| format!("{}: segment at {:#x} points outside the file", name, segment.p_vaddr))?;
        let access = match (writable, executable) {
            (_, true) => Access::UserText,
            (true, false) => Access::UserReadWrite,
            (false, false) => Access::UserReadOnly,
        };
        loaded_any_text |= executable;
        space.map_zeroed(start as usize, (end - start) as usize, access).map_err(|e| {
            format!(
                "{}: cannot map segment at {:#x}: {} (segments must not share a page)",
                name,
                segment.p_vaddr,
                e.name()
            )
        })?;
        space
            .write_as_kernel(segment.p_vaddr, file_bytes)
            .map_err(|e| format!("{}: cannot fill segment at {:#x}: {}", name, segment.p_vaddr, e.name()))?;
    }
    if !loaded_any_text {
        return Err(format!("{}: no executable segment", name));
    }
    if space.check(file.ehdr.e_entry, 4, super::address_space::UserAccess::Execute).is_err() {
        return Err(format!("{}: entry point {:#x} is not in executable text", name, file.ehdr.e_entry));
    }
    let mut symbols = Symbols::default();
    if let Ok(Some((table, strings))) = file.symbol_table() {
        for symbol in table.iter().filter(|s| s.st_symtype() == abi::STT_FUNC && s.st_value != 0) {
            if let Ok(symbol_name) = strings.get(symbol.st_name as usize) {
                symbols.add(symbol_name, symbol.st_value, symbol.st_size);
            }
        }
    }
    symbols.finish();
    Ok(LoadedProgram { space, entry: file.ehdr.e_entry, symbols })
}
