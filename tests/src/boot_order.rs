//! The boot-order check: gdb stops QEMU at every exclusive load in the kernel
//! image (the first half of every lock and atomic read-modify-write) and reads
//! SCTLR_EL1 at the first one the CPU reaches. Under QEMU an exclusive pair on
//! Device memory succeeds; on real hardware it need not (on a BCM2711 it never
//! does), so a kernel that takes a lock before the MMU and the data cache are on
//! passes every other test and hangs on a Pi 4. This makes QEMU fail it.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

/// SCTLR_EL1.M: stage 1 translation on.
const SCTLR_M: u64 = 1 << 0;
/// SCTLR_EL1.C: data accesses cacheable (with M, Normal memory is Normal).
const SCTLR_C: u64 = 1 << 2;

/// Where the first exclusive load was hit, and how the CPU was set up then.
#[derive(Debug)]
pub struct FirstExclusive {
    pub pc: u64,
    pub sctlr: u64,
    /// gdb's words for where it stopped (function and source line), for messages.
    pub location: String,
}

impl FirstExclusive {
    pub fn mmu_and_caches_on(&self) -> bool {
        self.sctlr & (SCTLR_M | SCTLR_C) == SCTLR_M | SCTLR_C
    }
}

/// The gdb that debugs aarch64: `GDB` if set, else `gdb-multiarch` on PATH.
pub fn gdb() -> PathBuf {
    if let Some(gdb) = std::env::var_os("GDB").filter(|g| !g.is_empty()) {
        return PathBuf::from(gdb);
    }
    let found = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join("gdb-multiarch")).find(|p| p.is_file()));
    found.unwrap_or_else(|| {
        panic!(
            "gdb-multiarch is not on PATH (GDB=/path/to/gdb picks another): the boot-order check needs it. \
             Debian/Ubuntu: sudo apt-get install gdb-multiarch (as root, bash .ci/provision-qemu.sh does it)"
        )
    })
}

/// The address of every exclusive load in the ELF's `.text`: LDXR, LDAXR, LDXP,
/// LDAXP and their byte and halfword forms (Arm ARM C4.1.66, "Load/store
/// exclusive": bits [29:24] = 0b001000, o2 (bit 23) = 0, L (bit 22) = 1). A word
/// of data in the text that matches is only an extra breakpoint never reached.
pub fn exclusive_loads(elf: &[u8]) -> Vec<u64> {
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap());
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28) as usize, u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let section = |i: usize| shoff + i * shentsize;
    let names = u64_at(section(shstrndx) + 0x18) as usize;
    let mut found = Vec::new();
    for i in 0..shnum {
        let header = section(i);
        let name_at = names + u32_at(header) as usize;
        if !elf[name_at..].starts_with(b".text\0") {
            continue;
        }
        let (address, offset, size) =
            (u64_at(header + 0x10), u64_at(header + 0x18) as usize, u64_at(header + 0x20) as usize);
        for at in (0..size).step_by(4) {
            if u32_at(offset + at) & 0x3fc0_0000 == 0x0840_0000 {
                found.push(address + at as u64);
            }
        }
    }
    found
}

/// Starts QEMU with `qemu_args` (which must not use stdio for the serial port)
/// halted under gdb, with a breakpoint on every exclusive load of `elf`, and
/// reports the first one the CPU reaches.
pub fn first_exclusive(qemu: &str, qemu_args: &[String], elf: &Path, timeout: Duration) -> FirstExclusive {
    let loads = exclusive_loads(&std::fs::read(elf).expect("reading the kernel ELF"));
    assert!(!loads.is_empty(), "no exclusive load in {}: the scan is broken", elf.display());
    // gdb starts QEMU itself and talks to it over a pipe (`-gdb stdio`): no port.
    let (qemu_args, log) = crate::with_strict_log(qemu_args);
    let mut script = String::from("set pagination off\nset confirm off\n");
    script.push_str(&format!("target remote | exec {qemu} {} -gdb stdio -S\n", qemu_args.join(" ")));
    for load in &loads {
        script.push_str(&format!("break *{load:#x}\n"));
    }
    script.push_str("continue\nprintf \"first-exclusive pc=%#lx sctlr=%#lx\\n\", $pc, $SCTLR\nframe\nkill\nquit\n");
    let file = std::env::temp_dir().join(format!("brk-boot-order-{}-{}.gdb", std::process::id(), loads.len()));
    std::fs::write(&file, script).unwrap();
    let output =
        crate::run_with_timeout(Command::new(gdb()).args(["-batch", "-nx", "-q", "-x"]).arg(&file).arg(elf), timeout);
    let _ = std::fs::remove_file(&file);
    if let Some(complaint) = crate::strict_log_complaint(&log) {
        panic!("{complaint}\ngdb said:\n{output}");
    }
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("first-exclusive "))
        .unwrap_or_else(|| panic!("gdb never stopped at an exclusive load; it said:\n{output}"));
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    let location = output.lines().find(|l| l.starts_with("#0")).unwrap_or_default().to_string();
    FirstExclusive { pc: field("pc="), sctlr: field("sctlr="), location }
}

/// Boots `qemu_args` (serial on stdio is moved to nowhere: gdb talks to QEMU
/// there) under gdb and fails the test unless the first exclusive load the CPU
/// reaches runs with the MMU and the data cache on.
#[track_caller]
pub fn expect_no_exclusive_before_the_mmu(qemu_args: Vec<String>, elf: &Path) {
    let qemu = std::env::var("QEMU").unwrap_or_else(|_| "qemu-system-aarch64".into());
    let args: Vec<String> =
        qemu_args.into_iter().map(|arg| if arg == "stdio" { "null".to_string() } else { arg }).collect();
    let first = first_exclusive(&qemu, &args, elf, crate::DEFAULT_TIMEOUT);
    assert!(
        first.mmu_and_caches_on(),
        "the first exclusive load ran with SCTLR_EL1 = {:#x} (M and C must both be set) at {:#x}: {}",
        first.sctlr,
        first.pc,
        first.location
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_finds_exclusive_loads_and_nothing_else() {
        // ldaxrb w9, [x8]; ldxr x0, [x1]; ldaxp x0, x1, [x2]; stxr w9, w10, [x8];
        // ldar x0, [x1]; ldr x0, [x1]
        let words: [u32; 6] = [0x085f_fd09, 0xc85f_7c20, 0xc87f_8440, 0x8809_7d0a, 0xc8df_fc20, 0xf940_0020];
        let hits: Vec<bool> = words.iter().map(|w| w & 0x3fc0_0000 == 0x0840_0000).collect();
        assert_eq!(hits, [true, true, true, false, false, false]);
    }

    #[test]
    fn mmu_and_caches_must_both_be_on() {
        let at = |sctlr| FirstExclusive { pc: 0, sctlr, location: String::new() };
        assert!(!at(0x30d0_0800).mmu_and_caches_on(), "the reset value, as boot.s sets it");
        assert!(!at(0x30d0_0801).mmu_and_caches_on(), "MMU on, data cache off");
        assert!(at(0x30d0_1805).mmu_and_caches_on());
    }
}
