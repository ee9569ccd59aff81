//! The A64 generator of `gen-transparency` (included by build.rs, which
//! holds the shared random numbers and block layout).
//!
//! Register plan (the harness in src/arch/aarch64.rs loads and saves all of
//! them):
//!   x0-x15, x17 data; x16 and x30 branch targets (`adr` right before
//!   `br`/`blr`/`ret`); x19 fixed base into the scratch buffer, x20 a base that
//!   pre/post-index moves (by at most 64 bytes a time), x21 a small index;
//!   x28 the harness's state pointer (never touched); SP 16-byte aligned,
//!   inside the scratch buffer; x22-x27, x29 only read.
//!
//! Each block is followed by its literal pool (the `ldr` literal targets:
//! words, doublewords, and 16-byte values for `ldr q`, each aligned to its
//! size).

use std::fmt::Write as _;

use super::{block_rng, Generated, Layout, Rng};

const DATA: [u32; 17] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17];
const CONDS: [&str; 14] = ["eq", "ne", "cs", "cc", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le"];
const LOGIC_IMM_X: [&str; 8] = [
    "0xff",
    "0xffff0000",
    "0x5555555555555555",
    "0xfffffffffffffff0",
    "0x3",
    "0x7fffffff",
    "0x8000000000000001",
    "0xf0f0f0f0f0f0f0f0",
];
const LOGIC_IMM_W: [&str; 6] = ["0xff", "0xffff0000", "0x55555555", "0xfffffff0", "0x3", "0x7fffffff"];

struct Gen {
    rng: Rng,
    layout: Layout<String>,
    pool: Vec<String>,
}

impl Gen {
    fn x(&mut self) -> String {
        format!("x{}", self.rng.pick(&DATA))
    }
    fn w(&mut self) -> String {
        format!("w{}", self.rng.pick(&DATA))
    }
    fn r(&mut self, wide: bool) -> String {
        if wide {
            self.x()
        } else {
            self.w()
        }
    }
    fn xz(&mut self) -> String {
        if self.rng.chance(10) {
            "xzr".into()
        } else {
            self.x()
        }
    }
    fn v(&mut self) -> u64 {
        self.rng.below(32)
    }
    /// A label at most 12 lines ahead (never past the final `b gen_exit`).
    fn forward(&mut self, at: usize, min_skip: usize) -> String {
        self.layout.forward(&mut self.rng, at, min_skip)
    }
    /// A fresh random literal of `bytes` (4, 8 or 16) in the block's pool,
    /// aligned to its size (a 16-byte `ldr q` literal 16-byte aligned), and
    /// its label.
    fn literal(&mut self, bytes: usize) -> String {
        let name = format!(".Lg{}_lit{}", self.layout.block, self.pool.len());
        let value = self.rng.next();
        let entry = match bytes {
            4 => format!(".p2align 2\n{name}: .word {:#x}", value as u32),
            8 => format!(".p2align 3\n{name}: .quad {value:#x}"),
            _ => format!(".p2align 4\n{name}: .quad {value:#x}, {:#x}", self.rng.next()),
        };
        self.pool.push(entry);
        name
    }

    /// One or two instructions at line `at` (two only for the adr + br pairs).
    fn instruction(&mut self, at: usize) -> Vec<String> {
        let room = self.layout.room(at); // lines left before the final branch
        let wide = self.rng.chance(70);
        let class = self.rng.below(100);
        let one = |s: String| vec![s];
        match class {
            0..=5 => {
                let (d, n) = (self.r(wide), self.r(wide));
                let op = self.rng.pick(&["add", "sub", "adds", "subs"]);
                let shift = if self.rng.chance(20) { ", lsl #12" } else { "" };
                one(format!("{op} {d}, {n}, #{}{shift}", self.rng.below(4096)))
            }
            6..=11 => {
                let (d, n, m) = (self.r(wide), self.r(wide), self.r(wide));
                let op = self
                    .rng
                    .pick(&["add", "sub", "adds", "subs", "and", "orr", "eor", "bic", "orn", "eon", "ands", "bics"]);
                let logical = !op.starts_with("add") && !op.starts_with("sub");
                let shifts: &[&str] = if logical { &["lsl", "lsr", "asr", "ror"] } else { &["lsl", "lsr", "asr"] };
                let shift = self.rng.pick(shifts);
                let amount = self.rng.below(if wide { 64 } else { 32 });
                one(format!("{op} {d}, {n}, {m}, {shift} #{amount}"))
            }
            12..=14 => {
                let (d, n) = (self.x(), self.x());
                let m = self.w();
                let ext = self.rng.pick(&["uxtb", "uxth", "uxtw", "sxtb", "sxth", "sxtw"]);
                let op = self.rng.pick(&["add", "sub", "adds", "subs"]);
                one(format!("{op} {d}, {n}, {m}, {ext} #{}", self.rng.below(5)))
            }
            15..=17 => {
                let op = self.rng.pick(&["and", "orr", "eor", "ands"]);
                if wide {
                    let (d, n) = (self.x(), self.x());
                    one(format!("{op} {d}, {n}, #{}", self.rng.pick(&LOGIC_IMM_X)))
                } else {
                    let (d, n) = (self.w(), self.w());
                    one(format!("{op} {d}, {n}, #{}", self.rng.pick(&LOGIC_IMM_W)))
                }
            }
            18..=20 => {
                let op = self.rng.pick(&["movz", "movk", "movn"]);
                let d = self.r(wide);
                let hw = self.rng.below(if wide { 4 } else { 2 }) * 16;
                one(format!("{op} {d}, #{}, lsl #{hw}", self.rng.below(65536)))
            }
            21..=24 => {
                let bits = if wide { 64 } else { 32 };
                let (d, n) = (self.r(wide), self.r(wide));
                let lsb = self.rng.below(bits);
                let width = 1 + self.rng.below(bits - lsb);
                match self.rng.below(7) {
                    0 => one(format!("ubfx {d}, {n}, #{lsb}, #{width}")),
                    1 => one(format!("sbfx {d}, {n}, #{lsb}, #{width}")),
                    2 => one(format!("bfi {d}, {n}, #{lsb}, #{width}")),
                    3 => one(format!("ubfiz {d}, {n}, #{lsb}, #{width}")),
                    4 => one(format!("bfxil {d}, {n}, #{lsb}, #{width}")),
                    5 => {
                        let m = self.r(wide);
                        one(format!("extr {d}, {n}, {m}, #{lsb}"))
                    }
                    _ => one(format!("{} {d}, {n}, #{lsb}", self.rng.pick(&["lsl", "lsr", "asr", "ror"]))),
                }
            }
            25..=27 => {
                let (d, n, m) = (self.r(wide), self.r(wide), self.r(wide));
                one(format!(
                    "{} {d}, {n}, {m}",
                    self.rng
                        .pick(&["adc", "adcs", "sbc", "sbcs", "udiv", "sdiv", "lslv", "lsrv", "asrv", "rorv", "mul"])
                ))
            }
            28..=30 => {
                let (d, n, m, a) = (self.x(), self.x(), self.x(), self.x());
                let (wn, wm) = (self.w(), self.w());
                match self.rng.below(5) {
                    0 => one(format!("madd {d}, {n}, {m}, {a}")),
                    1 => one(format!("msub {d}, {n}, {m}, {a}")),
                    2 => one(format!(
                        "{} {d}, {wn}, {wm}, {a}",
                        self.rng.pick(&["smaddl", "umaddl", "smsubl", "umsubl"])
                    )),
                    3 => one(format!("{} {d}, {n}, {m}", self.rng.pick(&["smulh", "umulh"]))),
                    _ => {
                        let (wd, wa) = (self.w(), self.w());
                        one(format!("madd {wd}, {wn}, {wm}, {wa}"))
                    }
                }
            }
            31..=32 => {
                let (d, n) = (self.r(wide), self.r(wide));
                let ops: &[&str] = if wide {
                    &["rbit", "rev", "rev16", "rev32", "clz", "cls"]
                } else {
                    &["rbit", "rev", "rev16", "clz", "cls"]
                };
                one(format!("{} {d}, {n}", self.rng.pick(ops)))
            }
            33..=36 => {
                let (d, n, m) = (self.r(wide), self.r(wide), self.r(wide));
                let cond = self.rng.pick(&CONDS);
                one(format!("{} {d}, {n}, {m}, {cond}", self.rng.pick(&["csel", "csinc", "csinv", "csneg"])))
            }
            37..=39 => {
                let (n, m) = (self.r(wide), self.r(wide));
                let cond = self.rng.pick(&CONDS);
                let nzcv = self.rng.below(16);
                if self.rng.chance(50) {
                    one(format!("{} {n}, {m}, #{nzcv}, {cond}", self.rng.pick(&["ccmp", "ccmn"])))
                } else {
                    one(format!("{} {n}, #{}, #{nzcv}, {cond}", self.rng.pick(&["ccmp", "ccmn"]), self.rng.below(32)))
                }
            }
            40..=41 => {
                let (n, m) = (self.r(wide), self.r(wide));
                one(format!("{} {n}, {m}", self.rng.pick(&["cmp", "cmn", "tst"])))
            }
            42 => {
                let d = self.x();
                one(format!("mrs {d}, {}", self.rng.pick(&["nzcv", "tpidr_el0", "fpsr", "fpcr"])))
            }
            43 => {
                let (d, n) = (self.w(), self.w());
                let m = self.w();
                let xm = self.x();
                match self.rng.below(4) {
                    0 => one(format!(
                        "{} {d}, {n}, {m}",
                        self.rng.pick(&["crc32b", "crc32h", "crc32w", "crc32cb", "crc32ch", "crc32cw"])
                    )),
                    1 => one(format!("{} {d}, {n}, {xm}", self.rng.pick(&["crc32x", "crc32cx"]))),
                    2 => one("nop".into()),
                    _ => one(self.rng.pick(&["dmb ish", "dsb ish", "isb", "prfm pldl1keep, [x19, #64]"]).to_string()),
                }
            }
            // Loads and stores against the scratch buffer.
            44..=50 => {
                let (op, size, reg_wide) = *self.rng.pick(&[
                    ("ldr", 8u64, true),
                    ("str", 8, true),
                    ("ldr", 4, false),
                    ("str", 4, false),
                    ("ldrb", 1, false),
                    ("strb", 1, false),
                    ("ldrh", 2, false),
                    ("strh", 2, false),
                    ("ldrsb", 1, true),
                    ("ldrsh", 2, true),
                    ("ldrsw", 4, true),
                    ("ldrsb", 1, false),
                    ("ldrsh", 2, false),
                ]);
                let t = self.r(reg_wide);
                match self.rng.below(5) {
                    0 => one(format!("{op} {t}, [x19, #{}]", self.rng.below(512) * size)),
                    1 => {
                        let unscaled = op.replacen("ldr", "ldur", 1).replacen("str", "stur", 1);
                        one(format!(
                            "{unscaled} {t}, [x19, #{}]",
                            self.rng.range(-256 / size as i64, 255 / size as i64) * size as i64
                        ))
                    }
                    2 => one(format!("{op} {t}, [x20, #{}]!", self.rng.range(-4, 4) * 16)),
                    3 => one(format!("{op} {t}, [x20], #{}", self.rng.range(-4, 4) * 16)),
                    _ => {
                        let shift = size.trailing_zeros();
                        if self.rng.chance(50) {
                            one(format!("{op} {t}, [x19, x21, lsl #{shift}]"))
                        } else {
                            one(format!("{op} {t}, [x19, w21, sxtw #{shift}]"))
                        }
                    }
                }
            }
            51..=54 => {
                let (op, size, wide_regs) = *self.rng.pick(&[
                    ("ldp", 8u64, true),
                    ("stp", 8, true),
                    ("ldp", 4, false),
                    ("stp", 4, false),
                    ("ldpsw", 4, true),
                ]);
                let t1 = self.r(wide_regs);
                let mut t2 = self.r(wide_regs);
                while t2[1..] == t1[1..] {
                    t2 = self.r(wide_regs);
                }
                match self.rng.below(4) {
                    0 => one(format!("{op} {t1}, {t2}, [x19, #{}]", self.rng.range(-64, 63) * size as i64)),
                    1 => one(format!("{op} {t1}, {t2}, [x20, #{}]!", self.rng.range(-4, 4) * 16)),
                    2 => one(format!("{op} {t1}, {t2}, [x20], #{}", self.rng.range(-4, 4) * 16)),
                    _ => one(format!("{op} {t1}, {t2}, [sp, #{}]", self.rng.range(0, 30) * size as i64)),
                }
            }
            55..=56 => {
                // SP: frame push (simulated under simulate=all), SP arithmetic, SP-based access.
                match self.rng.below(5) {
                    0 => one("stp x29, x30, [sp, #-16]!".into()),
                    1 => one(format!("sub sp, sp, #{}", 16 * self.rng.range(1, 4))),
                    2 => one(format!("add sp, sp, #{}", 16 * self.rng.range(1, 4))),
                    3 => {
                        let t = self.x();
                        one(format!("{} {t}, [sp, #{}]", self.rng.pick(&["ldr", "str"]), 8 * self.rng.below(64)))
                    }
                    _ => {
                        let d = self.x();
                        one(format!("{} {d}, sp, #{}", self.rng.pick(&["add", "sub"]), self.rng.below(4096)))
                    }
                }
            }
            57..=60 => {
                let (t, size) = *self.rng.pick(&[("q", 16u64), ("d", 8), ("s", 4), ("b", 1), ("h", 2)]);
                let v = self.v();
                let op = self.rng.pick(&["ldr", "str"]);
                match self.rng.below(4) {
                    0 => one(format!("{op} {t}{v}, [x19, #{}]", self.rng.below(256) * size)),
                    1 => one(format!("{op} {t}{v}, [x20, #{}]!", self.rng.range(-4, 4) * 16)),
                    2 if size >= 4 => {
                        let v2 = (v + 1 + self.rng.below(31)) % 32;
                        let pop = if *op == "ldr" { "ldp" } else { "stp" };
                        one(format!("{pop} {t}{v}, {t}{v2}, [x19, #{}]", self.rng.range(-8, 8) * size as i64))
                    }
                    _ => {
                        let arr = self.rng.pick(&["16b", "8h", "4s", "2d", "8b", "4h", "2s"]);
                        let count = self.rng.range(1, 4);
                        let regs: Vec<String> = (0..count).map(|i| format!("v{}.{arr}", (v + i as u64) % 32)).collect();
                        let q = ["16b", "8h", "4s", "2d"].contains(arr);
                        let bytes = count * 16;
                        let op = self.rng.pick(&["ld1", "st1"]);
                        if !q || self.rng.chance(50) {
                            one(format!("{op} {{{}}}, [x19]", regs.join(", ")))
                        } else {
                            one(format!("{op} {{{}}}, [x20], #{bytes}", regs.join(", ")))
                        }
                    }
                }
            }
            61..=70 => {
                let (d, n, m) = (self.v(), self.v(), self.v());
                let arr = self.rng.pick(&["16b", "8h", "4s", "2d", "8b", "4h", "2s"]);
                let no_d = if *arr == "2d" { "4s" } else { arr };
                match self.rng.below(12) {
                    0 => one(format!(
                        "{} v{d}.{arr}, v{n}.{arr}, v{m}.{arr}",
                        self.rng.pick(&["add", "sub", "cmeq", "cmgt", "cmhi", "zip1", "zip2", "uzp1", "trn2"])
                    )),
                    1 => one(format!(
                        "{} v{d}.{no_d}, v{n}.{no_d}, v{m}.{no_d}",
                        self.rng.pick(&["mul", "umax", "smin", "uabd"])
                    )),
                    2 => one(format!(
                        "{} v{d}.16b, v{n}.16b, v{m}.16b",
                        self.rng.pick(&["and", "orr", "eor", "bic", "bsl", "bit"])
                    )),
                    3 => one(format!("ext v{d}.16b, v{n}.16b, v{m}.16b, #{}", self.rng.below(16))),
                    4 => one(format!(
                        "{} v{d}.4s, v{n}.4s, #{}",
                        self.rng.pick(&["shl", "ushr", "sshr"]),
                        1 + self.rng.below(31)
                    )),
                    5 => {
                        let x = self.x();
                        one(format!("dup v{d}.{arr}, {}", if *arr == "2d" { x } else { x.replacen('x', "w", 1) }))
                    }
                    6 => {
                        let x = self.x();
                        one(format!("{} {x}, v{n}.d[{}]", "umov", self.rng.below(2)))
                    }
                    7 => {
                        let x = self.x();
                        one(format!("ins v{d}.d[{}], {x}", self.rng.below(2)))
                    }
                    8 => one(format!("movi v{d}.2d, #0xff00ff00ff00ff00")),
                    9 => one(format!("{} v{d}.16b, v{n}.16b", self.rng.pick(&["cnt", "not", "rev64", "rev32"]))),
                    10 => one(format!("{} s{d}, v{n}.4s", self.rng.pick(&["addv", "umaxv", "sminv"]))),
                    _ => one(format!("{} v{d}.16b, v{n}.16b", self.rng.pick(&["aese", "aesd", "aesmc", "aesimc"]))),
                }
            }
            71..=77 => {
                let (d, n, m, a) = (self.v(), self.v(), self.v(), self.v());
                let p = self.rng.pick(&["d", "s"]);
                match self.rng.below(11) {
                    0 => one(format!(
                        "{} {p}{d}, {p}{n}, {p}{m}",
                        self.rng.pick(&["fadd", "fsub", "fmul", "fdiv", "fmax", "fmin", "fmaxnm", "fminnm", "fnmul"])
                    )),
                    1 => one(format!(
                        "{} {p}{d}, {p}{n}",
                        self.rng.pick(&["fabs", "fneg", "fsqrt", "frintn", "frintz", "frinta", "frintm", "fmov"])
                    )),
                    2 => {
                        one(format!("{} {p}{d}, {p}{n}, {p}{m}, {p}{a}", self.rng.pick(&["fmadd", "fmsub", "fnmadd"])))
                    }
                    3 => one(format!("{} {p}{n}, {p}{m}", self.rng.pick(&["fcmp", "fcmpe"]))),
                    4 => one(format!("fccmp {p}{n}, {p}{m}, #{}, {}", self.rng.below(16), self.rng.pick(&CONDS))),
                    5 => one(format!("fcsel {p}{d}, {p}{n}, {p}{m}, {}", self.rng.pick(&CONDS))),
                    6 => {
                        let x = self.x();
                        if self.rng.chance(50) {
                            one(format!("fmov d{d}, {x}"))
                        } else {
                            one(format!("fmov {x}, d{n}"))
                        }
                    }
                    7 => {
                        let x = self.x();
                        one(format!("{} {p}{d}, {x}", self.rng.pick(&["scvtf", "ucvtf"])))
                    }
                    8 => {
                        let x = self.x();
                        one(format!("{} {x}, {p}{n}", self.rng.pick(&["fcvtzs", "fcvtzu", "fcvtns", "fcvtms"])))
                    }
                    9 => one(if self.rng.chance(50) { format!("fcvt d{d}, s{n}") } else { format!("fcvt s{d}, d{n}") }),
                    _ => {
                        let op = self.rng.pick(&["fadd", "fmul", "fsub", "fmaxnm"]);
                        let arr = self.rng.pick(&["4s", "2d", "2s"]);
                        one(format!("{op} v{d}.{arr}, v{n}.{arr}, v{m}.{arr}"))
                    }
                }
            }
            // PC-relative: simulated under every policy.
            78..=81 => {
                let d = self.x();
                match self.rng.below(5) {
                    0 => {
                        let target = self.forward(at, 1);
                        one(format!("adr {d}, {target}"))
                    }
                    1 => one(format!("adrp {d}, gen_data")),
                    2 => {
                        let lit = self.literal(8);
                        one(format!("ldr {d}, {lit}"))
                    }
                    3 => {
                        // SIMD&FP literal loads: s and d zero the rest of the
                        // V register, q fills it.
                        let (prefix, bytes) = *self.rng.pick(&[("s", 4), ("d", 8), ("q", 16)]);
                        let lit = self.literal(bytes);
                        one(format!("ldr {prefix}{}, {lit}", self.v()))
                    }
                    _ => {
                        let lit = self.literal(4);
                        let w = d.replacen('x', "w", 1);
                        match self.rng.below(3) {
                            0 => one(format!("ldr {w}, {lit}")),
                            1 => one(format!("ldrsw {d}, {lit}")),
                            _ => one(format!("prfm pldl1keep, {lit}")),
                        }
                    }
                }
            }
            // Forward branches.
            _ if room >= 3 => match self.rng.below(9) {
                0 => {
                    let t = self.forward(at, 1);
                    one(format!("b {t}"))
                }
                1 | 2 => {
                    let t = self.forward(at, 1);
                    one(format!("b.{} {t}", self.rng.pick(&CONDS)))
                }
                3 => {
                    let r = self.r(wide);
                    let t = self.forward(at, 1);
                    one(format!("{} {r}, {t}", self.rng.pick(&["cbz", "cbnz"])))
                }
                4 => {
                    let r = self.x();
                    let bit = self.rng.below(64);
                    let t = self.forward(at, 1);
                    one(format!("{} {r}, #{bit}, {t}", self.rng.pick(&["tbz", "tbnz"])))
                }
                5 => {
                    let t = self.forward(at, 1);
                    one(format!("bl {t}"))
                }
                _ => {
                    // adr + br/blr/ret: two lines; the target is past both.
                    let t = self.forward(at, 2);
                    let (reg, br) =
                        *self.rng.pick(&[("x16", "br x16"), ("x16", "blr x16"), ("x16", "ret x16"), ("x30", "ret")]);
                    vec![format!("adr {reg}, {t}"), br.to_string()]
                }
            },
            _ => one(format!("eor {}, {}, {}", self.x(), self.xz(), self.x())),
        }
    }
}

fn block(seed: u64, index: usize, len: usize) -> (String, Vec<String>) {
    let mut g = Gen { rng: block_rng(seed, index), layout: Layout::new(index, len), pool: Vec::new() };
    // The `adr` + `br` pairs are units: a branch to the `br` lands on its
    // `adr` instead, or the register branch would use a stale (maybe
    // backward) target.
    while !g.layout.body_full() {
        let at = g.layout.at();
        let unit = g.instruction(at);
        g.layout.push_unit(unit, || "nop".into());
    }
    g.layout.finish("b gen_exit".into());
    let mut asm = String::new();
    let name = format!("gen_block_{index}");
    writeln!(asm, ".globl {name}\n.type {name}, %function\n.p2align 4\n{name}:").unwrap();
    for (i, line) in g.layout.lines.iter().enumerate() {
        for target in g.layout.labels_before(i) {
            writeln!(asm, "{}:", g.layout.label(target)).unwrap();
        }
        // global_asm! templates treat braces as operands: double them.
        writeln!(asm, "    {}", line.replace('{', "{{").replace('}', "}}")).unwrap();
    }
    for entry in &g.pool {
        writeln!(asm, "{entry}").unwrap();
    }
    writeln!(asm, ".size {name}, . - {name}").unwrap();
    (asm, g.layout.lines)
}

/// The A64 blocks, `gen_block_table` (their addresses) and their texts.
pub fn generate(seed: u64, blocks: usize, len: usize) -> Generated {
    let mut asm = String::from(".arch_extension crc\n.arch_extension aes\n.pushsection .text.gen, \"ax\", %progbits\n");
    let mut texts = Vec::new();
    for index in 0..blocks {
        let (text, lines) = block(seed, index, len);
        asm.push_str(&text);
        texts.push(lines);
    }
    asm.push_str(".popsection\n.pushsection .rodata.gen, \"a\", %progbits\n.p2align 3\n.globl gen_block_table\ngen_block_table:\n");
    for index in 0..blocks {
        writeln!(asm, "    .quad gen_block_{index}").unwrap();
    }
    asm.push_str(".popsection\n");
    Generated { asm, texts, rust: String::new() }
}
