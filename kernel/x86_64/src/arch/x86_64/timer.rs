//! The 8254 PIT and the TSC (serves `crate::time`).
//!
//! The PIT counts down at 1.193182 MHz. Channel 0 drives IRQ 0 and is used one
//! shot at a time (mode 0, "interrupt on terminal count"): each tick re-arms
//! it, which lets a sleeping thread's wake-up shorten the next period, the way
//! the aarch64 kernel re-arms its generic timer. Channel 2, whose output can be
//! read in bit 5 of port 0x61, times the TSC calibration at boot.
//!
//! The counter of `clock` and of run times is the TSC: it counts at a fixed
//! rate on every processor the kernel cares about (and under QEMU), and it is
//! readable in one instruction. Its frequency is measured against channel 2.
//! Datasheet: Intel 82C54 CHMOS programmable interval timer.

use x86_64::instructions::port::Port;

/// The PIT input clock, in Hz.
pub const PIT_HZ: u64 = 1_193_182;
const CHANNEL0_DATA: u16 = 0x40;
const CHANNEL2_DATA: u16 = 0x42;
const MODE_COMMAND: u16 = 0x43;
/// Port B of the PC's system control: bit 0 gates channel 2, bit 1 drives the
/// speaker from it, bit 5 reads channel 2's output.
const SYSTEM_CONTROL_B: u16 = 0x61;
const CHANNEL2_GATE: u8 = 1 << 0;
const SPEAKER_ENABLE: u8 = 1 << 1;
const CHANNEL2_OUTPUT: u8 = 1 << 5;
/// Mode/command byte fields: channel [7:6], access lobyte/hibyte (0b11 << 4),
/// mode 0 (0b000 << 1), binary counting (bit 0 = 0).
const SELECT_CHANNEL0: u8 = 0b00 << 6;
const SELECT_CHANNEL2: u8 = 0b10 << 6;
const ACCESS_LOBYTE_HIBYTE: u8 = 0b11 << 4;
const MODE0_INTERRUPT_ON_TERMINAL_COUNT: u8 = 0b000 << 1;
/// The largest 16-bit count (65535 / 1.193182 MHz = 54.9 ms).
const MAX_COUNT: u64 = 0xffff;
/// Calibrate over 50 ms: 59659 PIT counts.
const CALIBRATION_COUNT: u64 = PIT_HZ / 20;

fn outb(port: u16, value: u8) {
    // SAFETY: the PIT and port B are the PC's fixed ISA ports; these writes
    // only program the timer and its gates.
    unsafe { Port::<u8>::new(port).write(value) };
}

fn inb(port: u16) -> u8 {
    // SAFETY: reading port B only returns its status bits.
    unsafe { Port::<u8>::new(port).read() }
}

/// The time stamp counter.
pub fn counter() -> u64 {
    // SAFETY: RDTSC has no side effects (CR4.TSD is clear, and we are ring 0).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Measure the TSC frequency against PIT channel 2 (polled, no interrupts).
pub fn calibrate_tsc() -> u64 {
    let control = inb(SYSTEM_CONTROL_B);
    outb(SYSTEM_CONTROL_B, (control & !SPEAKER_ENABLE) | CHANNEL2_GATE);
    outb(MODE_COMMAND, SELECT_CHANNEL2 | ACCESS_LOBYTE_HIBYTE | MODE0_INTERRUPT_ON_TERMINAL_COUNT);
    outb(CHANNEL2_DATA, CALIBRATION_COUNT as u8);
    // Counting starts once the high byte is written; OUT2 goes high at zero.
    let start = counter();
    outb(CHANNEL2_DATA, (CALIBRATION_COUNT >> 8) as u8);
    while inb(SYSTEM_CONTROL_B) & CHANNEL2_OUTPUT == 0 {
        core::hint::spin_loop();
    }
    let elapsed = counter() - start;
    outb(SYSTEM_CONTROL_B, control);
    (elapsed as u128 * PIT_HZ as u128 / CALIBRATION_COUNT as u128) as u64
}

/// Interrupt (IRQ 0) after `ticks` TSC ticks at a TSC of `tsc_hz`, as close as
/// the PIT can: 1 to 65535 PIT counts.
pub fn arm(ticks: u64, tsc_hz: u64) {
    let count = (ticks as u128 * PIT_HZ as u128 / tsc_hz.max(1) as u128).clamp(1, MAX_COUNT as u128) as u16;
    outb(MODE_COMMAND, SELECT_CHANNEL0 | ACCESS_LOBYTE_HIBYTE | MODE0_INTERRUPT_ON_TERMINAL_COUNT);
    outb(CHANNEL0_DATA, count as u8);
    outb(CHANNEL0_DATA, (count >> 8) as u8);
}

/// The longest period `arm` can program, in microseconds.
pub const MAX_PERIOD_US: u64 = MAX_COUNT * 1_000_000 / PIT_HZ;
