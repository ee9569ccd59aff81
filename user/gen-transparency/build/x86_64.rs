//! The x86_64 generator of `gen-transparency` (included by build.rs, which
//! holds the shared random numbers and block layout). It writes Intel syntax,
//! Rust's default for `global_asm!` on x86_64, as the runtime does.
//!
//! Every class the x86_64 classifier accepts appears: the simulated ones (`nop`
//! of every length from 1 to 15 bytes, `push r64`, `ret`, `call rel32`,
//! `jmp rel8/rel32`, `jcc rel8/rel32`) and stepped ones of every shape: ALU
//! register/register, register/immediate and with memory (also `lock`ed),
//! shifts and rotates, `lea`, loads and stores through a base register,
//! RIP-relative loads, stores and `lea` (also with an immediate after the
//! displacement), `pushf`/`popf`, `push`/`pop` of immediates and memory,
//! `xchg`, `xadd`, `cmpxchg`, `cmovcc`, `setcc`, `imul`/`mul`, the bit tests
//! (with what consumes their CF: see `bit_test_unit`), `bsf`/`bsr`,
//! `movzx`/`movsx`/`movsxd`, `rep movs`/`rep stos` with small counts and the
//! single string instructions, `xlatb`, 16-bit forms (0x66), REX forms, segment
//! prefixes and long immediates (`movabs`). No SSE or x87: the target is
//! soft-float and the kernel leaves SSE off.
//!
//! Branches go forward only: `jmp`/`jcc` to a later line (written plainly,
//! so the assembler picks rel8 when the target is near, or forced to rel32
//! with `.byte`/`.long`); `call` to a later line (the return address stays
//! on the stack) or to one of the block's two leaves after its final `jmp
//! gen_exit`, which return; and `ret` to a later line through `lea` + `push`
//! + `ret`.
//!
//! Register plan (the harness in src/arch/x86_64.rs loads and saves all 16
//! and RFLAGS; it keeps its state pointer in memory, so no register is
//! reserved for it):
//!   rax, rcx, rdx, rbp, r8-r12, r14, r15 data (rcx is also the count of the
//!   `rep` units, set right before); rbx a fixed base into the scratch buffer,
//!   r13 a small index (0 to 63), rsi and rdi string pointers into the
//!   buffer that only string instructions move (forward: DF stays clear),
//!   rsp inside the buffer, moved by push/pop/call/ret and small 16-byte
//!   adjustments; rbx, r13, rsi, rdi and rsp are otherwise only read.
//!
//! Every probed instruction has a label `.Lgi<block>_<n>`; the table
//! `gen_insn_table` lists their addresses block after block, each block's
//! followed by the address where its last instruction ends, so the program
//! finds each instruction and reads its bytes.

use std::fmt::Write as _;

use super::{block_rng, Generated, Layout, Rng};

/// One instruction (or directive group that makes one) and its text.
#[derive(Clone)]
struct Line {
    /// What the assembler reads.
    source: String,
    /// What messages show.
    text: String,
}

impl Line {
    fn asm(source: String) -> Line {
        Line { text: source.clone(), source }
    }
}

const R64: [&str; 16] =
    ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
const R32: [&str; 16] = [
    "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d",
    "r15d",
];
const R16: [&str; 16] =
    ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di", "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w"];
const R8: [&str; 16] =
    ["al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil", "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "r15b"];

const RAX: usize = 0;
const RDX: usize = 2;
const RSP: usize = 4;
/// The registers a block may write (hardware numbers).
const DATA: [usize; 11] = [0, 1, 2, 5, 8, 9, 10, 11, 12, 14, 15];
/// The legacy byte registers without REX, for the `ah`/`ch`/`dh` forms
/// (`bh` is part of the base register, so it is only read).
const HIGH_DST: [&str; 6] = ["al", "cl", "dl", "ah", "ch", "dh"];
const HIGH_SRC: [&str; 8] = ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"];

/// The condition suffixes, in encoding order (`jcc` is `70+cc`/`0F 80+cc`).
const CONDS: [&str; 16] = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];
const ALU: [&str; 9] = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp", "test"];
/// The ALU operations `lock` may prefix (they write memory).
const ALU_LOCKABLE: [&str; 7] = ["add", "or", "adc", "sbb", "and", "sub", "xor"];
const SHIFTS: [&str; 7] = ["shl", "shr", "sar", "rol", "ror", "rcl", "rcr"];

