//! x86_64 paging (the contract's `Paging`, and the tables `board/uefi_pc/memory.rs` builds):
//! 4-level tables, 4 KiB pages and 2 MiB large pages, 48-bit addresses.
//!
//! A virtual address splits into PML4 index \[47:39\], PDPT index \[38:30\], PD
//! index \[29:21\], PT index \[20:12\] and the page offset \[11:0\]. Everything this
//! kernel uses lies in the first PML4 entry (the low 512 GiB), split at the
//! PDPT level exactly like the aarch64 kernel's L1 table:
//!
//! | PDPT entries | range | what |
//! | --- | --- | --- |
//! | 0 .. 256 | 0 .. 256 GiB | identity map of physical memory, ring 0 only, global |
//! | 256 .. 512 | 256 .. 512 GiB | the process: `brk_abi::layout::USER_BASE` up |
//!
//! Every process gets its own PML4 and PDPT; the PDPT's kernel entries are
//! copied from the kernel's, so all processes share the kernel's page
//! directories. Kernel mappings are global (CR4.PGE) and survive the CR3 write of a
//! process switch; user mappings are not, and that write flushes them.
//!
//! Permissions: x86 has no "writable and executable for nobody" bit pair like
//! aarch64's AP/PXN/UXN; a page is writable if R/W is set at every level,
//! user-accessible if U/S is set at every level, and executable unless NX is
//! set at some level (EFER.NXE on). The `Access` enum has no writable and
//! executable member, and `for_each_leaf` reports the effective permissions
//! so the W^X audit sees what the hardware would enforce.
//!
//! x86 keeps instruction fetch coherent with data writes, even through
//! another linear address (Intel SDM vol. 3A, 12.6 "Self-Modifying Code"),
//! and the `iretq` back to ring 3 is serializing: code the kernel writes
//! through its alias needs no cache maintenance (aarch64 needs `DC CVAU` /
//! `IC IVAU` there).

use crate::{
    arch::{Access, MapError, PageLeaf, PageTable, Paging},
    memory::{frames, region::PAGE_SIZE},
};
use probe_core::cache::MaintenanceCount;
use x86_64::{
    registers::control::{Cr3, Cr3Flags},
    structures::paging::{PageTableFlags as Flags, PhysFrame},
    PhysAddr,
};

const ENTRIES_PER_TABLE: usize = PAGE_SIZE / 8;
const PML4_SHIFT: u32 = 39;
const PDPT_SHIFT: u32 = 30;
const PD_SHIFT: u32 = 21;
const PT_SHIFT: u32 = 12;
/// A PD entry with PS set maps 2 MiB.
pub const LARGE_PAGE: usize = 1 << PD_SHIFT;
/// Bits \[51:12\] of an entry: the physical address of the next table or page.
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
/// The highest VA + 1 this kernel uses: the first PML4 entry (512 GiB).
pub const VA_LIMIT: usize = 1 << PML4_SHIFT;
/// The first PDPT entry of the user half (`brk_abi::layout::USER_BASE` = 256 GiB).
const USER_PDPT_FIRST: usize = brk_abi::layout::USER_BASE as usize >> PDPT_SHIFT;
const _: () = assert!(brk_abi::layout::USER_END as usize == VA_LIMIT);
/// The identity map must end below the user half.
pub const IDENTITY_LIMIT: usize = brk_abi::layout::USER_BASE as usize;

/// The leaf entry flags for `access`: kernel mappings are global, user ones
/// are not (a CR3 write flushes them).
fn leaf_flags(access: Access) -> Flags {
    let kernel = Flags::PRESENT | Flags::GLOBAL;
    let user = Flags::PRESENT | Flags::USER_ACCESSIBLE;
    match access {
        Access::KernelText => kernel,
        Access::KernelReadOnly => kernel | Flags::NO_EXECUTE,
        Access::KernelReadWrite => kernel | Flags::WRITABLE | Flags::NO_EXECUTE,
        Access::UserText => user,
        Access::UserReadOnly => user | Flags::NO_EXECUTE,
        Access::UserReadWrite => user | Flags::WRITABLE | Flags::NO_EXECUTE,
    }
}

