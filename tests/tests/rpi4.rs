//! The Raspberry Pi 4 image (`kernel8.img`) on QEMU's `raspi4b`, as the firmware
//! starts it: at EL2, at 0x80000, with the Pi 4 device tree in x0 or (without
//! `-dtb`) none at all, when every address must come from the board table.
//!
//! Every test here is named `raspi4b_...`: `cargo xtask test` runs them in their own
//! steps (skipped, with the reason, on a QEMU older than 9, and the `with_dtb` ones
//! when the device tree could not be fetched), and leaves them out of the virt step.

use qemu_tests::{
    boot_order::expect_no_exclusive_before_the_mmu,
    boot_raspi4b, file_from_env, firmware_filled_tree, probed_probe_args, probed_results, raspi4b_args,
    raspi4b_args_as_on_a_board, raspi4b_args_as_the_firmware_boots, run_qemu,
    screen::{boot_and_screendump, expect_screen_shows, Screen},
    Run, DEFAULT_TIMEOUT, DTB_ENV_RPI4, IMAGE_ENV_RPI4, PROBED_POINTS,
};

#[test]
fn raspi4b_no_exclusive_load_runs_before_the_mmu_and_caches_are_on() {
    // On a real BCM2711 a store-exclusive to Device memory never succeeds: a lock
    // taken before the boot map is on would hang the board before its first line.
    let image = file_from_env(IMAGE_ENV_RPI4);
    expect_no_exclusive_before_the_mmu(raspi4b_args(&image, None, None), &image.with_file_name("kernel.elf"));
}

#[test]
fn raspi4b_without_dtb_boots_at_el2_from_the_board_table() {
    let run = boot_raspi4b(None, None);
    run.expect_exit(0);
    run.expect_lines_in_order(&[
        "uart:    PL011 at 0xfe201000, 115200 baud 8N1 from a 48000000 Hz clock (board table: no device tree entry), GPIO 14/15 ALT0 (GPIO block 0xfe200000)",
        "brk-path kernel ",
        "board:   Raspberry Pi 4 (board table: no device tree entry)",
        "cpu:     Arm Cortex-A72",
        "entered: EL2",
        // What the firmware reports with the default GPU split, not QEMU's 960 MiB.
        "ram:     948 MiB at 0x00000000 (board table: no device tree entry)",
        "caches:  D-line 64 B, I-line 64 B, CTR_EL0.IDC=",
        "timer:   62500000 Hz (CNTFRQ_EL0)",
        "console: PL011 at 0xfe201000 (board table: no device tree entry)",
        "gic:     GICv2 distributor 0xff841000, cpu interface 0xff842000 (board table: no device tree entry)",
        // Page 0: the armstub and the spin table cores 1-3 wait on.
        "reserved: 0x00000000-0x00001000 board table: the armstub and the spin table of cores 1-3",
    ]);
    // `frames` proves no range the allocator was given touches page 0.
    run.expect_line_starting("selftest frames: ok");
    run.expect_selftests_pass();
}

#[test]
fn raspi4b_with_dtb_reads_the_machine_from_the_device_tree_and_runs_the_demo() {
    let dtb = file_from_env(DTB_ENV_RPI4);
    let run = boot_raspi4b(Some(&dtb), Some("test=demo"));
    run.expect_exit(0);
    run.expect_lines_in_order(&[
        // The Pi 4 tree names the UART clock only as a firmware clock without a rate.
        "uart:    PL011 at 0xfe201000, 115200 baud 8N1 from a 48000000 Hz clock (board table: no device tree entry), GPIO 14/15 ALT0 (GPIO block 0xfe200000)",
        "board:   Raspberry Pi 4 Model B (device tree model)",
        "entered: EL2",
        "ram:     960 MiB at 0x00000000 (device tree /memory)",
        "timer:   62500000 Hz (CNTFRQ_EL0), tick every 10 ms on INTID 27 (device tree)",
        "console: PL011 at 0xfe201000 (device tree)",
        "gic:     GICv2 distributor 0xff841000, cpu interface 0xff842000 (device tree)",
    ]);
    run.expect_selftests_pass();
    run.expect_lines_in_order(&["demo: compute checksum = 0xb39f510e2c11fd55", "demo: fib(15) = 610", "demo: done"]);
}

