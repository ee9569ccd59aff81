//! The aarch64 faults of `faults`: data and instruction aborts, an undefined
//! instruction, alignment faults, a `brk` no probe owns, and stores into text, a
//! vtable and the XOL page.

use core::arch::asm;

use user_rt::println;

use crate::{UNMAPPED, XOL_PAGE};

/// Where the kernel is loaded on QEMU virt: mapped, but for EL1 only.
const KERNEL_ADDRESS: u64 = 0x4008_0000;

/// Every kind, in the order the usage message lists them.
pub(crate) const KINDS: [&str; 11] = [
    "data-abort",
    "stack-overflow",
    "instruction-abort",
    "undefined",
    "alignment",
    "sp-alignment",
    "brk",
    "write-text",
    "write-vtable",
    "kernel-read",
    "xol-write",
];

/// Loads the word at `address` and stores it back: a write that changes nothing,
/// should the kernel wrongly allow it.
fn store_back(address: u64) {
    // SAFETY: the word stored is the one just read from the same place, so even a
    // kernel that wrongly allowed the store would leave memory as it was.
    unsafe {
        asm!(
            "ldr {word:w}, [{address}]",
            "str {word:w}, [{address}]",
            address = in(reg) address,
            word = out(reg) _,
            options(nostack),
        );
    }
}

/// Commits the fault `kind` (one of [`KINDS`]) and returns only if it did not
/// happen.
///
/// Each block either faults, and the kernel ends the process there, or has no
/// effect on anything Rust can see; the `SAFETY` lines say why for each.
pub(crate) fn commit(kind: &str) {
    match kind {
        // A load from an address inside the user range that nothing maps: a
        // translation fault (data abort, EC 0x24).
        "data-abort" => {
            // SAFETY: a load into a discarded register.
            unsafe {
                asm!(
                    "ldr {value}, [{address}]",
                    address = in(reg) UNMAPPED,
                    value = out(reg) _,
                    options(nostack, readonly),
                );
            }
        }
        // A call to an unmapped address: the fetch faults (instruction abort, EC
        // 0x20) with x30 pointing back here.
        "instruction-abort" => {
            // SAFETY: were anything there, it would be called as a C function that
            // takes and returns nothing: the clobbers declare what such a call may
            // change.
            unsafe {
                asm!("blr {address}", address = in(reg) UNMAPPED, clobber_abi("C"));
            }
        }
        // A permanently undefined encoding (EC 0x00).
        "undefined" => {
            // SAFETY: `udf` does nothing but trap.
            unsafe {
                asm!("udf #0", options(nomem, nostack));
            }
        }
        // An exclusive load must be naturally aligned even on normal memory (an
        // ordinary unaligned `ldr` is fine there): an alignment fault (data abort,
        // EC 0x24, DFSC 0b100001).
        "alignment" => {
            let words = [0u64; 2];
            let misaligned = words.as_ptr() as u64 + 1;
            // SAFETY: the 8 bytes at `misaligned` lie inside `words`; the loaded
            // value is discarded and the reservation dropped again (`clrex`).
            unsafe {
                asm!(
                    "ldxr {value}, [{address}]",
                    "clrex",
                    address = in(reg) misaligned,
                    value = out(reg) _,
                    options(nostack),
                );
            }
        }
        // A load with SP as the base while SP is odd: an SP alignment fault (EC
        // 0x26), which SCTLR_EL1.SA0 enables for EL0.
        "sp-alignment" => {
            // SAFETY: SP is back to its value before the block ends; the load reads
            // the 8 bytes at SP - 1, inside this thread's stack, into a discarded
            // register. (EL1 runs on SP_EL1, so an odd SP_EL0 cannot hurt an
            // interrupt taken in between.)
            unsafe {
                asm!(
                    "sub sp, sp, #1",
                    "ldr {value}, [sp]",
                    "add sp, sp, #1",
                    value = out(reg) _,
                    options(readonly),
                );
            }
        }
        // A `brk` with an immediate no probe uses: the kernel finds no probe at
        // this address and reports the program's own breakpoint (EC 0x3C).
        "brk" => {
            // SAFETY: `brk` does nothing but trap.
            unsafe {
                asm!("brk #0x1", options(nomem, nostack));
            }
        }
        // A store into this program's own code: text is mapped read + execute, so
        // a permission fault (data abort, EC 0x24, WnR = 1).
        "write-text" => store_back(crate::main as fn(&str) -> i32 as usize as u64),
        // A store into a vtable, which the linker script puts in the read-only
        // segment: a permission fault (data abort, EC 0x24), not a hijacked call.
        "write-vtable" => match crate::vtable_address() {
            Some(vtable) => store_back(vtable),
            None => println!("faults: write-vtable: could not find a vtable"),
        },
        // A load from the kernel's image: mapped, but for EL1 only (permission
        // fault, data abort, EC 0x24).
        "kernel-read" => {
            // SAFETY: a load into a discarded register.
            unsafe {
                asm!(
                    "ldr {value}, [{address}]",
                    address = in(reg) KERNEL_ADDRESS,
                    value = out(reg) _,
                    options(nostack, readonly),
                );
            }
        }
        // A store into the XOL page: read + execute for EL0 once the kernel maps
        // it (permission fault), unmapped until then (translation fault).
        "xol-write" => {
            // SAFETY: nothing of this program lives at XOL_PAGE (the image is at
            // USER_BASE, the stacks below STACKS_TOP), so the store, should it
            // succeed, changes nothing Rust can see.
            unsafe {
                asm!("str xzr, [{address}]", address = in(reg) XOL_PAGE, options(nostack));
            }
        }
        // Recursion without end: each frame holds 1 KiB, so within 64 frames
        // the stack runs into the unmapped guard page below it (data abort on
        // write, translation fault).
        "stack-overflow" => {
            let depth = crate::recurse(0);
            println!("faults: recursion returned at depth {depth}");
        }
        _ => unreachable!("commit called with unknown kind {kind}"),
    }
}
