//! AArch64 MMU (the contract's `Paging`): stage 1 translation tables for EL1&0,
//! 4 KiB granule, 39-bit virtual addresses.
//!
//! With TCR_EL1.T0SZ = 25 the walk starts at level 1: VA\[38:30\] indexes the L1
//! table (1 GiB per entry), VA\[29:21\] the L2 table (2 MiB), VA\[20:12\] the L3
//! table (4 KiB). The kernel is identity mapped (VA = PA) through TTBR0_EL1, with
//! per-section permissions; RAM and MMIO are mapped as found in the device tree.
//! TTBR1_EL1 is not used (TCR_EL1.EPD1 = 1).
//!
//! Every user table carries an ASID of its own, which tags its (non-global)
//! TLB entries: a process switch writes TTBR0_EL1 and flushes nothing, and a
//! table's ASID is flushed and given back when the table is freed.

use super::memory_layout as layout;
use crate::{
    arch::{Access, MapError, PageLeaf, PageTable, Paging},
    devicetree::{MemoryRegion, Platform},
    memory::{frames, PAGE_SIZE},
};
use aarch64_cpu::{
    asm::barrier,
    registers::{ID_AA64MMFR0_EL1, MAIR_EL1, PAR_EL1, SCTLR_EL1, TCR_EL1, TTBR0_EL1},
};
use probe_core::cache::MaintenanceCount;
use spin::{Mutex, Once};
use tock_registers::{
    interfaces::{ReadWriteable, Readable, Writeable},
    register_bitfields,
    registers::InMemoryRegister,
};

register_bitfields! {
    u64,
    /// A stage 1 VMSAv8-64 descriptor, 4 KiB granule (Arm ARM D8.3): table, block
    /// (L1/L2) and page (L3) descriptors share these fields.
    pub DESCRIPTOR [
        /// Unprivileged (EL0) execute-never.
        UXN OFFSET(54) NUMBITS(1) [],
        /// Privileged (EL1) execute-never.
        PXN OFFSET(53) NUMBITS(1) [],
        /// Output address bits [47:12] (next table, block or page).
        OUTPUT_ADDR OFFSET(12) NUMBITS(36) [],
        /// Not global: the TLB entry belongs to one ASID (user mappings).
        NG OFFSET(11) NUMBITS(1) [],
        /// Access flag. There is no hardware AF management here, so a mapping
        /// without it faults on first use: always set.
        AF OFFSET(10) NUMBITS(1) [],
        SH OFFSET(8) NUMBITS(2) [
            InnerShareable = 0b11
        ],
        /// Access permissions AP[2:1].
        AP OFFSET(6) NUMBITS(2) [
            El1ReadWrite = 0b00,
            El1El0ReadWrite = 0b01,
            El1ReadOnly = 0b10,
            El1El0ReadOnly = 0b11
        ],
        /// Index into MAIR_EL1 (see `MAIR_DEVICE` / `MAIR_NORMAL`).
        ATTR_INDEX OFFSET(2) NUMBITS(3) [],
        /// At L1/L2: 0 = block, 1 = next-level table. At L3: must be 1 (page).
        TYPE OFFSET(1) NUMBITS(1) [
            Block = 0,
            TableOrPage = 1
        ],
        VALID OFFSET(0) NUMBITS(1) []
    ]
}

/// MAIR_EL1 slot 0: Device-nGnRE, for MMIO.
pub(super) const MAIR_DEVICE: u64 = 0;
/// MAIR_EL1 slot 1: Normal memory, write-back read/write-allocate, for RAM.
pub(super) const MAIR_NORMAL: u64 = 1;