/// Where the base registers point, as offsets into the 32 KiB scratch
/// buffer (src/arch/x86_64.rs sets them; keep the two in step).
/// rbx = scratch + 8 KiB: `[rbx + disp]` reaches the first 16 KiB.
const RBX_REACH: i64 = 8 * 1024;
/// rsp starts at 24 KiB; `[rsp + disp]` reaches 256 bytes above it.
const RSP_DISP: i64 = 256;
/// How far the instructions of one block may move rsp down (pushes, calls,
/// `sub rsp`) and up (pops, `ret`, `add rsp`), all of them added up, so rsp
/// stays inside the buffer on every path whatever the block length.
const RSP_DOWN_MAX: i64 = 12 * 1024;
const RSP_UP_MAX: i64 = 7 * 1024;
/// rsi and rdi start at 16 and 20 KiB and only move up, by at most this
/// much in one block (`[rdi + disp]` reaches 120 bytes above).
const STRING_MAX: i64 = 10 * 1024;
/// The first bytes of the buffer, which rsp never comes near: all a leaf
/// may touch.
const LEAF_DATA: i64 = 8 * 1024;
/// Bytes of the scratch buffer, for RIP-relative operands `gen_scratch + off`.
const SCRATCH: i64 = 32 * 1024;
/// Largest count of a `rep` unit (elements of up to 8 bytes).
const REP_MAX: i64 = 8;

/// The name of a register of `bits` width.
fn reg(number: usize, bits: u32) -> &'static str {
    match bits {
        64 => R64[number],
        32 => R32[number],
        16 => R16[number],
        _ => R8[number],
    }
}

fn ptr(bits: u32) -> &'static str {
    match bits {
        64 => "qword ptr",
        32 => "dword ptr",
        16 => "word ptr",
        _ => "byte ptr",
    }
}

/// ` + 12` or ` - 12`.
fn signed(value: i64) -> String {
    if value < 0 {
        format!(" - {}", -value)
    } else {
        format!(" + {value}")
    }
}

