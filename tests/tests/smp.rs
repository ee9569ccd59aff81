//! Every core: the boot core starts each other core the device tree (or the
//! Pi 4 board table) lists, by PSCI `CPU_ON` on `virt` and by the spin table
//! on `raspi4b`, and the banner says in one `cores:` line per core whether it
//! came up. `cores=N` runs N of them; a core the firmware refuses to start, or
//! one that never answers, is named and the kernel goes on.
//!
//! The assertions are on lines and the exit status only. The wait for a core
//! is bounded by the kernel (1 s of counter); each boot by the harness's
//! timeout. Tests named `raspi4b_...` run in `cargo xtask test`'s raspi4b
//! steps (`raspi4b_with_dtb_...` with the Pi 4 device tree and the armstub).

use qemu_tests::{
    boot, boot_raspi4b, file_from_env, firmware_filled_tree, patch_dtb, raspi4b_args_as_the_firmware_boots, run_qemu,
    run_qemu_expecting_log, Boot, Run, DEFAULT_TIMEOUT, DTB_ENV_RPI4, IMAGE_ENV_VIRT,
};

/// The `cores:` lines of four cores that all came up, in order.
const FOUR_CORES_UP: [&str; 4] = [
    "cores:   core 0 (MPIDR 0x0) up: the boot core",
    "cores:   core 1 (MPIDR 0x1) up",
    "cores:   core 2 (MPIDR 0x2) up",
    "cores:   core 3 (MPIDR 0x3) up",
];

/// Asserts the run ended with status 0, `hello` ran and passed, and the
/// banner's `cores:` lines are `cores`, right after each other.
#[track_caller]
fn expect_cores_and_hello(run: &Run, cores: &[&str]) {
    run.expect_exit(0);
    run.expect_consecutive_lines(cores);
    if run.lines().filter(|l| l.starts_with("cores:")).count() != cores.len() {
        run.fail(&format!("expected exactly these cores: lines: {cores:?}"));
    }
    run.expect_selftests_pass();
    run.expect_test_ok("hello");
}

#[test]
fn smp_virt_four_cores_come_up_by_psci_and_the_run_ends_normally() {
    let run = boot(&Boot::default().smp(4).append("test=hello"));
    expect_cores_and_hello(&run, &FOUR_CORES_UP);
    // The cores: lines follow the banner (its last lines: the GIC, the tree).
    let mut banner_then_cores = vec!["gic:     GICv2 ", "reserved: "];
    banner_then_cores.extend(FOUR_CORES_UP);
    run.expect_consecutive_lines(&banner_then_cores);
}

#[test]
fn smp_virt_entered_at_el2_the_other_cores_drop_to_el1_too() {
    // virtualization=on: PSCI (through `smc`) starts each core at EL2, where
    // boot.s drops it to EL1 as it does the boot core.
    let run = boot(&Boot::default().el2().smp(4).append("test=hello"));
    run.expect_line_starting("entered: EL2");
    expect_cores_and_hello(&run, &FOUR_CORES_UP);
}

#[test]
fn smp_virt_one_core_is_the_boot_core_alone() {
    let run = boot(&Boot::default().smp(1).append("test=hello"));
    expect_cores_and_hello(&run, &[FOUR_CORES_UP[0]]);
}

#[test]
fn smp_virt_cores_2_runs_two_and_leaves_the_others_parked() {
    let run = boot(&Boot::default().smp(4).append("cores=2 test=hello"));
    expect_cores_and_hello(
        &run,
        &[
            FOUR_CORES_UP[0],
            FOUR_CORES_UP[1],
            "cores:   MPIDR 0x2 left parked (cores=2 asked for 2 core(s))",
            "cores:   MPIDR 0x3 left parked (cores=2 asked for 2 core(s))",
        ],
    );
}

/// What QEMU logs when PSCI `CPU_ON` names an MPIDR the machine does not
/// have (target/arm/arm-powerctl.c, `arm_get_cpu_by_id`).
const QEMU_UNKNOWN_CPU_7: &str = "[ARM]arm_get_cpu_by_id: Requesting unknown CPU 7";

