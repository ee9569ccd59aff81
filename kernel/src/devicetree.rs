//! Hardware discovery on aarch64: what the device tree says about this
//! machine ([`Platform`], which the boards name as `board::Platform`).
//!
//! Parsed with the `fdt-parser` crate (the one parser that reads every tree we
//! boot on correctly, including QEMU's modified Raspberry Pi tree). Each fact
//! falls back to the board table (`board::memory`) when the tree is absent or
//! silent, and remembers where it came from so the banner can say so.

use crate::board::memory as board;
use alloc::{string::String, vec::Vec};
use fdt_parser::base::Fdt;

/// Where a fact about the machine came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    DeviceTree,
    BoardTable,
}

impl Source {
    /// "device tree ..." or "board table", for the banner.
    pub fn describe(self, what_in_tree: &'static str) -> &'static str {
        match self {
            Source::DeviceTree => what_in_tree,
            Source::BoardTable => "board table: no device tree entry",
        }
    }
}

pub use crate::memory::region::MemoryRegion;

/// RAM the kernel must leave alone, and who said so.
#[derive(Clone, Debug)]
pub struct Reservation {
    pub region: MemoryRegion,
    /// Where it comes from, for the boot log: `/memreserve/`, the node name
    /// under `/reserved-memory`, the device tree blob, the board table.
    pub what: String,
    /// `no-map`: not even mapped (firmware's secure memory, for one), so no
    /// access, not even a speculative one, can reach it.
    pub no_map: bool,
}

/// The instruction that calls the PSCI firmware, as the `/psci` node's
/// `method` names it (Devicetree binding `arm,psci`: `"hvc"` or `"smc"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    Hvc,
    Smc,
}

/// How a secondary core is started, as its `/cpus/cpu@N` node's
/// `enable-method` says (Devicetree binding `arm/cpus.yaml`; Linux
/// `Documentation/arch/arm64/booting.rst`, "secondary CPUs").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnableMethod {
    /// `"psci"`: the firmware's `CPU_ON` (through the `/psci` node's conduit).
    Psci,
    /// `"spin-table"`: the core waits in a `wfe` loop, reading the 64-bit
    /// `cpu-release-addr` until it holds an entry point.
    SpinTable { release_address: usize },
    /// A spin table without its `cpu-release-addr`, or a method this kernel does
    /// not know (the string, for the report).
    Unusable(String),
}

/// One core the machine has, other than by being the boot core.
#[derive(Clone, Debug)]
pub struct Core {
    /// Its MPIDR_EL1 affinity fields (Aff3 in bits \[39:32\], Aff2..Aff0 in
    /// \[23:0\]), as the node's `reg` gives them.
    pub mpidr: u64,
    pub enable_method: EnableMethod,
}

/// The GICv2 register blocks.
#[derive(Clone, Copy, Debug)]
pub struct GicAddresses {
    pub distributor: usize,
    pub cpu_interface: usize,
}

/// Everything the kernel needs to know about the machine it runs on.
pub struct Platform {
    pub board_name: String,
    pub board_source: Source,
    pub ram: Vec<MemoryRegion>,
    pub ram_source: Source,
    pub uart_base: usize,
    pub uart_source: Source,
    /// The GIC INTID of the console UART's interrupt, from its node's
    /// `interrupts` (QEMU virt: SPI 1, INTID 33; Pi 4: SPI 121, INTID 153);
    /// `None` when the tree gives none (or there is no tree): the shell then
    /// cannot read the console and says so.
    pub uart_irq: Option<u32>,
    pub gic: GicAddresses,
    pub gic_source: Source,
    /// INTID of the EL1 virtual timer (a PPI).
    pub timer_irq: u32,
    pub timer_source: Source,
    /// `/chosen/bootargs`: QEMU's `-append`.
    pub bootargs: String,
    /// How to reach PSCI firmware (`/psci` `method`), if there is any.
    pub psci: Option<PsciConduit>,
    /// Where the loader's device tree is, if it passed one. Then every device
    /// comes from it: a device it does not describe is missing, not looked for
    /// at the board table's address ([`Platform::missing`]).
    pub tree: Option<usize>,
    /// RAM the frame allocator must not hand out: the device tree blob itself,
    /// `/memreserve/` ranges and `/reserved-memory` nodes (some of them `no-map`),
    /// or the board table's without a device tree.
    pub reserved: Vec<Reservation>,
    /// Every core the machine lists (the boot core among them), in the tree's
    /// order, or the board table's without a tree.
    pub cores: Vec<Core>,
    pub cores_source: Source,
    /// The framebuffer the board's firmware gave the console's screen, if any
    /// (`board/rpi4/screen.rs`): mapped by `mmu::enable`, outside the allocator.
    pub framebuffer: Option<MemoryRegion>,
}

