//! A task's address space as the probe simulators' *checked* user memory.
//!
//! A simulated `ldr` literal, frame push, `push`, `call` or `ret` reads or
//! writes user memory on the task's behalf; it goes through
//! `AddressSpace::check` like a system call's buffer (`read_checked` and
//! `write_checked`: the same check, one table walk for bytes in one page),
//! so it can only do what the task itself could have done. (Linux's arm64 `ldr` literal simulation
//! read user memory unchecked: CVE-2024-50099.)

use crate::task::address_space::AddressSpace;
use probe_core::{SimulationFault, UserMemory};

/// User memory of one address space, reached only through checked ranges.
pub struct CheckedUserMemory<'a>(pub &'a AddressSpace);

impl CheckedUserMemory<'_> {
    /// `N` bytes at `addr`, if the task could read them.
    fn read<const N: usize>(&self, addr: u64) -> Result<[u8; N], SimulationFault> {
        let mut bytes = [0; N];
        self.0.read_checked(addr, &mut bytes).map_err(|_| SimulationFault::UserAccess { addr, write: false })?;
        Ok(bytes)
    }
}

impl UserMemory for CheckedUserMemory<'_> {
    fn read_u32(&mut self, addr: u64) -> Result<u32, SimulationFault> {
        self.read(addr).map(u32::from_le_bytes)
    }
    fn read_u64(&mut self, addr: u64) -> Result<u64, SimulationFault> {
        self.read(addr).map(u64::from_le_bytes)
    }
    fn write_u64(&mut self, addr: u64, value: u64) -> Result<(), SimulationFault> {
        self.0.write_checked(addr, &value.to_le_bytes()).map_err(|_| SimulationFault::UserAccess { addr, write: true })
    }
}
