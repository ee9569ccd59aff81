//! Tests of [`sync_instructions`] against a small model of a machine whose
//! instruction fetch is not coherent with its data writes. QEMU does not model
//! caches, so this model is the only place where leaving out a step fails.
//!
//! The model keeps exactly the hazards the sequence exists for:
//!
//! - a write-back D-cache: the kernel's store sits in a dirty line until a
//!   `DC CVAU` (completed by a `DSB`) writes it to the point of unification
//!   (PoU), the only place the I-cache refills from;
//! - an I-cache that holds the old instruction until an `IC IVAU` (completed by
//!   a `DSB`) drops it, and that refills a dropped line *at any time*
//!   (prefetch, another core): the model refills it the moment the
//!   invalidation completes, which is the worst case the Arm ARM allows;
//! - no ordering between cleans and invalidations except a `DSB`: when one
//!   `DSB` completes both, the model completes the invalidations first (and
//!   refills from the still-stale PoU), then the cleans;
//! - a pipeline that already fetched the old instruction and keeps it until
//!   an `ISB`.

use super::*;
use std::{collections::BTreeMap, vec, vec::Vec};

const MEMORY_BYTES: usize = 0x2000;
const OLD: u32 = 0xd503_201f; // nop: what the text held
const NEW: u32 = 0xd420_0000 | (0x4d2 << 5); // brk #0x4d2: what the kernel writes

/// One maintenance operation, as the model logs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Clean(usize),
    Dsb,
    Invalidate(usize),
    InvalidateAll,
    Isb,
}

struct NonCoherentMachine {
    geometry: CacheGeometry,
    /// Memory as seen from the point of unification.
    pou: Vec<u8>,
    /// Dirty D-cache lines: line start -> bytes. Empty with IDC (the model
    /// then writes through to the PoU).
    dcache: BTreeMap<usize, Vec<u8>>,
    /// I-cache lines: index -> (physical line start, bytes), possibly stale.
    /// The index is the virtual line address the fetch used on a VIPT cache,
    /// the physical one on a PIPT cache. Unused with DIC (the model then
    /// fetches through the data side).
    icache: BTreeMap<usize, (usize, Vec<u8>)>,
    /// Whether the I-cache is virtually indexed (VIPT): a line filled through
    /// one virtual alias is not found through another.
    vipt: bool,
    pending_cleans: Vec<usize>,
    pending_invalidates: Vec<usize>,
    pending_invalidate_all: bool,
    /// Instructions this core fetched ahead: address -> word.
    pipeline: BTreeMap<usize, u32>,
    log: Vec<Op>,
}

impl NonCoherentMachine {
    /// A machine that ran the code at `addr` (so the old instruction is in
    /// its I-cache and pipeline) and on which the kernel just stored `NEW`.
    fn with_instruction_rewritten(geometry: CacheGeometry, addr: usize) -> Self {
        let mut machine = Self {
            geometry,
            pou: vec![0; MEMORY_BYTES],
            dcache: BTreeMap::new(),
            icache: BTreeMap::new(),
            vipt: false,
            pending_cleans: Vec::new(),
            pending_invalidates: Vec::new(),
            pending_invalidate_all: false,
            pipeline: BTreeMap::new(),
            log: Vec::new(),
        };
        for word in (0..MEMORY_BYTES).step_by(4) {
            machine.pou[word..word + 4].copy_from_slice(&OLD.to_le_bytes());
        }
        assert_eq!(machine.fetch(addr), OLD, "the program ran the old instruction");
        machine.store(addr, NEW);
        machine
    }

    fn dline(&self, addr: usize) -> usize {
        addr & !(self.geometry.dcache_line - 1)
    }

    fn iline(&self, addr: usize) -> usize {
        addr & !(self.geometry.icache_line - 1)
    }

    fn store(&mut self, addr: usize, word: u32) {
        if self.geometry.idc {
            self.pou[addr..addr + 4].copy_from_slice(&word.to_le_bytes());
            return;
        }
        let line = self.dline(addr);
        let size = self.geometry.dcache_line;
        let pou = &self.pou;
        let bytes = self.dcache.entry(line).or_insert_with(|| pou[line..line + size].to_vec());
        bytes[addr - line..addr - line + 4].copy_from_slice(&word.to_le_bytes());
    }

    /// What the data side reads: a dirty line if there is one, else the PoU.
    fn data_view(&self, addr: usize) -> u32 {
        let line = self.dline(addr);
        let bytes = match self.dcache.get(&line) {
            Some(bytes) => &bytes[addr - line..addr - line + 4],
            None => &self.pou[addr..addr + 4],
        };
        u32::from_le_bytes(bytes.try_into().unwrap())
    }

