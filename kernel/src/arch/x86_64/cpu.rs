//! The processor: identification through CPUID (for the banner), the
//! control-register set-up the kernel relies on, and the contract's `Cpu` for
//! this architecture (interrupt masking, waiting, halting, the FS base as the
//! user thread pointer).

use core::arch::x86_64::{__cpuid, __cpuid_count};
use x86_64::registers::{
    control::{Cr0, Cr0Flags, Cr4, Cr4Flags},
    model_specific::{Efer, EferFlags, FsBase},
    xcontrol::{XCr0, XCr0Flags},
};
use x86_64::VirtAddr;

/// CPUID leaf 1: version information and feature flags (Intel SDM vol. 2A, CPUID).
const LEAF_VERSION_AND_FEATURES: u32 = 1;
/// CPUID leaf 7, sub-leaf 0: structured extended features.
const LEAF_EXTENDED_FEATURES: u32 = 7;
/// CPUID 0x8000_0000: highest extended leaf; 0x8000_0002..4: the brand string.
const LEAF_EXTENDED_MAX: u32 = 0x8000_0000;
const LEAF_BRAND_FIRST: u32 = 0x8000_0002;
const LEAF_BRAND_LAST: u32 = 0x8000_0004;
/// Leaf 1 ECX bit 26: XSAVE; bit 28: AVX.
const ECX1_XSAVE: u32 = 1 << 26;
const ECX1_AVX: u32 = 1 << 28;
/// Leaf 1 ECX bit 31: set by hypervisors for their guests.
const ECX1_HYPERVISOR: u32 = 1 << 31;
/// Leaf 7 EBX bit 7: SMEP; bit 20: SMAP.
const EBX7_SMEP: u32 = 1 << 7;
const EBX7_SMAP: u32 = 1 << 20;
/// Leaf 1 EBX bits \[15:8\]: CLFLUSH line size in 8-byte units.
const EBX1_CLFLUSH_SHIFT: u32 = 8;
const EBX1_CLFLUSH_MASK: u32 = 0xff;
const CLFLUSH_UNIT_BYTES: u32 = 8;

/// What the banner says about the processor.
pub struct CpuId {
    pub brand: [u8; 48],
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
    pub smep: bool,
    pub smap: bool,
    /// The cache line size CPUID reports (CLFLUSH granularity), in bytes.
    pub line_size: u32,
}

impl core::fmt::Display for CpuId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let brand = core::str::from_utf8(&self.brand).unwrap_or("?").trim_matches(|c: char| c == '\0' || c == ' ');
        let brand = if brand.is_empty() { "unnamed x86_64 processor" } else { brand };
        write!(f, "{} (family {:#x}, model {:#x}, stepping {})", brand, self.family, self.model, self.stepping)
    }
}

/// Read the processor's identity and the features the kernel cares about.
pub fn identify() -> CpuId {
    // CPUID is available on every x86_64 processor and has no side effects.
    let version = __cpuid(LEAF_VERSION_AND_FEATURES);
    let extended = __cpuid_count(LEAF_EXTENDED_FEATURES, 0);
    let mut brand = [0u8; 48];
    if __cpuid(LEAF_EXTENDED_MAX).eax >= LEAF_BRAND_LAST {
        for (i, leaf) in (LEAF_BRAND_FIRST..=LEAF_BRAND_LAST).enumerate() {
            let r = __cpuid(leaf);
            for (j, word) in [r.eax, r.ebx, r.ecx, r.edx].iter().enumerate() {
                brand[i * 16 + j * 4..i * 16 + j * 4 + 4].copy_from_slice(&word.to_le_bytes());
            }
        }
    }
    // EAX of leaf 1 (SDM "Processor Version Information"): stepping [3:0],
    // model [7:4], family [11:8], extended model [19:16], extended family [27:20].
    // The displayed family adds the extended family when family is 0xF; the
    // displayed model prepends the extended model when family is 6 or 0xF.
    let eax = version.eax;
    let base_family = (eax >> 8) & 0xf;
    let family = if base_family == 0xf { base_family + ((eax >> 20) & 0xff) } else { base_family };
    let model = if base_family == 0x6 || base_family == 0xf {
        (((eax >> 16) & 0xf) << 4) | ((eax >> 4) & 0xf)
    } else {
        (eax >> 4) & 0xf
    };
    CpuId {
        brand,
        family,
        model,
        stepping: eax & 0xf,
        smep: extended.ebx & EBX7_SMEP != 0,
        smap: extended.ebx & EBX7_SMAP != 0,
        line_size: ((version.ebx >> EBX1_CLFLUSH_SHIFT) & EBX1_CLFLUSH_MASK) * CLFLUSH_UNIT_BYTES,
    }
}