#[test]
fn raspi4b_with_dtb_shaped_like_tf_a_keeps_out_of_its_memory() {
    // With TF-A as the Pi 4's armstub, page 0 is not a spin table under a
    // /memreserve/ but BL31's memory, described as /reserved-memory/atf@0, no-map.
    let dtb = file_from_env(DTB_ENV_RPI4);
    let dir = std::env::temp_dir().join(format!("brk-tf-a-tree-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let patched = dir.join("tf-a.dtb");
    qemu_tests::patch_dtb(&dtb, &patched, |text| {
        let text: String = text.lines().filter(|l| !l.starts_with("/memreserve/")).map(|l| format!("{l}\n")).collect();
        let at = text.find("\tnvram@0 {").expect("the Pi 4 tree's /reserved-memory/nvram@0");
        format!(
            "{}\tatf@0 {{\n\t\t\treg = <0x00 0x00 0x80000>;\n\t\t\tno-map;\n\t\t}};\n\n\t{}",
            &text[..at],
            &text[at..]
        )
    });
    let run = boot_raspi4b(Some(&patched), Some("test=demo"));
    let _ = std::fs::remove_dir_all(&dir);
    run.expect_exit(0);
    run.expect_line_starting("reserved: 0x00000000-0x00080000 /reserved-memory/atf@0 (no-map: never mapped)");
    // A disabled node, and one without a size, reserve nothing.
    run.expect_no_line_containing("nvram@0");
    // `frames`: no allocator range touches it; `mmu-wx`: its pages are unmapped.
    run.expect_selftests_pass();
    run.expect_lines_in_order(&["demo: compute checksum = 0xb39f510e2c11fd55", "demo: done"]);
}

#[test]
fn raspi4b_with_dtb_probes_on_every_class_leave_the_results_unchanged() {
    let dtb = file_from_env(DTB_ENV_RPI4);
    let plain = boot_raspi4b(Some(&dtb), Some("test=probed"));
    plain.expect_exit(0);
    let expected = probed_results(&plain);
    assert!(expected.len() >= PROBED_POINTS.len(), "the unprobed run printed too little");
    let probes: Vec<String> = probed_probe_args();
    let run = boot_raspi4b(Some(&dtb), Some(&format!("test=probed {} retprobe=probed:fib_rec", probes.join(" "))));
    run.expect_exit(0);
    if probed_results(&run) != expected {
        run.fail("the probed results differ from the unprobed run on raspi4b");
    }
    // Every probe point is passed 50 times; fib_rec(15) makes 1973 calls.
    for (at, _) in PROBED_POINTS {
        let symbol = format!(" probed:{} (", at.trim_end_matches("+0x0"));
        let line = run
            .lines()
            .find(|l| l.starts_with("  probe ") && l.contains(&symbol))
            .unwrap_or_else(|| run.fail(&format!("no report line for{symbol}")));
        if !line.contains(" 50 hits") {
            run.fail(&format!("expected 50 hits: {line:?}"));
        }
    }
}

/// The last line of a run on a board without semihosting: the kernel halts,
/// and the screen keeps what it showed.
const HALTED: &str = "power off: no way to power off, halting";

/// Boots the Pi 4 image as a board runs it (no semihosting), with `extra` QEMU
/// arguments, and takes a screendump once it has halted.
fn boot_to_the_halt_and_screendump(
    dtb: Option<&std::path::Path>,
    append: Option<&str>,
    extra: &[&str],
) -> (Run, Screen) {
    let image = file_from_env(IMAGE_ENV_RPI4);
    let mut args = raspi4b_args_as_on_a_board(&image, dtb, append);
    args.extend(extra.iter().map(|s| s.to_string()));
    let (run, screen) = boot_and_screendump(&args, HALTED, DEFAULT_TIMEOUT);
    // Without semihosting the `hlt` of power::exit is undefined: stepped over, the
    // kernel goes on down, once (no second task report from the scheduler).
    let end: Vec<&str> = run.lines().filter(|l| !l.is_empty()).collect();
    if !end.ends_with(&["power off: status 0 (success)", HALTED]) {
        run.fail("the run did not end with its status and the halt, as on a board without a debugger");
    }
    (run, screen)
}

/// Fails `run` unless `screen` is, pixel for pixel, its transcript drawn by the
/// console's code and font on the host.
fn expect_screen_shows_the_transcript(run: &Run, screen: &Screen) {
    expect_screen_shows(run, screen, &run.transcript);
}

#[test]
fn raspi4b_hdmi_screen_shows_the_console_wrapped_and_scrolled_as_on_a_board() {
    // A small 480x320 HDMI panel: 68x20 cells, so the long banner lines wrap and
    // the boot scrolls. The firmware's (QEMU's) framebuffer, from the mailbox.
    let (run, screen) = boot_to_the_halt_and_screendump(
        None,
        None,
        &["-global", "bcm2835-fb.xres=480", "-global", "bcm2835-fb.yres=320"],
    );
    run.expect_line_starting(
        "screen:  HDMI 480x320, 32 bpp, pitch 1920 B, framebuffer 0x3c100000-0x3c196000, 68x20 text cells of 7x16 px \
         (VideoCore mailbox 0xfe00b880, board table: no device tree entry)",
    );
    // Never handed out, even if a tree's /memory covered it.
    run.expect_line_starting("reserved: 0x3c100000-0x3c196000 the HDMI framebuffer the firmware allocated");
    assert_eq!((screen.width, screen.height), (480, 320));
    let rows_needed: usize = run.lines().map(|l| l.chars().count().div_ceil(68).max(1)).sum();
    assert!(rows_needed > 20, "the boot must scroll the screen for this test to test scrolling ({rows_needed} rows)");
    expect_screen_shows_the_transcript(&run, &screen);
}

#[test]
fn raspi4b_with_dtb_hdmi_screen_at_1080p_shows_the_whole_run_from_the_banner_on() {
    // A 1080p monitor: the firmware reports the display's size, the kernel asks
    // for a framebuffer of that size.
    let dtb = file_from_env(DTB_ENV_RPI4);
    let (run, screen) = boot_to_the_halt_and_screendump(
        Some(&dtb),
        Some("test=demo"),
        &["-global", "bcm2835-fb.xres=1920", "-global", "bcm2835-fb.yres=1080"],
    );
    run.expect_line_starting(
        "screen:  HDMI 1920x1080, 32 bpp, pitch 7680 B, framebuffer 0x3c100000-0x3c8e9000, 274x67 text cells of 7x16 px \
         (VideoCore mailbox 0xfe00b880, device tree)",
    );
    run.expect_lines_in_order(&["demo: compute checksum = 0xb39f510e2c11fd55", "demo: done"]);
    if run.lines().filter(|l| l.starts_with("tasks: all ")).count() != 1 {
        run.fail("the task report must be printed once");
    }
    expect_screen_shows_the_transcript(&run, &screen);
    // Everything fits: the banner is on the row it was printed on.
    let lines: Vec<&str> = run.lines().collect();
    let banner = lines.iter().position(|l| l.starts_with("brk-path kernel ")).expect("the banner");
    assert!(lines.len() < 67, "the run fits the screen ({} lines)", lines.len());
    if !screen.row_shows(banner, lines[banner]) {
        run.fail(&format!("text row {banner} of the screen does not show the banner's first line {:?}", lines[banner]));
    }
}

#[test]
fn raspi4b_with_dtb_as_the_firmware_boots_a_2_gib_board_two_ram_banks_and_a_secure_gic() {
    // QEMU's -kernel path rewrites /memory with its own 960 MiB and drops the
    // second bank. Booted without it, raspi4b starts all four cores at 0 in EL3,
    // as a Pi 4 does, and runs the armstub; the tree is what the firmware of a
    // 2 GiB Pi 4 passes with the default GPU split, the GIC has the Security
    // Extensions as the BCM2711's GIC-400 does (so the kernel's interrupts go
    // through its non-secure view, in group 1 where the armstub put them).
    let dir = std::env::temp_dir().join(format!("brk-firmware-boot-{}", std::process::id()));
    let args = raspi4b_args_as_the_firmware_boots(&dir, |text| {
        // The firmware fills in /memory@0's empty `reg`: two banks.
        firmware_filled_tree(text, "0x00 0x00 0x3b400000 0x00 0x40000000 0x40000000", "test=demo no-shell")
    });
    let run = run_qemu(&args, DEFAULT_TIMEOUT);
    let _ = std::fs::remove_dir_all(&dir);
    run.expect_exit(0);
    run.expect_lines_in_order(&[
        "board:   Raspberry Pi 4 Model B (device tree model)",
        "entered: EL2",
        "ram:     948 MiB at 0x00000000 (device tree /memory)",
        "ram:     1024 MiB at 0x40000000 (device tree /memory)",
        "timer:   62500000 Hz (CNTFRQ_EL0), tick every 10 ms on INTID 27 (device tree)",
        "reserved: 0x00000000-0x00001000 /memreserve/",
        "reserved: 0x3b000000-",
    ]);
    // `timer-tick` proves the interrupts arrive through the non-secure view.
    run.expect_selftests_pass();
    run.expect_lines_in_order(&["demo: compute checksum = 0xb39f510e2c11fd55", "demo: done"]);
}
