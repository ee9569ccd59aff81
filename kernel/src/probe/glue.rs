//! Glue between the arch-neutral probe core and this kernel: the saved EL0
//! register frame as the A64 simulator's register file. (The checked user
//! memory the simulator reads and writes through is `user_memory.rs`.)

use crate::arch::exception::ExceptionFrame;
use aarch64_cpu::registers::SPSR_EL1;
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
        /// N, Z, C, V where SPSR_EL1 (and the simulator) keep them, bits 31..28.
        const NZCV_MASK: u64 =
            SPSR_EL1::N::SET.mask() | SPSR_EL1::Z::SET.mask() | SPSR_EL1::C::SET.mask() | SPSR_EL1::V::SET.mask();
        (self.spsr.get() & NZCV_MASK) as u32
    }
}
