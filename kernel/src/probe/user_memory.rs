//! A task's address space as the probe simulators' *checked* user memory.
//! Arch-neutral: the aarch64 and the x86_64 kernel both compile this file
//! (the x86_64 one through `#[path]`), each against its own `AddressSpace`.
//!
//! A simulated `ldr` literal, frame push, `push`, `call` or `ret` reads or
//! writes user memory on the task's behalf; it goes through
//! `AddressSpace::check` like a system call's buffer, so it can only do what
//! the task itself could have done. (Linux's arm64 `ldr` literal simulation
//! read user memory unchecked: CVE-2024-50099.)

use crate::task::address_space::{AddressSpace, UserAccess};
use alloc::vec::Vec;
use probe_core::{SimulationFault, UserMemory};

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
