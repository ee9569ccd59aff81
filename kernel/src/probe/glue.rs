//! Glue between the arch-neutral probe core and this kernel: the saved EL0
//! register frame as the simulator's register file, and a task's address space
//! as its *checked* user memory.
//!
//! A simulated `ldr` literal or frame push reads or writes user memory on the
//! task's behalf; it goes through `AddressSpace::check` like a system call's
//! buffer, so it can only do what the task itself could have done. (Linux's arm64
//! `ldr` literal simulation read user memory unchecked: CVE-2024-50099.)

use crate::{
    arch::exception::ExceptionFrame,
    task::address_space::{AddressSpace, UserAccess},
};
use alloc::vec::Vec;
use probe_core::{insn::aarch64::Registers, SimulationFault, UserMemory};
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

/// User memory of one address space, reached only through checked ranges.
pub struct CheckedUserMemory<'a>(pub &'a AddressSpace);

impl CheckedUserMemory<'_> {
    fn read(&self, addr: u64, len: u64) -> Result<Vec<u8>, SimulationFault> {
        let range = self
            .0
            .check(addr, len, UserAccess::Read)
            .map_err(|_| SimulationFault::UserAccess { addr, write: false })?;
        let mut bytes = Vec::with_capacity(len as usize);
        self.0.read(range, &mut bytes);
        Ok(bytes)
    }
}

impl UserMemory for CheckedUserMemory<'_> {
    fn read_u32(&mut self, addr: u64) -> Result<u32, SimulationFault> {
        let bytes = self.read(addr, 4)?;
        Ok(u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")))
    }
    fn read_u64(&mut self, addr: u64) -> Result<u64, SimulationFault> {
        let bytes = self.read(addr, 8)?;
        Ok(u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")))
    }
    fn write_u64(&mut self, addr: u64, value: u64) -> Result<(), SimulationFault> {
        let range = self
            .0
            .check(addr, 8, UserAccess::Write)
            .map_err(|_| SimulationFault::UserAccess { addr, write: true })?;
        self.0.write(range, &value.to_le_bytes());
        Ok(())
    }
}
