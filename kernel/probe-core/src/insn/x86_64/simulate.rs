//! The x86_64 simulator: carries out a simulated instruction on the saved
//! user registers as the Intel SDM's description of it does, touching the
//! stack only through the checked [`UserMemory`] path. Every path either
//! completes (registers and RIP updated) or returns a fault with the
//! registers untouched, so the kernel can report the fault at the probed
//! address exactly as the hardware would have.

use super::{Gpr, Registers, Simulation};
use crate::insn::{SimulationFault, UserMemory};

/// Bits of a virtual address with 4-level paging; the bits above must copy
/// bit 47 ("canonical"). A branch to a non-canonical address raises `#GP`
/// at the branch, before it changes anything, and so does a simulated one:
/// an `iretq` to a non-canonical RIP would fault in the kernel instead.
const VIRTUAL_ADDRESS_BITS: u32 = 48;

/// The size of a stack slot (push, pop, call, ret in 64-bit mode).
const STACK_SLOT: u64 = 8;

/// Whether `address` is canonical under 4-level paging.
pub const fn is_canonical(address: u64) -> bool {
    let unused = u64::BITS - VIRTUAL_ADDRESS_BITS;
    (((address << unused) as i64) >> unused) as u64 == address
}

/// A branch target, or the fault the branch raises on it. The fault is
/// reported as an instruction fetch the task may not make.
fn branch_target(target: u64) -> Result<u64, SimulationFault> {
    if is_canonical(target) {
        Ok(target)
    } else {
        Err(SimulationFault::UserAccess { addr: target, write: false })
    }
}

/// Simulate `simulation`, the instruction at `pc` (the probed address, the
/// original RIP): update `regs` (always including RIP) or, on a fault,
/// leave them as they were.
pub fn simulate<R, M>(simulation: &Simulation, pc: u64, regs: &mut R, mem: &mut M) -> Result<(), SimulationFault>
where
    R: Registers + ?Sized,
    M: UserMemory + ?Sized,
{
    let after = |len: u8| pc.wrapping_add(u64::from(len));
    let relative = |offset: i64| branch_target(pc.wrapping_add(offset as u64));
    let new_rip = match *simulation {
        Simulation::Nop { len } => after(len),
        Simulation::Push { reg, len } => {
            // Read before RSP moves: `push rsp` stores the old value.
            let value = regs.gpr(reg);
            push(regs, mem, value)?;
            after(len)
        }
        Simulation::Ret => {
            let rsp = regs.gpr(Gpr::Rsp);
            let target = branch_target(mem.read_u64(rsp)?)?;
            regs.set_gpr(Gpr::Rsp, rsp.wrapping_add(STACK_SLOT));
            target
        }
        Simulation::Call { offset, len } => {
            // The target is checked before the push: a faulting call leaves
            // the stack pointer alone.
            let target = relative(offset)?;
            push(regs, mem, after(len))?;
            target
        }
        Simulation::Jmp { offset } => relative(offset)?,
        Simulation::Jcc { condition, offset, len } => {
            if condition.holds(regs.rflags()) {
                relative(offset)?
            } else {
                after(len)
            }
        }
    };
    regs.set_rip(new_rip);
    Ok(())
}

/// Store `value` at RSP - 8 and, only once the store succeeded, move RSP.
fn push<R, M>(regs: &mut R, mem: &mut M, value: u64) -> Result<(), SimulationFault>
where
    R: Registers + ?Sized,
    M: UserMemory + ?Sized,
{
    let new_rsp = regs.gpr(Gpr::Rsp).wrapping_sub(STACK_SLOT);
    mem.write_u64(new_rsp, value)?;
    regs.set_gpr(Gpr::Rsp, new_rsp);
    Ok(())
}
