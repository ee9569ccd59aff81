//! The VideoCore mailbox's property channel: how the ARM asks the Pi's firmware
//! (running on the VideoCore) for things only it can give, here a framebuffer.
//!
//! Registers: BCM2835 ARM Peripherals, "Mailboxes", as Linux's
//! `drivers/mailbox/bcm2835-mailbox.c` uses them on the BCM2711: the ARM reads
//! mailbox 0 (the VideoCore's answers) and writes mailbox 1. A message is the
//! bus address of a 16-byte aligned buffer with the channel number in its low 4
//! bits. The buffer's format is the firmware's "Mailbox property interface"
//! (raspberrypi/firmware wiki): a size, a request code, tags, an end tag. Each tag
//! is an id, the size of its value buffer, a request/response code and the
//! values, which the firmware overwrites with its answer.
//!
//! The buffer is ordinary cacheable RAM and the VideoCore does not look into the
//! ARM's caches: it is cleaned to the point of coherency before the message is
//! sent, and invalidated before the answer is read.

use crate::arch;
use alloc::vec::Vec;
use spin::Mutex;
use tock_registers::{
    interfaces::{Readable, Writeable},
    register_bitfields, register_structs,
    registers::{ReadOnly, WriteOnly},
};

register_bitfields! {
    u32,
    /// Mailbox status (MAIL0_STA, MAIL1_STA).
    STATUS [
        /// No room for another message: wait before writing.
        FULL OFFSET(31) NUMBITS(1) [],
        /// Nothing to read.
        EMPTY OFFSET(30) NUMBITS(1) []
    ],
    /// A message: a 16-byte aligned bus address with the channel in the low bits.
    MESSAGE [
        CHANNEL OFFSET(0) NUMBITS(4) [],
        DATA OFFSET(4) NUMBITS(28) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    MailboxRegisters {
        /// Mailbox 0, VideoCore to ARM: read an answer.
        (0x00 => MAIL0_RD: ReadOnly<u32, MESSAGE::Register>),
        (0x04 => _reserved0),
        (0x18 => MAIL0_STA: ReadOnly<u32, STATUS::Register>),
        (0x1c => _reserved1),
        /// Mailbox 1, ARM to VideoCore: write a request.
        (0x20 => MAIL1_WRT: WriteOnly<u32, MESSAGE::Register>),
        (0x24 => _reserved2),
        (0x38 => MAIL1_STA: ReadOnly<u32, STATUS::Register>),
        (0x3c => @END),
    }
}

/// The channel of the property interface (ARM to VideoCore requests).
const CHANNEL_PROPERTY: u32 = 8;
/// Request code of a buffer sent to the firmware.
const PROCESS_REQUEST: u32 = 0;
/// Response code: the firmware parsed the buffer and answered.
const RESPONSE_SUCCESS: u32 = 0x8000_0000;
/// Bit 31 of a tag's request/response word: the firmware answered this tag.
const TAG_ANSWERED: u32 = 1 << 31;
/// The end tag.
const TAG_END: u32 = 0;
/// How long the firmware may take to answer (its framebuffer allocation takes a
/// few milliseconds on a Pi 4): a bound on a hang, not a tuned figure.
const ANSWER_WITHIN_MS: u64 = 1000;

/// The ARM sees RAM at bus address `0xC000_0000 + physical`: the Pi 4 device
/// tree's `/soc` `dma-ranges = <0xc0000000 0x0 0x0 0x40000000>` (the VideoCore's
/// uncached alias of the first GiB, which is all it can address). A bus address
/// from the firmware is the same alias, so its low 30 bits are the physical address.
const BUS_ALIAS: u32 = 0xC000_0000;
const VIDEOCORE_RAM: usize = 1 << 30;

/// The property buffer: 16-byte aligned as the interface requires, and alone in
/// its cache lines (64-byte aligned, a multiple of 64 bytes) so that
/// invalidating them discards nothing else.
#[repr(C, align(64))]
struct PropertyBuffer([u32; 64]);

static BUFFER: Mutex<PropertyBuffer> = Mutex::new(PropertyBuffer([0; 64]));

/// One tag of a request: its id, the values sent, and how many words of
/// answer the value buffer must have room for.
pub struct Tag<'a> {
    pub id: u32,
    pub values: &'a [u32],
    pub answer_words: usize,
}

/// Why a property call got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxError {
    /// The request does not fit the buffer.
    TooLong,
    /// The buffer lies where the VideoCore cannot address it (beyond the first GiB).
    BufferUnreachable(usize),
    /// Mailbox 1 stayed full, or mailbox 0 empty, for [`ANSWER_WITHIN_MS`].
    NoAnswer,
    /// The firmware answered with this response code instead of success.
    Refused(u32),
    /// The firmware does not know this tag (it left the tag unanswered).
    TagUnanswered(u32),
}