    /// Fetch the instruction at `addr` the way the core's front end does,
    /// through the kernel's identity mapping.
    fn fetch(&mut self, addr: usize) -> u32 {
        self.fetch_through(addr, addr)
    }

    /// Fetch the instruction at physical address `pa` through the virtual
    /// address `va` (a user's alias of the page the kernel writes through
    /// its own).
    fn fetch_through(&mut self, va: usize, pa: usize) -> u32 {
        if let Some(&word) = self.pipeline.get(&va) {
            return word;
        }
        let word = if self.geometry.dic {
            self.data_view(pa)
        } else {
            let index = if self.vipt { self.iline(va) } else { self.iline(pa) };
            if !self.icache.contains_key(&index) {
                let line = self.iline(pa);
                self.refill_icache(index, line);
            }
            let (line, bytes) = &self.icache[&index];
            let at = pa - line;
            u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
        };
        self.pipeline.insert(va, word);
        word
    }

    fn refill_icache(&mut self, index: usize, line: usize) {
        let size = self.geometry.icache_line;
        self.icache.insert(index, (line, self.pou[line..line + size].to_vec()));
    }
}

impl CacheMaintenance for NonCoherentMachine {
    fn clean_dcache_line_to_pou(&mut self, addr: usize) {
        self.log.push(Op::Clean(addr));
        self.pending_cleans.push(self.dline(addr));
    }

    fn data_synchronization_barrier(&mut self) {
        self.log.push(Op::Dsb);
        // Nothing orders the invalidations after the cleans within one DSB:
        // take the worst order. Each dropped I-line is refilled at once from
        // the PoU, as a prefetch on any core may do.
        let dropped: Vec<usize> = if core::mem::take(&mut self.pending_invalidate_all) {
            self.pending_invalidates.clear();
            self.icache.keys().copied().collect()
        } else {
            core::mem::take(&mut self.pending_invalidates)
        };
        for index in dropped {
            // An index no fetch ever filled has nothing to drop or refill.
            if let Some((line, _)) = self.icache.remove(&index) {
                self.refill_icache(index, line);
            }
        }
        for line in core::mem::take(&mut self.pending_cleans) {
            if let Some(bytes) = self.dcache.remove(&line) {
                self.pou[line..line + bytes.len()].copy_from_slice(&bytes);
            }
        }
    }

    fn invalidate_icache_line_to_pou(&mut self, addr: usize) {
        self.log.push(Op::Invalidate(addr));
        // By virtual address: on a VIPT cache only the line indexed by `addr`
        // itself, on a PIPT cache the physical line (the kernel's addresses
        // are physical ones).
        self.pending_invalidates.push(self.iline(addr));
    }

    fn invalidate_icache_all_to_pou(&mut self) {
        self.log.push(Op::InvalidateAll);
        self.pending_invalidate_all = true;
    }

    fn instruction_synchronization_barrier(&mut self) {
        self.log.push(Op::Isb);
        self.pipeline.clear();
    }
}

/// The steps of the sequence, to leave one out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    CleanLine(usize),
    FirstDsb,
    InvalidateLine(usize),
    SecondDsb,
    Isb,
}

/// Passes every operation to the machine except the one step it drops.
struct Omitting<'a> {
    machine: &'a mut NonCoherentMachine,
    omit: Step,
    dsbs_seen: usize,
}

impl CacheMaintenance for Omitting<'_> {
    fn clean_dcache_line_to_pou(&mut self, addr: usize) {
        if self.omit != Step::CleanLine(addr) {
            self.machine.clean_dcache_line_to_pou(addr);
        }
    }

    fn data_synchronization_barrier(&mut self) {
        self.dsbs_seen += 1;
        let this = if self.dsbs_seen == 1 { Step::FirstDsb } else { Step::SecondDsb };
        if self.omit != this {
            self.machine.data_synchronization_barrier();
        }
    }

    fn invalidate_icache_line_to_pou(&mut self, addr: usize) {
        if self.omit != Step::InvalidateLine(addr) {
            self.machine.invalidate_icache_line_to_pou(addr);
        }
    }

    fn invalidate_icache_all_to_pou(&mut self) {
        self.machine.invalidate_icache_all_to_pou();
    }

    fn instruction_synchronization_barrier(&mut self) {
        if self.omit != Step::Isb {
            self.machine.instruction_synchronization_barrier();
        }
    }
}

const A72: CacheGeometry =
    CacheGeometry { dcache_line: 64, icache_line: 64, idc: false, dic: false, icache_aliasing: false };