/// The protection bits every page-table set-up relies on, set before our
/// tables are loaded: EFER.NXE (the NX bit is honoured, otherwise it is a
/// reserved bit and every NX mapping faults), CR0.WP (ring 0 cannot write a
/// read-only page either: text and rodata stay read-only for the kernel too),
/// CR4.PGE (global kernel mappings survive CR3 switches). Returns which of
/// SMEP and SMAP were switched on.
pub fn enable_protection(cpu: &CpuId) -> (bool, bool) {
    // SAFETY: NXE only adds meaning to bit 63 of entries; the firmware's tables
    // (still live) do not set it where they need execution. WP makes ring 0
    // honour read-only pages, which the kernel never writes through (it writes
    // user text through its own writable identity alias). PGE marks global
    // entries, which only our tables use.
    unsafe {
        Efer::update(|flags| flags.insert(EferFlags::NO_EXECUTE_ENABLE));
        Cr0::update(|flags| flags.insert(Cr0Flags::WRITE_PROTECT));
        Cr4::update(|flags| flags.insert(Cr4Flags::PAGE_GLOBAL));
    }
    // SMEP: ring 0 never executes a user page. SMAP: ring 0 never touches a
    // user page unless RFLAGS.AC is set; the kernel reaches user memory only
    // through its identity aliases of the frames, so it never needs AC.
    let mut extra = Cr4Flags::empty();
    if cpu.smep {
        extra |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if cpu.smap {
        extra |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    // SAFETY: as above; the kernel has no code in user pages and no data
    // accesses through user addresses.
    unsafe { Cr4::update(|flags| flags.insert(extra)) };
    (cpu.smep, cpu.smap)
}

/// Switch the SSE, AVX and x87 units off for everybody: CR4.OSFXSR and
/// CR4.OSXMMEXCPT clear (every SSE instruction raises #UD), CR4.OSXSAVE clear
/// (XGETBV and every VEX-encoded AVX instruction raise #UD, whatever the
/// firmware left in XCR0; Intel SDM vol. 3A, 2.5 "Control Registers"), CR0.EM
/// set (every x87 instruction raises #NM) and CR0.MP set. The kernel is built for the
/// soft-float `x86_64-unknown-uefi` target and the user programs for the
/// soft-float `x86_64-unknown-none`, so nobody has vector state to save, and a
/// trap leaves none behind. (The build was checked: `objdump -d` of the
/// kernel finds no `xmm` register.)
pub fn disable_sse() {
    // SAFETY: no code of this kernel uses SSE or x87 (soft-float target); the
    // firmware, which does, is no longer called after ExitBootServices.
    unsafe {
        Cr4::update(|flags| flags.remove(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE | Cr4Flags::OSXSAVE));
        Cr0::update(|flags| flags.insert(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::MONITOR_COPROCESSOR));
    }
}

/// Switch SSE and x87 back on for the firmware's runtime code, which may use
/// them, on the way to power-off (`power.rs`): no thread runs again, so no
/// vector state can leak.
pub fn enable_sse_for_the_firmware() {
    // SAFETY: called with interrupts masked on the way down; only the
    // firmware's code runs after this.
    unsafe {
        Cr0::update(|flags| flags.remove(Cr0Flags::EMULATE_COPROCESSOR));
        Cr4::update(|flags| flags.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE));
    }
}

/// Turn AVX on the way a PC's firmware may leave it, before the kernel sets the
/// processor up (boot argument `firmware-left-avx-on`, a test of
/// `disable_sse`): CR4.OSXSAVE set and XCR0 enabling x87, SSE and AVX state.
/// Returns false where the processor has no XSAVE or no AVX (CPUID leaf 1 ECX
/// bits 26 and 28).
pub fn turn_avx_on_as_a_firmware_may() -> bool {
    let features = __cpuid(LEAF_VERSION_AND_FEATURES).ecx;
    if features & ECX1_XSAVE == 0 || features & ECX1_AVX == 0 {
        return false;
    }
    // SAFETY: the processor has XSAVE and AVX; enabling their state changes no
    // value the kernel holds (it is soft-float), and `disable_sse` turns it off.
    unsafe {
        Cr4::update(|flags| flags.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXSAVE));
        XCr0::write(XCr0Flags::X87 | XCr0Flags::SSE | XCr0Flags::AVX);
    }
    true
}

