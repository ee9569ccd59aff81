//! The execute-out-of-line (XOL) slots of one address space: which slots of
//! its XOL page are busy (an atomic bitmap every thread of the address space
//! shares), what instruction each slot holds (so a hit can skip the write and
//! the cache maintenance), and the policy that picks a slot for a hit.
//!
//! The XOL page is one 4 KiB page, mapped read + execute for the user and
//! written only by the kernel through its own alias. A stepped probe copies
//! its original instruction into a slot, single-steps it there and comes back,
//! so a slot is as big as the longest instruction it must hold
//! ([`Arch::XOL_SLOT_BYTES`]): 4 bytes on A64 (1024 slots), 16 on x86_64
//! (256 slots; its instructions are 1 to 15 bytes). Slot 0 is not handed out:
//! it holds the uretprobe trampoline (a breakpoint of its own).
//!
//! Slots never run out for good: when all are busy [`XolSlots::try_take`]
//! returns `None`, the kernel puts the thread to sleep until a slot is
//! released, and tries again (Linux's `xol_take_insn_slot` does the same with
//! a wait queue). Each such wait is counted in `slot_waits`.

use crate::{counters::Counters, insn::aarch64::Aarch64, sync, Arch};
use alloc::boxed::Box;
use core::{fmt, sync::atomic::Ordering};

/// Bytes in the XOL page.
pub const XOL_PAGE_BYTES: usize = 4096;
/// The most slots any architecture's XOL page has (A64's, whose slots are the
/// smallest). The slot bitmap is this big; an architecture with bigger slots
/// uses its first [`slots_per_page`] bits.
pub const SLOTS_PER_PAGE: usize = XOL_PAGE_BYTES / Aarch64::XOL_SLOT_BYTES;

/// Slots in one XOL page of architecture `A`, the trampoline's included.
pub const fn slots_per_page<A: Arch>() -> usize {
    XOL_PAGE_BYTES / A::XOL_SLOT_BYTES
}

const BITS_PER_WORD: usize = 64;
const BITMAP_WORDS: usize = SLOTS_PER_PAGE / BITS_PER_WORD;

/// The number of one slot of the XOL page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotIndex(u16);

impl SlotIndex {
    /// Slot 0: the uretprobe trampoline, never handed out for a step.
    pub const TRAMPOLINE: SlotIndex = SlotIndex(0);

    /// `None` past the end of the page.
    pub const fn new(index: usize) -> Option<Self> {
        if index < SLOTS_PER_PAGE {
            Some(Self(index as u16))
        } else {
            None
        }
    }

    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// Where the slot starts in an XOL page of architecture `A`: add the
    /// page's user (or kernel alias) address.
    pub const fn byte_offset<A: Arch>(self) -> usize {
        self.index() * A::XOL_SLOT_BYTES
    }
}

impl fmt::Display for SlotIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot {}", self.0)
    }
}

/// One 64-bit atomic word, as the slot bitmap and the content record use it.
///
/// The kernel uses `core`'s `AtomicU64` (the default). The trait exists so the
/// same code can be instantiated with loom's `AtomicU64`, which makes the
/// model checker see every access: in every `cargo test` (a small model), and
/// crate-wide under `--cfg loom` (larger models).
pub trait BitmapWord: Send + Sync {
    fn new(value: u64) -> Self;
    fn load(&self, order: Ordering) -> u64;
    fn store(&self, value: u64, order: Ordering);
    fn fetch_or(&self, bits: u64, order: Ordering) -> u64;
    fn fetch_and(&self, bits: u64, order: Ordering) -> u64;
}

/// Both atomic types (core's for the kernel, loom's for the models) have the
/// same inherent methods; one definition forwards to them.
macro_rules! forward_bitmap_word {
    ($atomic:ty) => {
        impl BitmapWord for $atomic {
            fn new(value: u64) -> Self {
                Self::new(value)
            }
            fn load(&self, order: Ordering) -> u64 {
                self.load(order)
            }
            fn store(&self, value: u64, order: Ordering) {
                self.store(value, order)
            }
            fn fetch_or(&self, bits: u64, order: Ordering) -> u64 {
                self.fetch_or(bits, order)
            }
            fn fetch_and(&self, bits: u64, order: Ordering) -> u64 {
                self.fetch_and(bits, order)
            }
        }
    };
}

