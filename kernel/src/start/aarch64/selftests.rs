//! The self-tests of an aarch64 boot, in the order they run: the heap and
//! the frame allocator, the EL1 exception path (`brk-el1`), the MMU's W^X
//! (`mmu-wx`), the tick (shared, [`selftest::TIMER_TICK`]), the cache
//! geometry and the cross-core interrupt (`cross-core-sgi`). They check what this boot order set up, through the subsystems it
//! started and the architecture's own registers and tables, so they live with
//! the boot order, which may use both, rather than in the architecture layer,
//! which calls nothing above it.

use crate::{
    arch::{
        aarch64::{
            cache,
            expected_traps::{BRK_ELR, BRK_ESR, EL1_BRK_IMMEDIATE},
            memory_layout,
            mmu::{self, AccessCheck},
            smp,
        },
        Cores, Machine, PageLeaf, PageTable,
    },
    board::Platform,
    ensure,
    memory::{frames, heap, PAGE_SIZE},
    selftest::{self, Outcome, SelfTest},
};
use aarch64_cpu::registers::ESR_EL1;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use tock_registers::{interfaces::Readable, registers::InMemoryRegister};

/// This architecture's self-tests, in order.
pub const SELF_TESTS: &[SelfTest] = &[
    SelfTest { name: "heap", run: heap_allocates_and_frees },
    SelfTest { name: "frames", run: frames_are_distinct_zeroed_ram },
    SelfTest { name: "brk-el1", run: brk_at_el1_is_trapped_and_decoded },
    SelfTest { name: "mmu-wx", run: no_mapping_is_writable_and_executable },
    selftest::TIMER_TICK,
    SelfTest { name: "cache-geometry", run: cache_lines_are_sane },
    SelfTest { name: "cross-core-sgi", run: cross_core_interrupt_arrives_and_ends },
];

/// How many times `cross-core-sgi` polls for its interrupt: a bound on the
/// guest's own work, not on time (as the tick test's budget).
const SGI_POLL_BUDGET: u64 = 1 << 28;

/// The cross-core interrupt, sent by `Cores::interrupt_core` to this core
/// itself, arrives through the whole path (GICD_SGIR, the acknowledge, the
/// decoding as `Interrupt::CrossCore`, the dispatcher) twice: the second
/// proves the first was ended (GICC_EOIR), since an SGI left active holds
/// back every interrupt of its priority. (Sent by the boot core, CPU
/// interface 0 on QEMU, its IAR's source CPUID is 0: that the EOIR value
/// carries the CPUID bits is not what this proves.)
fn cross_core_interrupt_arrives_and_ends(_: &Platform) -> Outcome {
    for round in 1..=2 {
        let before = smp::cross_core_arrivals();
        Machine::interrupt_core(Machine::core_index());
        let mut polls = 0u64;
        while smp::cross_core_arrivals() == before {
            polls += 1;
            ensure!(
                polls < SGI_POLL_BUDGET,
                "SGI {} sent to this core never arrived (round {})",
                smp::CROSS_CORE_SGI,
                round
            );
            core::hint::spin_loop();
        }
    }
    Ok(())
}

fn heap_allocates_and_frees(_: &Platform) -> Outcome {
    let (used_before, _) = heap::usage();
    {
        let numbers: Vec<u64> = (0..10_000).collect();
        ensure!(numbers.iter().sum::<u64>() == 49_995_000, "vector contents corrupted");
        let (used_during, _) = heap::usage();
        ensure!(used_during >= used_before + 80_000, "allocation not accounted ({} -> {})", used_before, used_during);
    }
    let (used_after, _) = heap::usage();
    ensure!(used_after == used_before, "leak: {} bytes in use before, {} after", used_before, used_after);
    Ok(())
}

