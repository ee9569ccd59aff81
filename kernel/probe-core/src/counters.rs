//! The counters of the brk path: one atomic per step of a hit, shared by every
//! core, and [`Snapshot`], a plain copy for reports. The field names are the
//! JSON field names of `--report` (issue 4), so they are spelled exactly so.
//!
//! Who counts what: the core counts what it decides (slot reuse, writes and
//! waits in [`crate::xol::choose_slot`], skipped return probes in
//! [`crate::retstack::ReturnStack::push`]); the kernel counts what it does
//! (hits, simulated, stepped, and the cache lines it maintained, with
//! [`Counters::add_maintenance`]).

use crate::cache::MaintenanceCount;
use core::sync::atomic::{AtomicU64, Ordering};

/// The live counters. The kernel keeps one in a `static`.
///
/// Every update is `Relaxed`: a counter orders nothing, and a report that reads
/// them while hits go on may see one counter a hit ahead of another.
#[derive(Debug, Default)]
pub struct Counters {
    /// `brk` traps that resolved to a live probe.
    pub hits: AtomicU64,
    /// Hits whose instruction was simulated (one exception, no XOL slot).
    pub simulated: AtomicU64,
    /// Hits whose instruction was single-stepped in an XOL slot.
    pub stepped: AtomicU64,
    /// Steps whose slot already held the instruction: no write, no maintenance.
    pub slot_reused: AtomicU64,
    /// Steps that had to write the instruction into the slot (and maintain it).
    pub slot_written: AtomicU64,
    /// Data cache lines cleaned to the point of unification (`DC CVAU`).
    pub dc_cvau_lines: AtomicU64,
    /// Instruction cache lines invalidated to the point of unification (`IC IVAU`).
    pub ic_ivau_lines: AtomicU64,
    /// Whole instruction-cache invalidations (`IC IALLUIS`), where the I-cache
    /// may alias and `IC IVAU` by the kernel's address would not do.
    pub ic_iallu: AtomicU64,
    /// Times a thread found every XOL slot busy and had to wait.
    pub slot_waits: AtomicU64,
    /// Return probes not armed because the task's return stack was full.
    pub return_probes_skipped: AtomicU64,
    /// Hits whose instruction ran displaced in its branch trampoline (one
    /// exception, no XOL slot: `crate::trampoline`).
    pub trampolined: AtomicU64,
}

/// A plain copy of [`Counters`] at one moment, for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub hits: u64,
    pub simulated: u64,
    pub stepped: u64,
    pub slot_reused: u64,
    pub slot_written: u64,
    pub dc_cvau_lines: u64,
    pub ic_ivau_lines: u64,
    pub ic_iallu: u64,
    pub slot_waits: u64,
    pub return_probes_skipped: u64,
    pub trampolined: u64,
}

impl Counters {
    /// All zero; `const` so the kernel can write `static COUNTERS: Counters = Counters::new();`.
    pub const fn new() -> Self {
        Self {
            hits: AtomicU64::new(0),
            simulated: AtomicU64::new(0),
            stepped: AtomicU64::new(0),
            slot_reused: AtomicU64::new(0),
            slot_written: AtomicU64::new(0),
            dc_cvau_lines: AtomicU64::new(0),
            ic_ivau_lines: AtomicU64::new(0),
            ic_iallu: AtomicU64::new(0),
            slot_waits: AtomicU64::new(0),
            return_probes_skipped: AtomicU64::new(0),
            trampolined: AtomicU64::new(0),
        }
    }

    /// Add one to `counter` (`counters.bump(&counters.hits)`).
    pub fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Add the lines one cache-maintenance sequence touched.
    pub fn add_maintenance(&self, count: MaintenanceCount) {
        self.dc_cvau_lines.fetch_add(count.dc_cvau_lines as u64, Ordering::Relaxed);
        self.ic_ivau_lines.fetch_add(count.ic_ivau_lines as u64, Ordering::Relaxed);
        self.ic_iallu.fetch_add(count.ic_iallu as u64, Ordering::Relaxed);
    }

    /// Copy every counter. Not one atomic snapshot: see the type's note.
    pub fn snapshot(&self) -> Snapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Snapshot {
            hits: read(&self.hits),
            simulated: read(&self.simulated),
            stepped: read(&self.stepped),
            slot_reused: read(&self.slot_reused),
            slot_written: read(&self.slot_written),
            dc_cvau_lines: read(&self.dc_cvau_lines),
            ic_ivau_lines: read(&self.ic_ivau_lines),
            ic_iallu: read(&self.ic_iallu),
            slot_waits: read(&self.slot_waits),
            return_probes_skipped: read(&self.return_probes_skipped),
            trampolined: read(&self.trampolined),
        }
    }

    /// Set every counter back to zero (between benchmark runs).
    pub fn reset(&self) {
        for counter in [
            &self.hits,
            &self.simulated,
            &self.stepped,
            &self.slot_reused,
            &self.slot_written,
            &self.dc_cvau_lines,
            &self.ic_ivau_lines,
            &self.ic_iallu,
            &self.slot_waits,
            &self.return_probes_skipped,
            &self.trampolined,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

impl Snapshot {
    /// The fields as `(name, value)` pairs, in a fixed order: the kernel's JSON
    /// writer walks this list, so a new counter cannot be left out of reports.
    pub fn fields(&self) -> [(&'static str, u64); 11] {
        [
            ("hits", self.hits),
            ("simulated", self.simulated),
            ("stepped", self.stepped),
            ("slot_reused", self.slot_reused),
            ("slot_written", self.slot_written),
            ("dc_cvau_lines", self.dc_cvau_lines),
            ("ic_ivau_lines", self.ic_ivau_lines),
            ("slot_waits", self.slot_waits),
            ("return_probes_skipped", self.return_probes_skipped),
            ("ic_iallu", self.ic_iallu),
            ("trampolined", self.trampolined),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_copies_every_counter_and_reset_clears_them() {
        let counters = Counters::new();
        counters.bump(&counters.hits);
        counters.bump(&counters.hits);
        counters.bump(&counters.stepped);
        counters.add_maintenance(MaintenanceCount { dc_cvau_lines: 2, ic_ivau_lines: 3, ic_iallu: 1 });
        let snapshot = counters.snapshot();
        assert_eq!(snapshot.hits, 2);
        assert_eq!(snapshot.stepped, 1);
        assert_eq!(snapshot.dc_cvau_lines, 2);
        assert_eq!(snapshot.ic_ivau_lines, 3);
        assert_eq!(snapshot.ic_iallu, 1);
        assert_eq!(snapshot.simulated, 0);
        counters.reset();
        assert_eq!(counters.snapshot(), Snapshot::default());
    }

    #[test]
    fn field_names_are_the_report_names() {
        let names: std::vec::Vec<_> = Snapshot::default().fields().iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "hits",
                "simulated",
                "stepped",
                "slot_reused",
                "slot_written",
                "dc_cvau_lines",
                "ic_ivau_lines",
                "slot_waits",
                "return_probes_skipped",
                "ic_iallu",
                "trampolined"
            ]
        );
    }
}
