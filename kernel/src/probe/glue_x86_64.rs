//! Glue between the arch-neutral probe core and this kernel: the saved ring-3
//! trap frame as the x86_64 simulator's register file. (The checked user
//! memory the simulator reads and writes through is the aarch64 kernel's
//! arch-neutral `user_memory.rs`, compiled here too.)

use crate::arch::exception::ExceptionFrame;
use probe_core::insn::x86_64::{Gpr, Registers};

impl Registers for ExceptionFrame {
    fn gpr(&self, reg: Gpr) -> u64 {
        match reg {
            Gpr::Rax => self.rax,
            Gpr::Rcx => self.rcx,
            Gpr::Rdx => self.rdx,
            Gpr::Rbx => self.rbx,
            Gpr::Rsp => self.rsp,
            Gpr::Rbp => self.rbp,
            Gpr::Rsi => self.rsi,
            Gpr::Rdi => self.rdi,
            Gpr::R8 => self.r8,
            Gpr::R9 => self.r9,
            Gpr::R10 => self.r10,
            Gpr::R11 => self.r11,
            Gpr::R12 => self.r12,
            Gpr::R13 => self.r13,
            Gpr::R14 => self.r14,
            Gpr::R15 => self.r15,
        }
    }
    fn set_gpr(&mut self, reg: Gpr, value: u64) {
        let slot = match reg {
            Gpr::Rax => &mut self.rax,
            Gpr::Rcx => &mut self.rcx,
            Gpr::Rdx => &mut self.rdx,
            Gpr::Rbx => &mut self.rbx,
            Gpr::Rsp => &mut self.rsp,
            Gpr::Rbp => &mut self.rbp,
            Gpr::Rsi => &mut self.rsi,
            Gpr::Rdi => &mut self.rdi,
            Gpr::R8 => &mut self.r8,
            Gpr::R9 => &mut self.r9,
            Gpr::R10 => &mut self.r10,
            Gpr::R11 => &mut self.r11,
            Gpr::R12 => &mut self.r12,
            Gpr::R13 => &mut self.r13,
            Gpr::R14 => &mut self.r14,
            Gpr::R15 => &mut self.r15,
        };
        *slot = value;
    }
    fn rip(&self) -> u64 {
        self.rip
    }
    fn set_rip(&mut self, value: u64) {
        self.rip = value;
    }
    fn rflags(&self) -> u64 {
        self.rflags
    }
}
