//! The self-tests of a UEFI PC boot, in the order they run: what replaced the
//! firmware's set-up (`boot-services`, `idt-tss`), the ring-0 trap path
//! (`int3-ring0`), the kernel's map (`mmu-wx`), the FPU and vector units being
//! off (`sse-off`), the tick (shared, [`selftest::TIMER_TICK`]), interrupts on
//! vectors nobody claims (`unexpected-vectors`), the cross-core interrupt
//! (`cross-core-ipi`, the boot core to itself) and the user-access checker
//! behind every system call (`user-access`). They check what this boot order
//! set up, with the architecture's own registers and tables and with the
//! subsystems above the architecture layer (the dispatcher's counts, address
//! spaces), so they live with the boot order rather than in that layer, which
//! calls nothing above it.

use crate::{
    arch::{
        x86_64::{
            cpu, exception,
            expected_traps::{INT3_EXPECTED_RIP, INT3_TRAPPED_RIP, INT3_VECTOR},
            gdt, lapic, memory_layout, mmu,
        },
        Access, PageLeaf, PageTable,
    },
    board::{uefi_pc::memory::given_before_the_switch, Platform},
    ensure,
    memory::{self, region::MemoryRegion, PAGE_SIZE},
    selftest::{self, Outcome, SelfTest},
    task::address_space::{AddressSpace, UserAccess},
    time,
};
use alloc::format;
use brk_abi::{layout, Error};
use core::sync::atomic::{AtomicU64, Ordering};
use probe_core::insn::x86_64::INT3;

/// This architecture's self-tests, in order.
pub const SELF_TESTS: &[SelfTest] = &[
    SelfTest { name: "boot-services", run: no_frame_came_from_boot_services_memory_before_the_switch },
    SelfTest { name: "idt-tss", run: descriptor_tables_are_in_place },
    SelfTest { name: "int3-ring0", run: int3_in_ring_0_is_trapped },
    SelfTest { name: "mmu-wx", run: no_mapping_is_writable_and_executable },
    SelfTest { name: "sse-off", run: sse_and_x87_are_off },
    selftest::TIMER_TICK,
    SelfTest { name: "unexpected-vectors", run: unexpected_and_spurious_vectors_are_survived },
    SelfTest { name: "cross-core-ipi", run: the_cross_core_interrupt_arrives },
    SelfTest { name: "user-access", run: user_access_checker_demands_ring_3_rights },
];

/// The firmware's page tables live in boot-services memory until CR3 holds
/// the kernel's: every range the frame allocator could hand out before the
/// switch must lie outside it, and boot-services memory must have been added
/// after.
fn no_frame_came_from_boot_services_memory_before_the_switch(platform: &Platform) -> Outcome {
    let before = given_before_the_switch();
    ensure!(!before.is_empty(), "nothing was recorded at the switch to the kernel's tables");
    for given in before {
        if let Some(firmware) = platform.boot_services.iter().find(|bs| bs.base < given.end() && given.base < bs.end())
        {
            return Err(format!(
                "{:#x}-{:#x} was given to the frame allocator before the switch, over boot-services memory {:#x}-{:#x}",
                given.base,
                given.end(),
                firmware.base,
                firmware.end()
            ));
        }
    }
    let after = memory::frames::given();
    // Whatever of it is not reserved (the first MiB) must be in use now.
    let handed_out = |bs: &&MemoryRegion| !memory::frames::pages_without(**bs, &platform.reserved).is_empty();
    for firmware in platform.boot_services.iter().filter(handed_out) {
        ensure!(
            after.iter().any(|given| given.base < firmware.end() && firmware.base < given.end()),
            "boot-services memory {:#x}-{:#x} was never handed out after the switch",
            firmware.base,
            firmware.end()
        );
    }
    Ok(())
}

fn descriptor_tables_are_in_place(_: &Platform) -> Outcome {
    let (loaded_idt, our_idt) = exception::idt_addresses();
    ensure!(
        loaded_idt == our_idt && our_idt != 0,
        "IDTR base {:#x}, the kernel's IDT is at {:#x}",
        loaded_idt,
        our_idt
    );
    let (_, ist1, task_register) = gdt::loaded_state();
    let index = <crate::arch::Machine as crate::arch::Cores>::core_index();
    ensure!(
        index == 0 && gdt::index_in_area() == 0,
        "core index {} through gs:[{}], {} in the GS base's per-core area; the boot core is 0",
        index,
        gdt::CORE_INDEX_OFFSET,
        gdt::index_in_area()
    );
    let selectors = gdt::selectors();
    ensure!(
        task_register == selectors.tss.0,
        "task register {:#x}, the TSS selector is {:#x}",
        task_register,
        selectors.tss.0
    );
    ensure!(
        ist1 == memory_layout::double_fault_stack_top() as u64,
        "IST1 {:#x}, the double-fault stack's top is {:#x}",
        ist1,
        memory_layout::double_fault_stack_top()
    );
    Ok(())
}

