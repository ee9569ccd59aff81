//! The ELF loader: a static executable for this machine (the contract's
//! `Paging::ELF_MACHINE`) into a fresh address space.
//!
//! Parsing is the `elf` crate's (no_std, zero-copy); the checks are ours. Every
//! PT_LOAD segment must lie in the program range below the thread stacks and
//! their guard pages and not share a page with another; a segment that asks to
//! be writable and executable is refused (W^X, for user mode too). Text is
//! mapped user read + execute, rodata read-only, data and bss read + write and
//! never executable; bss pages come zeroed from the frame allocator. Text is
//! written through the kernel's alias, which makes it visible to instruction
//! fetch. The symbol table is kept for reports. Past the last segment, after
//! a guard page, the loader reserves the process's trampoline area
//! (`super::trampoline_area`).

use super::{
    address_space::{AddressSpace, UserAccess},
    scheduler::MAX_THREADS,
    symbols::Symbols,
    trampoline_area,
};
use crate::{
    arch::{Access, Machine, Paging},
    memory::PAGE_SIZE,
};
use alloc::{format, string::String};
use brk_abi::layout;
use elf::{abi, endian::LittleEndian, segment::ProgramHeader, ElfBytes};

/// A loaded program, ready for its first thread.
pub struct LoadedProgram {
    pub space: AddressSpace,
    pub entry: u64,
    pub symbols: Symbols,
}

/// Why a program could not be loaded (shown to the user as one line).
pub type LoadError = String;

/// The program range ends where the lowest possible thread stack slot's guard
/// page begins: each of the scheduler's slots is `STACK_SIZE` with a
/// `GUARD_SIZE` guard page below it.
const PROGRAM_END: u64 = layout::STACKS_TOP - (layout::STACK_SIZE + layout::GUARD_SIZE) * MAX_THREADS;

pub fn load(name: &str, image: &[u8]) -> Result<LoadedProgram, LoadError> {
    let fail = |what: String| format!("{}: {}", name, what);
    let file = ElfBytes::<LittleEndian>::minimal_parse(image).map_err(|e| fail(format!("not an ELF file ({})", e)))?;
    if file.ehdr.e_machine != Machine::ELF_MACHINE {
        return Err(fail(format!("not an {} program (e_machine {})", Machine::ELF_MACHINE_NAME, file.ehdr.e_machine)));
    }
    if file.ehdr.e_type != abi::ET_EXEC {
        return Err(fail(format!("not a static executable (e_type {})", file.ehdr.e_type)));
    }
    let segments = file.segments().ok_or_else(|| fail(String::from("no program headers")))?;
    let mut space = AddressSpace::new().map_err(|e| fail(String::from(e.name())))?;
    let mut any_text = false;
    let mut program_end = 0;
    for segment in segments.iter().filter(|s| s.p_type == abi::PT_LOAD && s.p_memsz > 0) {
        any_text |= load_segment(&mut space, image, &segment).map_err(fail)?;
        program_end = program_end.max(segment.p_vaddr + segment.p_memsz);
    }
    if !any_text {
        return Err(fail(String::from("no executable segment")));
    }
    // The hole next to the program for its probes' trampolines: a guard page
    // after the last segment, then the area. No room below the stacks: no
    // trampolines (its probes keep their breakpoints).
    let trampolines = program_end.next_multiple_of(PAGE_SIZE as u64) + PAGE_SIZE as u64;
    if trampolines + trampoline_area::AREA_BYTES <= PROGRAM_END {
        space.reserve_trampoline_area(trampolines);
    }
    if space.check(file.ehdr.e_entry, 1, UserAccess::Execute).is_err() {
        return Err(fail(format!("entry point {:#x} is not in executable text", file.ehdr.e_entry)));
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

/// Map and fill one PT_LOAD segment; returns whether it is text.
fn load_segment(space: &mut AddressSpace, image: &[u8], segment: &ProgramHeader) -> Result<bool, String> {
    let at = segment.p_vaddr;
    let (writable, executable) = (segment.p_flags & abi::PF_W != 0, segment.p_flags & abi::PF_X != 0);
    let access = match (writable, executable) {
        (true, true) => return Err(format!("segment at {:#x} is writable and executable (refused: W^X)", at)),
        (false, true) => Access::UserText,
        (true, false) => Access::UserReadWrite,
        (false, false) => Access::UserReadOnly,
    };
    let page = PAGE_SIZE as u64;
    let start = at & !(page - 1);
    let end = at
        .checked_add(segment.p_memsz)
        .map(|end| end.next_multiple_of(page))
        .filter(|&end| start >= layout::USER_BASE && end <= PROGRAM_END)
        .ok_or_else(|| format!("segment at {:#x} is outside the user program range", at))?;
    let contents = usize::try_from(segment.p_offset)
        .ok()
        .and_then(|offset| image.get(offset..)?.get(..usize::try_from(segment.p_filesz).ok()?))
        .filter(|_| segment.p_filesz <= segment.p_memsz)
        .ok_or_else(|| format!("segment at {:#x} points outside the file", at))?;
    space
        .map_zeroed(start as usize, (end - start) as usize, access)
        .map_err(|e| format!("cannot map segment at {:#x}: {} (segments must not share a page)", at, e.name()))?;
    space.write_as_kernel(at, contents).map_err(|e| format!("cannot fill segment at {:#x}: {}", at, e.name()))?;
    Ok(executable)
}
