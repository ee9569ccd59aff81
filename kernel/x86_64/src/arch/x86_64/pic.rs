//! The two cascaded 8259A interrupt controllers of the PC (serves `crate::time`
//! and `crate::exception`). Datasheet: Intel 8259A, "Programming the 8259A"
//! (ICW1-ICW4, OCW1-OCW3).
//!
//! At reset the master PIC delivers IRQ 0-7 on vectors 0x08-0x0F, on top of
//! the CPU's exceptions, so the kernel remaps master and slave to 0x20-0x2F,
//! then masks every line except the ones it handles (IRQ 0, the PIT). After
//! ExitBootServices, OVMF leaves the local APIC in virtual-wire mode (LINT0 =
//! ExtINT), so the 8259's output reaches the CPU unchanged.

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
/// OCW2: non-specific end of interrupt.
const OCW2_EOI: u8 = 0x20;
/// OCW3: the next read of the command port returns the in-service register.
const OCW3_READ_ISR: u8 = 0x0b;
/// The cascade line on the master.
const CASCADE_LINE: u8 = 2;
/// A spurious interrupt shows up as the lowest-priority line of a chip (7).
const SPURIOUS_LINE: u8 = 7;

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
pub fn init(base: u8) {
    write(MASTER_COMMAND, ICW1_INIT_WITH_ICW4);
    write(SLAVE_COMMAND, ICW1_INIT_WITH_ICW4);
    write(MASTER_DATA, base);
    write(SLAVE_DATA, base + 8);
    write(MASTER_DATA, ICW3_MASTER_SLAVE_ON_IRQ2);
    write(SLAVE_DATA, ICW3_SLAVE_IDENTITY);
    write(MASTER_DATA, ICW4_8086);
    write(SLAVE_DATA, ICW4_8086);
    write(MASTER_DATA, 0xff);
    write(SLAVE_DATA, 0xff);
}

/// Let `line` (0-15) through.
pub fn unmask(line: u8) {
    if line < 8 {
        write(MASTER_DATA, read(MASTER_DATA) & !(1 << line));
    } else {
        write(SLAVE_DATA, read(SLAVE_DATA) & !(1 << (line - 8)));
        write(MASTER_DATA, read(MASTER_DATA) & !(1 << CASCADE_LINE));
    }
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