forward_bitmap_word!(core::sync::atomic::AtomicU64);
#[cfg(any(loom, test))]
forward_bitmap_word!(loom::sync::atomic::AtomicU64);

/// `core`'s `AtomicU64`; loom's under `--cfg loom`.
pub type DefaultWord = sync::AtomicU64;

/// A slot was released that nobody held: a bug in the caller, reported
/// rather than ignored (the seed patch's lesson).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotNotHeld(pub SlotIndex);

impl fmt::Display for SlotNotHeld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} released but not held", self.0)
    }
}

/// The slots of one address space's XOL page.
///
/// Ownership rule: the thread that took a slot (and only it) may write the
/// slot and its content record, until it releases the slot. The bitmap's
/// `Acquire` on take and `Release` on release carry the content from one
/// holder to the next.
pub struct XolSlots<W: BitmapWord = DefaultWord> {
    /// Slots in use, the trampoline's included (`<= SLOTS_PER_PAGE`).
    slot_count: usize,
    /// Bit `n % 64` of word `n / 64` is set while slot `n` is held. Slot 0 and
    /// the bits past `slot_count` are set for good, so a free bit is always a
    /// slot that may be handed out.
    busy: [W; BITMAP_WORDS],
    /// Words of content record per slot: 1 for A64 (the instruction word), 2
    /// for x86_64 (15 bytes and a length); see [`SlotContent`]. A record only
    /// as wide as the architecture needs keeps the A64 paths (and the loom
    /// models) to one atomic access per record.
    record_words: usize,
    /// What each slot holds: the [`SlotContent`] last written to it,
    /// `record_words` words per slot (from `record_words * n` for slot `n`). A
    /// fresh page is all zeroes, [`SlotContent::NEVER_WRITTEN`], which no probe
    /// ever holds.
    contents: Box<[W]>,
    /// Where the search for "any free slot" starts (round robin): once every
    /// slot has been written, breakpoints that lost theirs spread over the
    /// page instead of all landing on the lowest free slot and evicting each
    /// other on every hit. Only a hint: a lost update costs nothing.
    next_victim: W,
}

impl XolSlots<DefaultWord> {
    /// The slots of a fresh, zeroed XOL page using its first `slot_count`
    /// slots (at least 2: the trampoline and one slot to step in; at most
    /// [`SLOTS_PER_PAGE`]). Fewer slots than the page holds lets a test make
    /// threads wait for slots with only a few threads.
    pub fn new(slot_count: usize) -> Self {
        Self::with_atomic_words(slot_count)
    }

    /// The slots of a whole page.
    pub fn full_page() -> Self {
        Self::new(SLOTS_PER_PAGE)
    }

    /// The slots of a fresh XOL page of architecture `A`: at most
    /// [`slots_per_page::<A>()`](slots_per_page) of them, with content records
    /// as wide as `A`'s slots need. ([`new`](Self::new) is A64's.)
    pub fn for_arch<A: Arch>(slot_count: usize) -> Self {
        let mut slots = Self::with_atomic_words(slot_count.min(slots_per_page::<A>()));
        slots.record_words = SlotContent::words_for_slot(A::XOL_SLOT_BYTES);
        slots.contents = (0..slots.slot_count * slots.record_words).map(|_| DefaultWord::new(0)).collect();
        slots
    }
}

impl<W: BitmapWord> XolSlots<W> {
    /// [`XolSlots::new`] with another atomic word type (loom's, in the
    /// model tests).
    pub fn with_atomic_words(slot_count: usize) -> Self {
        let slot_count = slot_count.clamp(2, SLOTS_PER_PAGE);
        let busy = core::array::from_fn(|word| {
            let first_slot = word * BITS_PER_WORD;
            let mut bits = 0u64;
            for bit in 0..BITS_PER_WORD {
                let slot = first_slot + bit;
                if slot == SlotIndex::TRAMPOLINE.index() || slot >= slot_count {
                    bits |= 1 << bit;
                }
            }
            W::new(bits)
        });
        let record_words = SlotContent::words_for_slot(Aarch64::XOL_SLOT_BYTES);
        let contents = (0..slot_count * record_words).map(|_| W::new(0)).collect();
        Self { slot_count, busy, record_words, contents, next_victim: W::new(1) }
    }

