//! The boot banner on each CPU model and entry level (docs/kernel-contract.md, "Banner").

use qemu_tests::{boot, Boot, Run};

/// The banner's labels, padded to 9 columns, in the contract's order.
const BANNER: [&str; 9] = [
    "brk-path kernel ",
    "board:   ",
    "cpu:     ",
    "entered: ",
    "ram:     ",
    "caches:  ",
    "timer:   ",
    "console: ",
    "gic:     ",
];

/// What varies between the boots below.
struct Expected {
    /// The whole `cpu:` line: QEMU's models have fixed MIDR values.
    cpu: &'static str,
    ram_mib: u32,
    el: &'static str,
    /// The I-cache policy (CTR_EL0.L1Ip) and what the kernel does about it.
    l1ip: &'static str,
}

const PIPT: &str = "L1Ip=PIPT (no aliases: IC IVAU by the kernel's alias)";
const VIPT: &str = "L1Ip=VIPT (may alias: code written through the kernel's alias is made visible with IC IALLUIS)";

/// Checks a successful boot's banner, line by line.
fn check_banner(run: &Run, expected: &Expected) {
    run.expect_exit(0);
    let banner = run.expect_consecutive_lines(&BANNER);
    let expect = |index: usize, wanted: &str| {
        if banner[index] != wanted {
            run.fail(&format!("banner line {} is {:?}, expected {wanted:?}", index + 1, banner[index]));
        }
    };
    expect(0, &format!("brk-path kernel {}", env!("CARGO_PKG_VERSION")));
    expect(1, "board:   linux,dummy-virt (device tree model)");
    expect(2, expected.cpu);
    expect(3, &format!("entered: {}", expected.el));
    expect(4, &format!("ram:     {} MiB at 0x40000000 (device tree /memory)", expected.ram_mib));
    // QEMU's CTR_EL0 for these models: 64-byte lines both sides, neither IDC nor
    // DIC; the Cortex-A53's I-cache is VIPT, the others' PIPT.
    expect(5, &format!("caches:  D-line 64 B, I-line 64 B, CTR_EL0.IDC=0 DIC=0 {}", expected.l1ip));
    // `timer:   <Hz> Hz (CNTFRQ_EL0)`, possibly followed by more about the tick.
    let hz = banner[6]
        .strip_prefix("timer:   ")
        .and_then(|t| t.split_once(" Hz (CNTFRQ_EL0)"))
        .and_then(|(n, _)| n.parse::<u64>().ok());
    if hz.is_none_or(|hz| hz == 0) {
        run.fail(&format!("the timer line {:?} does not start `timer:   <Hz> Hz (CNTFRQ_EL0)`", banner[6]));
    }
    expect(7, "console: PL011 at 0x09000000 (device tree)");
    expect(8, "gic:     GICv2 distributor 0x08000000, cpu interface 0x08010000 (device tree)");
}

#[test]
fn banner_on_cortex_a72_with_1g() {
    let run = boot(&Boot::default());
    check_banner(
        &run,
        &Expected { cpu: "cpu:     Arm Cortex-A72 r0p3 (MIDR_EL1 0x410fd083)", ram_mib: 1024, l1ip: PIPT, el: "EL1" },
    );
    // The contract's example, measured on QEMU: 62.5 MHz on the Cortex-A72 model.
    run.expect_line_starting("timer:   62500000 Hz (CNTFRQ_EL0)");
}

#[test]
fn banner_on_cortex_a53_with_2g() {
    let run = boot(&Boot::default().cpu("cortex-a53").memory("2G"));
    check_banner(
        &run,
        &Expected { cpu: "cpu:     Arm Cortex-A53 r0p4 (MIDR_EL1 0x410fd034)", ram_mib: 2048, l1ip: VIPT, el: "EL1" },
    );
}

#[test]
fn banner_on_cortex_a57() {
    let run = boot(&Boot::default().cpu("cortex-a57"));
    check_banner(
        &run,
        &Expected { cpu: "cpu:     Arm Cortex-A57 r1p0 (MIDR_EL1 0x411fd070)", ram_mib: 1024, l1ip: PIPT, el: "EL1" },
    );
}

#[test]
fn entered_at_el2_with_virtualization_on() {
    let run = boot(&Boot::default().el2());
    check_banner(
        &run,
        &Expected { cpu: "cpu:     Arm Cortex-A72 r0p3 (MIDR_EL1 0x410fd083)", ram_mib: 1024, l1ip: PIPT, el: "EL2" },
    );
    run.expect_last_line("power off: status 0 (success)");
}