#[test]
fn smp_virt_a_core_psci_refuses_and_a_core_that_never_answers_are_named_and_left_out() {
    // virt's own tree for two cores, plus two cores that cannot come up: cpu@7,
    // which the machine does not have (PSCI CPU_ON says INVALID_PARAMETERS),
    // and cpu@8, a spin-table core whose release word nobody watches (it lies
    // in a /memreserve/ of its own, so the write harms nothing).
    let boot = Boot::default().smp(2).append("test=hello");
    let dir = std::env::temp_dir().join(format!("brk-smp-cores-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (original, patched) = (dir.join("virt.dtb"), dir.join("virt-extra-cores.dtb"));
    boot.dump_dtb(&original);
    patch_dtb(&original, &patched, |text| {
        let extra = "\t\tcpu@7 {\n\t\t\treg = <0x07>;\n\t\t\tenable-method = \"psci\";\n\t\t\t\
                     compatible = \"arm,cortex-a72\";\n\t\t\tdevice_type = \"cpu\";\n\t\t};\n\n\
                     \t\tcpu@8 {\n\t\t\treg = <0x08>;\n\t\t\tenable-method = \"spin-table\";\n\t\t\t\
                     cpu-release-addr = <0x00 0x7fff0000>;\n\t\t\tcompatible = \"arm,cortex-a72\";\n\t\t\t\
                     device_type = \"cpu\";\n\t\t};\n\n\t\tcpu@1 {";
        let text = text.replacen("\t\tcpu@1 {", extra, 1);
        text.replacen("/dts-v1/;\n", "/dts-v1/;\n\n/memreserve/ 0x7fff0000 0x1000;\n", 1)
    });
    let image = file_from_env(IMAGE_ENV_VIRT);
    let mut args = boot.qemu_args(&image.display().to_string());
    args.extend(["-dtb".to_string(), patched.display().to_string()]);
    let run = run_qemu_expecting_log(&args, boot.timeout, &[QEMU_UNKNOWN_CPU_7]);
    let _ = std::fs::remove_dir_all(&dir);
    expect_cores_and_hello(
        &run,
        &[
            FOUR_CORES_UP[0],
            "cores:   MPIDR 0x7 not started: PSCI CPU_ON returned INVALID_PARAMETERS",
            "cores:   MPIDR 0x8 did not answer within 1000 ms: going on without it",
            // The index the two could not take goes to the next core.
            FOUR_CORES_UP[1],
        ],
    );
}

#[test]
fn raspi4b_board_table_starts_cores_1_to_3_on_the_firmware_spin_table() {
    // No device tree: the board table's spin table (0xe0, 0xe8, 0xf0), where
    // QEMU's boot code holds cores 1-3 as the Pi firmware's armstub does.
    let run = boot_raspi4b(None, None);
    run.expect_exit(0);
    run.expect_consecutive_lines(&FOUR_CORES_UP);
    run.expect_selftests_pass();
}

#[test]
fn raspi4b_with_dtb_starts_the_cores_at_the_device_tree_cpu_release_addr() {
    let dtb = file_from_env(DTB_ENV_RPI4);
    let run = boot_raspi4b(Some(&dtb), Some("test=hello"));
    expect_cores_and_hello(&run, &FOUR_CORES_UP);
    let two = boot_raspi4b(Some(&dtb), Some("cores=2 test=hello"));
    expect_cores_and_hello(
        &two,
        &[
            FOUR_CORES_UP[0],
            FOUR_CORES_UP[1],
            "cores:   MPIDR 0x2 left parked (cores=2 asked for 2 core(s))",
            "cores:   MPIDR 0x3 left parked (cores=2 asked for 2 core(s))",
        ],
    );
}

#[test]
fn raspi4b_with_dtb_as_the_firmware_boots_cores_1_to_3_leave_the_armstub() {
    // The real board's path: no -kernel; all four cores start in the armstub
    // at EL3, cores 1-3 wait there in `wfe` on its spin table, and the kernel
    // releases them at the addresses the tree gives, through EL2 to EL1.
    let dir = std::env::temp_dir().join(format!("brk-smp-firmware-boot-{}", std::process::id()));
    let args = raspi4b_args_as_the_firmware_boots(&dir, |text| {
        firmware_filled_tree(text, "0x00 0x00 0x3b400000", "test=hello no-shell")
    });
    let run = run_qemu(&args, DEFAULT_TIMEOUT);
    let _ = std::fs::remove_dir_all(&dir);
    run.expect_line_starting("entered: EL2");
    expect_cores_and_hello(&run, &FOUR_CORES_UP);
}