    /// Slots in use, the trampoline's included.
    pub fn slot_count(&self) -> usize {
        self.slot_count
    }

    /// Take a slot: `preferred` if it is free, else the lowest free slot;
    /// `None` if every slot is busy (the caller waits and tries again).
    pub fn try_take(&self, preferred: Option<SlotIndex>) -> Option<SlotIndex> {
        if let Some(slot) = preferred.filter(|slot| self.try_take_exactly(*slot)) {
            return Some(slot);
        }
        self.try_take_where(|_| true)
    }

    /// Take `slot` itself if it is free (never another one).
    pub fn try_take_exactly(&self, slot: SlotIndex) -> bool {
        slot != SlotIndex::TRAMPOLINE && slot.index() < self.slot_count && self.test_and_set(slot)
    }

    /// Take the lowest free slot for which `wanted` holds, if there is one.
    /// (`wanted` looks at a slot before it is taken; what the slot holds is
    /// read again by the caller once it holds it.)
    pub fn try_take_where(&self, wanted: impl Fn(SlotIndex) -> bool) -> Option<SlotIndex> {
        for word in 0..BITMAP_WORDS {
            let mut free = !self.busy[word].load(Ordering::Relaxed);
            while free != 0 {
                let bit = free.trailing_zeros() as usize;
                free &= free - 1;
                let slot = SlotIndex((word * BITS_PER_WORD + bit) as u16);
                // A lost race (another thread took the bit since the load) just
                // moves on to the next free slot.
                if wanted(slot) && self.test_and_set(slot) {
                    return Some(slot);
                }
            }
        }
        None
    }

    /// Take any free slot, searching round robin from where the last such
    /// search stopped.
    pub fn try_take_round_robin(&self) -> Option<SlotIndex> {
        let usable = self.slot_count - 1; // slots 1..slot_count
        let start = self.next_victim.load(Ordering::Relaxed) as usize;
        for step in 0..usable {
            let index = 1 + (start + step - 1) % usable;
            let slot = SlotIndex(index as u16);
            if self.try_take_exactly(slot) {
                self.next_victim.store((index % usable + 1) as u64, Ordering::Relaxed);
                return Some(slot);
            }
        }
        None
    }

    /// Set the slot's busy bit; true if it was clear (the slot is now ours).
    /// `Acquire`: the previous holder's writes to the slot and its content
    /// record happen before anything the new holder does.
    fn test_and_set(&self, slot: SlotIndex) -> bool {
        let (word, bit) = Self::position(slot);
        self.busy[word].fetch_or(bit, Ordering::Acquire) & bit == 0
    }

    fn position(slot: SlotIndex) -> (usize, u64) {
        (slot.index() / BITS_PER_WORD, 1 << (slot.index() % BITS_PER_WORD))
    }

    /// Give a slot back. Its content stays, for the next holder to reuse.
    /// `Release`: publishes this holder's writes to the next one.
    pub fn release(&self, slot: SlotIndex) -> Result<(), SlotNotHeld> {
        if slot == SlotIndex::TRAMPOLINE || slot.index() >= self.slot_count {
            return Err(SlotNotHeld(slot));
        }
        let (word, bit) = Self::position(slot);
        if self.busy[word].fetch_and(!bit, Ordering::Release) & bit == 0 {
            return Err(SlotNotHeld(slot));
        }
        Ok(())
    }

    /// Whether some slot is free now (the wake-up condition of a waiting
    /// thread; it may be gone again by the time the thread runs).
    pub fn has_free_slot(&self) -> bool {
        self.busy.iter().any(|word| word.load(Ordering::Relaxed) != u64::MAX)
    }

    /// Whether `slot` is held now (for assertions and traces).
    pub fn is_held(&self, slot: SlotIndex) -> bool {
        let (word, bit) = Self::position(slot);
        self.busy[word].load(Ordering::Relaxed) & bit != 0
    }