/// A leaf mapping found by a walk, with the permissions in effect after
/// combining every level on the way down.
#[derive(Clone, Copy, Debug)]
pub struct Leaf {
    /// The first address the leaf maps.
    pub va: usize,
    /// The physical address of the leaf's first byte.
    pub pa: usize,
    writable: bool,
    user: bool,
    executable: bool,
}

impl PageLeaf for Leaf {
    #[inline]
    fn va(&self) -> usize {
        self.va
    }
    #[inline]
    fn translate(&self, va: usize) -> usize {
        self.pa + (va - self.va)
    }
    #[inline]
    fn writable(&self) -> bool {
        self.writable
    }
    #[inline]
    fn executable(&self) -> bool {
        self.executable
    }
    #[inline]
    fn user_readable(&self) -> bool {
        self.user
    }
    #[inline]
    fn user_writable(&self) -> bool {
        self.user && self.writable
    }
    #[inline]
    fn user_executable(&self) -> bool {
        self.user && self.executable
    }
}

/// One 4-level hierarchy, named by the physical address of its PML4. Tables
/// live in identity-mapped RAM, so that address is also the kernel's pointer.
#[derive(Clone, Copy, Debug)]
pub struct TranslationTable {
    pml4: usize,
}

fn table_entries(table: usize) -> &'static mut [u64; ENTRIES_PER_TABLE] {
    // SAFETY: `table` is a frame owned by a TranslationTable (allocated zeroed by
    // `frames::alloc_zeroed`, never freed while reachable), identity mapped for
    // ring 0. Table edits happen with interrupts masked on the one core.
    unsafe { &mut *(table as *mut [u64; ENTRIES_PER_TABLE]) }
}

fn index(va: usize, shift: u32) -> usize {
    (va >> shift) & (ENTRIES_PER_TABLE - 1)
}

fn flags_of(entry: u64) -> Flags {
    Flags::from_bits_truncate(entry)
}
fn is_present(entry: u64) -> bool {
    flags_of(entry).contains(Flags::PRESENT)
}
fn is_large(entry: u64) -> bool {
    flags_of(entry).contains(Flags::HUGE_PAGE)
}
fn next_table(entry: u64) -> usize {
    (entry & ADDRESS_MASK) as usize
}

/// Flags of a table entry that points to the next level: permissions are the
/// leaf's business, so intermediate entries allow everything (writable, no NX)
/// and only add U/S in the user half, where ring 3 must pass every level.
fn table_flags(va: usize) -> Flags {
    let mut flags = Flags::PRESENT | Flags::WRITABLE;
    if va >= brk_abi::layout::USER_BASE as usize {
        flags |= Flags::USER_ACCESSIBLE;
    }
    flags
}

impl TranslationTable {
    /// An empty table for the kernel's own map.
    pub fn new() -> Result<Self, MapError> {
        Ok(Self { pml4: frames::alloc_zeroed().ok_or(MapError::OutOfFrames)? })
    }

    /// The physical address for CR3.
    fn root(&self) -> usize {
        self.pml4
    }

    /// The next-level table under `table[idx]`, created if the entry is empty.
    fn descend(table: usize, idx: usize, va: usize) -> Result<usize, MapError> {
        let entries = table_entries(table);
        let entry = entries[idx];
        if !is_present(entry) {
            let next = frames::alloc_zeroed().ok_or(MapError::OutOfFrames)?;
            entries[idx] = next as u64 | table_flags(va).bits();
            Ok(next)
        } else if is_large(entry) {
            Err(MapError::AlreadyMapped(va))
        } else {
            Ok(next_table(entry))
        }
    }

