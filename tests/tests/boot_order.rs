//! The boot order real hardware needs and QEMU does not enforce: no exclusive
//! load (no lock, no atomic read-modify-write) before the MMU and the data cache
//! are on (`kernel/src/arch/aarch64/boot_map.rs`). The Pi 4 image is checked the
//! same way in `rpi4.rs`.

use qemu_tests::{
    boot_order::expect_no_exclusive_before_the_mmu, file_from_env, run_qemu, Boot, DEFAULT_TIMEOUT, IMAGE_ENV_VIRT,
};

#[test]
fn no_exclusive_load_runs_before_the_mmu_and_caches_are_on() {
    let image = file_from_env(IMAGE_ENV_VIRT);
    expect_no_exclusive_before_the_mmu(
        Boot::default().qemu_args(&image.display().to_string()),
        &image.with_file_name("kernel.elf"),
    );
}

/// The arguments of a default virt boot with `-kernel IMAGE` taken out.
fn without_kernel(image: &str) -> Vec<String> {
    let mut args = Boot::default().qemu_args(image);
    let at = args.iter().position(|a| a == "-kernel").expect("-kernel");
    args.drain(at..at + 2);
    args
}

#[test]
fn an_image_loaded_away_from_its_link_address_stops_and_names_both() {
    // As U-Boot `booti` does on a board whose RAM starts elsewhere: 2 MiB higher.
    let image = file_from_env(IMAGE_ENV_VIRT).display().to_string();
    let mut args = without_kernel(&image);
    args.extend([
        "-device".to_string(),
        format!("loader,file={image},addr=0x40280000,force-raw=on"),
        "-device".to_string(),
        "loader,addr=0x40280000,cpu-num=0".to_string(),
    ]);
    let run = run_qemu(&args, DEFAULT_TIMEOUT);
    run.expect_exit(6);
    run.expect_consecutive_lines(&[
        "boot: loaded at 0x0000000040280000, but linked to run at 0x0000000040080000: this image runs only at its link address",
        "power off: status 6 (unsupported boot)",
    ]);
}

#[test]
fn entry_at_el3_is_refused_with_the_reason() {
    // QEMU enters an ELF at EL3 when the machine has EL3 (`secure=on`).
    let image = file_from_env(IMAGE_ENV_VIRT);
    let elf = image.with_file_name("kernel.elf").display().to_string();
    let mut args = without_kernel(&image.display().to_string());
    let machine = args.iter().position(|a| a == "-M").expect("-M") + 1;
    args[machine] = "virt,secure=on,virtualization=on".into();
    args.extend(["-kernel".to_string(), elf]);
    let run = run_qemu(&args, DEFAULT_TIMEOUT);
    run.expect_exit(6);
    run.expect_consecutive_lines(&[
        "boot: entered at EL3, where the firmware's set-up",
        "power off: status 6 (unsupported boot)",
    ]);
}