const ADDR: usize = 0x1044;

/// Rewrite the instruction at `ADDR`, run the sequence leaving out `omit`
/// (or nothing), and return what the core then fetches.
fn fetch_after(geometry: CacheGeometry, omit: Option<Step>) -> u32 {
    let mut machine = NonCoherentMachine::with_instruction_rewritten(geometry, ADDR);
    match omit {
        None => {
            sync_instructions(&mut machine, geometry, ADDR, 4);
        }
        Some(omit) => {
            let mut ops = Omitting { machine: &mut machine, omit, dsbs_seen: 0 };
            sync_instructions(&mut ops, geometry, ADDR, 4);
        }
    }
    machine.fetch(ADDR)
}

#[test]
fn full_sequence_makes_the_new_instruction_visible() {
    assert_eq!(fetch_after(A72, None), NEW);
}

#[test]
fn full_sequence_issues_the_operations_in_the_architected_order() {
    let mut machine = NonCoherentMachine::with_instruction_rewritten(A72, ADDR);
    sync_instructions(&mut machine, A72, ADDR, 4);
    assert_eq!(machine.log, [Op::Clean(0x1040), Op::Dsb, Op::Invalidate(0x1040), Op::Dsb, Op::Isb]);
}

#[test]
fn without_the_dcache_clean_the_fetch_sees_the_old_instruction() {
    assert_eq!(fetch_after(A72, Some(Step::CleanLine(0x1040))), OLD);
}

#[test]
fn without_the_dsb_between_clean_and_invalidate_the_fetch_sees_the_old_instruction() {
    assert_eq!(fetch_after(A72, Some(Step::FirstDsb)), OLD);
}

#[test]
fn without_the_icache_invalidate_the_fetch_sees_the_old_instruction() {
    assert_eq!(fetch_after(A72, Some(Step::InvalidateLine(0x1040))), OLD);
}

#[test]
fn without_the_dsb_after_the_invalidate_the_fetch_sees_the_old_instruction() {
    assert_eq!(fetch_after(A72, Some(Step::SecondDsb)), OLD);
}

#[test]
fn without_the_isb_the_fetch_sees_the_old_instruction() {
    assert_eq!(fetch_after(A72, Some(Step::Isb)), OLD);
}

#[test]
fn a_write_straddling_two_lines_needs_both_lines_maintained() {
    // 8 bytes at 0x103c: the first word ends data line 0x1000, the second
    // starts line 0x1040.
    let geometry = A72;
    let run = |omit: Option<Step>| {
        let mut machine = NonCoherentMachine::with_instruction_rewritten(geometry, 0x103c);
        assert_eq!(machine.fetch(0x1040), OLD);
        machine.store(0x1040, NEW);
        let count = match omit {
            None => sync_instructions(&mut machine, geometry, 0x103c, 8),
            Some(omit) => {
                let mut ops = Omitting { machine: &mut machine, omit, dsbs_seen: 0 };
                sync_instructions(&mut ops, geometry, 0x103c, 8)
            }
        };
        (count, machine.fetch(0x103c), machine.fetch(0x1040))
    };
    let (count, first, second) = run(None);
    assert_eq!(count, MaintenanceCount { dc_cvau_lines: 2, ic_ivau_lines: 2, ic_iallu: 0 });
    assert_eq!((first, second), (NEW, NEW));
    assert_eq!(run(Some(Step::CleanLine(0x1040))).1, NEW);
    assert_eq!(run(Some(Step::CleanLine(0x1040))).2, OLD);
    assert_eq!(run(Some(Step::InvalidateLine(0x1000))).1, OLD);
    assert_eq!(run(Some(Step::InvalidateLine(0x1000))).2, NEW);
}

#[test]
fn idc_skips_the_clean_and_still_works_on_a_machine_that_has_it() {
    let geometry = CacheGeometry { idc: true, ..A72 };
    let mut machine = NonCoherentMachine::with_instruction_rewritten(geometry, ADDR);
    let count = sync_instructions(&mut machine, geometry, ADDR, 4);
    assert_eq!(count, MaintenanceCount { dc_cvau_lines: 0, ic_ivau_lines: 1, ic_iallu: 0 });
    assert_eq!(machine.fetch(ADDR), NEW);
    assert!(!machine.log.iter().any(|op| matches!(op, Op::Clean(_))));
}