    /// What the slot holds, as last recorded by
    /// [`note_written`](Self::note_written) ([`SlotContent::NEVER_WRITTEN`]
    /// for a slot never written). Only meaningful to the slot's holder, and
    /// to a search that takes the slot before it trusts the answer.
    pub fn contents(&self, slot: SlotIndex) -> SlotContent {
        let first = slot.index() * self.record_words;
        SlotContent(core::array::from_fn(|word| {
            if word < self.record_words {
                self.contents[first + word].load(Ordering::Relaxed)
            } else {
                0
            }
        }))
    }

    /// Whether the record of `slot` says it holds `content`, word by word,
    /// stopping at the first difference.
    #[inline]
    pub fn holds(&self, slot: SlotIndex, content: &SlotContent) -> bool {
        let first = slot.index() * self.record_words;
        let (recorded, beyond) = content.0.split_at(self.record_words);
        beyond.iter().all(|&word| word == 0)
            && recorded
                .iter()
                .enumerate()
                .all(|(word, value)| self.contents[first + word].load(Ordering::Relaxed) == *value)
    }

    /// Record that the holder of `slot` wrote `content` into it and made it
    /// visible (the cache maintenance is done). Call it after the write, not
    /// before: a record that ran ahead of the page would let the next holder
    /// skip a write that never happened. The trampoline's slot is recorded
    /// once, when the page is created.
    pub fn note_written(&self, slot: SlotIndex, content: impl Into<SlotContent>) {
        debug_assert!(self.is_held(slot), "{slot} written by a thread that does not hold it");
        let content = content.into();
        let (recorded, beyond) = content.0.split_at(self.record_words);
        assert!(
            beyond.iter().all(|&word| word == 0),
            "{content:?} is wider than this page's {}-word records",
            self.record_words
        );
        let first = slot.index() * self.record_words;
        for (word, value) in recorded.iter().enumerate() {
            self.contents[first + word].store(*value, Ordering::Relaxed);
        }
    }
}

/// What one slot holds, as the slot's record keeps it: the exact bytes
/// written, so "this slot already holds the instruction" is an equality test.
///
/// - A64: the 4-byte instruction word in the low half of word 0
///   ([`From<u32>`]); 0 is `udf #0`, which no probe ever holds.
/// - x86_64: up to 15 instruction bytes, and the length in byte 15
///   ([`SlotContent::from_bytes`]); the length is never 0, so no content of a
///   real instruction equals the zeroed record of a fresh page, even for
///   `00 00` (`add [rax], al`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotContent([u64; SlotContent::WORDS]);

impl SlotContent {
    /// The most words of record a slot has: 16 bytes, room for 15 bytes and
    /// a length.
    pub const WORDS: usize = 2;
    /// The most bytes [`from_bytes`](Self::from_bytes) records.
    pub const MAX_BYTES: usize = Self::WORDS * 8 - 1;
    /// What the record of a fresh (zeroed) XOL page says: never written.
    pub const NEVER_WRITTEN: SlotContent = SlotContent([0; Self::WORDS]);

    /// Words of record a slot of `slot_bytes` needs: 1 for A64's 4-byte
    /// slots, 2 for x86_64's 16-byte ones (15 bytes and the length).
    pub const fn words_for_slot(slot_bytes: usize) -> usize {
        if slot_bytes <= 4 {
            1
        } else {
            Self::WORDS
        }
    }

    /// The content of a slot holding `bytes` (1 to [`MAX_BYTES`](Self::MAX_BYTES)
    /// of them; more are cut off, which callers prevent by construction: x86
    /// instructions are at most 15 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let len = bytes.len().min(Self::MAX_BYTES);
        let mut record = [0u8; Self::WORDS * 8];
        record[..len].copy_from_slice(&bytes[..len]);
        record[Self::MAX_BYTES] = len as u8;
        Self(core::array::from_fn(|word| {
            u64::from_le_bytes(record[word * 8..word * 8 + 8].try_into().expect("8 bytes"))
        }))
    }
}

impl From<u32> for SlotContent {
    /// An A64 instruction word.
    fn from(insn: u32) -> Self {
        Self([u64::from(insn), 0])
    }
}

