//! Arm Generic Interrupt Controller v2 (GIC-400 on the Pi 4, QEMU's `virt` GIC).
//!
//! Datasheet: Arm GIC Architecture Specification v2, chapter 4 "Programmers'
//! Model": 4.3 distributor registers, 4.4 CPU interface registers. Group 0
//! only; interrupts are enabled one by one with [`enable`], the tick timer's
//! with [`enable_tick`] and the console UART's with [`enable_console`], so
//! that the interrupt decoding (`arch::aarch64::exception`) can tell them from
//! the rest ([`is_tick`], [`is_console`]).
//!
//! Every core has its own CPU interface (the same addresses, banked per core)
//! and its own copy of the distributor's registers for INTIDs 0-31 (the SGIs
//! and PPIs: enable bits, priorities, targets; 4.3.1): the boot core sets up
//! the distributor with [`init`], each core its own interface with
//! [`init_this_core`] and its own SGI and PPI enables. Cores interrupt each
//! other with software-generated interrupts ([`send_sgi`], 4.3.15).

use core::sync::atomic::{AtomicU32, Ordering};
use spin::Once;
use tock_registers::{
    interfaces::{Readable, Writeable},
    register_bitfields, register_structs,
    registers::{InMemoryRegister, ReadOnly, ReadWrite, WriteOnly},
};

register_bitfields! {
    u32,
    /// GICD_CTLR / GICC_CTLR: the enable bit of group 0.
    CTLR [
        ENABLE OFFSET(0) NUMBITS(1) []
    ],
    /// GICC_PMR: interrupts with a priority value below this are signalled.
    PMR [
        PRIORITY OFFSET(0) NUMBITS(8) []
    ],
    /// GICC_IAR / GICC_EOIR (4.4.4, 4.4.5). For an SGI, CPUID names the core
    /// that sent it, and the EOIR write must carry the same value.
    IAR [
        CPUID OFFSET(10) NUMBITS(3) [],
        INTERRUPT_ID OFFSET(0) NUMBITS(10) []
    ],
    /// GICD_SGIR (4.3.15): raise SGI `SGI_INTID` on the CPU interfaces of
    /// `CPU_TARGET_LIST` (one bit each).
    SGIR [
        TARGET_LIST_FILTER OFFSET(24) NUMBITS(2) [
            /// Only the interfaces CPU_TARGET_LIST names.
            Listed = 0b00,
            /// Only the interface of the core that writes GICD_SGIR.
            ThisCore = 0b10
        ],
        CPU_TARGET_LIST OFFSET(16) NUMBITS(8) [],
        SGI_INTID OFFSET(0) NUMBITS(4) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    DistributorRegisters {
        (0x000 => CTLR: ReadWrite<u32, CTLR::Register>),
        (0x004 => _reserved0),
        (0x100 => ISENABLER: [ReadWrite<u32>; 32]),
        (0x180 => _reserved1),
        (0x400 => IPRIORITYR: [ReadWrite<u8>; 1024]),
        (0x800 => ITARGETSR: [ReadWrite<u8>; 1024]),
        (0xc00 => _reserved2),
        (0xf00 => SGIR: WriteOnly<u32, SGIR::Register>),
        (0xf04 => @END),
    }
}

register_structs! {
    #[allow(non_snake_case)]
    CpuInterfaceRegisters {
        (0x00 => CTLR: ReadWrite<u32, CTLR::Register>),
        (0x04 => PMR: ReadWrite<u32, PMR::Register>),
        (0x08 => _reserved0),
        (0x0c => IAR: ReadOnly<u32, IAR::Register>),
        (0x10 => EOIR: WriteOnly<u32, IAR::Register>),
        (0x14 => @END),
    }
}

struct Gic {
    distributor: &'static DistributorRegisters,
    cpu: &'static CpuInterfaceRegisters,
}

// SAFETY: `Gic` holds only the addresses of MMIO register blocks. The distributor
// and CPU interface registers used here are single-copy-atomic 32-bit accesses;
// the kernel touches them with interrupts masked (init, the IRQ handler).
unsafe impl Sync for Gic {}
// SAFETY: as above; the addresses are valid from any context.
unsafe impl Send for Gic {}

static GIC: Once<Gic> = Once::new();
/// The INTID the tick timer is wired to, once [`enable_tick`] has named it.
static TICK_INTID: AtomicU32 = AtomicU32::new(u32::MAX);

/// The INTID the console UART is wired to, once [`enable_console`] has named it.
static CONSOLE_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
/// SPIs (from INTID 32 on) go to the cores their ITARGETSR byte names.
const FIRST_SPI: u32 = 32;
/// ITARGETSR: CPU interface 0, the boot core.
const TARGET_BOOT_CORE: u8 = 1;

/// INTIDs 1020-1023 are special; 1023 means "nothing pending" (spurious).
pub const SPURIOUS: u32 = 1023;
/// Every interrupt gets this priority (lower = more urgent); the mask lets all through.
const DEFAULT_PRIORITY: u8 = 0x80;
const PRIORITY_MASK_ALL: u32 = 0xff;

pub fn init(distributor: usize, cpu_interface: usize) {
    let gic = GIC.call_once(|| Gic {
        // SAFETY: both addresses come from the device tree (or the board table), are
        // GICv2 register blocks and are mapped as device memory for the kernel's life.
        distributor: unsafe { &*(distributor as *const DistributorRegisters) },
        // SAFETY: as above.
        cpu: unsafe { &*(cpu_interface as *const CpuInterfaceRegisters) },
    });
    gic.distributor.CTLR.write(CTLR::ENABLE::SET);
    init_this_core();
}

/// Let interrupts through this core's CPU interface (GICC_PMR and GICC_CTLR
/// are banked: each core writes its own). The distributor is [`init`]'s.
pub fn init_this_core() {
    let gic = gic();
    gic.cpu.PMR.write(PMR::PRIORITY.val(PRIORITY_MASK_ALL));
    gic.cpu.CTLR.write(CTLR::ENABLE::SET);
}

/// This core's CPU interface, as a bit of an SGI's target list: what the
/// banked GICD_ITARGETSR0 returns to the core reading it (4.3.12: "each
/// field returns a value that corresponds only to the processor reading the
/// register"). A core's interface number is the GIC's wiring, not its
/// MPIDR nor the kernel's core index. On a GIC with one CPU interface the
/// register reads as zero; no SGI is ever sent there.
pub fn this_core_interface() -> u8 {
    gic().distributor.ITARGETSR[0].get()
}

/// Where a software-generated interrupt goes.
#[derive(Clone, Copy, Debug)]
pub enum SgiTarget {
    /// The CPU interfaces whose bits ([`this_core_interface`]) are set.
    Listed(u8),
    /// The core that sends it (a GIC with one CPU interface has no bit for it).
    ThisCore,
}

/// Raise software-generated interrupt `sgi` (0-15) on `target`. The caller
/// orders its earlier stores first (`DSB ISHST`): the write here is to
/// Device memory.
pub fn send_sgi(sgi: u32, target: SgiTarget) {
    let route = match target {
        SgiTarget::Listed(targets) => SGIR::TARGET_LIST_FILTER::Listed + SGIR::CPU_TARGET_LIST.val(targets as u32),
        SgiTarget::ThisCore => SGIR::TARGET_LIST_FILTER::ThisCore + SGIR::CPU_TARGET_LIST.val(0),
    };
    gic().distributor.SGIR.write(route + SGIR::SGI_INTID.val(sgi));
}

fn gic() -> &'static Gic {
    GIC.get().expect("GIC used before init")
}

