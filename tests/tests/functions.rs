//! `cargo xtask functions` as a learner uses it to pick a probe point: the
//! listing of `user/probed` names each instruction by its offset, disassembles
//! it as the kernel's trace does, and says what a probe there does, the same as
//! the kernel's own registration of every probe point (`PROBED_POINTS`).

use qemu_tests::{cargo_xtask, PROBED_POINTS, PROBED_POINTS_X86_64};

/// `cargo xtask functions ARGS` with its own images folder (the tests of this
/// file run at once); returns the listing (stdout without the `+ command`
/// lines xtask prints), which must come with exit status 0.
fn xtask_functions(images: &str, args: &[&str]) -> String {
    let (stdout, _) = cargo_xtask(images, &[&["functions"], args].concat());
    stdout.lines().filter(|line| !line.starts_with("+ ")).map(|line| format!("{line}\n")).collect()
}

/// The listing's line for `function+offset` (`  +0x4     0x4000000044  0x5400006c  b.gt $+0xc  ; simulate`).
fn line_at<'a>(listing: &'a str, function: &str, offset: &str) -> &'a str {
    let body = listing
        .split_once(&format!("\n{function}:\n"))
        .or_else(|| listing.strip_prefix(&format!("{function}:\n")).map(|body| ("", body)))
        .unwrap_or_else(|| panic!("no function {function} in the listing:\n{listing}"))
        .1;
    body.lines()
        .take_while(|line| line.starts_with("  "))
        .find(|line| line.trim_start().starts_with(&format!("{offset} ")))
        .unwrap_or_else(|| panic!("no instruction at {function}{offset} in the listing:\n{listing}"))
}

/// Every probe point's line says what the kernel does with a probe there (under
/// the default `--simulate all`).
fn check_probe_points(listing: &str, points: &[(&str, &str)]) {
    for (at, class) in points {
        let (function, offset) = at.split_once('+').expect("symbol+offset");
        let line = line_at(listing, function, &format!("+{offset}"));
        let want = if *class == "step" { "; step out of line" } else { "; simulate" };
        assert!(line.ends_with(want), "{at} ({class}): {line:?}");
    }
}

#[test]
fn the_listing_of_probed_shows_each_probe_point_at_its_offset() {
    let listing = xtask_functions("target/images-functions-test", &["probed"]);
    // `cmp x0, #500` then the `b.gt` that `--probe probed:cls_bcond+4` names,
    // encoded and disassembled as the trace shows it.
    let first = line_at(&listing, "cls_bcond", "+0x0");
    assert!(first.contains("  0xf107d01f  cmp x0, #0x1f4  ; step out of line"), "{first}");
    let branch = line_at(&listing, "cls_bcond", "+0x4");
    assert!(branch.contains("  0x5400006c  b.gt $+0xc  ; simulate"), "{branch}");
    check_probe_points(&listing, PROBED_POINTS);
    // `--symbol` keeps one function.
    let one = xtask_functions("target/images-functions-test", &["probed", "--symbol", "step_alu"]);
    assert!(one.starts_with("step_alu:\n  +0x0 "), "{one}");
    assert_eq!(one.lines().filter(|line| !line.starts_with("  ")).count(), 1, "{one}");
    assert!(one.contains("  0x8b000c00  add x0, x0, x0, lsl #3  ; step out of line"), "{one}");
}

#[test]
fn the_listing_of_the_x86_64_probed_shows_each_probe_point_at_its_offset() {
    let listing = xtask_functions("target/images-functions-test-x86", &["probed", "--arch", "x86_64"]);
    let branch = line_at(&listing, "cls_jcc8", "+0x7");
    assert!(branch.contains("  7f 05 ") && branch.ends_with("  jg $+0x5  ; simulate"), "{branch}");
    let load = line_at(&listing, "step_rip_load", "+0x0");
    assert!(load.contains("  48 8b 05 ") && load.contains(" mov rax, qword [rip + 0x"), "{load}");
    check_probe_points(&listing, PROBED_POINTS_X86_64);
}