/// How a hit gets its slot (`--xol-policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XolPolicy {
    /// A new slot on every hit, always written and maintained: Linux before
    /// the slot-reuse patch.
    Fresh,
    /// The slot this breakpoint used last time if it is free, written (and
    /// maintained) only when it does not already hold the instruction: the
    /// patch.
    #[default]
    Reuse,
}

/// Why [`choose_slot`] picked the slot it did, for `--trace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotReason {
    /// `Fresh` policy: the lowest free slot, whatever was used before.
    FreshPolicy,
    /// The slot this breakpoint used last time, and it was free.
    Remembered,
    /// Not remembered, but it already holds the instruction.
    HoldsInstruction,
    /// Not remembered, never written: no other breakpoint loses its slot.
    NeverWritten,
    /// The remembered slot was busy (another thread is stepping in it), and
    /// no free slot holds the instruction or is unused: the next free slot,
    /// round robin.
    RememberedBusy,
    /// This breakpoint has no slot yet (first hit in this task), and no free
    /// slot holds the instruction or is unused: the next free slot, round
    /// robin.
    NoneRemembered,
}

/// The slot a hit will step in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotChoice {
    /// Held by the caller until it calls [`XolSlots::release`].
    pub slot: SlotIndex,
    /// Write the instruction, do the cache maintenance, then
    /// [`XolSlots::note_written`]. False: the slot already holds it.
    pub must_write: bool,
    pub reason: SlotReason,
}

/// Pick and take a slot for stepping an instruction whose slot holds
/// `content`, under `policy`, for a breakpoint that last used `remembered`. Counts `slot_written` or `slot_reused`, or,
/// when every slot is busy, `slot_waits` and returns `None`: the caller waits
/// for a release and calls again.
/// Inlined into the kernel's hit path (its one caller there): out of line, the
/// call costs a stepped hit about 20 instructions.
#[inline]
pub fn choose_slot<W: BitmapWord>(
    slots: &XolSlots<W>,
    policy: XolPolicy,
    remembered: Option<SlotIndex>,
    content: impl Into<SlotContent>,
    counters: &Counters,
) -> Option<SlotChoice> {
    let content = content.into();
    let taken = match policy {
        XolPolicy::Fresh => slots.try_take(None).map(|slot| (slot, SlotReason::FreshPolicy)),
        // Reuse: the slot this breakpoint had last time; else a slot that happens
        // to hold the instruction already (another task stepped the same
        // breakpoint); else a slot never written; only then any free slot. Taking
        // simply the lowest free slot would give every breakpoint slot 1 on one
        // core, and two probes hit in turn would rewrite it on every hit.
        // EXERCISE BREAKAGE (docs/exercises.md, exercise 6): the feature takes the lowest free slot.
        #[cfg(feature = "exercise-take-lowest-free-slot")]
        XolPolicy::Reuse => slots.try_take(None).map(|slot| (slot, SlotReason::NoneRemembered)),
        #[cfg(not(feature = "exercise-take-lowest-free-slot"))]
        XolPolicy::Reuse => remembered
            .filter(|slot| slots.try_take_exactly(*slot))
            .map(|slot| (slot, SlotReason::Remembered))
            .or_else(|| {
                slots
                    .try_take_where(|slot| slots.holds(slot, &content))
                    .map(|slot| (slot, SlotReason::HoldsInstruction))
            })
            .or_else(|| {
                slots
                    .try_take_where(|slot| slots.holds(slot, &SlotContent::NEVER_WRITTEN))
                    .map(|slot| (slot, SlotReason::NeverWritten))
            })
            .or_else(|| {
                let reason = if remembered.is_some() { SlotReason::RememberedBusy } else { SlotReason::NoneRemembered };
                slots.try_take_round_robin().map(|slot| (slot, reason))
            }),
    };
    let Some((slot, reason)) = taken else {
        counters.bump(&counters.slot_waits);
        return None;
    };
    let must_write = match policy {
        XolPolicy::Fresh => true,
        XolPolicy::Reuse => !slots.holds(slot, &content),
    };
    if must_write {
        counters.bump(&counters.slot_written);
    } else {
        counters.bump(&counters.slot_reused);
    }
    Some(SlotChoice { slot, must_write, reason })
}

#[cfg(test)]
mod tests;
