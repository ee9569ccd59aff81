//! Glue between the arch-neutral probe core and this kernel: the saved EL0
//! register frame as the A64 simulator's register file. (The checked user
//! memory the simulator reads and writes through is `user_memory.rs`.)

use crate::arch::exception::ExceptionFrame;
use probe_core::insn::aarch64::Registers;
use tock_registers::interfaces::Readable;

impl Registers for ExceptionFrame {
    fn x(&self, index: u8) -> u64 {
        self.x[index as usize]
    }
    fn set_x(&mut self, index: u8, value: u64) {
        self.x[index as usize] = value;
    }
    fn sp(&self) -> u64 {
        self.sp_el0
    }
    fn set_sp(&mut self, value: u64) {
        self.sp_el0 = value;
    }
    fn pc(&self) -> u64 {
        self.elr
    }
    fn set_pc(&mut self, value: u64) {
        self.elr = value;
    }
    fn nzcv(&self) -> u32 {
        /// SPSR_EL1 bits 31..28 are N, Z, C, V.
        const NZCV_MASK: u64 = 0xf000_0000;
        (self.spsr.get() & NZCV_MASK) as u32
    }
}