impl core::fmt::Display for MailboxError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            MailboxError::TooLong => write!(f, "the request does not fit the property buffer"),
            MailboxError::BufferUnreachable(at) => {
                write!(
                    f,
                    "the property buffer at {:#x} is beyond the first GiB, which is all the VideoCore addresses",
                    at
                )
            }
            MailboxError::NoAnswer => write!(f, "the firmware did not answer within {} ms", ANSWER_WITHIN_MS),
            MailboxError::Refused(code) => write!(f, "the firmware refused the request (response code {:#010x})", code),
            MailboxError::TagUnanswered(id) => write!(f, "the firmware did not answer tag {:#07x}", id),
        }
    }
}

/// The ARM's side of the VideoCore mailbox.
pub struct Mailbox {
    registers: &'static MailboxRegisters,
}

impl Mailbox {
    /// # Safety
    /// `base` must be the BCM2711's VideoCore mailbox (`brcm,bcm2835-mbox`),
    /// mapped as device memory, and no other `Mailbox` may be used at the same time.
    pub unsafe fn new(base: usize) -> Self {
        // SAFETY: the caller guarantees `base` is the mailbox, mapped, and ours.
        Mailbox { registers: unsafe { &*(base as *const MailboxRegisters) } }
    }

    /// Send `tags` in one property request; the answer's values, tag by tag.
    pub fn call(&self, tags: &[Tag]) -> Result<Vec<Vec<u32>>, MailboxError> {
        let mut buffer = BUFFER.lock();
        let words = &mut buffer.0;
        // Header (size, code), per tag (id, value bytes, code, values), end tag.
        let length = 2 + tags.iter().map(|t| 3 + t.values.len().max(t.answer_words)).sum::<usize>() + 1;
        if length > words.len() {
            return Err(MailboxError::TooLong);
        }
        words.fill(0);
        words[0] = (length * 4) as u32;
        words[1] = PROCESS_REQUEST;
        let mut at = 2;
        for tag in tags {
            let value_words = tag.values.len().max(tag.answer_words);
            words[at] = tag.id;
            words[at + 1] = (value_words * 4) as u32;
            words[at + 2] = 0;
            words[at + 3..at + 3 + tag.values.len()].copy_from_slice(tag.values);
            at += 3 + value_words;
        }
        words[at] = TAG_END;

        let address = words.as_ptr() as usize;
        if address + length * 4 > VIDEOCORE_RAM {
            // The kernel is loaded low (0x80000): not on a Pi 4 as the firmware boots it.
            return Err(MailboxError::BufferUnreachable(address));
        }
        let span = (address, address + core::mem::size_of::<PropertyBuffer>());
        arch::aarch64::cache::clean_and_invalidate_dcache_to_poc(span.0, span.1);
        self.exchange(BUS_ALIAS | address as u32)?;
        arch::aarch64::cache::clean_and_invalidate_dcache_to_poc(span.0, span.1);

        // SAFETY: the firmware wrote the buffer behind the compiler's back;
        // re-read it from memory rather than from what the compiler remembers.
        let words: [u32; 64] = unsafe { core::ptr::read_volatile(&raw const buffer.0) };
        if words[1] != RESPONSE_SUCCESS {
            return Err(MailboxError::Refused(words[1]));
        }
        let mut answers = Vec::with_capacity(tags.len());
        let mut at = 2;
        for tag in tags {
            let value_words = tag.values.len().max(tag.answer_words);
            if words[at + 2] & TAG_ANSWERED == 0 {
                return Err(MailboxError::TagUnanswered(tag.id));
            }
            answers.push(words[at + 3..at + 3 + value_words].to_vec());
            at += 3 + value_words;
        }
        Ok(answers)
    }

    /// Post the message for `bus_address` on the property channel and wait for
    /// the firmware's answer to it.
    fn exchange(&self, bus_address: u32) -> Result<(), MailboxError> {
        let deadline = Deadline::after_ms(ANSWER_WITHIN_MS);
        while self.registers.MAIL1_STA.is_set(STATUS::FULL) {
            deadline.check()?;
        }
        self.registers.MAIL1_WRT.write(MESSAGE::DATA.val(bus_address >> 4) + MESSAGE::CHANNEL.val(CHANNEL_PROPERTY));
        loop {
            while self.registers.MAIL0_STA.is_set(STATUS::EMPTY) {
                deadline.check()?;
            }
            let answer = self.registers.MAIL0_RD.extract();
            // Answers on other channels are not ours (none is used here).
            if answer.read(MESSAGE::CHANNEL) == CHANNEL_PROPERTY {
                return Ok(());
            }
        }
    }
}

/// A time limit on the generic timer's counter.
struct Deadline(u64);

impl Deadline {
    fn after_ms(ms: u64) -> Self {
        Deadline(arch::aarch64::timer::counter() + arch::aarch64::timer::frequency() * ms / 1000)
    }

    fn check(&self) -> Result<(), MailboxError> {
        if arch::aarch64::timer::counter() > self.0 {
            Err(MailboxError::NoAnswer)
        } else {
            Ok(())
        }
    }
}

/// The ARM physical address of a bus address the firmware gave.
pub fn physical(bus_address: u32) -> usize {
    (bus_address & !BUS_ALIAS) as usize
}