/// Whether CPUID says a hypervisor runs the kernel (leaf 1 ECX bit 31, which
/// the processor itself always returns as 0; Intel SDM vol. 2A, CPUID,
/// "Feature Information": "Not Used. Always returns 0").
pub fn under_a_hypervisor() -> bool {
    __cpuid(LEAF_VERSION_AND_FEATURES).ecx & ECX1_HYPERVISOR != 0
}

/// Is SSE off as `disable_sse` leaves it? (self-test)
pub fn sse_is_off() -> bool {
    let cr4 = Cr4::read();
    !cr4.contains(Cr4Flags::OSFXSR)
        && !cr4.contains(Cr4Flags::OSXSAVE)
        && Cr0::read().contains(Cr0Flags::EMULATE_COPROCESSOR)
}

/// The user thread pointer (FS base), saved and restored per thread by the
/// scheduler as the aarch64 kernel does with TPIDR_EL0. Ring 3 cannot change
/// it itself (CR4.FSGSBASE stays off), so today it is 0 for every thread.
pub fn thread_pointer() -> u64 {
    FsBase::read().as_u64()
}

pub fn set_thread_pointer(value: u64) {
    FsBase::write(VirtAddr::new_truncate(value));
}

pub fn enable_interrupts() {
    x86_64::instructions::interrupts::enable();
}

pub fn disable_interrupts() {
    x86_64::instructions::interrupts::disable();
}

/// Wait for the next interrupt with interrupts enabled. `sti; hlt` is one
/// step: STI's one-instruction interrupt shadow means an interrupt that is
/// already pending is taken after the HLT starts, so no wake-up is lost.
pub fn wait_for_interrupt() {
    x86_64::instructions::interrupts::enable_and_hlt();
}

/// Stop this core for good.
pub fn halt() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// The processor, as the contract's `Cpu` describes it.
impl crate::arch::Cpu for super::Machine {
    const USER_MODE: &'static str = "ring-3";

    fn enable_interrupts() {
        enable_interrupts();
    }

    fn disable_interrupts() {
        disable_interrupts();
    }

    fn wait_for_interrupt() {
        wait_for_interrupt();
    }

    fn halt() -> ! {
        halt()
    }

    fn thread_pointer() -> u64 {
        thread_pointer()
    }

    fn set_thread_pointer(value: u64) {
        set_thread_pointer(value);
    }

    type FpState = super::fpsimd::FpState;

    fn new_fp_state() -> Self::FpState {
        super::fpsimd::FpState::new()
    }

    fn save_fp_state(state: &mut Self::FpState) {
        state.save();
    }

    fn restore_fp_state(state: &Self::FpState) {
        state.restore();
    }
}
