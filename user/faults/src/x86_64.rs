//! The x86_64 faults of `faults`: page faults (not present, write to read-only
//! data, text, a vtable or the GOT, the XOL page, the stack guard page, instruction fetch from a
//! no-execute page), invalid opcodes (`ud2`, SSE, AVX), a privileged instruction, a
//! divide error, an `int3` no probe owns, and an `int 0x41` ring 3 may not
//! raise.
//!
//! A misaligned access is not here: x86 allows it (alignment checking needs
//! CR0.AM and RFLAGS.AC, which the kernel leaves off).
//!
//! The assembly is in Rust's default x86 syntax, Intel.

use core::{arch::asm, sync::atomic::AtomicU8};

use user_rt::println;

use crate::{UNMAPPED, XOL_PAGE};

/// Every kind, in the order the usage message lists them.
pub(crate) const KINDS: [&str; 16] = [
    "unmapped-read",
    "null-read",
    "write-rodata",
    "write-text",
    "write-vtable",
    "write-got",
    "nx-exec",
    "xol-write",
    "stack-overflow",
    "undefined",
    "privileged",
    "divide-error",
    "sse",
    "avx",
    "int3",
    "int-unclaimed",
];

/// Read-only data (an immutable static without interior mutability goes to
/// `.rodata`, mapped read-only).
static READ_ONLY: [u8; 16] = [0x5a; 16];

/// The x86 `ret` opcode.
const RET_OPCODE: u8 = 0xc3;

/// One `ret` in writable data (an atomic is mutable, so it lives in `.data`,
/// mapped read + write and no-execute). Were the page executable, calling it
/// would return at once.
static RET_IN_DATA: AtomicU8 = AtomicU8::new(RET_OPCODE);