/// Device tree header magic (Devicetree Specification v0.4, 5.2), big-endian.
const FDT_MAGIC: u32 = 0xd00d_feed;
/// Architected timer PPIs are numbered from 16 in the GIC's INTID space.
const PPI_INTID_BASE: u32 = 16;
/// First cell of a GIC interrupt specifier: 0 = SPI, 1 = PPI.
const GIC_SPECIFIER_PPI: u32 = 1;
/// ... and 0 for an SPI, numbered from 32 in the INTID space.
const GIC_SPECIFIER_SPI: u32 = 0;
const SPI_INTID_BASE: u32 = 32;
/// Index of the EL1 virtual timer in `arm,armv8-timer`'s `interrupts` (binding
/// order: secure phys, non-secure phys, virtual, hypervisor).
const VIRTUAL_TIMER_INTERRUPT_INDEX: usize = 2;
/// The EL1 virtual timer's PPI on every GIC-based board (SBSA: PPI 11 → INTID 27).
const DEFAULT_VIRTUAL_TIMER_INTID: u32 = 27;

impl Platform {
    /// What the device tree lacks that the kernel cannot run without, if it was
    /// given one: a PL011 for the console, a GICv2 for the timer's interrupt. The
    /// board table's addresses are a fallback for boots without a tree only; with
    /// one, writing to a guessed address could hit anything.
    pub fn missing(&self) -> Option<&'static str> {
        if self.tree.is_none() {
            None
        } else if self.uart_source == Source::BoardTable {
            Some("the device tree describes no PL011 UART (compatible \"arm,pl011\") for the console")
        } else if self.gic_source == Source::BoardTable {
            Some("the device tree describes no GICv2 (compatible \"arm,gic-400\", \"arm,cortex-a15-gic\") for the timer's interrupt")
        } else {
            None
        }
    }
}

/// Whether `dtb_addr` holds a device tree (the header magic), without parsing it.
pub fn present(dtb_addr: usize) -> bool {
    open_magic(dtb_addr)
}

/// Read the machine description from the device tree at `dtb_addr` (0 or garbage
/// means none), filling gaps from the board table.
pub fn discover(dtb_addr: usize) -> Platform {
    let mut platform = Platform {
        board_name: String::from(board::BOARD_NAME),
        board_source: Source::BoardTable,
        ram: alloc::vec![MemoryRegion { base: board::RAM_BASE, size: board::RAM_SIZE }],
        ram_source: Source::BoardTable,
        uart_base: board::UART_BASE,
        uart_source: Source::BoardTable,
        uart_irq: None,
        gic: GicAddresses { distributor: board::GIC_DISTRIBUTOR, cpu_interface: board::GIC_CPU_INTERFACE },
        gic_source: Source::BoardTable,
        timer_irq: DEFAULT_VIRTUAL_TIMER_INTID,
        timer_source: Source::BoardTable,
        bootargs: String::new(),
        psci: None,
        reserved: Vec::new(),
        tree: None,
        cores: board::CORES
            .iter()
            .map(|&(mpidr, release_address)| Core { mpidr, enable_method: EnableMethod::SpinTable { release_address } })
            .collect(),
        cores_source: Source::BoardTable,
        framebuffer: None,
    };
    match open(dtb_addr) {
        Some(fdt) => {
            platform.tree = Some(dtb_addr);
            read_tree(&fdt, &mut platform);
            platform.reserved.push(Reservation {
                region: MemoryRegion { base: dtb_addr, size: fdt.total_size() },
                what: String::from("the device tree blob"),
                no_map: false,
            });
        }
        None => platform.reserved.extend(board::FALLBACK_RESERVED.iter().map(|&(base, size, what)| Reservation {
            region: MemoryRegion { base, size },
            what: alloc::format!("board table: {}", what),
            no_map: false,
        })),
    }
    platform
}

/// A device tree at `dtb_addr`, if the header there is one.
pub fn open(dtb_addr: usize) -> Option<Fdt<'static>> {
    if !open_magic(dtb_addr) {
        return None;
    }
    // SAFETY: the magic matched, so this is a device tree blob the loader placed in
    // RAM for us; it stays there (it is reserved from the frame allocator).
    unsafe { Fdt::from_ptr(dtb_addr as *mut u8) }.ok()
}