/// TCR_EL1.T0SZ: the TTBR0 region is 2^(64 - 25) = 512 GiB, starting the walk at L1.
const T0SZ: u64 = 25;
const ENTRIES_PER_TABLE: usize = PAGE_SIZE / 8;
const L1_SHIFT: u32 = 30;
const L2_SHIFT: u32 = 21;
const L3_SHIFT: u32 = 12;
const BLOCK_2M: usize = 1 << L2_SHIFT;
/// The highest VA + 1 that TTBR0 translates.
pub const VA_LIMIT: usize = 1 << (64 - T0SZ);
/// The end of the kernel's half of TTBR0 (the user half starts there).
pub const KERNEL_VA_LIMIT: usize = brk_abi::layout::USER_BASE as usize;
/// The first L1 entry of the user half (`brk_abi::layout::USER_BASE` = 256 GiB);
/// entries below it are the kernel's identity map, shared by every address space.
const USER_L1_FIRST: usize = brk_abi::layout::USER_BASE as usize >> L1_SHIFT;
const _: () = assert!(brk_abi::layout::USER_END as usize == VA_LIMIT);

/// ASIDs in use (8-bit ASIDs: TCR_EL1.AS = 0; ASID 0 is the kernel's own table).
static ASIDS: Mutex<[bool; 256]> = Mutex::new([false; 256]);

/// A free ASID for a new user table, marked used.
fn allocate_asid() -> Option<u16> {
    let mut used = ASIDS.lock();
    let free = (1..used.len()).find(|&asid| !used[asid])?;
    used[free] = true;
    Some(free as u16)
}

/// Make new table entries visible to the walker before EL0 uses them.
pub fn publish_new_mappings() {
    barrier::dsb(barrier::ISHST);
    barrier::isb(barrier::SY);
}

/// Drop every TLB entry tagged with `asid` (its mappings are going away).
fn flush_asid(asid: u16) {
    let operand = (asid as u64) << 48;
    barrier::dsb(barrier::ISHST);
    // SAFETY: TLBI ASIDE1IS only invalidates cached translations of that ASID.
    unsafe { core::arch::asm!("tlbi aside1is, {}", in(reg) operand, options(nostack)) };
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
}

/// What a leaf maps: memory with one of the contract's accesses, or device
/// registers (the kernel's map only). Each is one combination of AP, UXN, PXN
/// and memory type, so "writable and executable" cannot be asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attributes {
    Memory(Access),
    /// Device registers: EL1 read + write, device memory, never executable.
    Device,
}

impl Attributes {
    fn descriptor_fields(self) -> tock_registers::fields::FieldValue<u64, DESCRIPTOR::Register> {
        use DESCRIPTOR::*;
        let normal = ATTR_INDEX.val(MAIR_NORMAL) + SH::InnerShareable;
        match self {
            // Kernel code: EL1 read + execute.
            Attributes::Memory(Access::KernelText) => normal + AP::El1ReadOnly + UXN::SET,
            Attributes::Memory(Access::KernelReadOnly) => normal + AP::El1ReadOnly + UXN::SET + PXN::SET,
            Attributes::Memory(Access::KernelReadWrite) => normal + AP::El1ReadWrite + UXN::SET + PXN::SET,
            Attributes::Device => ATTR_INDEX.val(MAIR_DEVICE) + AP::El1ReadWrite + UXN::SET + PXN::SET,
            // User mappings are not global (NG): their TLB entries carry the ASID.
            // User code: EL0 and EL1 read, EL0 execute (never EL1: PXN).
            Attributes::Memory(Access::UserText) => normal + NG::SET + AP::El1El0ReadOnly + PXN::SET,
            Attributes::Memory(Access::UserReadOnly) => normal + NG::SET + AP::El1El0ReadOnly + UXN::SET + PXN::SET,
            Attributes::Memory(Access::UserReadWrite) => normal + NG::SET + AP::El1El0ReadWrite + UXN::SET + PXN::SET,
        }
    }
}

/// A leaf mapping found by a walk: the block or page at `va`, raw descriptor `descriptor`.
#[derive(Clone, Copy, Debug)]
pub struct Leaf {
    pub va: usize,
    pub descriptor: u64,
}

impl Leaf {
    fn field(&self) -> InMemoryRegister<u64, DESCRIPTOR::Register> {
        InMemoryRegister::new(self.descriptor)
    }
    /// The output address: the block's or page's physical address.
    fn output_address(&self) -> usize {
        (self.field().read(DESCRIPTOR::OUTPUT_ADDR) as usize) << L3_SHIFT
    }
}

