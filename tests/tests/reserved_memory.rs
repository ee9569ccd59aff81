//! Firmware's own memory, as a device tree describes it under `/reserved-memory`
//! (TF-A on a Pi 4, OP-TEE elsewhere), is never handed out, and a `no-map` range is
//! never mapped. QEMU's `virt` tree has no such node, so the test adds two to the
//! tree QEMU would pass (`dumpdtb`, then `dtc` both ways), in RAM the frame
//! allocator would otherwise use, and boots with it.

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
    run.expect_line_starting("reserved: 0x48400000-0x48600000 /reserved-memory/firmware@48400000 (no-map: never mapped)");
    run.expect_line_starting("reserved: 0x4a000000-0x4a100000 /reserved-memory/shared@4a000000");
    // `frames` checks every range the allocator was given against every reserved
    // range; `mmu-wx` asks the MMU that the no-map range is not mapped.
    run.expect_line_starting("selftest frames: ok");
    run.expect_line_starting("selftest mmu-wx: ok");
    run.expect_line_starting("selftests: 6 ok, 0 failed");
    run.expect_test_ok("demo");
    run.expect_test_ok("threads 4");
}