/// Let interrupt `intid` through to this core. (SGIs and PPIs such as the timer
/// need no target, and their enable and priority are banked: each core enables
/// its own. An SPI is sent to the boot core. On a GIC with one CPU interface,
/// QEMU virt's with one core, ITARGETSR reads as zero and ignores writes: every
/// SPI goes to it.)
pub fn enable(intid: u32) {
    let gic = gic();
    gic.distributor.IPRIORITYR[intid as usize].set(DEFAULT_PRIORITY);
    if intid >= FIRST_SPI {
        gic.distributor.ITARGETSR[intid as usize].set(TARGET_BOOT_CORE);
    }
    gic.distributor.ISENABLER[(intid / 32) as usize].set(1 << (intid % 32));
}

/// Let the tick timer's interrupt `intid` through to this core, and remember
/// it as the tick's.
pub fn enable_tick(intid: u32) {
    TICK_INTID.store(intid, Ordering::Relaxed);
    enable(intid);
}

/// Let the tick timer's interrupt (named by [`enable_tick`] on the boot core)
/// through to this core: a PPI's enable is banked per core.
pub fn enable_tick_on_this_core() {
    let intid = TICK_INTID.load(Ordering::Relaxed);
    if intid != u32::MAX {
        enable(intid);
    }
}

/// Is `intid` the tick timer's?
pub fn is_tick(intid: u32) -> bool {
    intid == TICK_INTID.load(Ordering::Relaxed)
}

/// Let the console UART's interrupt `intid` through to this core, and
/// remember it as the console's. (The UART raises it only once the shell asks
/// for input: `Pl011::enable_receive_interrupts`.)
pub fn enable_console(intid: u32) {
    CONSOLE_INTID.store(intid, Ordering::Relaxed);
    enable(intid);
}

/// Is `intid` the console UART's?
pub fn is_console(intid: u32) -> bool {
    intid == CONSOLE_INTID.load(Ordering::Relaxed)
}

/// Whether the console UART's interrupt reaches a core ([`enable_console`]).
pub fn routes_console() -> bool {
    CONSOLE_INTID.load(Ordering::Relaxed) != u32::MAX
}

/// One acknowledged interrupt: the whole GICC_IAR value.
#[derive(Clone, Copy, Debug)]
pub struct Acknowledged(u32);

impl Acknowledged {
    /// The interrupt's INTID (`SPURIOUS` if none was pending).
    pub fn intid(self) -> u32 {
        InMemoryRegister::<u32, IAR::Register>::new(self.0).read(IAR::INTERRUPT_ID)
    }
}

/// Take the highest-priority pending interrupt (GICC_IAR).
pub fn acknowledge() -> Acknowledged {
    Acknowledged(gic().cpu.IAR.get())
}

/// Signal that handling `interrupt` is complete (GICC_EOIR), with the value
/// GICC_IAR gave: for an SGI the source core's CPUID is part of it, and an EOI
/// without it would not match the active interrupt (4.4.5).
pub fn end_of_interrupt(interrupt: Acknowledged) {
    gic().cpu.EOIR.set(interrupt.0);
}