impl PageLeaf for Leaf {
    #[inline]
    fn va(&self) -> usize {
        self.va
    }
    #[inline]
    fn translate(&self, va: usize) -> usize {
        self.output_address() + (va - self.va)
    }
    /// AP\[2\] clear.
    #[inline]
    fn writable(&self) -> bool {
        matches!(
            self.field().read_as_enum(DESCRIPTOR::AP),
            Some(DESCRIPTOR::AP::Value::El1ReadWrite) | Some(DESCRIPTOR::AP::Value::El1El0ReadWrite)
        )
    }
    /// PXN or UXN clear.
    #[inline]
    fn executable(&self) -> bool {
        let field = self.field();
        !field.is_set(DESCRIPTOR::PXN) || !field.is_set(DESCRIPTOR::UXN)
    }
    /// AP\[1\] set.
    #[inline]
    fn user_readable(&self) -> bool {
        matches!(
            self.field().read_as_enum(DESCRIPTOR::AP),
            Some(DESCRIPTOR::AP::Value::El1El0ReadWrite) | Some(DESCRIPTOR::AP::Value::El1El0ReadOnly)
        )
    }
    #[inline]
    fn user_writable(&self) -> bool {
        matches!(self.field().read_as_enum(DESCRIPTOR::AP), Some(DESCRIPTOR::AP::Value::El1El0ReadWrite))
    }
    /// UXN clear.
    #[inline]
    fn user_executable(&self) -> bool {
        !self.field().is_set(DESCRIPTOR::UXN)
    }
}

/// One translation table hierarchy, identified by the physical address of its
/// L1 table, and the ASID its non-global entries are tagged with (0 for the
/// kernel's). Tables live in identity-mapped RAM, so a table's physical
/// address is also the kernel's pointer to it.
#[derive(Clone, Copy, Debug)]
pub struct TranslationTable {
    l1: usize,
    asid: u16,
}

fn table_entries(table: usize) -> &'static mut [u64; ENTRIES_PER_TABLE] {
    // SAFETY: `table` is a frame owned by a TranslationTable (allocated zeroed by
    // `frames::alloc_zeroed` and never freed while mapped), identity mapped for EL1.
    // Table edits happen with interrupts masked or before other users exist.
    unsafe { &mut *(table as *mut [u64; ENTRIES_PER_TABLE]) }
}

fn index(va: usize, shift: u32) -> usize {
    (va >> shift) & (ENTRIES_PER_TABLE - 1)
}

fn table_descriptor(next: usize) -> u64 {
    use DESCRIPTOR::*;
    (VALID::SET + TYPE::TableOrPage + OUTPUT_ADDR.val((next >> L3_SHIFT) as u64)).value
}

fn leaf_descriptor(pa: usize, attributes: Attributes, is_page: bool) -> u64 {
    use DESCRIPTOR::*;
    let kind = if is_page { TYPE::TableOrPage } else { TYPE::Block };
    (VALID::SET + kind + AF::SET + OUTPUT_ADDR.val((pa >> L3_SHIFT) as u64) + attributes.descriptor_fields()).value
}

fn is_valid(entry: u64) -> bool {
    entry & 1 != 0
}
fn is_table(entry: u64) -> bool {
    entry & 0b11 == 0b11
}
fn next_table(entry: u64) -> usize {
    Leaf { va: 0, descriptor: entry }.output_address()
}

impl TranslationTable {
    /// An empty table for the kernel's own map (ASID 0).
    fn new() -> Result<Self, MapError> {
        Ok(Self { l1: frames::alloc_zeroed().ok_or(MapError::OutOfFrames)?, asid: 0 })
    }

    /// The value for TTBR0_EL1.BADDR.
    fn root(&self) -> usize {
        self.l1
    }

    /// The next-level table under `table[idx]`, created if the entry is empty.
    fn descend(table: usize, idx: usize, va: usize) -> Result<usize, MapError> {
        let entries = table_entries(table);
        let entry = entries[idx];
        if !is_valid(entry) {
            let next = frames::alloc_zeroed().ok_or(MapError::OutOfFrames)?;
            entries[idx] = table_descriptor(next);
            Ok(next)
        } else if is_table(entry) {
            Ok(next_table(entry))
        } else {
            Err(MapError::AlreadyMapped(va))
        }
    }

