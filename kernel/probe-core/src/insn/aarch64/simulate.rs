//! The A64 simulator: carries out a simulated instruction on the saved user
//! registers, as the Arm ARM's pseudocode for it does, touching user memory
//! only through the checked [`UserMemory`] path. Every path either completes
//! (registers and PC updated) or returns a fault with the registers untouched,
//! so the kernel can report the fault at the probed address exactly as the
//! hardware would have.

use super::{
    branch::{compare_taken, compared_value, test_taken, tested_value},
    LiteralLoad, RegisterBranch, Registers, Simulation,
};
use crate::insn::{SimulationFault, UserMemory};

/// X[n] where 31 names the zero register.
pub(super) fn read_or_zero<R: Registers + ?Sized>(regs: &R, n: u8) -> u64 {
    if n == 31 {
        0
    } else {
        regs.x(n)
    }
}

/// X[n] = value where 31 names the zero register (the write is discarded).
fn write_or_discard<R: Registers + ?Sized>(regs: &mut R, n: u8, value: u64) {
    if n != 31 {
        regs.set_x(n, value);
    }
}

/// Simulate `simulation`, the instruction at `pc`: update `regs` (always
/// including the PC) or, on a fault, leave them as they were.
pub fn simulate<R, M>(simulation: &Simulation, pc: u64, regs: &mut R, mem: &mut M) -> Result<(), SimulationFault>
where
    R: Registers + ?Sized,
    M: UserMemory + ?Sized,
{
    let next = pc.wrapping_add(4);
    let relative = |offset: i64| pc.wrapping_add(offset as u64);
    let new_pc = match *simulation {
        Simulation::Branch { offset } => relative(offset),
        Simulation::BranchLink { offset } => {
            regs.set_x(30, next);
            relative(offset)
        }
        Simulation::BranchConditional { condition, offset } => {
            if condition.holds(regs.nzcv()) {
                relative(offset)
            } else {
                next
            }
        }
        Simulation::CompareBranch { rt, is_64, nonzero, offset } => {
            if compare_taken(compared_value(regs, rt, is_64), nonzero) {
                relative(offset)
            } else {
                next
            }
        }
        Simulation::TestBranch { rt, bit, nonzero, offset } => {
            if test_taken(tested_value(regs, rt, bit), bit, nonzero) {
                relative(offset)
            } else {
                next
            }
        }
        Simulation::BranchRegister { rn, kind } => {
            // Read the target before writing the link: `blr x30` jumps to
            // the old x30.
            let target = read_or_zero(regs, rn);
            if kind == RegisterBranch::Blr {
                regs.set_x(30, next);
            }
            target
        }
        Simulation::Adr { rd, offset } => {
            write_or_discard(regs, rd, relative(offset));
            next
        }
        Simulation::Adrp { rd, offset } => {
            write_or_discard(regs, rd, (pc & !0xfff).wrapping_add(offset as u64));
            next
        }
        Simulation::LoadLiteral { rt, offset, width } => {
            // The load happens (and may fault) even when Rt is the zero
            // register; only the write back is discarded.
            let address = relative(offset);
            let value = match width {
                LiteralLoad::Word => u64::from(mem.read_u32(address)?),
                LiteralLoad::Doubleword => mem.read_u64(address)?,
                LiteralLoad::SignedWord => mem.read_u32(address)? as i32 as i64 as u64,
            };
            write_or_discard(regs, rt, value);
            next
        }
        Simulation::LoadLiteralSimd { rt, offset, bytes } => {
            // Every read happens before V[rt] is written, so a fault leaves
            // it as it was. A 16-byte load reads two doublewords: the Arm ARM
            // (B2.2.1, "Requirements for single-copy atomicity") makes a
            // 128-bit SIMD&FP load two 64-bit single-copy atomic accesses
            // anyway, so no observer can tell the difference.
            let address = relative(offset);
            let value = match bytes {
                4 => u128::from(mem.read_u32(address)?),
                8 => u128::from(mem.read_u64(address)?),
                _ => {
                    let low = mem.read_u64(address)?;
                    let high = mem.read_u64(address.wrapping_add(8))?;
                    u128::from(high) << 64 | u128::from(low)
                }
            };
            regs.set_v(rt, value);
            next
        }
        Simulation::PrefetchLiteral | Simulation::Nop => next,
        Simulation::FramePush => {
            // Base register 31 is SP here. With SCTLR_EL1.SA0 set, an access
            // based on a misaligned SP takes an SP alignment fault before any
            // memory is touched.
            let sp = regs.sp();
            if !sp.is_multiple_of(16) {
                return Err(SimulationFault::SpAlignment { sp });
            }
            let new_sp = sp.wrapping_sub(16);
            mem.write_u64(new_sp, regs.x(29))?;
            mem.write_u64(new_sp.wrapping_add(8), regs.x(30))?;
            // Only now, with both stores done, does the register state move.
            regs.set_sp(new_sp);
            next
        }
    };
    regs.set_pc(new_pc);
    Ok(())
}
