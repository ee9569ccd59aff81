//! The contract's `Paging` trait: address spaces: translation tables and their
//! leaves ([`PageTable`], [`PageLeaf`]), the permissions a mapping may have
//! ([`Access`]), why a mapping fails ([`MapError`]), what the ELF loader and
//! the XOL page need to know about the instruction set, and making code the
//! kernel wrote visible to instruction fetch.
//!
//! The kernel identity maps physical memory for itself in every table, so a
//! frame's physical address is also the kernel's pointer to it (its *alias*):
//! user memory is read and written through that alias, never through a user
//! address.

use probe_core::cache::MaintenanceCount;

/// What a mapping may be used for. Each architecture turns one into its own
/// permission bits; there is deliberately no writable-and-executable member
/// (W^X), so no caller can ask for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Kernel code: read + execute, for the kernel only.
    KernelText,
    /// Kernel constants: read, for the kernel only.
    KernelReadOnly,
    /// Kernel data, stacks, heap, free RAM: read + write for the kernel only,
    /// never executable.
    KernelReadWrite,
    /// User code: user mode read + execute, never writable from user mode
    /// (the kernel writes it through its alias).
    UserText,
    /// User constants: user mode read, never executable.
    UserReadOnly,
    /// User data, bss and stacks: user mode read + write, never executable.
    UserReadWrite,
}

/// Why a mapping could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// No frame for a translation table (or, for a new user table, no free
    /// TLB tag).
    OutOfFrames,
    /// The range is already mapped (by a larger leaf, or by another page).
    AlreadyMapped(usize),
    /// The address is not page aligned, or beyond what the tables translate.
    BadAddress(usize),
}

/// A leaf mapping (a page, or a larger block) found by a walk of a
/// [`PageTable`], with the permissions the hardware would enforce for it.
pub trait PageLeaf: Copy {
    /// The first virtual address the leaf maps.
    fn va(&self) -> usize;
    /// The physical address (= the kernel's alias) that `va`, inside the
    /// leaf, maps to.
    fn translate(&self, va: usize) -> usize;
    /// Writable at some privilege level.
    fn writable(&self) -> bool;
    /// Executable at some privilege level.
    fn executable(&self) -> bool;
    /// Readable from user mode.
    fn user_readable(&self) -> bool;
    /// Writable from user mode.
    fn user_writable(&self) -> bool;
    /// Executable in user mode.
    fn user_executable(&self) -> bool;
}

/// One hierarchy of translation tables: the kernel's own, or a process's,
/// which shares the kernel's half and has a user half of its own.
pub trait PageTable: Sized {
    /// What [`PageTable::lookup`] and [`PageTable::for_each_leaf`] find.
    type Leaf: PageLeaf;

    /// A table for a new user address space: the kernel's mappings (kernel
    /// only, global) shared, the user half empty. On a machine whose TLB tags
    /// entries by address space, the table carries its tag.
    fn new_user() -> Result<Self, MapError>;
    /// Map `[va, va + len)` to `[pa, pa + len)` with `access`, using larger
    /// leaves where both addresses are aligned for them. Frames for new tables
    /// come from the frame allocator. The new entries are used only after
    /// [`Paging::publish_new_mappings`].
    fn map(&mut self, va: usize, pa: usize, len: usize, access: Access) -> Result<(), MapError>;
    /// The leaf that maps `va`, if any: a software walk of this table.
    fn lookup(&self, va: usize) -> Option<Self::Leaf>;
    /// Visit every leaf, in address order (the kernel's half too).
    fn for_each_leaf(&self, visit: impl FnMut(Self::Leaf));
    /// Make this table the live translation (a process switch). The kernel's
    /// mappings are identical in every table, so the kernel runs on.
    fn activate(&self);
    /// Free a table from [`PageTable::new_user`]: its user half's tables, its
    /// own, and its TLB tag with every entry cached under it. The mapped
    /// frames are the caller's. The table must not be live any more.
    fn free_user(self);
}

/// Address spaces: translation tables, and making written code visible to
/// instruction fetch.
pub trait Paging {
    /// This machine's translation tables.
    type Table: PageTable;

    /// The ELF `e_machine` of the programs this machine runs (ELF gABI:
    /// `EM_AARCH64` = 183, `EM_X86_64` = 62).
    const ELF_MACHINE: u16;
    /// The machine's name in the loader's refusal of another machine's
    /// program ("not an AArch64 program").
    const ELF_MACHINE_NAME: &'static str;

    /// The kernel's own table (the identity map, no user half).
    fn kernel_table() -> Self::Table;
    /// Make the table entries written so far visible to the table walker
    /// before user mode uses them.
    fn publish_new_mappings();
    /// Make instructions the kernel just wrote at `[kernel_address,
    /// kernel_address + len)` (an alias) visible to instruction fetch at every
    /// address that maps them; returns the cache lines maintained (none where
    /// instruction fetch is coherent with data writes).
    fn sync_instructions(kernel_address: usize, len: usize) -> MaintenanceCount;
}