    fn walk(&self, table: usize, shift: u32, base: usize, inherited: (bool, bool, bool), visit: &mut dyn FnMut(Leaf)) {
        for (i, &entry) in table_entries(table).iter().enumerate() {
            if !is_present(entry) {
                continue;
            }
            let flags = flags_of(entry);
            let permissions = (
                inherited.0 && flags.contains(Flags::WRITABLE),
                inherited.1 && flags.contains(Flags::USER_ACCESSIBLE),
                inherited.2 && !flags.contains(Flags::NO_EXECUTE),
            );
            let va = base | (i << shift);
            if shift == PT_SHIFT || (shift != PML4_SHIFT && is_large(entry)) {
                let (writable, user, executable) = permissions;
                visit(Leaf { va, pa: next_table(entry), writable, user, executable });
            } else {
                self.walk(next_table(entry), shift - 9, va, permissions, visit);
            }
        }
    }
}

impl PageTable for TranslationTable {
    type Leaf = Leaf;

    /// A table for a user address space: a PML4 and PDPT of its own, the
    /// PDPT's kernel entries (identity map, stack window) copied from the
    /// kernel's, so the page directories below them are shared.
    fn new_user() -> Result<Self, MapError> {
        let table = Self::new()?;
        let pdpt = match frames::alloc_zeroed() {
            Some(pdpt) => pdpt,
            None => {
                frames::free(table.pml4);
                return Err(MapError::OutOfFrames);
            }
        };
        let kernel_pdpt = next_table(table_entries(kernel_table().pml4)[0]);
        table_entries(pdpt)[..USER_PDPT_FIRST].copy_from_slice(&table_entries(kernel_pdpt)[..USER_PDPT_FIRST]);
        table_entries(table.pml4)[0] = pdpt as u64 | table_flags(brk_abi::layout::USER_BASE as usize).bits();
        Ok(table)
    }

    /// Map `[va, va + len)` to `[pa, pa + len)`, with 2 MiB pages where both
    /// addresses are 2 MiB aligned and 4 KiB pages elsewhere.
    fn map(&mut self, va: usize, pa: usize, len: usize, access: Access) -> Result<(), MapError> {
        if !va.is_multiple_of(PAGE_SIZE) || !pa.is_multiple_of(PAGE_SIZE) {
            return Err(MapError::BadAddress(va));
        }
        let end = va.checked_add(len.next_multiple_of(PAGE_SIZE)).ok_or(MapError::BadAddress(va))?;
        if end > VA_LIMIT {
            return Err(MapError::BadAddress(va));
        }
        let flags = leaf_flags(access);
        let (mut va, mut pa) = (va, pa);
        while va < end {
            let pdpt = Self::descend(self.pml4, index(va, PML4_SHIFT), va)?;
            let pd = Self::descend(pdpt, index(va, PDPT_SHIFT), va)?;
            let large = va.is_multiple_of(LARGE_PAGE) && pa.is_multiple_of(LARGE_PAGE) && end - va >= LARGE_PAGE;
            if large && !is_present(table_entries(pd)[index(va, PD_SHIFT)]) {
                table_entries(pd)[index(va, PD_SHIFT)] = pa as u64 | (flags | Flags::HUGE_PAGE).bits();
                va += LARGE_PAGE;
                pa += LARGE_PAGE;
                continue;
            }
            let pt = Self::descend(pd, index(va, PD_SHIFT), va)?;
            let slot = &mut table_entries(pt)[index(va, PT_SHIFT)];
            if is_present(*slot) {
                return Err(MapError::AlreadyMapped(va));
            }
            *slot = pa as u64 | flags.bits();
            va += PAGE_SIZE;
            pa += PAGE_SIZE;
        }
        Ok(())
    }