    /// Map `[va, va + len)` to `[pa, pa + len)` with `attributes`, using 2 MiB
    /// blocks where both addresses are 2 MiB aligned and 4 KiB pages elsewhere.
    fn map_with(&mut self, va: usize, pa: usize, len: usize, attributes: Attributes) -> Result<(), MapError> {
        if !va.is_multiple_of(PAGE_SIZE) || !pa.is_multiple_of(PAGE_SIZE) {
            return Err(MapError::BadAddress(va));
        }
        let end = va.checked_add(len.next_multiple_of(PAGE_SIZE)).ok_or(MapError::BadAddress(va))?;
        if end > VA_LIMIT {
            return Err(MapError::BadAddress(va));
        }
        let (mut va, mut pa) = (va, pa);
        while va < end {
            let l2 = Self::descend(self.l1, index(va, L1_SHIFT), va)?;
            let use_block = va % BLOCK_2M == 0 && pa % BLOCK_2M == 0 && end - va >= BLOCK_2M;
            if use_block && !is_valid(table_entries(l2)[index(va, L2_SHIFT)]) {
                table_entries(l2)[index(va, L2_SHIFT)] = leaf_descriptor(pa, attributes, false);
                va += BLOCK_2M;
                pa += BLOCK_2M;
                continue;
            }
            let l3 = Self::descend(l2, index(va, L2_SHIFT), va)?;
            let slot = &mut table_entries(l3)[index(va, L3_SHIFT)];
            if is_valid(*slot) {
                return Err(MapError::AlreadyMapped(va));
            }
            *slot = leaf_descriptor(pa, attributes, true);
            va += PAGE_SIZE;
            pa += PAGE_SIZE;
        }
        Ok(())
    }
}

impl PageTable for TranslationTable {
    type Leaf = Leaf;

    /// The kernel's L1 entries (the identity map of RAM and devices, EL1-only,
    /// global) are shared, the user half is empty; the table gets a free ASID.
    fn new_user() -> Result<Self, MapError> {
        let asid = allocate_asid().ok_or(MapError::OutOfFrames)?;
        let Ok(mut table) = Self::new() else {
            ASIDS.lock()[asid as usize] = false;
            return Err(MapError::OutOfFrames);
        };
        table.asid = asid;
        let kernel = table_entries(kernel_table().l1);
        table_entries(table.l1)[..USER_L1_FIRST].copy_from_slice(&kernel[..USER_L1_FIRST]);
        Ok(table)
    }

    fn map(&mut self, va: usize, pa: usize, len: usize, access: Access) -> Result<(), MapError> {
        self.map_with(va, pa, len, Attributes::Memory(access))
    }

    #[inline]
    fn lookup(&self, va: usize) -> Option<Leaf> {
        if va >= VA_LIMIT {
            return None;
        }
        let mut table = self.l1;
        for shift in [L1_SHIFT, L2_SHIFT, L3_SHIFT] {
            let entry = table_entries(table)[index(va, shift)];
            if !is_valid(entry) {
                return None;
            }
            if shift == L3_SHIFT || !is_table(entry) {
                let size = 1usize << shift;
                return Some(Leaf { va: va & !(size - 1), descriptor: entry });
            }
            table = next_table(entry);
        }
        None
    }

    fn for_each_leaf(&self, mut visit: impl FnMut(Leaf)) {
        for (i1, &e1) in table_entries(self.l1).iter().enumerate() {
            if !is_valid(e1) {
                continue;
            }
            let va1 = i1 << L1_SHIFT;
            if !is_table(e1) {
                visit(Leaf { va: va1, descriptor: e1 });
                continue;
            }
            for (i2, &e2) in table_entries(next_table(e1)).iter().enumerate() {
                if !is_valid(e2) {
                    continue;
                }
                let va2 = va1 | (i2 << L2_SHIFT);
                if !is_table(e2) {
                    visit(Leaf { va: va2, descriptor: e2 });
                    continue;
                }
                for (i3, &e3) in table_entries(next_table(e2)).iter().enumerate() {
                    if is_valid(e3) {
                        visit(Leaf { va: va2 | (i3 << L3_SHIFT), descriptor: e3 });
                    }
                }
            }
        }
    }

