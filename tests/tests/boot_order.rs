//! The boot order real hardware needs and QEMU does not enforce: no exclusive
//! load (no lock, no atomic read-modify-write) before the MMU and the data cache
//! are on (`kernel/src/arch/aarch64/boot_map.rs`). The Pi 4 image is checked the
//! same way in `rpi4.rs`.

use qemu_tests::{boot_order::expect_no_exclusive_before_the_mmu, file_from_env, Boot, IMAGE_ENV_VIRT};

#[test]
fn no_exclusive_load_runs_before_the_mmu_and_caches_are_on() {
    let image = file_from_env(IMAGE_ENV_VIRT);
    expect_no_exclusive_before_the_mmu(Boot::default().qemu_args(&image.display().to_string()), &image.with_file_name("kernel.elf"));
}
