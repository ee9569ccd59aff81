//! The PC's ACPI tables (ACPI Specification 6.5, chapter 5): how a PC says what
//! it has beyond what every PC has. The kernel reads them with the `acpi` crate
//! (rust-osdev) to find the timers (the HPET, and the ACPI PM timer in the
//! FADT), the serial console the firmware uses (SPCR), and the processors
//! (MADT, [`processors`]).
//!
//! The RSDP's address comes from the UEFI configuration table (UEFI 2.10,
//! 4.6 "EFI Configuration Table", `ACPI_20_TABLE_GUID`), read while boot services
//! run; the tables themselves lie in ACPI reclaim or NVS memory, which the frame
//! allocator never receives, and every physical address is identity mapped,
//! by the firmware before ExitBootServices and by the kernel's map after.

use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use alloc::{format, string::String, vec::Vec};
use core::ptr::NonNull;
use spin::Once;
use uefi::table::cfg::ConfigTableEntry;

/// The `acpi` crate's view of memory: physical addresses are virtual ones.
#[derive(Clone, Copy, Debug)]
pub struct IdentityMapped;

impl AcpiHandler for IdentityMapped {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        let virtual_start = NonNull::new(physical_address as *mut T).expect("ACPI gave a table at address 0");
        // SAFETY: every physical address is identity mapped for ring 0 (see the
        // module's doc), and the caller guarantees that a `T` lies there.
        unsafe { PhysicalMapping::new(physical_address, virtual_start, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// The RSDP's address, or why there is no usable one.
static RSDP: Once<Result<usize, String>> = Once::new();

/// Find the RSDP in the UEFI configuration table and check that the root table
/// it points to reads. Boot services must still run (the configuration table is
/// theirs to give).
pub fn init() {
    RSDP.call_once(|| {
        let rsdp = uefi::system::with_config_table(|entries| {
            entries.iter().find(|e| e.guid == ConfigTableEntry::ACPI2_GUID).map(|e| e.address as usize)
        });
        let rsdp = rsdp.ok_or_else(|| String::from("the firmware's configuration table has no ACPI 2.0 RSDP"))?;
        open(rsdp).map(|_| rsdp)
    });
}

/// The tables through the RSDP at `rsdp`.
fn open(rsdp: usize) -> Result<AcpiTables<IdentityMapped>, String> {
    // SAFETY: the firmware says an RSDP lies at this address, identity mapped;
    // `from_rsdp` checks its signature and checksum before trusting it.
    unsafe { AcpiTables::from_rsdp(IdentityMapped, rsdp) }
        .map_err(|e| format!("the RSDP at {:#x} is unusable: {:?}", rsdp, e))
}

/// The tables, if the firmware gave usable ones. (A fresh view each time: the
/// crate's view holds raw pointers, so it is not kept in a static.)
pub fn tables() -> Option<AcpiTables<IdentityMapped>> {
    RSDP.get().and_then(|rsdp| rsdp.as_ref().ok()).and_then(|&rsdp| open(rsdp).ok())
}

/// The banner's line: where the tables are and which ones there are, or why
/// there are none.
pub fn describe() -> String {
    match RSDP.get() {
        None => String::from("not read yet"),
        Some(Err(why)) => format!("none: {}", why),
        Some(Ok(rsdp)) => match open(*rsdp) {
            Ok(tables) => {
                let signatures: Vec<String> =
                    tables.headers().map(|header| String::from(header.signature.as_str())).collect();
                format!("RSDP at {:#x} (UEFI configuration table), tables {}", rsdp, signatures.join(" "))
            }
            Err(why) => format!("none: {}", why),
        },
    }
}

/// One processor as the MADT lists it (ACPI 6.5, 5.2.12.2 "Processor Local
/// APIC Structure" and 5.2.12.12 "Processor Local x2APIC Structure").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadtProcessor {
    /// Its local APIC id (an x2APIC id from a type 9 entry may exceed 255).
    pub apic_id: u32,
    /// Flags bit 0, Enabled: the processor is there and may be started.
    pub enabled: bool,
    /// Flags bit 1, Online Capable (ACPI 6.3 on): not enabled now, but may be
    /// hot-added later. Meaningless when `enabled` is set.
    pub online_capable: bool,
}

/// Local APIC flags (ACPI 6.5, table 5.23 "Local APIC Flags").
const LOCAL_APIC_ENABLED: u32 = 1 << 0;
const LOCAL_APIC_ONLINE_CAPABLE: u32 = 1 << 1;

/// Every processor the MADT lists, in its order (the order ACPI asks the
/// operating system to start them in), or why there is no MADT.
pub fn processors() -> Result<Vec<MadtProcessor>, String> {
    let tables = tables().ok_or_else(|| String::from("no ACPI tables"))?;
    let madt = tables
        .find_table::<acpi::madt::Madt>()
        .map_err(|e| format!("the ACPI MADT is missing or unreadable ({:?})", e))?;
    let processor = |apic_id: u32, flags: u32| MadtProcessor {
        apic_id,
        enabled: flags & LOCAL_APIC_ENABLED != 0,
        online_capable: flags & LOCAL_APIC_ONLINE_CAPABLE != 0,
    };
    Ok(madt
        .get()
        .entries()
        .filter_map(|entry| match entry {
            acpi::madt::MadtEntry::LocalApic(local) => Some(processor(u32::from(local.apic_id), local.flags)),
            acpi::madt::MadtEntry::LocalX2Apic(local) => Some(processor(local.x2apic_id, local.flags)),
            _ => None,
        })
        .collect())
}