    /// TTBR0_EL1 with the table's ASID: entries of other ASIDs stay in the TLB
    /// but no longer match.
    fn activate(&self) {
        TTBR0_EL1.write(TTBR0_EL1::ASID.val(self.asid as u64) + TTBR0_EL1::BADDR.val((self.root() >> 1) as u64));
        barrier::isb(barrier::SY);
    }

    fn free_user(self) {
        flush_asid(self.asid);
        for &e1 in &table_entries(self.l1)[USER_L1_FIRST..] {
            if is_valid(e1) && is_table(e1) {
                for &e2 in table_entries(next_table(e1)).iter() {
                    if is_valid(e2) && is_table(e2) {
                        frames::free(next_table(e2));
                    }
                }
                frames::free(next_table(e1));
            }
        }
        frames::free(self.l1);
        ASIDS.lock()[self.asid as usize] = false;
    }
}

static KERNEL_TABLE: Once<TranslationTable> = Once::new();

/// The kernel's translation table (identity map of kernel, RAM and devices).
pub fn kernel_table() -> TranslationTable {
    *KERNEL_TABLE.get().expect("MMU not set up yet")
}

/// Map one range of the kernel map, stopping boot with a clear message on failure.
fn map_or_die(table: &mut TranslationTable, start: usize, end: usize, attributes: Attributes, what: &str) {
    if end <= start {
        return;
    }
    if let Err(error) = table.map_with(start, start, end - start, attributes) {
        panic!("cannot map {} [{:#x}, {:#x}) as {:?}: {:?}", what, start, end, attributes, error);
    }
}

/// Build the kernel's identity map and turn the MMU and caches on.
pub fn enable(platform: &Platform) {
    let mut table = TranslationTable::new().expect("no frame for the first translation table");

    // The kernel image, section by section (bounds from linker/kernel-common.ld).
    let (start, text_end, rodata_end) = (layout::kernel_start(), layout::text_end(), layout::rodata_end());
    let (guard, stack_bottom, end) = (layout::stack_guard(), layout::stack_bottom(), layout::kernel_end());
    map_or_die(&mut table, start, text_end, Attributes::Memory(Access::KernelText), "kernel text");
    map_or_die(&mut table, text_end, rodata_end, Attributes::Memory(Access::KernelReadOnly), "kernel rodata");
    map_or_die(&mut table, rodata_end, guard, Attributes::Memory(Access::KernelReadWrite), "kernel data/bss");
    // [guard, stack_bottom) stays unmapped: a boot stack overflow faults here.
    map_or_die(&mut table, stack_bottom, end, Attributes::Memory(Access::KernelReadWrite), "boot stack");

    // All other RAM, read/write and never executable, except what firmware
    // marked `no-map` in /reserved-memory: no access may reach that, not even a
    // speculative one through a mapping nobody uses.
    let holes: alloc::vec::Vec<MemoryRegion> = platform
        .reserved
        .iter()
        .filter(|r| r.no_map)
        .map(|r| r.region)
        .chain(core::iter::once(layout::kernel_image()))
        .collect();
    for ram in &platform.ram {
        for piece in frames::pages_without(*ram, &holes) {
            map_or_die(&mut table, piece.base, piece.end(), Attributes::Memory(Access::KernelReadWrite), "RAM");
        }
    }

    // The screen's framebuffer, like RAM (drivers/framebuffer.rs cleans what it
    // draws to the point of coherency); pages inside RAM are mapped already.
    if let Some(framebuffer) = platform.framebuffer {
        let start = framebuffer.base & !(PAGE_SIZE - 1);
        for page in (start..framebuffer.end()).step_by(PAGE_SIZE) {
            if table.lookup(page).is_none() {
                map_or_die(
                    &mut table,
                    page,
                    page + PAGE_SIZE,
                    Attributes::Memory(Access::KernelReadWrite),
                    "framebuffer",
                );
            }
        }
    }

    // Devices: the console and the interrupt controller, a 64 KiB window each.
    const DEVICE_WINDOW: usize = 64 * 1024;
    for device in [platform.uart_base, platform.gic.distributor, platform.gic.cpu_interface] {
        let base = device & !(PAGE_SIZE - 1);
        for page in (base..base + DEVICE_WINDOW).step_by(PAGE_SIZE) {
            if table.lookup(page).is_none() {
                map_or_die(&mut table, page, page + PAGE_SIZE, Attributes::Device, "device");
            }
        }
    }

    KERNEL_TABLE.call_once(|| table);
    switch_on(&table);
}