fn frames_are_distinct_zeroed_ram(platform: &Platform) -> Outcome {
    let taken: Vec<usize> = (0..16).map_while(|_| frames::alloc_zeroed()).collect();
    let result = (|| {
        ensure!(taken.len() == 16, "only {} of 16 frames available", taken.len());
        let kernel = memory_layout::kernel_start()..memory_layout::kernel_end();
        for (i, &frame) in taken.iter().enumerate() {
            ensure!(frame % PAGE_SIZE == 0, "frame {:#x} not page aligned", frame);
            ensure!(!kernel.contains(&frame), "frame {:#x} inside the kernel image", frame);
            ensure!(
                platform.ram.iter().any(|r| r.base <= frame && frame + PAGE_SIZE <= r.end()),
                "frame {:#x} outside RAM",
                frame
            );
            ensure!(
                !platform.reserved.iter().any(|r| frame < r.region.end() && r.region.base < frame + PAGE_SIZE),
                "frame {:#x} in a reserved range",
                frame
            );
            ensure!(!taken[..i].contains(&frame), "frame {:#x} handed out twice", frame);
            // SAFETY: we own this frame until `free` below; it is identity mapped.
            let contents = unsafe { core::slice::from_raw_parts(frame as *const u64, PAGE_SIZE / 8) };
            ensure!(contents.iter().all(|&word| word == 0), "frame {:#x} not zeroed", frame);
        }
        Ok(())
    })();
    taken.into_iter().for_each(frames::free);
    result?;
    // Not only these 16: no range the allocator was ever given touches a
    // reserved one (the device tree blob, /memreserve/, /reserved-memory, the
    // board table's), so no frame it hands out ever can.
    for given in frames::given() {
        for reserved in &platform.reserved {
            let r = reserved.region;
            ensure!(
                given.end() <= r.base || r.end() <= given.base,
                "the allocator was given {:#x}-{:#x}, which overlaps {} at {:#x}-{:#x}",
                given.base,
                given.end(),
                reserved.what,
                r.base,
                r.end()
            );
        }
    }
    Ok(())
}

fn brk_at_el1_is_trapped_and_decoded(_: &Platform) -> Outcome {
    let brk_address: u64;
    // SAFETY: the brk traps to our own EL1 handler, which records the frame and
    // resumes after it; no register other than the output is changed.
    unsafe {
        core::arch::asm!(
            "adr {pc}, 1f",
            "1: brk #{imm}",
            pc = out(reg) brk_address,
            imm = const EL1_BRK_IMMEDIATE,
        );
    }
    let esr = InMemoryRegister::<u64, ESR_EL1::Register>::new(BRK_ESR.load(Ordering::SeqCst));
    let elr = BRK_ELR.load(Ordering::SeqCst);
    ensure!(esr.matches_all(ESR_EL1::EC::Brk64), "ESR_EL1 {:#x}: class is not brk (0x3c)", esr.get());
    // The immediate is the low 16 bits of ISS (ISS[24:16] are RES0 for a brk).
    ensure!(esr.read(ESR_EL1::ISS) as u16 == EL1_BRK_IMMEDIATE, "ESR_EL1 {:#x}: wrong immediate", esr.get());
    ensure!(elr == brk_address, "ELR_EL1 {:#x}, brk at {:#x}", elr, brk_address);
    Ok(())
}

fn no_mapping_is_writable_and_executable(platform: &Platform) -> Outcome {
    selftest::kernel_table_has_no_writable_executable_leaf()?;
    let table = mmu::kernel_table();

    // Ask the MMU itself (AT instructions), not just our own tables.
    let text = no_mapping_is_writable_and_executable as *const () as usize;
    let data = &BRK_ESR as *const AtomicU64 as usize;
    let guard = memory_layout::stack_guard();
    ensure!(mmu::hardware_check(text, AccessCheck::El1Read), "kernel text not readable");
    ensure!(!mmu::hardware_check(text, AccessCheck::El1Write), "kernel text is writable");
    ensure!(mmu::hardware_check(data, AccessCheck::El1Write), "kernel data not writable");
    ensure!(!table.lookup(data).is_some_and(|leaf| leaf.executable()), "kernel data is executable");
    ensure!(!mmu::hardware_check(guard, AccessCheck::El1Read), "stack guard page {:#x} is mapped", guard);
    // Firmware's `no-map` memory is not mapped at all: its first and last page.
    for reserved in platform.reserved.iter().filter(|r| r.no_map) {
        let r = reserved.region;
        for page in [r.base, r.end() - 1] {
            ensure!(
                !mmu::hardware_check(page, AccessCheck::El1Read),
                "{} is no-map, but {:#x} is mapped",
                reserved.what,
                page
            );
        }
    }
    Ok(())
}

fn cache_lines_are_sane(_: &Platform) -> Outcome {
    let caches = cache::geometry();
    for (which, line) in [("D", caches.dcache_line), ("I", caches.icache_line)] {
        ensure!(line.is_power_of_two() && (16..=2048).contains(&line), "{}-cache line of {} bytes", which, line);
    }
    Ok(())
}