fn int3_in_ring_0_is_trapped(_: &Platform) -> Outcome {
    // SAFETY: the `int3` traps to our own handler, which records the frame and
    // resumes after it (#BP is a trap: RIP already points past it). Only rax
    // (declared clobbered) and the two atomics change.
    unsafe {
        core::arch::asm!(
            "lea rax, [rip + 2f]",
            "mov [{expected}], rax",
            "int3",
            "2:",
            expected = in(reg) INT3_EXPECTED_RIP.as_ptr(),
            out("rax") _,
        );
    }
    let (expected, trapped) = (INT3_EXPECTED_RIP.load(Ordering::SeqCst), INT3_TRAPPED_RIP.load(Ordering::SeqCst));
    INT3_EXPECTED_RIP.store(0, Ordering::SeqCst);
    ensure!(
        INT3_VECTOR.load(Ordering::SeqCst) == 3,
        "vector {} instead of 3 (#BP)",
        INT3_VECTOR.load(Ordering::SeqCst)
    );
    ensure!(trapped == expected, "RIP {:#x} in the frame, the byte after the int3 is {:#x}", trapped, expected);
    Ok(())
}

fn no_mapping_is_writable_and_executable(platform: &Platform) -> Outcome {
    selftest::kernel_table_has_no_writable_executable_leaf()?;
    let table = mmu::kernel_table();
    let text = no_mapping_is_writable_and_executable as *const () as usize;
    let data = &INT3_TRAPPED_RIP as *const AtomicU64 as usize;
    let text_leaf = table.lookup(text).ok_or("kernel text not mapped")?;
    ensure!(text_leaf.executable() && !text_leaf.writable(), "kernel text at {:#x} is not read+execute", text);
    let data_leaf = table.lookup(data).ok_or("kernel data not mapped")?;
    ensure!(
        data_leaf.writable() && !data_leaf.executable(),
        "kernel data at {:#x} is not read+write, no execute",
        data
    );
    for guard in [memory_layout::stack_guard(), memory_layout::double_fault_stack_guard(), 0] {
        ensure!(table.lookup(guard).is_none(), "guard page {:#x} is mapped", guard);
    }
    ensure!(table.lookup(platform.image.base).is_some_and(|leaf| !leaf.writable()), "the PE headers are writable");
    Ok(())
}

fn sse_and_x87_are_off(_: &Platform) -> Outcome {
    ensure!(cpu::sse_is_off(), "CR4.OSFXSR or CR4.OSXSAVE set, or CR0.EM clear");
    Ok(())
}

/// The vector `unexpected-vectors` raises: one no handler claims.
const UNCLAIMED_VECTOR: u8 = 0x41;
const _: () = assert!(
    UNCLAIMED_VECTOR >= exception::FIRST_INTERRUPT_VECTOR
        && UNCLAIMED_VECTOR != exception::LOCAL_APIC_TIMER_VECTOR
        && UNCLAIMED_VECTOR != exception::SYSCALL_VECTOR
        && (UNCLAIMED_VECTOR < exception::PIC_BASE || UNCLAIMED_VECTOR >= exception::PIC_BASE + exception::PIC_LINES)
);
/// The master 8259's line 7 as remapped: what its spurious interrupt arrives
/// on. `int` raises it with the line's in-service bit clear, as a real
/// spurious one finds it.
const PIC_SPURIOUS_VECTOR: u8 = exception::PIC_BASE + 7;

/// Every vector has a gate: an interrupt on one nobody handles is reported
/// and the kernel goes on; the local APIC's spurious vector and an 8259's
/// spurious line are counted. Raised here with `int n` from ring 0, where a
/// missing gate would be a fatal #GP.
fn unexpected_and_spurious_vectors_are_survived(_: &Platform) -> Outcome {
    let before = exception::interrupt_counts();
    // SAFETY: each `int` enters the kernel's own stub for that vector, whose
    // handler counts it and returns with `iretq` to the next instruction; no
    // register is changed (trap.s saves and restores them all).
    unsafe {
        core::arch::asm!(
            "int {unclaimed}",
            "int {apic_spurious}",
            "int {pic_spurious}",
            unclaimed = const UNCLAIMED_VECTOR,
            apic_spurious = const exception::LOCAL_APIC_SPURIOUS_VECTOR,
            pic_spurious = const PIC_SPURIOUS_VECTOR,
        );
    }
    let after = exception::interrupt_counts();
    let seen = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
    ensure!(
        seen == (1, 1, 1),
        "counted {} spurious local APIC, {} spurious 8259 and {} unexpected interrupts, expected one each",
        seen.0,
        seen.1,
        seen.2
    );
    Ok(())
}

