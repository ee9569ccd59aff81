//! `cargo xtask functions PROGRAM [--arch x86_64] [--symbol NAME]`: a user
//! program's functions, each instruction with its offset, address, encoding,
//! disassembly and what a probe there would do, so a learner can pick a probe
//! point (`--probe probed:cls_bcond+4` is the `b.gt` the listing shows at
//! `+0x4`). The program is built as `cargo xtask qemu` builds it (or read from
//! a path to an ELF); the disassembler is the one the kernel's trace uses
//! (`yaxpeax-arm`, `yaxpeax-x86`), the treatment the probe core's classifier.

use std::{fmt::Write as _, fs, path::Path};

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
use probe_core::insn::{aarch64, x86_64, Classification};
use yaxpeax_arch::{Decoder, LengthedInstruction, U8Reader};

use crate::{user::UserArch, Arch};

/// Bytes of an A64 instruction.
const A64_INSTRUCTION_BYTES: usize = 4;
/// The offset column's width: `+0x1000` and shorter line up.
const OFFSET_WIDTH: usize = 7;
/// The x86 encoding column's width: instructions of up to 7 bytes line up.
const X86_ENCODING_WIDTH: usize = 20;

/// One function of a program: its demangled name (as `--probe` takes it) and its bytes.
struct Function<'data> {
    name: String,
    address: u64,
    bytes: &'data [u8],
}

/// Build the programs for `arch` unless `program` is a path to an ELF, then print
/// the listing of `program` (only the function `symbol`, if given).
pub fn run(program: &str, arch: Arch, symbol: Option<&str>) -> Result<()> {
    let path = Path::new(program);
    let elf = if path.is_file() {
        path.to_path_buf()
    } else {
        let dir = match arch {
            Arch::Aarch64 => crate::user::build_programs(&[])?,
            Arch::X86_64 => crate::user::build_x86_64_programs()?,
        };
        let elf = dir.join(format!("{program}.elf"));
        if !elf.is_file() {
            let user_arch = match arch {
                Arch::Aarch64 => UserArch::Aarch64,
                Arch::X86_64 => UserArch::X86_64,
            };
            let known = crate::user::program_names_for(user_arch)?;
            bail!("no program {program} for {} (the programs: {})", user_arch.name(), known.join(", "));
        }
        elf
    };
    let bytes = fs::read(&elf).with_context(|| format!("reading {}", elf.display()))?;
    print!("{}", listing(&bytes, symbol)?);
    Ok(())
}

/// The listing of the ELF file `bytes`: every function (or only `symbol`), in
/// address order, `name:` and then one line per instruction.
fn listing(bytes: &[u8], symbol: Option<&str>) -> Result<String> {
    let file = object::File::parse(bytes).context("not an ELF file")?;
    let machine = match file.architecture() {
        object::Architecture::Aarch64 => Arch::Aarch64,
        object::Architecture::X86_64 => Arch::X86_64,
        other => bail!("an ELF file for {other:?}: the kernel runs aarch64 and x86_64 programs"),
    };
    let functions = functions(&file)?;
    let chosen: Vec<&Function> = functions.iter().filter(|f| symbol.is_none_or(|name| f.name == name)).collect();
    if chosen.is_empty() {
        let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
        bail!("no function {} (the functions: {})", symbol.unwrap_or_default(), names.join(", "));
    }
    let mut out = String::new();
    for function in chosen {
        writeln!(out, "{}:", function.name)?;
        match machine {
            Arch::Aarch64 => list_a64(&mut out, function)?,
            Arch::X86_64 => list_x86_64(&mut out, function)?,
        }
    }
    Ok(out)
}