#[test]
fn dic_skips_the_invalidate_and_still_works_on_a_machine_that_has_it() {
    let geometry = CacheGeometry { dic: true, ..A72 };
    let mut machine = NonCoherentMachine::with_instruction_rewritten(geometry, ADDR);
    let count = sync_instructions(&mut machine, geometry, ADDR, 4);
    assert_eq!(count, MaintenanceCount { dc_cvau_lines: 1, ic_ivau_lines: 0, ic_iallu: 0 });
    assert_eq!(machine.fetch(ADDR), NEW);
    // Even a fully coherent fetcher needs the ISB for what it already fetched.
    assert_eq!(machine.log, [Op::Clean(0x1040), Op::Dsb, Op::Dsb, Op::Isb]);
}

#[test]
fn believing_idc_or_dic_on_a_machine_without_them_fails() {
    // The skips are only correct because the hardware said so.
    let machine_geometry = A72;
    for lie in [CacheGeometry { idc: true, ..A72 }, CacheGeometry { dic: true, ..A72 }] {
        let mut machine = NonCoherentMachine::with_instruction_rewritten(machine_geometry, ADDR);
        sync_instructions(&mut machine, lie, ADDR, 4);
        assert_eq!(machine.fetch(ADDR), OLD, "{lie:?}");
    }
}

/// Records operations without modelling anything, to count lines.
#[derive(Default)]
struct Recorder(Vec<Op>);

impl CacheMaintenance for Recorder {
    fn clean_dcache_line_to_pou(&mut self, addr: usize) {
        self.0.push(Op::Clean(addr));
    }
    fn data_synchronization_barrier(&mut self) {
        self.0.push(Op::Dsb);
    }
    fn invalidate_icache_line_to_pou(&mut self, addr: usize) {
        self.0.push(Op::Invalidate(addr));
    }
    fn invalidate_icache_all_to_pou(&mut self) {
        self.0.push(Op::InvalidateAll);
    }
    fn instruction_synchronization_barrier(&mut self) {
        self.0.push(Op::Isb);
    }
}

fn count(geometry: CacheGeometry, addr: usize, len: usize) -> (MaintenanceCount, Vec<Op>) {
    let mut recorder = Recorder::default();
    let count = sync_instructions(&mut recorder, geometry, addr, len);
    (count, recorder.0)
}

#[test]
fn one_instruction_inside_a_line_is_one_line_each_side() {
    let (lines, ops) = count(A72, 0x1000, 4);
    assert_eq!(lines, MaintenanceCount { dc_cvau_lines: 1, ic_ivau_lines: 1, ic_iallu: 0 });
    assert_eq!(ops, [Op::Clean(0x1000), Op::Dsb, Op::Invalidate(0x1000), Op::Dsb, Op::Isb]);
    // The last word of a line is still one line.
    assert_eq!(count(A72, 0x103c, 4).0, MaintenanceCount { dc_cvau_lines: 1, ic_ivau_lines: 1, ic_iallu: 0 });
}

#[test]
fn ranges_straddling_lines_count_every_line_touched() {
    let small_icache = CacheGeometry { dcache_line: 64, icache_line: 32, ..A72 };
    // 0x1038..0x1048: D-lines 0x1000, 0x1040; I-lines 0x1020, 0x1040.
    let (lines, ops) = count(small_icache, 0x1038, 16);
    assert_eq!(lines, MaintenanceCount { dc_cvau_lines: 2, ic_ivau_lines: 2, ic_iallu: 0 });
    assert_eq!(
        ops,
        [
            Op::Clean(0x1000),
            Op::Clean(0x1040),
            Op::Dsb,
            Op::Invalidate(0x1020),
            Op::Invalidate(0x1040),
            Op::Dsb,
            Op::Isb
        ]
    );
    // A whole 4 KiB page: 64 lines of 64 bytes, 128 of 32.
    assert_eq!(
        count(small_icache, 0x2000, 4096).0,
        MaintenanceCount { dc_cvau_lines: 64, ic_ivau_lines: 128, ic_iallu: 0 }
    );
    // One byte past a page boundary adds a line.
    assert_eq!(count(A72, 0x2000, 4097).0, MaintenanceCount { dc_cvau_lines: 65, ic_ivau_lines: 65, ic_iallu: 0 });
}

#[test]
fn an_empty_range_does_nothing() {
    let (lines, ops) = count(A72, 0x1000, 0);
    assert_eq!(lines, MaintenanceCount::default());
    assert!(ops.is_empty());
}

#[test]
fn a_range_at_the_top_of_the_address_space_does_not_overflow() {
    let (lines, _) = count(A72, usize::MAX - 3, 4);
    assert_eq!(lines, MaintenanceCount { dc_cvau_lines: 1, ic_ivau_lines: 1, ic_iallu: 0 });
}