/// MAIR_EL1 and TCR_EL1 as every table of this kernel needs them: the boot map
/// and the kernel's own table are walked with the same settings.
fn configure_translation() {
    MAIR_EL1.write(
        MAIR_EL1::Attr0_Device::nonGathering_nonReordering_EarlyWriteAck
            + MAIR_EL1::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL1::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc,
    );
    // The physical address size the walker may output: as much as the CPU has.
    let pa_range = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange).min(0b101);
    TCR_EL1.write(
        TCR_EL1::T0SZ.val(T0SZ)
            + TCR_EL1::TG0::KiB_4
            + TCR_EL1::SH0::Inner
            + TCR_EL1::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL1::EPD0::EnableTTBR0Walks
            + TCR_EL1::EPD1::DisableTTBR1Walks
            + TCR_EL1::IPS.val(pa_range),
    );
}

/// Turn the MMU and the caches on with the boot map (`boot_map.rs`) at `root`.
///
/// # Safety
/// The MMU must be off, and `root` a level-1 table that identity maps the kernel
/// image, its stack and everything the code after it touches.
pub(super) unsafe fn enable_boot_map(root: usize) {
    configure_translation();
    TTBR0_EL1.set_baddr(root as u64);
    // SAFETY: `tlbi vmalle1` drops this regime's TLB entries, of which none may be
    // used: whatever was cached before the MMU was on is stale.
    unsafe { core::arch::asm!("tlbi vmalle1", options(nostack)) };
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
    SCTLR_EL1.modify(SCTLR_EL1::M::Enable + SCTLR_EL1::C::Cacheable + SCTLR_EL1::I::Cacheable);
    barrier::isb(barrier::SY);
    // Instructions fetched (and cached) before the I-cache was on may be stale.
    // SAFETY: `ic iallu` only invalidates this core's instruction cache.
    unsafe { core::arch::asm!("ic iallu", options(nostack)) };
    barrier::dsb(barrier::NSH);
    barrier::isb(barrier::SY);
}

/// Replace the boot map with `table`, the kernel's own, and add the checks the
/// boot map could not have (WXN, SA0).
fn switch_on(table: &TranslationTable) {
    configure_translation();
    // The boot map holds 1 GiB and 2 MiB blocks where the new table has pages:
    // with both in the TLB at once the CPU may take a TLB conflict abort (Arm
    // ARM D8.16.1, break-before-make). So the MMU goes off for the few
    // instructions of the switch, which touch no memory: TTBR0, `TLBI`, then
    // the MMU on again with the new table. The table writes are ordered first.
    barrier::dsb(barrier::ISH);
    let root = TTBR0_EL1::BADDR.val((table.root() >> 1) as u64).value;
    // SAFETY: the kernel's table identity maps everything the boot map did that
    // the kernel still uses (its image, stack, heap, RAM and devices), so the
    // code after the switch runs on; between the two SCTLR writes nothing but
    // these registers is touched, so no access depends on the translation.
    unsafe {
        core::arch::asm!(
            "mrs {sctlr}, sctlr_el1",
            "bic {off}, {sctlr}, #1",
            "msr sctlr_el1, {off}",
            "isb",
            "msr ttbr0_el1, {root}",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            "msr sctlr_el1, {sctlr}",
            "isb",
            sctlr = out(reg) _,
            off = out(reg) _,
            root = in(reg) root,
            options(nostack),
        );
    }

    // WXN: any writable page is also execute-never, whatever its descriptor says,
    // a hardware backstop for the W^X rule the table builder already follows.
    // SA0: an EL0 load or store through a misaligned SP faults (as on Linux), so
    // a corrupted user stack pointer is reported instead of silently used.
    SCTLR_EL1.modify(SCTLR_EL1::WXN::Enable + SCTLR_EL1::SA0::Enable);
    barrier::isb(barrier::SY);
    // WXN may be held in TLB entries (Arm ARM D8.4.1.2): drop any made before it.
    // SAFETY: as above, only this regime's TLB entries.
    unsafe { core::arch::asm!("tlbi vmalle1", options(nostack)) };
    barrier::dsb(barrier::ISH);
    barrier::isb(barrier::SY);
}