/// Whether the device tree header magic is at `dtb_addr`.
fn open_magic(dtb_addr: usize) -> bool {
    if dtb_addr == 0 || !dtb_addr.is_multiple_of(8) {
        return false;
    }
    // SAFETY: boot code passes the loader's x0; the boot map covers RAM (the first
    // GiB of it at least, where loaders place the tree), so any 8-byte aligned RAM
    // address is readable. A loader that passed no tree leaves 0 or an ATAGS
    // pointer (raspi4b: 0x100), both in RAM; the magic check rejects them before
    // we trust anything else.
    u32::from_be(unsafe { core::ptr::read_volatile(dtb_addr as *const u32) }) == FDT_MAGIC
}

fn read_tree(fdt: &Fdt<'static>, platform: &mut Platform) {
    if let Some(Ok(root)) = fdt.all_nodes().next() {
        if let Ok(model) = root.find_property("model").and_then(|p| p.str()) {
            platform.board_name = String::from(model);
            platform.board_source = Source::DeviceTree;
        } else if let Ok(mut compatible) = root.compatibles() {
            if let Some(first) = compatible.next() {
                platform.board_name = String::from(first);
                platform.board_source = Source::DeviceTree;
            }
        }
    }

    let ram: Vec<MemoryRegion> = fdt
        .memory()
        .filter_map(Result::ok)
        .flat_map(|memory| memory.regions().filter_map(Result::ok).collect::<Vec<_>>())
        .filter(|region| region.size > 0)
        .map(|region| MemoryRegion { base: region.address as usize, size: region.size })
        .collect();
    if !ram.is_empty() {
        platform.ram = ram;
        platform.ram_source = Source::DeviceTree;
    }
    for block in fdt.memory_reservation_blocks() {
        platform.reserved.push(Reservation {
            region: MemoryRegion { base: block.address as usize, size: block.size },
            what: String::from("/memreserve/"),
            no_map: false,
        });
    }
    // Firmware describes its own memory as children of /reserved-memory (TF-A's
    // `atf@0` on a Pi 4, OP-TEE elsewhere): never handed out, and a `no-map`
    // one never mapped (Devicetree Specification v0.4, 3.5 "/reserved-memory
    // Node"). A child with `size` but no `reg` asks the OS to allocate a region
    // for a driver; none here needs one, so there is nothing to keep.
    for node in fdt.reserved_memory_regions().into_iter().flatten().filter_map(Result::ok) {
        // A disabled node describes nothing (Devicetree Specification, 2.3.4 "status").
        if matches!(node.status(), Ok(fdt_parser::Status::Disabled)) {
            continue;
        }
        let no_map = node.find_property("no-map").is_ok();
        for reg in node.reg().into_iter().flatten() {
            if let Some(size) = reg.size.filter(|&size| size > 0) {
                platform.reserved.push(Reservation {
                    region: MemoryRegion { base: reg.address as usize, size },
                    what: alloc::format!("/reserved-memory/{}", node.name()),
                    no_map,
                });
            }
        }
    }

    // The console: the PL011 `/chosen/stdout-path` names, else the first enabled
    // one. (A Pi 4's stdout-path names the mini UART, which this kernel does not
    // drive; its PL011 is on the same pins once config.txt says so.)
    let stdout = fdt
        .chosen()
        .ok()
        .and_then(|chosen| chosen.stdout().ok())
        .filter(|stdout| stdout.node.compatibles().is_ok_and(|mut names| names.any(|name| name == "arm,pl011")))
        .filter(|stdout| !matches!(stdout.node.status(), Ok(fdt_parser::Status::Disabled)))
        .and_then(|stdout| stdout.node.reg().ok()?.next())
        .map(|reg| reg.address as usize);
    if let Some(base) = stdout.or_else(|| first_reg(fdt, &["arm,pl011"], 0)) {
        platform.uart_base = base;
        platform.uart_source = Source::DeviceTree;
        platform.uart_irq = uart_intid(fdt, base);
    }

    const GICV2: &[&str] = &["arm,cortex-a15-gic", "arm,gic-400", "arm,cortex-a9-gic"];
    if let (Some(distributor), Some(cpu_interface)) = (first_reg(fdt, GICV2, 0), first_reg(fdt, GICV2, 1)) {
        platform.gic = GicAddresses { distributor, cpu_interface };
        platform.gic_source = Source::DeviceTree;
    }

    if let Some(intid) = virtual_timer_intid(fdt) {
        platform.timer_irq = intid;
        platform.timer_source = Source::DeviceTree;
    }

    platform.psci = fdt
        .find_compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
        .filter_map(Result::ok)
        .next()
        .and_then(|node| node.find_property("method").ok()?.str().ok())
        .and_then(|method| match method {
            "hvc" => Some(PsciConduit::Hvc),
            "smc" => Some(PsciConduit::Smc),
            _ => None,
        });

    let cores = cores(fdt);
    if !cores.is_empty() {
        platform.cores = cores;
        platform.cores_source = Source::DeviceTree;
    }

    if let Ok(bootargs) = fdt.chosen().and_then(|chosen| chosen.bootargs()) {
        platform.bootargs = String::from(bootargs);
    }
}