/// The program's functions, as the kernel's symbol table takes them (named
/// function symbols at a nonzero address, names demangled without the hash), in
/// address order. A function without a size runs to the next one or the end of
/// its section.
fn functions<'data>(file: &object::File<'data>) -> Result<Vec<Function<'data>>> {
    let mut symbols: Vec<(u64, u64, String, object::SectionIndex)> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
        .filter_map(|s| {
            let name = s.name().ok().filter(|name| !name.is_empty())?;
            Some((s.address(), s.size(), format!("{:#}", rustc_demangle::demangle(name)), s.section_index()?))
        })
        .collect();
    symbols.sort_by_key(|(address, ..)| *address);
    symbols.dedup_by_key(|(address, ..)| *address);
    let mut functions = Vec::new();
    for (i, (address, size, name, section)) in symbols.iter().enumerate() {
        let section = file.section_by_index(*section)?;
        let data = section.data()?;
        let start = (address - section.address()) as usize;
        let next = symbols.get(i + 1).map_or(u64::MAX, |(next, ..)| *next);
        let end = if *size > 0 { address + size } else { next.min(section.address() + data.len() as u64) };
        let end = (end - section.address()) as usize;
        let bytes = data.get(start..end).with_context(|| format!("{name}: outside its section"))?;
        functions.push(Function { name: name.clone(), address: *address, bytes });
    }
    Ok(functions)
}

/// What a probe on an instruction would do, as the kernel's registration line says it.
fn treatment<S>(classification: Classification<S>) -> String {
    match classification {
        Classification::Simulate(_) => "simulate".to_string(),
        Classification::Step => "step out of line".to_string(),
        Classification::Reject(reason) => format!("refused: {reason}"),
    }
}

/// `  +0x4  0x4000000044  0x5400006c  b.gt $+0xc  ; simulate` for each word.
fn list_a64(out: &mut String, function: &Function) -> Result<()> {
    let decoder = yaxpeax_arm::armv8::a64::InstDecoder::default();
    for (index, chunk) in function.bytes.chunks(A64_INSTRUCTION_BYTES).enumerate() {
        let offset = (index * A64_INSTRUCTION_BYTES) as u64;
        let at = format!("+{offset:#x}");
        let Ok(bytes) = <[u8; A64_INSTRUCTION_BYTES]>::try_from(chunk) else {
            writeln!(out, "  {at:<OFFSET_WIDTH$}  {:#x}  {chunk:02x?}  (a partial word)", function.address + offset)?;
            continue;
        };
        let word = u32::from_le_bytes(bytes);
        let text = match decoder.decode(&mut U8Reader::new(&bytes)) {
            Ok(instruction) => instruction.to_string(),
            Err(error) => format!("(not an instruction: {error})"),
        };
        let probe = treatment(aarch64::classify(word));
        writeln!(out, "  {at:<OFFSET_WIDTH$}  {:#x}  {word:#010x}  {text}  ; {probe}", function.address + offset)?;
    }
    Ok(())
}

/// `  +0x7  0x40000000b7  7f 05  jg $+0x5  ; simulate` for each instruction; a
/// byte that starts none is listed alone and the listing goes on after it.
fn list_x86_64(out: &mut String, function: &Function) -> Result<()> {
    let decoder = yaxpeax_x86::long_mode::InstDecoder::default();
    let mut offset = 0;
    while offset < function.bytes.len() {
        let rest = &function.bytes[offset..];
        let (length, text) = match decoder.decode_slice(rest) {
            Ok(instruction) => (instruction.len().to_const() as usize, instruction.to_string()),
            Err(error) => (1, format!("(not an instruction: {error})")),
        };
        let bytes = &rest[..length.min(rest.len())];
        let encoding: Vec<String> = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        let probe = match x86_64::Insn::decode(bytes) {
            Ok(insn) => treatment(x86_64::classify(&insn)),
            Err(why) => format!("refused: {why}"),
        };
        let at = format!("+{offset:#x}");
        writeln!(
            out,
            "  {at:<OFFSET_WIDTH$}  {:#x}  {:<X86_ENCODING_WIDTH$}  {text}  ; {probe}",
            function.address + offset as u64,
            encoding.join(" ")
        )?;
        offset += length;
    }
    Ok(())
}
