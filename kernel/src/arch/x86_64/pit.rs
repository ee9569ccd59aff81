//! The 8254 PIT's channel 2 as a free-running counter (serves `timer`, which
//! measures the TSC against it when the firmware's tables name no better
//! clock). Datasheet: Intel 82C54 CHMOS Programmable Interval Timer ("Control
//! Word Format", "Read Operations": the counter latch command, "Mode 0").
//!
//! Channel 2 is the one a PC lets software gate and whose output drives
//! nothing but the speaker (port 0x61). In mode 0 with a count of 0 (65536)
//! it counts down at 1.193182 MHz and, past terminal count, goes on wrapping
//! through 0xffff, so its latched count, inverted, is a 16-bit up-counter.
//! Modern chipsets may gate the PIT's clock off (and QEMU's `pit=off` has no
//! PIT at all): then the count never moves, which the measurement reports.

use super::tsc::ReferenceClock;
use alloc::string::String;
use x86_64::instructions::port::Port;

/// The PIT input clock, in Hz.
const PIT_HZ: u64 = 1_193_182;
const CHANNEL2_DATA: u16 = 0x42;
const MODE_COMMAND: u16 = 0x43;
/// Port B of the PC's system control: bit 0 gates channel 2, bit 1 drives the
/// speaker from its output.
const SYSTEM_CONTROL_B: u16 = 0x61;
const CHANNEL2_GATE: u8 = 1 << 0;
const SPEAKER_ENABLE: u8 = 1 << 1;
/// Control word fields: channel in \[7:6\]; access in \[5:4\] (0b00 latches the
/// count, 0b11 is low byte then high byte); mode in \[3:1\]; bit 0 = 0 binary.
const SELECT_CHANNEL2: u8 = 0b10 << 6;
const ACCESS_LATCH_COUNT: u8 = 0b00 << 4;
const ACCESS_LOBYTE_HIBYTE: u8 = 0b11 << 4;
const MODE0_INTERRUPT_ON_TERMINAL_COUNT: u8 = 0b000 << 1;
/// A count of 0 is the largest, 65536.
const COUNT_65536: u8 = 0;
const MASK_16_BITS: u64 = 0xffff;

fn outb(port: u16, value: u8) {
    // SAFETY: the PIT and port B are the PC's fixed ISA ports; these writes
    // only program channel 2 and its gate, whose output only the speaker
    // uses, and the speaker stays off.
    unsafe { Port::<u8>::new(port).write(value) };
}

fn inb(port: u16) -> u8 {
    // SAFETY: reading port B or channel 2's latched count has no other effect.
    unsafe { Port::<u8>::new(port).read() }
}

/// PIT channel 2, counting.
pub struct Channel2;

impl Channel2 {
    /// Gate channel 2 on (speaker off) and start it counting down from 65536.
    pub fn start() -> Self {
        let control = inb(SYSTEM_CONTROL_B);
        outb(SYSTEM_CONTROL_B, (control & !SPEAKER_ENABLE) | CHANNEL2_GATE);
        outb(MODE_COMMAND, SELECT_CHANNEL2 | ACCESS_LOBYTE_HIBYTE | MODE0_INTERRUPT_ON_TERMINAL_COUNT);
        outb(CHANNEL2_DATA, COUNT_65536);
        outb(CHANNEL2_DATA, COUNT_65536);
        Self
    }
}

impl ReferenceClock for Channel2 {
    fn name(&self) -> String {
        String::from("PIT channel 2")
    }
    fn hz(&self) -> u64 {
        PIT_HZ
    }
    fn mask(&self) -> u64 {
        MASK_16_BITS
    }
    fn read(&self) -> u64 {
        outb(MODE_COMMAND, SELECT_CHANNEL2 | ACCESS_LATCH_COUNT);
        let low = u64::from(inb(CHANNEL2_DATA));
        let high = u64::from(inb(CHANNEL2_DATA));
        !(high << 8 | low) & MASK_16_BITS
    }
}