/// How long the boot core waits for the interrupt it sent itself.
const CROSS_CORE_WAIT_MS: u64 = 1000;

/// The cross-core interrupt, sent by the boot core to itself through the
/// contract (`Cores::interrupt_core(0)`: a fixed IPI on vector 0xf0 to its
/// own APIC id through the ICR), arrives through its gate, is decoded as
/// `Interrupt::CrossCore` and acknowledged; interrupts are on.
fn the_cross_core_interrupt_arrives(_: &Platform) -> Outcome {
    let before = exception::cross_core_interrupts();
    <crate::arch::Machine as crate::arch::Cores>::interrupt_core(0);
    let deadline = time::counter() + time::frequency() * CROSS_CORE_WAIT_MS / 1000;
    while exception::cross_core_interrupts() == before && time::counter() < deadline {
        core::hint::spin_loop();
    }
    let taken = exception::cross_core_interrupts() - before;
    ensure!(
        taken == 1,
        "{} cross-core interrupts taken within {} ms of the IPI, expected 1",
        taken,
        CROSS_CORE_WAIT_MS
    );
    ensure!(
        !lapic::in_service(exception::CROSS_CORE_VECTOR),
        "vector {:#x} still in service at the local APIC: no EOI",
        exception::CROSS_CORE_VECTOR
    );
    Ok(())
}

/// The checker behind every system call pointer: a fresh address space with
/// one read-only and one read/write page, probed with what ring 3 may and may
/// not do.
fn user_access_checker_demands_ring_3_rights(_: &Platform) -> Outcome {
    let mut space = AddressSpace::new().map_err(|e| format!("address space: {}", e.name()))?;
    let read_only = layout::USER_BASE;
    let read_write = layout::USER_BASE + PAGE_SIZE as u64;
    let map = |space: &mut AddressSpace, va: u64, access| {
        space.map_zeroed(va as usize, PAGE_SIZE, access).map_err(|e| format!("map: {}", e.name()))
    };
    map(&mut space, read_only, Access::UserReadOnly)?;
    map(&mut space, read_write, Access::UserReadWrite)?;
    let allowed = |addr: u64, len: u64, access| space.check(addr, len, access).is_ok();
    ensure!(allowed(read_only, 16, UserAccess::Read), "cannot read a read-only page");
    ensure!(!allowed(read_only, 16, UserAccess::Write), "may write a read-only page");
    ensure!(!allowed(read_only, 16, UserAccess::Execute), "may execute a read-only (NX) page");
    ensure!(allowed(read_only, 2 * PAGE_SIZE as u64, UserAccess::Read), "cannot read across two mapped pages");
    ensure!(!allowed(read_only, 2 * PAGE_SIZE as u64, UserAccess::Write), "may write a range that starts read-only");
    ensure!(allowed(read_write + 8, 8, UserAccess::Write), "cannot write a read/write page");
    ensure!(!allowed(read_write, PAGE_SIZE as u64 + 1, UserAccess::Read), "may read past the last mapped page");
    let kernel_data = &INT3_VECTOR as *const AtomicU64 as u64;
    ensure!(matches!(space.check(kernel_data, 8, UserAccess::Read), Err(Error::BadAddress)), "may read kernel data");
    ensure!(!allowed(u64::MAX - 4, 8, UserAccess::Read), "a wrapping range passes");
    ensure!(allowed(layout::XOL_PAGE, 16, UserAccess::Execute), "the XOL page is not executable");
    ensure!(!allowed(layout::XOL_PAGE, 16, UserAccess::Write), "the XOL page is writable from ring 3");
    let (pa, flags) = space.translate(layout::XOL_PAGE).ok_or("the XOL page does not translate")?;
    ensure!(flags.executable && !flags.writable, "XOL flags {:?}", flags);
    let xol_alias = space.xol_slot_kernel_address(0);
    ensure!(pa == xol_alias, "XOL translates to {:#x}, its alias is {:#x}", pa, xol_alias);
    // SAFETY: the alias is the identity-mapped XOL frame this space owns.
    let trampoline = unsafe { *(xol_alias as *const u8) };
    ensure!(trampoline == INT3, "XOL slot 0 holds {:#04x}, not int3", trampoline);
    ensure!(
        space.kernel_alias(read_only + 5) == space.translate(read_only + 5).map(|(pa, _)| pa as *mut u8),
        "alias and translation disagree"
    );
    let (user_pages, writable_executable) = space.audit();
    ensure!(
        user_pages == 3 && writable_executable == 0,
        "audit: {} user pages, {} W+X",
        user_pages,
        writable_executable
    );
    Ok(())
}