#[test]
fn idc_and_dic_skip_the_lines_but_keep_the_barriers() {
    let both = CacheGeometry { idc: true, dic: true, ..A72 };
    let (lines, ops) = count(both, 0x1000, 64);
    assert_eq!(lines, MaintenanceCount::default());
    assert_eq!(ops, [Op::Dsb, Op::Dsb, Op::Isb]);
}

#[test]
fn ctr_el0_decodes_line_sizes_and_flags() {
    // A Cortex-A72's CTR_EL0: DminLine = IminLine = 4 (64 bytes), no IDC/DIC.
    let a72 = CacheGeometry::from_ctr_el0(0x8444_c004);
    assert_eq!(a72, A72);
    // Neoverse N1 style: IDC and DIC set, 64-byte lines.
    let n1 = CacheGeometry::from_ctr_el0(0x8444_c004 | 1 << 28 | 1 << 29);
    assert!(n1.idc && n1.dic);
    // IminLine = 3: 32-byte I-lines.
    assert_eq!(CacheGeometry::from_ctr_el0(0x8444_c003).icache_line, 32);
}

// ---- an I-cache that may alias (CTR_EL0.L1Ip VIPT) ----

/// Where the user's mapping of the page is: another virtual address for the
/// same physical bytes the kernel writes through its own (identity) alias.
const USER_ALIAS: usize = 0x10_0000;

/// A machine whose user thread ran the old instruction at `ADDR` through its
/// alias `ADDR + USER_ALIAS`, after which the kernel stored the new one through
/// its own; `vipt` says whether the I-cache is virtually indexed.
fn user_fetch_after(machine_is_vipt: bool, geometry: CacheGeometry) -> (u32, MaintenanceCount) {
    let mut machine = NonCoherentMachine::with_instruction_rewritten(A72, ADDR);
    machine.vipt = machine_is_vipt;
    machine.geometry = geometry;
    machine.icache.clear();
    machine.pipeline.clear();
    assert_eq!(machine.fetch_through(ADDR + USER_ALIAS, ADDR), OLD, "the user ran the old instruction");
    machine.pipeline.clear(); // the kernel's exception return in between
    let count = sync_instructions(&mut machine, geometry, ADDR, 4);
    (machine.fetch_through(ADDR + USER_ALIAS, ADDR), count)
}

#[test]
fn on_a_vipt_icache_invalidating_by_the_kernel_alias_leaves_the_user_alias_stale() {
    // What the sequence did before it read CTR_EL0.L1Ip: IC IVAU by the
    // kernel's address. The user's line is indexed by the user's address.
    assert_eq!(user_fetch_after(true, A72).0, OLD);
}

#[test]
fn on_a_vipt_icache_the_whole_invalidate_reaches_the_user_alias() {
    let aliasing = CacheGeometry { icache_aliasing: true, ..A72 };
    let (word, count) = user_fetch_after(true, aliasing);
    assert_eq!(word, NEW);
    assert_eq!(count, MaintenanceCount { dc_cvau_lines: 1, ic_ivau_lines: 0, ic_iallu: 1 });
    let (_, ops) = self::count(aliasing, ADDR, 4);
    assert_eq!(ops, [Op::Clean(0x1040), Op::Dsb, Op::InvalidateAll, Op::Dsb, Op::Isb]);
}

#[test]
fn on_a_pipt_icache_invalidating_by_the_kernel_alias_is_enough() {
    let (word, count) = user_fetch_after(false, A72);
    assert_eq!(word, NEW);
    assert_eq!(count, MaintenanceCount { dc_cvau_lines: 1, ic_ivau_lines: 1, ic_iallu: 0 });
}

#[test]
fn ctr_el0_l1ip_says_whether_the_icache_may_alias() {
    // A Cortex-A72's CTR_EL0 (TRM 4.3.22): L1Ip = 0b11 (PIPT).
    let a72 = 0x8444_c004u64;
    assert!(!CacheGeometry::from_ctr_el0(a72).icache_aliasing);
    let with_l1ip = |l1ip: u64| CacheGeometry::from_ctr_el0((a72 & !(0b11 << L1IP_SHIFT)) | l1ip << L1IP_SHIFT);
    assert!(with_l1ip(0b10).icache_aliasing, "VIPT");
    assert!(with_l1ip(0b01).icache_aliasing, "AIVIVT");
    assert!(!with_l1ip(0b00).icache_aliasing, "VPIPT");
    assert_eq!(
        [l1ip_name(0b11), l1ip_name(0b10), l1ip_name(0b01), l1ip_name(0b00)],
        ["PIPT", "VIPT", "AIVIVT", "VPIPT"]
    );
}
