//! The kernel with a device tree that is not QEMU's own: the tree QEMU would pass
//! (`dumpdtb`), changed through `dtc` and given back with `-dtb`.
//!
//! - Firmware's own memory, under `/reserved-memory` (TF-A on a Pi 4, OP-TEE
//!   elsewhere), is never handed out, and a `no-map` range never mapped: two such
//!   nodes over RAM the frame allocator would otherwise use.
//! - With a tree, every device comes from it: one without a supported UART or GIC
//!   stops the kernel (status 6), with the reason on the tree's UART if it has one,
//!   and nothing is written to the board table's guessed addresses.

use qemu_tests::{boot_with_dtb, patch_dtb, Boot};

const RESERVED_MEMORY: &str = "
    reserved-memory {
        #address-cells = <0x02>;
        #size-cells = <0x02>;
        ranges;
        firmware@48400000 {
            reg = <0x00 0x48400000 0x00 0x200000>;
            no-map;
        };
        shared@4a000000 {
            reg = <0x00 0x4a000000 0x00 0x100000>;
        };
    };
";

#[test]
fn reserved_memory_nodes_are_never_allocated_and_no_map_ones_never_mapped() {
    let boot = Boot::default().append("test=demo test=threads:4");
    let dir = std::env::temp_dir().join(format!("brk-reserved-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (dumped, patched) = (dir.join("virt.dtb"), dir.join("patched.dtb"));
    boot.dump_dtb(&dumped);
    patch_dtb(&dumped, &patched, |text| {
        // The root node's closing brace is the file's last `};`.
        let at = text.rfind("};").expect("a root node");
        format!("{}{RESERVED_MEMORY}{}", &text[..at], &text[at..])
    });

    let run = boot_with_dtb(&boot, &patched);
    let _ = std::fs::remove_dir_all(&dir);
    run.expect_exit(0);
    run.expect_line_starting(
        "reserved: 0x48400000-0x48600000 /reserved-memory/firmware@48400000 (no-map: never mapped)",
    );
    run.expect_line_starting("reserved: 0x4a000000-0x4a100000 /reserved-memory/shared@4a000000");
    // `frames` checks every range the allocator was given against every reserved
    // range; `mmu-wx` asks the MMU that the no-map range is not mapped.
    run.expect_line_starting("selftest frames: ok");
    run.expect_line_starting("selftest mmu-wx: ok");
    run.expect_line_starting("selftests: 7 ok, 0 failed");
    run.expect_test_ok("demo");
    run.expect_test_ok("threads 4");
}

/// Boots `test=hello` with QEMU's own tree for it changed by `edit`.
fn boot_with_edited_tree(name: &str, edit: impl FnOnce(String) -> String) -> qemu_tests::Run {
    let boot = Boot::default().append("test=hello");
    let dir = std::env::temp_dir().join(format!("brk-tree-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (dumped, patched) = (dir.join("virt.dtb"), dir.join("patched.dtb"));
    boot.dump_dtb(&dumped);
    patch_dtb(&dumped, &patched, edit);
    let run = boot_with_dtb(&boot, &patched);
    let _ = std::fs::remove_dir_all(&dir);
    run
}

#[test]
fn a_tree_without_a_supported_uart_stops_without_writing_to_a_guessed_one() {
    // The PL011 is still there for QEMU, but the tree calls it something this
    // kernel does not drive: not one byte may reach it.
    let run = boot_with_edited_tree("no-pl011", |text| text.replace("\"arm,pl011\\0arm,primecell\"", "\"ns16550a\""));
    run.expect_exit(6);
    if !run.transcript.trim().is_empty() {
        run.fail("the kernel wrote to a UART the device tree does not describe");
    }
}

#[test]
fn a_tree_without_a_supported_gic_stops_with_the_reason_on_its_uart() {
    let run = boot_with_edited_tree("no-gic", |text| text.replace("\"arm,cortex-a15-gic\"", "\"arm,gic-v3\""));
    run.expect_exit(6);
    run.expect_consecutive_lines(&[
        "boot: the device tree describes no GICv2 (compatible \"arm,gic-400\", \"arm,cortex-a15-gic\") for the timer's interrupt: stopping",
        "power off: status 6 (unsupported boot)",
    ]);
}