/// The translation registers another core turns its MMU on with, as
/// `[MAIR_EL1, TCR_EL1, TTBR0_EL1, SCTLR_EL1]`: this core's MAIR, TCR and
/// SCTLR (caches and MMU on, WXN, SA0: whatever [`enable`] set), and TTBR0
/// naming the kernel's own table with ASID 0 (this core may be running a
/// process's). `boot.s` (`secondary_entry`) loads them in the order
/// [`enable_boot_map`] does (`TLBI VMALLE1`, `DSB`, `ISB`, SCTLR, `ISB`,
/// `IC IALLU`), before the core touches its stack: with its MMU off its
/// stores would go around the caches, under lines other cores may hold.
pub fn translation_for_other_cores() -> [u64; 4] {
    let root = TTBR0_EL1::BADDR.val((kernel_table().root() >> 1) as u64).value;
    [MAIR_EL1.get(), TCR_EL1.get(), root, SCTLR_EL1.get()]
}

/// The kernel map's leaf at `va`, if it maps it.
pub fn kernel_table_leaf(va: usize) -> Option<Leaf> {
    kernel_table().lookup(va)
}

/// An access to ask the MMU about with an AT instruction.
#[derive(Clone, Copy, Debug)]
pub enum AccessCheck {
    El1Read,
    El1Write,
}

/// Would this access at `va` succeed? Asks the hardware walker (`AT S1E1R/W`),
/// which reads the live tables and permissions, and reports PAR_EL1.F.
pub fn hardware_check(va: usize, access: AccessCheck) -> bool {
    let par: u64;
    // SAFETY: AT only performs a translation and writes PAR_EL1; it cannot fault.
    // The ISB makes the PAR_EL1 result visible to the following read.
    unsafe {
        match access {
            AccessCheck::El1Read => {
                core::arch::asm!("at s1e1r, {va}", "isb", "mrs {par}, par_el1", va = in(reg) va, par = out(reg) par, options(nostack))
            }
            AccessCheck::El1Write => {
                core::arch::asm!("at s1e1w, {va}", "isb", "mrs {par}, par_el1", va = in(reg) va, par = out(reg) par, options(nostack))
            }
        }
    }
    let par: InMemoryRegister<u64, PAR_EL1::Register> = InMemoryRegister::new(par);
    !par.is_set(PAR_EL1::F) // F: the translation failed
}

/// Address spaces, as the contract's `Paging` describes them.
impl Paging for super::Machine {
    type Table = TranslationTable;

    const ELF_MACHINE: u16 = elf::abi::EM_AARCH64;
    const ELF_MACHINE_NAME: &'static str = "AArch64";

    fn kernel_table() -> TranslationTable {
        kernel_table()
    }

    fn publish_new_mappings() {
        publish_new_mappings();
    }

    /// `DC CVAU`, `DSB ISH`, `IC IVAU`, `DSB ISH`, `ISB` (`cache.rs`): the
    /// kernel's alias and the user's address may share no I-cache line.
    #[inline]
    fn sync_instructions(kernel_address: usize, len: usize) -> MaintenanceCount {
        super::cache::sync_instructions(kernel_address, len)
    }
}