/// Loads the byte at `address` and stores it back: a write that changes
/// nothing, should the kernel wrongly allow it.
fn store_back(address: u64) {
    // SAFETY: the byte stored is the one just read from the same place, so even a
    // kernel that wrongly allowed the store would leave memory as it was.
    unsafe {
        asm!(
            "mov {byte}, byte ptr [{address}]",
            "mov byte ptr [{address}], {byte}",
            address = in(reg) address,
            byte = out(reg_byte) _,
            options(nostack, preserves_flags),
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
        // A load from an address inside the user range that nothing maps: a page
        // fault (#PF, vector 14), not present, on read.
        "unmapped-read" => {
            // SAFETY: a load into a discarded register.
            unsafe {
                asm!(
                    "mov {value}, qword ptr [{address}]",
                    address = in(reg) UNMAPPED,
                    value = out(reg) _,
                    options(nostack, readonly, preserves_flags),
                );
            }
        }
        // A load through a null pointer: page 0 is not a user page (#PF on read;
        // not present, or a protection fault if the kernel maps it for itself).
        "null-read" => {
            // SAFETY: a load into a discarded register. The address comes in a
            // register, so no Rust null dereference takes place.
            unsafe {
                asm!(
                    "mov {value}, qword ptr [{address}]",
                    address = in(reg) 0u64,
                    value = out(reg) _,
                    options(nostack, readonly, preserves_flags),
                );
            }
        }
        // A store into `.rodata`, mapped present and read-only: a page fault
        // (#PF), protection violation on write.
        "write-rodata" => store_back(READ_ONLY.as_ptr() as u64),
        // A store into this program's own code: text is mapped read + execute, so
        // a page fault (#PF), protection violation on write.
        "write-text" => store_back(crate::main as fn(&str) -> i32 as usize as u64),
        // A store into a vtable, which the linker script puts in the read-only
        // segment: a page fault (#PF), protection violation on write, not a
        // hijacked call.
        "write-vtable" => match crate::vtable_address() {
            Some(vtable) => store_back(vtable),
            None => println!("faults: write-vtable: could not find a vtable"),
        },
        // A store into the global offset table, which holds addresses the code
        // calls and loads through: read-only, so a page fault (#PF), protection
        // violation on write.
        "write-got" => {
            let got = user_rt::image::got();
            if got.is_empty() {
                println!("faults: write-got: this program has no GOT");
            } else {
                store_back(got.start);
            }
        }
        // A call into a data page, which the kernel maps no-execute (W^X): the
        // fetch is a page fault (#PF) with the instruction-fetch bit set, and RIP
        // is the data address, which no function covers.
        "nx-exec" => {
            // SAFETY: were the page executable, the `ret` there would return
            // straight away, as a C function that takes and returns nothing:
            // the clobbers declare what such a call may change.
            unsafe {
                asm!(
                    "call {address}",
                    address = in(reg) RET_IN_DATA.as_ptr(),
                    clobber_abi("C"),
                );
            }
        }
        // A store into the XOL page: read + execute for user code once the kernel
        // maps it (#PF, protection violation on write), not present until then.
        "xol-write" => {
            // SAFETY: nothing of this program lives at XOL_PAGE (the image is at
            // USER_BASE, the stacks below STACKS_TOP), so the store, should it
            // succeed, changes nothing Rust can see.
            unsafe {
                asm!(
                    "mov qword ptr [{address}], 0",
                    address = in(reg) XOL_PAGE,
                    options(nostack, preserves_flags),
                );
            }
        }
        // Recursion without end: each frame holds 1 KiB, so within 64 frames
        // the stack runs into the unmapped guard page below it (#PF, not present,
        // on write).
        "stack-overflow" => {
            let depth = crate::recurse(0);
            println!("faults: recursion returned at depth {depth}");
        }
        // The architecturally undefined instruction: invalid opcode (#UD, vector
        // 6).
        "undefined" => {
            // SAFETY: `ud2` does nothing but trap.
            unsafe {
                asm!("ud2", options(nomem, nostack, preserves_flags));
            }
        }
        // `hlt` is for ring 0 only: a general protection fault (#GP, vector 13)
        // with error code 0.
        "privileged" => {
            // SAFETY: in ring 3 `hlt` only traps; were it to run, it would wait
            // for the next interrupt and go on.
            unsafe {
                asm!("hlt", options(nomem, nostack, preserves_flags));
            }
        }
        // An unsigned division by zero: divide error (#DE, vector 0).
        "divide-error" => {
            // SAFETY: `div` reads rdx:rax and the divisor, writes rax and rdx
            // (declared), and traps on a zero divisor. `black_box` keeps the
            // compiler from seeing the zero (it would reject a constant one).
            unsafe {
                asm!(
                    "div {divisor}",
                    divisor = in(reg) core::hint::black_box(0u64),
                    inout("rax") 1u64 => _,
                    inout("rdx") 0u64 => _,
                    options(nomem, nostack),
                );
            }
        }
        // An SSE instruction: the kernel leaves SSE off for user code
        // (CR4.OSFXSR clear), so it is an invalid opcode (#UD, vector 6).
        "sse" => {
            // SAFETY: `xorps` only zeroes xmm0. This target is soft-float, so the
            // compiler keeps nothing in xmm registers (and cannot name them as
            // clobbers): changing xmm0, should SSE be on, affects no Rust code.
            unsafe {
                asm!("xorps xmm0, xmm0", options(nomem, nostack, preserves_flags));
            }
        }
        // An AVX instruction: the kernel leaves CR4.OSXSAVE clear, so every
        // VEX-encoded instruction is an invalid opcode (#UD) even on a
        // processor that has AVX (Intel SDM vol. 1, 14.3 "Detection of Intel
        // AVX instructions": the OS must set OSXSAVE and XCR0 first).
        "avx" => {
            // SAFETY: `vxorps` only zeroes ymm0, which no Rust code uses on
            // this soft-float target, should AVX be (wrongly) enabled.
            unsafe {
                asm!("vxorps ymm0, ymm0, ymm0", options(nomem, nostack, preserves_flags));
            }
        }
        // An `int3` of the program's own: a breakpoint (#BP, vector 3) at an
        // address that has no probe, which the kernel must report as the
        // program's breakpoint, not take for a probe hit.
        "int3" => {
            // SAFETY: `int3` does nothing but trap.
            unsafe {
                asm!("int3", options(nomem, nostack, preserves_flags));
            }
        }
        // A software interrupt to a vector whose IDT gate has DPL 0 (every one
        // but `int3` and `int 0x80`): a general protection fault (#GP) whose
        // error code names the gate, (0x41 << 3) | 2 (IDT flag) = 0x20a.
        "int-unclaimed" => {
            // SAFETY: from ring 3 this `int` only traps (#GP); were the gate
            // open to ring 3, the kernel would report the vector and return.
            unsafe {
                asm!("int 0x41", options(nomem, nostack));
            }
        }
        _ => unreachable!("commit called with unknown kind {kind}"),
    }
}