/// The `index`th `reg` address of the first enabled node compatible with any of
/// `compatible`, translated to a CPU physical address through the parents' `ranges`.
pub fn first_reg(fdt: &Fdt<'static>, compatible: &[&str], index: usize) -> Option<usize> {
    fdt.find_compatible(compatible)
        .filter_map(Result::ok)
        .find(|node| !matches!(node.status(), Ok(fdt_parser::Status::Disabled)))
        .and_then(|node| node.reg().ok()?.nth(index))
        .map(|reg| reg.address as usize)
}

/// The INTID of the PL011 at `base`: the first specifier of its `interrupts`
/// (`<kind number flags>`, a GIC SPI or PPI).
fn uart_intid(fdt: &Fdt<'static>, base: usize) -> Option<u32> {
    let uart = fdt
        .find_compatible(&["arm,pl011"])
        .filter_map(Result::ok)
        .find(|node| node.reg().ok().and_then(|mut reg| reg.next()).is_some_and(|reg| reg.address as usize == base))?;
    let specifier: Vec<u32> = uart.find_property("interrupts").ok()?.u32_list().take(2).collect();
    match specifier.as_slice() {
        [GIC_SPECIFIER_SPI, number] => number.checked_add(SPI_INTID_BASE),
        [GIC_SPECIFIER_PPI, number] => number.checked_add(PPI_INTID_BASE),
        _ => None,
    }
}

fn virtual_timer_intid(fdt: &Fdt<'static>) -> Option<u32> {
    let timer = fdt.find_compatible(&["arm,armv8-timer", "arm,armv7-timer"]).filter_map(Result::ok).next()?;
    // `interrupts` is a list of specifiers, each `#interrupt-cells` (3 for the GIC:
    // kind, number, flags) long; the kind is 1 for a PPI.
    let cells_per_interrupt = timer
        .interrupt_parent()
        .ok()
        .and_then(|gic| gic.find_property("#interrupt-cells").ok()?.u32().ok())
        .unwrap_or(3) as usize;
    let specifier: Vec<u32> = timer
        .find_property("interrupts")
        .ok()?
        .u32_list()
        .skip(VIRTUAL_TIMER_INTERRUPT_INDEX * cells_per_interrupt)
        .take(cells_per_interrupt)
        .collect();
    match specifier.as_slice() {
        [GIC_SPECIFIER_PPI, number, ..] => Some(number + PPI_INTID_BASE),
        _ => None,
    }
}

/// The `/cpus/cpu@N` nodes (`device_type = "cpu"`, not disabled): each one's
/// MPIDR affinity (`reg`, one or two cells as `/cpus` `#address-cells` says)
/// and how to start it (`enable-method`, and `cpu-release-addr` for a spin
/// table: always two cells, Devicetree binding `arm/cpus.yaml`).
fn cores(fdt: &Fdt<'static>) -> Vec<Core> {
    fdt.all_nodes()
        .filter_map(Result::ok)
        .filter(|node| node.parent_name() == Some("cpus") && node.name().starts_with("cpu@"))
        .filter(|node| node.find_property("device_type").and_then(|p| p.str()).is_ok_and(|kind| kind == "cpu"))
        .filter(|node| !matches!(node.status(), Ok(fdt_parser::Status::Disabled)))
        .filter_map(|node| {
            let cells: Vec<u32> = node.find_property("reg").ok()?.u32_list().collect();
            let mpidr = match cells.as_slice() {
                [aff] => *aff as u64,
                [high, low] => ((*high as u64) << 32) | *low as u64,
                _ => return None,
            };
            let method = node.find_property("enable-method").ok().and_then(|p| p.str().ok()).unwrap_or("");
            let enable_method = match method {
                "psci" => EnableMethod::Psci,
                "spin-table" => match node.find_property("cpu-release-addr").and_then(|p| p.u64()) {
                    Ok(address) => EnableMethod::SpinTable { release_address: address as usize },
                    Err(_) => EnableMethod::Unusable(String::from("spin-table without a cpu-release-addr")),
                },
                "" => EnableMethod::Unusable(String::from("no enable-method")),
                other => EnableMethod::Unusable(alloc::format!("enable-method \"{}\"", other)),
            };
            Some(Core { mpidr, enable_method })
        })
        .collect()
}