/// The `nop` of `len` bytes (1 to 15): the forms assemblers pad with, the
/// longest ones with extra 0x66 prefixes and a `cs` override.
fn nop_bytes(len: usize) -> Vec<u8> {
    const BODY8: [u8; 8] = [0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00];
    match len {
        1 => vec![0x90],
        2 => vec![0x66, 0x90],
        3 => vec![0x0f, 0x1f, 0x00],
        4 => vec![0x0f, 0x1f, 0x40, 0x00],
        5 => vec![0x0f, 0x1f, 0x44, 0x00, 0x00],
        6 => vec![0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
        7 => vec![0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
        8 => BODY8.to_vec(),
        9 => [&[0x66][..], &BODY8].concat(),
        _ => [vec![0x66; len - 9], vec![0x2e], BODY8.to_vec()].concat(),
    }
}

fn bytes_directive(bytes: &[u8]) -> String {
    let list: Vec<String> = bytes.iter().map(|b| format!("{b:#04x}")).collect();
    format!(".byte {}", list.join(", "))
}

struct Gen {
    rng: Rng,
    layout: Layout<Line>,
    /// Literal pool after the block (RIP-relative loads from the text).
    pool: Vec<String>,
    /// Generating a leaf: memory operands only where the stack is not (its
    /// return address is at [rsp]).
    in_leaf: bool,
    /// How far the block's instructions so far may move rsp down and up,
    /// and rsi/rdi up (see [`RSP_DOWN_MAX`], [`STRING_MAX`]).
    rsp_down: i64,
    rsp_up: i64,
    string: i64,
}

impl Gen {
    fn data(&mut self) -> usize {
        *self.rng.pick(&DATA)
    }
    /// A register to read: mostly data, sometimes a base, index or rsp.
    fn source(&mut self) -> usize {
        if self.rng.chance(80) {
            self.data()
        } else {
            self.rng.below(16) as usize
        }
    }
    fn bits(&mut self) -> u32 {
        *self.rng.pick(&[64, 64, 64, 32, 32, 16, 8])
    }
    /// An immediate for an operation of `bits` width (`imm32` sign-extends
    /// to 64 bits, so 64-bit operations take 32-bit values).
    fn imm(&mut self, bits: u32) -> i64 {
        let small = self.rng.chance(40);
        match bits {
            8 => self.rng.range(-128, 255),
            16 if small => self.rng.range(-128, 127),
            16 => self.rng.range(-32768, 65535),
            32 if !small => self.rng.range(i32::MIN as i64, u32::MAX as i64),
            _ if small => self.rng.range(-128, 127),
            _ => self.rng.range(i32::MIN as i64, i32::MAX as i64),
        }
    }
    /// A label at most 12 lines ahead (never past the final `jmp gen_exit`).
    fn forward(&mut self, at: usize, min_skip: usize) -> String {
        self.layout.forward(&mut self.rng, at, min_skip)
    }
    /// Whether rsp may move `down` more bytes down and `up` more up; if so,
    /// counts them.
    fn stack(&mut self, down: i64, up: i64) -> bool {
        let fits = self.rsp_down + down <= RSP_DOWN_MAX && self.rsp_up + up <= RSP_UP_MAX;
        if fits {
            self.rsp_down += down;
            self.rsp_up += up;
        }
        fits
    }
    /// Whether rsi/rdi may move `bytes` more; if so, counts them.
    fn strings(&mut self, bytes: i64) -> bool {
        let fits = self.string + bytes <= STRING_MAX;
        if fits {
            self.string += bytes;
        }
        fits
    }
    fn literal(&mut self) -> String {
        let name = format!(".Lg{}_lit{}", self.layout.block, self.pool.len());
        let value = self.rng.next();
        self.pool.push(format!(".p2align 3\n{name}: .quad {value:#x}"));
        name
    }
    /// A RIP-relative operand into the scratch buffer.
    fn rip_scratch(&mut self, bits: u32) -> String {
        let offset = self.rng.range(0, SCRATCH - 8);
        format!("{} [rip + gen_scratch + {offset}]", ptr(bits))
    }

    /// A memory operand of `bits` width inside the scratch buffer.
    fn mem(&mut self, bits: u32) -> String {
        let ptr = ptr(bits);
        // Segment overrides other than fs/gs change nothing in 64-bit mode:
        // a prefix for the decoder to skip.
        let segment = if self.rng.chance(5) { *self.rng.pick(&["ds:", "es:", "ss:", "cs:"]) } else { "" };
        if self.in_leaf {
            // Below rsp's lowest point (see RSP_DOWN_MAX), so a leaf cannot
            // overwrite the return address its `ret` reads.
            return if self.rng.chance(70) {
                format!("{ptr} {segment}[rbx{}]", signed(self.rng.range(-RBX_REACH, -8)))
            } else {
                format!("{ptr} [rip + gen_scratch + {}]", self.rng.range(0, LEAF_DATA - 8))
            };
        }
        match self.rng.below(10) {
            0..=3 => {
                let disp = self.rng.range(-RBX_REACH, RBX_REACH - 8);
                format!("{ptr} {segment}[rbx{}]", signed(disp))
            }
            4 | 5 => {
                let scale = self.rng.pick(&[1, 2, 4, 8]);
                let disp = self.rng.range(-RBX_REACH / 2, RBX_REACH / 2);
                format!("{ptr} {segment}[rbx + {scale}*r13{}]", signed(disp))
            }
            6 => format!("{ptr} {segment}[rsi{}]", signed(self.rng.range(-128, 120))),
            7 => format!("{ptr} {segment}[rdi{}]", signed(self.rng.range(-128, 120))),
            8 => self.rip_scratch(bits),
            _ => format!("{ptr} {segment}[rsp + {}]", self.rng.range(0, RSP_DISP - 8)),
        }
    }
    /// A register or memory operand to write, of `bits` width.
    fn rm_dst(&mut self, bits: u32) -> String {
        if self.rng.chance(30) {
            self.mem(bits)
        } else {
            let d = self.data();
            reg(d, bits).into()
        }
    }

    /// One instruction without branches or stack changes: what leaves and
    /// fillers are made of, and most of a block.
    fn plain(&mut self) -> Line {
        let bits = self.bits();
        let one = |s: String| Line::asm(s);
        match self.rng.below(60) {
            // ALU register, register.
            0..=7 => {
                let op = self.rng.pick(&ALU);
                let (d, s) = (self.data(), self.source());
                if bits == 8 && self.rng.chance(30) {
                    one(format!("{op} {}, {}", self.rng.pick(&HIGH_DST), self.rng.pick(&HIGH_SRC)))
                } else {
                    one(format!("{op} {}, {}", reg(d, bits), reg(s, bits)))
                }
            }
            // ALU register, immediate (the accumulator forms included).
            8..=14 => {
                let op = self.rng.pick(&ALU);
                let d = if self.rng.chance(20) { RAX } else { self.data() };
                one(format!("{op} {}, {}", reg(d, bits), self.imm(bits)))
            }
            // ALU with memory: load-op, op-store, memory-immediate, locked.
            15..=20 => {
                let op = *self.rng.pick(&ALU);
                let m = self.mem(bits);
                let s = self.source();
                match self.rng.below(4) {
                    0 => {
                        let d = self.data();
                        one(format!("{op} {}, {m}", reg(d, bits)))
                    }
                    1 => one(format!("{op} {m}, {}", reg(s, bits))),
                    2 => one(format!("{op} {m}, {}", self.imm(bits))),
                    _ => {
                        let op = self.rng.pick(&ALU_LOCKABLE);
                        if self.rng.chance(50) {
                            one(format!("lock {op} {m}, {}", reg(s, bits)))
                        } else {
                            one(format!("lock {op} {m}, {}", self.imm(bits)))
                        }
                    }
                }
            }
            // One operand: inc, dec, neg, not; bswap.
            21..=23 => {
                if self.rng.chance(20) {
                    let d = self.data();
                    one(format!("bswap {}", reg(d, if self.rng.chance(50) { 64 } else { 32 })))
                } else {
                    let op = self.rng.pick(&["inc", "dec", "neg", "not"]);
                    let lock = if self.rng.chance(20) { "lock " } else { "" };
                    let target = self.rm_dst(bits);
                    let lock = if target.contains('[') { lock } else { "" };
                    one(format!("{lock}{op} {target}"))
                }
            }
            // Shifts and rotates: by 1, by an immediate, by cl; shld/shrd.
            24..=27 => {
                let target = self.rm_dst(bits);
                match self.rng.below(4) {
                    0 => one(format!("{} {target}, 1", self.rng.pick(&SHIFTS))),
                    1 => one(format!("{} {target}, cl", self.rng.pick(&SHIFTS))),
                    2 => {
                        let bits = bits.max(16);
                        let (d, s) = (self.data(), self.source());
                        let op = self.rng.pick(&["shld", "shrd"]);
                        if self.rng.chance(50) {
                            one(format!("{op} {}, {}, {}", reg(d, bits), reg(s, bits), self.rng.below(bits as u64)))
                        } else {
                            one(format!("{op} {}, {}, cl", reg(d, bits), reg(s, bits)))
                        }
                    }
                    _ => one(format!("{} {target}, {}", self.rng.pick(&SHIFTS), self.rng.range(0, bits as i64 - 1))),
                }
            }
            // mov: register, immediate (movabs too), load, store.
            28..=34 => match self.rng.below(6) {
                0 => {
                    let (d, s) = (self.data(), self.source());
                    one(format!("mov {}, {}", reg(d, bits), reg(s, bits)))
                }
                1 => {
                    let d = self.data();
                    match self.rng.below(3) {
                        0 => one(format!("movabs {}, {:#x}", reg(d, 64), self.rng.next())),
                        1 => one(format!("mov {}, {}", reg(d, 64), self.imm(64))),
                        _ => one(format!("mov {}, {}", reg(d, bits), self.imm(bits))),
                    }
                }
                2 | 3 => {
                    let d = self.data();
                    let m = self.mem(bits);
                    one(format!("mov {}, {m}", reg(d, bits)))
                }
                4 => {
                    let s = self.source();
                    let m = self.mem(bits);
                    one(format!("mov {m}, {}", reg(s, bits)))
                }
                _ => {
                    let m = self.mem(bits);
                    one(format!("mov {m}, {}", self.imm(bits)))
                }
            },
            // movzx, movsx, movsxd.
            35..=37 => {
                let d = self.data();
                let wide = *self.rng.pick(&[64, 32, 16]);
                let narrow = if wide == 16 { 8 } else { *self.rng.pick(&[8, 16]) };
                let op = self.rng.pick(&["movzx", "movsx"]);
                let s = self.source();
                match self.rng.below(3) {
                    0 => one(format!(
                        "movsxd {}, {}",
                        reg(d, 64),
                        if self.rng.chance(50) { reg(s, 32).to_string() } else { self.mem(32) }
                    )),
                    1 => one(format!("{op} {}, {}", reg(d, wide), self.mem(narrow))),
                    _ => one(format!("{op} {}, {}", reg(d, wide), reg(s, narrow))),
                }
            }
            // lea: any registers (it computes, it does not access memory),
            // also 32-bit addresses (0x67) and 16/32-bit destinations.
            38..=40 => {
                let d = self.data();
                let base = self.rng.below(16) as usize;
                let mut index = self.rng.below(16) as usize;
                if index == RSP {
                    index = RDX;
                }
                let scale = self.rng.pick(&[1, 2, 4, 8]);
                let disp = signed(if self.rng.chance(50) {
                    self.rng.range(-128, 127)
                } else {
                    self.rng.range(i32::MIN as i64, i32::MAX as i64)
                });
                match self.rng.below(4) {
                    0 => one(format!("lea {}, [{}{disp}]", reg(d, 64), reg(base, 64))),
                    1 => one(format!("lea {}, [{} + {scale}*{}{disp}]", reg(d, 64), reg(base, 64), reg(index, 64))),
                    2 => one(format!("lea {}, [{} + {scale}*{}{disp}]", reg(d, 32), reg(base, 32), reg(index, 32))),
                    _ => one(format!(
                        "lea {}, [{} + {scale}*{}]",
                        reg(d, *self.rng.pick(&[32, 16])),
                        reg(base, 64),
                        reg(index, 64)
                    )),
                }
            }
            // xchg, xadd, cmpxchg, cmpxchg8b.
            41..=43 => {
                let (a, b) = (self.data(), self.data());
                match self.rng.below(6) {
                    0 => one(format!("xchg {}, {}", reg(a, bits), reg(b, bits))),
                    1 => one(format!("xchg {}, {}", reg(RAX, bits.max(16)), reg(b, bits.max(16)))),
                    2 => {
                        let m = self.mem(bits);
                        one(format!("xchg {m}, {}", reg(a, bits)))
                    }
                    3 => {
                        let lock = if self.rng.chance(50) { "lock " } else { "" };
                        let target = self.rm_dst(bits);
                        let lock = if target.contains('[') { lock } else { "" };
                        one(format!("{lock}xadd {target}, {}", reg(a, bits)))
                    }
                    4 => {
                        let lock = if self.rng.chance(50) { "lock " } else { "" };
                        let target = self.rm_dst(bits);
                        let lock = if target.contains('[') { lock } else { "" };
                        let s = self.source();
                        one(format!("{lock}cmpxchg {target}, {}", reg(s, bits)))
                    }
                    _ => {
                        let m = self.mem(64);
                        one(format!("cmpxchg8b {m}"))
                    }
                }
            }
            // cmovcc, setcc.
            44..=47 => {
                let cc = self.rng.pick(&CONDS);
                if self.rng.chance(60) {
                    let bits = bits.max(16);
                    let d = self.data();
                    let s = if self.rng.chance(30) { self.mem(bits) } else { reg(self.source(), bits).to_string() };
                    one(format!("cmov{cc} {}, {s}", reg(d, bits)))
                } else {
                    let target = self.rm_dst(8);
                    one(format!("set{cc} {target}"))
                }
            }
            // imul (two and three operands), one-operand mul/imul (rdx:rax).
            48..=50 => {
                let bits = bits.max(16);
                let d = self.data();
                let s = if self.rng.chance(25) { self.mem(bits) } else { reg(self.source(), bits).to_string() };
                match self.rng.below(3) {
                    0 => one(format!("imul {}, {s}", reg(d, bits))),
                    1 => one(format!("imul {}, {s}, {}", reg(d, bits), self.imm(bits))),
                    _ => one(format!("{} {s}", self.rng.pick(&["mul", "imul"]))),
                }
            }
            // bsf/bsr (bit tests are units: see bit_test_unit).
            51..=53 => {
                let bits = bits.max(16);
                let (d, s) = (self.data(), self.source());
                one(format!("{} {}, {}", self.rng.pick(&["bsf", "bsr"]), reg(d, bits), reg(s, bits)))
            }
            // Sign extensions of rax, flag operations, xlatb (al = [rbx + al]).
            54..=55 => one(self
                .rng
                .pick(&["cqo", "cdq", "cwd", "cdqe", "cwde", "cbw", "clc", "stc", "cmc", "cld", "xlatb"])
                .to_string()),
            // test and cmp against memory.
            _ => {
                let m = self.mem(bits);
                let s = self.source();
                match self.rng.below(3) {
                    0 => one(format!("test {m}, {}", reg(s, bits))),
                    1 => one(format!("cmp {}, {m}", reg(s, bits))),
                    _ => one(format!("test {m}, {}", self.imm(bits))),
                }
            }
        }
    }

    /// `bt`, `bts`, `btr` or `btc` (register bit offsets only with register
    /// operands: with memory they could address outside the buffer), then
    /// what uses its CF and sets all six arithmetic flags again.
    ///
    /// A bit test leaves OF, SF, AF and PF undefined, and what QEMU leaves
    /// in them depends on the flags state it carries lazily within a
    /// translation block: a step ends the block, so stepping the
    /// instruction before a `bt` changes them. No program may rely on
    /// undefined flags, so the unit never lets them be seen: the next line
    /// is `adc`/`sbb`, or `setc`/`cmovc` followed by `add`/`sub`/`cmp`.
    fn bit_test_unit(&mut self) -> Vec<Line> {
        let bits = *self.rng.pick(&[64, 32, 16]);
        let op = self.rng.pick(&["bt", "bts", "btr", "btc"]);
        let test = match self.rng.below(3) {
            0 => {
                let (d, s) = (self.data(), self.source());
                format!("{op} {}, {}", reg(d, bits), reg(s, bits))
            }
            1 => {
                let d = self.data();
                format!("{op} {}, {}", reg(d, bits), self.rng.below(bits as u64))
            }
            _ => {
                let m = self.mem(bits);
                format!("{op} {m}, {}", self.rng.below(bits as u64))
            }
        };
        let d = self.data();
        let width = self.bits();
        let redefine = |g: &mut Gen| {
            let d = g.data();
            let width = g.bits();
            format!("{} {}, {}", g.rng.pick(&["add", "sub", "cmp"]), reg(d, width), g.imm(width))
        };
        let mut unit = vec![Line::asm(test)];
        match self.rng.below(3) {
            0 => {
                let s = self.source();
                unit.push(Line::asm(format!(
                    "{} {}, {}",
                    self.rng.pick(&["adc", "sbb"]),
                    reg(d, width),
                    reg(s, width)
                )));
            }
            1 => {
                let target = self.rm_dst(8);
                unit.push(Line::asm(format!("{} {target}", self.rng.pick(&["setc", "setnc"]))));
                unit.push(Line::asm(redefine(self)));
            }
            _ => {
                let (width, s) = (width.max(16), self.source());
                unit.push(Line::asm(format!(
                    "{} {}, {}",
                    self.rng.pick(&["cmovc", "cmovnc"]),
                    reg(d, width),
                    reg(s, width)
                )));
                unit.push(Line::asm(redefine(self)));
            }
        }
        unit
    }

    /// One instruction or unit at line `at` of the body.
    fn instruction(&mut self, at: usize) -> Vec<Line> {
        let room = self.layout.room(at);
        let one = |l: Line| vec![l];
        let asm = |s: String| vec![Line::asm(s)];
        match self.rng.below(100) {
            0..=55 => one(self.plain()),
            56..=59 if room >= 3 => self.bit_test_unit(),
            // push r64: simulated under simulate=all (also `push rsp`, which
            // stores the old rsp).
            60..=64 if self.stack(8, 0) => asm(format!("push {}", R64[self.rng.below(16) as usize])),
            // nop of every length.
            65..=67 => {
                let len = self.rng.range(1, 15) as usize;
                let text = if len == 1 { "nop".to_string() } else { format!("nop ({len}-byte form)") };
                one(Line { source: bytes_directive(&nop_bytes(len)), text })
            }
            // The stack: pushf (+ popf), push imm/mem, pop reg/mem, rsp moves.
            68..=71 => match self.rng.below(9) {
                0 if self.stack(8, 0) => asm("pushfq".into()),
                1 if room >= 2 && self.stack(8, 8) => vec![Line::asm("pushfq".into()), Line::asm("popfq".into())],
                // imm8 or imm32, sign-extended to 64 bits.
                2 if self.stack(8, 0) => asm(format!("push {}", self.imm(64))),
                3 if self.stack(8, 0) => {
                    let m = self.mem(64);
                    asm(format!("push {m}"))
                }
                4 | 5 if self.stack(0, 8) => {
                    let d = self.data();
                    asm(format!("pop {}", R64[d]))
                }
                6 if self.stack(0, 8) => {
                    // Not through rsp: pop computes an rsp-based address
                    // after moving rsp, a subtlety left to the CPU tests.
                    let disp = self.rng.range(-RBX_REACH, RBX_REACH - 8);
                    asm(format!("pop qword ptr [rbx{}]", signed(disp)))
                }
                7 | 8 => {
                    let amount = 16 * self.rng.range(1, 4);
                    let (down, up) = match self.rng.below(4) {
                        0 => (amount, 0),
                        1 => (0, amount),
                        _ => (0, 0),
                    };
                    if down > 0 && self.stack(down, 0) {
                        if self.rng.chance(50) {
                            asm(format!("sub rsp, {down}"))
                        } else {
                            asm(format!("add rsp, -{down}"))
                        }
                    } else if up > 0 && self.stack(0, up) {
                        asm(format!("add rsp, {up}"))
                    } else if self.stack(64, 64) {
                        asm(format!("lea rsp, [rsp{}]", signed(self.rng.range(-4, 4) * 16)))
                    } else {
                        one(self.plain())
                    }
                }
                _ => one(self.plain()),
            },
            // String instructions: rep with a small count (a unit with the
            // `mov ecx`), and the single ones.
            72..=75 => {
                if self.rng.chance(50) && room >= 2 && self.strings(8 * REP_MAX) {
                    let count = self.rng.range(0, REP_MAX);
                    let op = self.rng.pick(&[
                        "rep movsb",
                        "rep stosb",
                        "rep movsq",
                        "rep stosq",
                        "rep movsw",
                        "rep stosw",
                        "repe cmpsb",
                        "repne scasb",
                    ]);
                    vec![Line::asm(format!("mov ecx, {count}")), Line::asm(op.to_string())]
                } else if self.strings(8) {
                    asm(self
                        .rng
                        .pick(&["movsb", "movsq", "stosb", "stosd", "lodsb", "lodsq", "cmpsb", "scasq"])
                        .to_string())
                } else {
                    one(self.plain())
                }
            }
            // RIP-relative: loads and stores in the scratch buffer (also with
            // an immediate after the displacement), loads from the literal
            // pool in the text, lea of a label.
            76..=81 => {
                let d = self.data();
                let bits = self.bits();
                match self.rng.below(9) {
                    0 => {
                        let m = self.rip_scratch(bits);
                        asm(format!("mov {}, {m}", reg(d, bits)))
                    }
                    1 => {
                        let s = self.source();
                        let m = self.rip_scratch(bits);
                        asm(format!("mov {m}, {}", reg(s, bits)))
                    }
                    2 => {
                        let m = self.rip_scratch(bits);
                        asm(format!("mov {m}, {}", self.imm(bits)))
                    }
                    3 => {
                        let m = self.rip_scratch(bits);
                        let op = self.rng.pick(&ALU);
                        asm(format!("{op} {m}, {}", self.imm(bits)))
                    }
                    4 => {
                        let lit = self.literal();
                        match self.rng.below(3) {
                            0 => asm(format!("mov {}, qword ptr [rip + {lit}]", R64[d])),
                            1 => asm(format!("movsxd {}, dword ptr [rip + {lit}]", R64[d])),
                            _ => asm(format!("movzx {}, word ptr [rip + {lit}]", R32[d])),
                        }
                    }
                    5 => {
                        let target = self.forward(at, 1);
                        asm(format!("lea {}, [rip + {target}]", R64[d]))
                    }
                    6 => {
                        let bits = bits.max(16);
                        let m = self.rip_scratch(bits);
                        let cc = self.rng.pick(&CONDS);
                        asm(format!("cmov{cc} {}, {m}", reg(d, bits)))
                    }
                    7 => {
                        let bits = bits.max(16);
                        let m = self.rip_scratch(bits);
                        asm(format!("imul {}, {m}, {}", reg(d, bits), self.imm(bits)))
                    }
                    _ if self.stack(8, 0) => {
                        let m = self.rip_scratch(64);
                        asm(format!("push {m}"))
                    }
                    _ => {
                        let m = self.rip_scratch(bits);
                        asm(format!("test {m}, {}", self.imm(bits)))
                    }
                }
            }
            // Forward branches.
            _ if room >= 4 => match self.rng.below(10) {
                0 | 1 => {
                    let target = self.forward(at, 1);
                    asm(format!("jmp {target}"))
                }
                2 | 3 => {
                    let target = self.forward(at, 1);
                    asm(format!("j{} {target}", self.rng.pick(&CONDS)))
                }
                4 => {
                    let target = self.forward(at, 1);
                    one(Line {
                        source: format!(".byte 0xe9\n    .long {target} - . - 4"),
                        text: format!("jmp {target} (rel32)"),
                    })
                }
                5 => {
                    let target = self.forward(at, 1);
                    let cc = self.rng.below(16) as usize;
                    one(Line {
                        source: format!(".byte 0x0f, {:#04x}\n    .long {target} - . - 4", 0x80 + cc),
                        text: format!("j{} {target} (rel32)", CONDS[cc]),
                    })
                }
                6 | 7 if self.stack(8, 8) => {
                    let leaf = self.rng.below(LEAVES as u64);
                    asm(format!("call .Lgl{}_{leaf}", self.layout.block))
                }
                8 if self.stack(8, 0) => {
                    let target = self.forward(at, 1);
                    asm(format!("call {target}"))
                }
                9 if self.stack(8, 8) => {
                    let target = self.forward(at, 3);
                    let d = self.data();
                    vec![
                        Line::asm(format!("lea {}, [rip + {target}]", R64[d])),
                        Line::asm(format!("push {}", R64[d])),
                        Line::asm("ret".into()),
                    ]
                }
                _ => one(self.plain()),
            },
            _ => one(self.plain()),
        }
    }
}

/// Leaves per block (`call` targets that return).
const LEAVES: usize = 2;
/// Most instructions in a leaf before its `ret`.
const LEAF_MAX: u64 = 3;

fn block(seed: u64, index: usize, len: usize) -> (String, Vec<Line>) {
    let mut g = Gen {
        rng: block_rng(seed, index),
        layout: Layout::new(index, len),
        pool: Vec::new(),
        in_leaf: false,
        rsp_down: 0,
        rsp_up: 0,
        string: 0,
    };
    while !g.layout.body_full() {
        let at = g.layout.at();
        let unit = g.instruction(at);
        g.layout.push_unit(unit, || Line::asm("nop".into()));
    }
    g.layout.finish(Line::asm("jmp gen_exit".into()));
    let mut leaves = Vec::new();
    g.in_leaf = true;
    for _ in 0..LEAVES {
        let count = g.rng.below(LEAF_MAX + 1);
        let mut leaf: Vec<Line> = (0..count).map(|_| g.plain()).collect();
        leaf.push(Line::asm("ret".into()));
        leaves.push(leaf);
    }

    let mut asm = String::new();
    let name = format!("gen_block_{index}");
    writeln!(asm, ".globl {name}\n.type {name}, %function\n.p2align 4\n{name}:").unwrap();
    let mut lines = Vec::new();
    for (i, line) in g.layout.lines.iter().enumerate() {
        for target in g.layout.labels_before(i) {
            writeln!(asm, "{}:", g.layout.label(target)).unwrap();
        }
        writeln!(asm, ".Lgi{index}_{}:\n    {}", lines.len(), line.source).unwrap();
        lines.push(line.clone());
    }
    for (k, leaf) in leaves.iter().enumerate() {
        writeln!(asm, ".Lgl{index}_{k}:").unwrap();
        for line in leaf {
            writeln!(asm, ".Lgi{index}_{}:\n    {}", lines.len(), line.source).unwrap();
            lines.push(line.clone());
        }
    }
    // Where the last instruction ends.
    writeln!(asm, ".Lgi{index}_{}:", lines.len()).unwrap();
    for entry in &g.pool {
        writeln!(asm, "{entry}").unwrap();
    }
    writeln!(asm, ".size {name}, . - {name}").unwrap();
    // global_asm! templates treat braces as operands: double them.
    (asm.replace('{', "{{").replace('}', "}}"), lines)
}

/// The x86_64 blocks, `gen_insn_table` and their texts.
pub fn generate(seed: u64, blocks: usize, len: usize) -> Generated {
    let mut asm = String::from(".pushsection .text.gen, \"ax\", @progbits\n");
    let mut texts = Vec::new();
    for index in 0..blocks {
        let (text, lines) = block(seed, index, len);
        asm.push_str(&text);
        texts.push(lines.into_iter().map(|l| l.text).collect::<Vec<_>>());
    }
    asm.push_str(
        ".popsection\n.pushsection .rodata.gen, \"a\", @progbits\n.p2align 3\n.globl gen_insn_table\ngen_insn_table:\n",
    );
    for (index, lines) in texts.iter().enumerate() {
        for i in 0..=lines.len() {
            writeln!(asm, "    .quad .Lgi{index}_{i}").unwrap();
        }
    }
    asm.push_str(".popsection\n");
    let mut rust = String::new();
    let mut first = Vec::new();
    let mut entries = 0;
    for lines in &texts {
        first.push(entries);
        entries += lines.len() + 1;
    }
    writeln!(rust, "/// Entries in `gen_insn_table`.\npub const INSN_TABLE_LEN: usize = {entries};").unwrap();
    writeln!(
        rust,
        "/// Where each block's entries start in `gen_insn_table`.\npub static FIRST: [usize; {}] = {first:?};",
        texts.len()
    )
    .unwrap();
    Generated { asm, texts, rust }
}
