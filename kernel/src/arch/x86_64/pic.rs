//! The two cascaded 8259A interrupt controllers of the PC (serves `crate::time`
//! and `crate::exception`). Datasheet: Intel 8259A, "Programming the 8259A"
//! (ICW1-ICW4, OCW1-OCW3).
//!
//! The kernel's tick is the local APIC timer, but the 8259s cannot be left as
//! they are: at reset the master delivers IRQ 0-7 on vectors 0x08-0x0F, on
//! top of the CPU's exceptions. So both are remapped to 0x20-0x2F and every
//! line is masked. A masked 8259 can still raise a spurious interrupt (line 7
//! or 15), which the dispatcher recognises here. One line is opened again
//! when the shell listens: the serial console's ([`route_console`]).

use core::sync::atomic::{AtomicU8, Ordering};
use x86_64::instructions::port::Port;

const MASTER_COMMAND: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_COMMAND: u16 = 0xa0;
const SLAVE_DATA: u16 = 0xa1;
/// ICW1: initialisation, edge triggered, cascade mode, ICW4 follows.
const ICW1_INIT_WITH_ICW4: u8 = 0x11;
/// ICW3 (master): a slave hangs on IRQ 2. ICW3 (slave): its cascade identity is 2.
const ICW3_MASTER_SLAVE_ON_IRQ2: u8 = 1 << 2;
const ICW3_SLAVE_IDENTITY: u8 = 2;
/// ICW4: 8086/8088 mode, normal (not automatic) end of interrupt.
const ICW4_8086: u8 = 0x01;
/// OCW1: one mask bit per line; all set masks the chip.
const OCW1_MASK_ALL: u8 = 0xff;
/// OCW2: non-specific end of interrupt.
const OCW2_EOI: u8 = 0x20;
/// OCW3: the next read of the command port returns the in-service register.
const OCW3_READ_ISR: u8 = 0x0b;
/// A spurious interrupt shows up as the lowest-priority line of a chip (7).
const SPURIOUS_LINE: u8 = 7;
/// No line: what [`CONSOLE_LINE`] holds until [`route_console`].
const NO_LINE: u8 = u8::MAX;
/// The serial console's line, once [`route_console`] has opened it.
static CONSOLE_LINE: AtomicU8 = AtomicU8::new(NO_LINE);

fn write(port: u16, value: u8) {
    // SAFETY: the 8259 ports are the PC's fixed ISA ports; writing the
    // documented command sequence has no effect outside the PIC.
    unsafe { Port::<u8>::new(port).write(value) };
}

fn read(port: u16) -> u8 {
    // SAFETY: reading a PIC port only returns its mask or status register.
    unsafe { Port::<u8>::new(port).read() }
}

/// Remap both PICs to `base..base + 16` and mask every line.
pub fn init_masked(base: u8) {
    write(MASTER_COMMAND, ICW1_INIT_WITH_ICW4);
    write(SLAVE_COMMAND, ICW1_INIT_WITH_ICW4);
    write(MASTER_DATA, base);
    write(SLAVE_DATA, base + 8);
    write(MASTER_DATA, ICW3_MASTER_SLAVE_ON_IRQ2);
    write(SLAVE_DATA, ICW3_SLAVE_IDENTITY);
    write(MASTER_DATA, ICW4_8086);
    write(SLAVE_DATA, ICW4_8086);
    write(MASTER_DATA, OCW1_MASK_ALL);
    write(SLAVE_DATA, OCW1_MASK_ALL);
}

/// Unmask the master's `line` (0-7, a serial port's ISA line) and remember it
/// as the console's, whose interrupts the dispatcher hands to the shell.
pub fn route_console(line: u8) {
    CONSOLE_LINE.store(line, Ordering::Relaxed);
    write(MASTER_DATA, read(MASTER_DATA) & !(1 << (line % 8)));
}

/// Is `line` the console's ([`route_console`])?
pub fn is_console(line: u8) -> bool {
    line == CONSOLE_LINE.load(Ordering::Relaxed)
}

/// Is this delivery of `line` spurious (line 7 or 15 with its in-service bit
/// clear)? A spurious interrupt must not be acknowledged, except that a
/// spurious slave interrupt still occupied the master's cascade line.
pub fn is_spurious(line: u8) -> bool {
    if line % 8 != SPURIOUS_LINE {
        return false;
    }
    let command = if line < 8 { MASTER_COMMAND } else { SLAVE_COMMAND };
    write(command, OCW3_READ_ISR);
    let spurious = read(command) & (1 << SPURIOUS_LINE) == 0;
    if spurious && line >= 8 {
        write(MASTER_COMMAND, OCW2_EOI);
    }
    spurious
}

/// Acknowledge `line` so that it (and lower-priority lines) can come again.
pub fn end_of_interrupt(line: u8) {
    if line >= 8 {
        write(SLAVE_COMMAND, OCW2_EOI);
    }
    write(MASTER_COMMAND, OCW2_EOI);
}