    #[inline]
    fn lookup(&self, va: usize) -> Option<Leaf> {
        if va >= VA_LIMIT {
            return None;
        }
        let (mut writable, mut user, mut executable) = (true, true, true);
        let mut table = self.pml4;
        for shift in [PML4_SHIFT, PDPT_SHIFT, PD_SHIFT, PT_SHIFT] {
            let entry = table_entries(table)[index(va, shift)];
            if !is_present(entry) {
                return None;
            }
            let flags = flags_of(entry);
            writable &= flags.contains(Flags::WRITABLE);
            user &= flags.contains(Flags::USER_ACCESSIBLE);
            executable &= !flags.contains(Flags::NO_EXECUTE);
            let is_leaf = shift == PT_SHIFT || (shift != PML4_SHIFT && is_large(entry));
            if is_leaf {
                let size = 1usize << shift;
                return Some(Leaf { va: va & !(size - 1), pa: next_table(entry), writable, user, executable });
            }
            table = next_table(entry);
        }
        None
    }

    /// Visit every present leaf, in VA order, with its effective permissions.
    fn for_each_leaf(&self, mut visit: impl FnMut(Leaf)) {
        self.walk(self.pml4, PML4_SHIFT, 0, (true, true, true), &mut visit);
    }

    /// A CR3 write: it flushes the previous process's non-global entries, so
    /// no address-space tag is needed (PCIDs stay off).
    fn activate(&self) {
        let frame = PhysFrame::containing_address(PhysAddr::new(self.root() as u64));
        // SAFETY: every table shares the kernel's identity map and stack window,
        // so the code, stack and data in use stay mapped across the switch.
        unsafe { Cr3::write(frame, Cr3Flags::empty()) };
    }

    /// Free the user half's tables, the PDPT and the PML4. The mapped frames
    /// belong to the caller. The table must not be in CR3 any more.
    fn free_user(self) {
        let pdpt = next_table(table_entries(self.pml4)[0]);
        for &pdpt_entry in &table_entries(pdpt)[USER_PDPT_FIRST..] {
            if is_present(pdpt_entry) && !is_large(pdpt_entry) {
                for &pd_entry in table_entries(next_table(pdpt_entry)).iter() {
                    if is_present(pd_entry) && !is_large(pd_entry) {
                        frames::free(next_table(pd_entry));
                    }
                }
                frames::free(next_table(pdpt_entry));
            }
        }
        frames::free(pdpt);
        frames::free(self.pml4);
    }
}

static KERNEL_TABLE: spin::Once<TranslationTable> = spin::Once::new();

/// The kernel's table (identity map and stack window, no user half).
pub fn kernel_table() -> TranslationTable {
    *KERNEL_TABLE.get().expect("paging not set up yet")
}

/// Remember `table` as the kernel's and load it.
pub fn install_kernel_table(table: TranslationTable) {
    KERNEL_TABLE.call_once(|| table);
    table.activate();
}

/// Make the zeroed page at `pml4` a PML4 that maps what the kernel's does:
/// its first entry, the only one the kernel uses, is the kernel's. The
/// application processors' start code loads it with a 32-bit MOV to CR3,
/// which the kernel's own PML4 may lie too high for (`smp.rs`).
pub fn share_kernel_map(pml4: usize) {
    let kernel = table_entries(kernel_table().pml4)[0];
    let entries = table_entries(pml4);
    entries.fill(0);
    entries[0] = kernel;
}

/// Load the kernel's table on this core (an application processor leaving
/// its start code's PML4).
pub fn kernel_table_on_this_core() {
    kernel_table().activate();
}

/// Address spaces, as the contract's `Paging` describes them.
impl Paging for super::Machine {
    type Table = TranslationTable;

    const ELF_MACHINE: u16 = elf::abi::EM_X86_64;
    const ELF_MACHINE_NAME: &'static str = "x86_64";

    fn kernel_table() -> TranslationTable {
        kernel_table()
    }

    /// Nothing to do: x86's walker reads entries through the caches and never
    /// caches a not-present entry, so a new mapping needs no fence and no TLB
    /// flush (aarch64 needs `DSB ISHST` and `ISB` here).
    fn publish_new_mappings() {}

    /// Nothing to do: see the module comment.
    #[inline]
    fn sync_instructions(_kernel_address: usize, _len: usize) -> MaintenanceCount {
        MaintenanceCount::default()
    }
}
