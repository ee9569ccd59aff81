//! Tests of the x86_64 classifier, simulator and XOL rewrite: real encodings
//! (assembled once with GNU as from the instruction in the first column,
//! then checked in), the decoded fields of every simulated form, the
//! simulator's effect on registers and memory (and its faults), every reject
//! class, the RIP-relative rewrite's bytes and scratch choice, and property
//! tests that random bytes never panic and every rewrite decodes back to the
//! same instruction on the scratch register.

use super::*;
use crate::insn::{
    RejectReason,
    SimulatePolicy::{All, Branches},
};
use crate::registry::{ProbeKind, ProbeRegistry, ProbeSpec, RegisterError, SpaceId, Treatment};
use iced_x86::{Decoder, DecoderOptions, InstructionInfoFactory, Register};
use proptest::prelude::*;
use std::{string::ToString, vec, vec::Vec};

/// Parse `"48 8b 05"` into bytes.
fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace().map(|byte| u8::from_str_radix(byte, 16).expect("hex byte")).collect()
}

fn insn(text: &str) -> Insn {
    let bytes = hex(text);
    let insn = Insn::decode(&bytes).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(insn.len(), bytes.len(), "{text}: decoded length");
    insn
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// `nop`/`push`: simulated under `All`, stepped under `Branches`.
    Fast,
    /// A branch: simulated under both policies.
    Branch,
    /// Stepped as it is.
    Step,
    /// Stepped with the RIP-relative operand on this scratch register.
    Fix(Gpr),
    /// Stepped, and it pushes RFLAGS.
    Flags,
    Rej(Why),
}

/// The reject reasons, without their payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    EntersKernel,
    Privileged,
    Transactional,
    BranchSizePrefix,
    DelaysSingleStep,
    RipRelative,
    UnsimulatedBranch,
    Unallocated,
}

use Expect::*;
use Why::*;

fn why(reason: RejectReason) -> Option<Why> {
    Some(match reason {
        RejectReason::EntersKernel { .. } => EntersKernel,
        RejectReason::Privileged { .. } => Privileged,
        RejectReason::Transactional { .. } => Transactional,
        RejectReason::BranchSizePrefix { .. } => BranchSizePrefix,
        RejectReason::DelaysSingleStep { .. } => DelaysSingleStep,
        RejectReason::RipRelative { .. } => RipRelative,
        RejectReason::UnsimulatedBranch { .. } => UnsimulatedBranch,
        RejectReason::Unallocated => Unallocated,
        _ => return None,
    })
}

/// What `classify` + `xol_image` say, in the table's terms.
fn observe(insn: &Insn, policy: SimulatePolicy) -> Option<Expect> {
    Some(match classify_with(insn, policy) {
        Classification::Simulate(Simulation::Nop { .. } | Simulation::Push { .. }) => Fast,
        Classification::Simulate(_) => Branch,
        Classification::Reject(reason) => Rej(why(reason)?),
        Classification::Step => {
            let image = xol_image(insn);
            match image.fixup {
                StepFixup { rip_relative_scratch: Some(scratch), pushes_flags: false } => Fix(scratch),
                StepFixup { rip_relative_scratch: None, pushes_flags: true } => Flags,
                StepFixup { rip_relative_scratch: None, pushes_flags: false } => Step,
                StepFixup { .. } => return None,
            }
        }
    })
}

/// `as` (GNU binutils 2.40, `.intel_syntax noprefix`) assembled the first
/// column, one line at a time; the second is `objdump -d --insn-width=15`.
#[rustfmt::skip]
const ASSEMBLED: &[(&str, &str, Expect)] = &[
    ("nop"                                     , "90"                               , Fast),
    ("xchg ax, ax"                             , "66 90"                            , Fast),
    ("nop dword ptr [rax]"                     , "0f 1f 00"                         , Fast),
    ("nop dword ptr [rax+rax*1+0]"             , "0f 1f 04 00"                      , Fast),
    ("nop word ptr [rax+rax*1+0]"              , "66 0f 1f 04 00"                   , Fast),
    ("nop dword ptr [rax+0x100]"               , "0f 1f 80 00 01 00 00"             , Fast),
    ("nop dword ptr [rax+rax*1+0x100]"         , "0f 1f 84 00 00 01 00 00"          , Fast),
    ("nop word ptr [rax+rax*1+0x100]"          , "66 0f 1f 84 00 00 01 00 00"       , Fast),
    ("nop word ptr cs:[rax+rax*1+0x100]"       , "2e 66 0f 1f 84 00 00 01 00 00"    , Fast),
    ("nop qword ptr [rip+0x10]"                , "48 0f 1f 05 10 00 00 00"          , Fast),
    ("push rax"                                , "50"                               , Fast),
    ("push rsp"                                , "54"                               , Fast),
    ("push rbp"                                , "55"                               , Fast),
    ("push r8"                                 , "41 50"                            , Fast),
    ("push r15"                                , "41 57"                            , Fast),
    ("ret"                                     , "c3"                               , Branch),
    ("rep ret"                                 , "f3 c3"                            , Branch),
    ("bnd ret"                                 , "f2 c3"                            , Branch),
    ("call .+0x1000"                           , "e8 fb 0f 00 00"                   , Branch),
    ("call .-0x100000"                         , "e8 fb ff ef ff"                   , Branch),
    ("jmp .+2"                                 , "eb 00"                            , Branch),
    ("jmp .-0x7e"                              , "eb 80"                            , Branch),
    ("jmp .+0x12345"                           , "e9 40 23 01 00"                   , Branch),
    ("jmp .-0x7ffffff0"                        , "e9 0b 00 00 80"                   , Branch),
    ("jo .+0x10"                               , "70 0e"                            , Branch),
    ("jno .+0x10"                              , "71 0e"                            , Branch),
    ("jb .+0x10"                               , "72 0e"                            , Branch),
    ("jae .+0x10"                              , "73 0e"                            , Branch),
    ("je .+0x10"                               , "74 0e"                            , Branch),
    ("jne .+0x10"                              , "75 0e"                            , Branch),
    ("jbe .+0x10"                              , "76 0e"                            , Branch),
    ("ja .+0x10"                               , "77 0e"                            , Branch),
    ("js .+0x10"                               , "78 0e"                            , Branch),
    ("jns .+0x10"                              , "79 0e"                            , Branch),
    ("jp .+0x10"                               , "7a 0e"                            , Branch),
    ("jnp .+0x10"                              , "7b 0e"                            , Branch),
    ("jl .+0x10"                               , "7c 0e"                            , Branch),
    ("jge .+0x10"                              , "7d 0e"                            , Branch),
    ("jle .+0x10"                              , "7e 0e"                            , Branch),
    ("jg .+0x10"                               , "7f 0e"                            , Branch),
    ("jo .+0x1000"                             , "0f 80 fa 0f 00 00"                , Branch),
    ("jne .-0x1000"                            , "0f 85 fa ef ff ff"                , Branch),
    ("jg .+0x7ffffff0"                         , "0f 8f ea ff ff 7f"                , Branch),
    ("bnd jmp .+0x1000"                        , "f2 e9 fa 0f 00 00"                , Branch),
    ("mov rax, rbx"                            , "48 89 d8"                         , Step),
    ("add rax, 1"                              , "48 83 c0 01"                      , Step),
    ("lea rax, [rbx+8]"                        , "48 8d 43 08"                      , Step),
    ("push 1"                                  , "6a 01"                            , Step),
    ("push 0x12345678"                         , "68 78 56 34 12"                   , Step),
    ("push qword ptr [rax]"                    , "ff 30"                            , Step),
    ("pop rbx"                                 , "5b"                               , Step),
    ("pushfq"                                  , "9c"                               , Flags),
    ("pushw 1"                                 , "66 6a 01"                         , Step),
    ("popfq"                                   , "9d"                               , Step),
    ("rep movsb"                               , "f3 a4"                            , Step),
    ("rep stosq"                               , "f3 48 ab"                         , Step),
    ("rep stosb"                               , "f3 aa"                            , Step),
    ("cpuid"                                   , "0f a2"                            , Step),
    ("rdtsc"                                   , "0f 31"                            , Step),
    ("xchg r8d, eax"                           , "41 90"                            , Step),
    ("pause"                                   , "f3 90"                            , Step),
    ("endbr64"                                 , "f3 0f 1e fa"                      , Step),
    ("mov ds, ax"                              , "8e d8"                            , Step),
    ("cmovne rax, rbx"                         , "48 0f 45 c3"                      , Step),
    ("setz al"                                 , "0f 94 c0"                         , Step),
    ("movabs rax, 0x1122334455667788"          , "48 b8 88 77 66 55 44 33 22 11"    , Step),
    ("mov rax, qword ptr [rsp+8]"              , "48 8b 44 24 08"                   , Step),
    ("mov qword ptr [rax+rbx*8+0x10], rcx"     , "48 89 4c d8 10"                   , Step),
    ("mov rax, qword ptr [0x1000]"             , "48 8b 04 25 00 10 00 00"          , Step),
    ("mov rax, qword ptr [rip+0x100]"          , "48 8b 05 00 01 00 00"             , Fix(Gpr::Rcx)),
    ("mov r8, qword ptr [rip+0x100]"           , "4c 8b 05 00 01 00 00"             , Fix(Gpr::Rax)),
    ("lea rcx, [rip-0x2000]"                   , "48 8d 0d 00 e0 ff ff"             , Fix(Gpr::Rax)),
    ("lea rax, [rip+0x10]"                     , "48 8d 05 10 00 00 00"             , Fix(Gpr::Rcx)),
    ("cmpxchg qword ptr [rip+0x10], rcx"       , "48 0f b1 0d 10 00 00 00"          , Fix(Gpr::Rdx)),
    ("mov byte ptr [rip+0x10], 1"              , "c6 05 10 00 00 00 01"             , Fix(Gpr::Rax)),
    ("add qword ptr [rip+0x10], 0x12345678"    , "48 81 05 10 00 00 00 78 56 34 12" , Fix(Gpr::Rax)),
    ("lock add qword ptr [rip+0x10], 1"        , "f0 48 83 05 10 00 00 00 01"       , Fix(Gpr::Rax)),
    ("imul rax, qword ptr [rip+0x40], 0x12345" , "48 69 05 40 00 00 00 45 23 01 00" , Fix(Gpr::Rcx)),
    ("xchg qword ptr [rip+0x40], rax"          , "48 87 05 40 00 00 00"             , Fix(Gpr::Rcx)),
    ("prefetcht0 byte ptr [rip+0x40]"          , "0f 18 0d 40 00 00 00"             , Fix(Gpr::Rax)),
    ("push qword ptr [rip+0x40]"               , "ff 35 40 00 00 00"                , Fix(Gpr::Rax)),
    ("mul qword ptr [rip+0x40]"                , "48 f7 25 40 00 00 00"             , Fix(Gpr::Rcx)),
    ("div qword ptr [rip+0x40]"                , "48 f7 35 40 00 00 00"             , Fix(Gpr::Rcx)),
    ("cmpxchg16b xmmword ptr [rip+0x40]"       , "48 0f c7 0d 40 00 00 00"          , Fix(Gpr::Rsi)),
    ("xsave [rip+0x40]"                        , "0f ae 25 40 00 00 00"             , Fix(Gpr::Rcx)),
    ("shl qword ptr [rip+0x40], cl"            , "48 d3 25 40 00 00 00"             , Fix(Gpr::Rax)),
    ("shlx rax, qword ptr [rip+0x40], rbx"     , "c4 e2 e1 f7 05 40 00 00 00"       , Fix(Gpr::Rcx)),
    ("andn rax, rbx, qword ptr [rip+0x40]"     , "c4 e2 e0 f2 05 40 00 00 00"       , Fix(Gpr::Rcx)),
    ("mulx rax, rbx, qword ptr [rip+0x40]"     , "c4 e2 e3 f6 05 40 00 00 00"       , Fix(Gpr::Rcx)),
    ("vmovdqu xmm0, xmmword ptr [rip+0x40]"    , "c5 fa 6f 05 40 00 00 00"          , Fix(Gpr::Rax)),
    ("mov eax, dword ptr [eip+0x40]"           , "67 8b 05 40 00 00 00"             , Fix(Gpr::Rcx)),
    ("mov rax, qword ptr fs:[rip+0x40]"        , "64 48 8b 05 40 00 00 00"          , Fix(Gpr::Rcx)),
    ("movzx eax, word ptr [rip+0x40]"          , "0f b7 05 40 00 00 00"             , Fix(Gpr::Rcx)),
    ("vmovdqu64 zmm0, zmmword ptr [rip+0x40]"  , "62 f1 fe 48 6f 05 40 00 00 00"    , Rej(RipRelative)),
    ("mov ss, ax"                              , "8e d0"                            , Rej(DelaysSingleStep)),
    ("int3"                                    , "cc"                               , Rej(EntersKernel)),
    ("int 0x80"                                , "cd 80"                            , Rej(EntersKernel)),
    ("int1"                                    , "f1"                               , Rej(EntersKernel)),
    ("syscall"                                 , "0f 05"                            , Rej(EntersKernel)),
    ("sysenter"                                , "0f 34"                            , Rej(EntersKernel)),
    ("sysexitq"                                , "48 0f 35"                         , Rej(EntersKernel)),
    ("sysretq"                                 , "48 0f 07"                         , Rej(EntersKernel)),
    ("iretq"                                   , "48 cf"                            , Rej(EntersKernel)),
    ("iretd"                                   , "cf"                               , Rej(EntersKernel)),
    ("vmcall"                                  , "0f 01 c1"                         , Rej(EntersKernel)),
    ("hlt"                                     , "f4"                               , Rej(Privileged)),
    ("cli"                                     , "fa"                               , Rej(Privileged)),
    ("sti"                                     , "fb"                               , Rej(Privileged)),
    ("in al, dx"                               , "ec"                               , Rej(Privileged)),
    ("out dx, al"                              , "ee"                               , Rej(Privileged)),
    ("mov cr3, rax"                            , "0f 22 d8"                         , Rej(Privileged)),
    ("mov rax, dr7"                            , "0f 21 f8"                         , Rej(Privileged)),
    ("lgdt [rax]"                              , "0f 01 10"                         , Rej(Privileged)),
    ("wrmsr"                                   , "0f 30"                            , Rej(Privileged)),
    ("swapgs"                                  , "0f 01 f8"                         , Rej(Privileged)),
    ("ud2"                                     , "0f 0b"                            , Rej(Unallocated)),
    ("ud1 eax, dword ptr [rax]"                , "0f b9 00"                         , Rej(Unallocated)),
    ("ud0 eax, dword ptr [rax]"                , "0f ff 00"                         , Rej(Unallocated)),
    ("call rax"                                , "ff d0"                            , Rej(UnsimulatedBranch)),
    ("call qword ptr [rax]"                    , "ff 10"                            , Rej(UnsimulatedBranch)),
    ("call qword ptr [rip+0x100]"              , "ff 15 00 01 00 00"                , Rej(UnsimulatedBranch)),
    ("jmp rax"                                 , "ff e0"                            , Rej(UnsimulatedBranch)),
    ("jmp qword ptr [rip+0x100]"               , "ff 25 00 01 00 00"                , Rej(UnsimulatedBranch)),
    ("jmp fword ptr [rax]"                     , "ff 28"                            , Rej(UnsimulatedBranch)),
    ("call fword ptr [rax]"                    , "ff 18"                            , Rej(UnsimulatedBranch)),
    ("retf"                                    , "cb"                               , Rej(UnsimulatedBranch)),
    ("ret 8"                                   , "c2 08 00"                         , Rej(UnsimulatedBranch)),
    ("loop .+0x10"                             , "e2 0e"                            , Rej(UnsimulatedBranch)),
    ("loope .+0x10"                            , "e1 0e"                            , Rej(UnsimulatedBranch)),
    ("loopne .+0x10"                           , "e0 0e"                            , Rej(UnsimulatedBranch)),
    ("jrcxz .+0x10"                            , "e3 0e"                            , Rej(UnsimulatedBranch)),
    ("jecxz .+0x10"                            , "67 e3 0d"                         , Rej(UnsimulatedBranch)),
    ("xbegin .+0x100"                          , "c7 f8 fa 00 00 00"                , Rej(Transactional)),
    ("xabort 1"                                , "c6 f8 01"                         , Rej(Transactional)),
    ("xend"                                    , "0f 01 d5"                         , Rej(Transactional)),
];

/// Encoded by hand from the Intel SDM (the recommended multi-byte NOPs of
/// vol. 2B, NOP; prefixes of vol. 2A, 2.1): forms an assembler does not
/// emit from plain source. `objdump -d` agreed with the comment on each.
#[rustfmt::skip]
const HAND_ENCODED: &[(&str, &str, Expect)] = &[
    ("nop, 4 bytes"                            , "0f 1f 40 00"                      , Fast),
    ("nop, 5 bytes"                            , "0f 1f 44 00 00"                   , Fast),
    ("nop, 6 bytes"                            , "66 0f 1f 44 00 00"                , Fast),
    ("nop, 7 bytes"                            , "0f 1f 80 00 00 00 00"             , Fast),
    ("nop, 8 bytes"                            , "0f 1f 84 00 00 00 00 00"          , Fast),
    ("nop, 9 bytes"                            , "66 0f 1f 84 00 00 00 00 00"       , Fast),
    ("cs nopw, 10 bytes"                       , "66 2e 0f 1f 84 00 00 00 00 00"    , Fast),
    ("data16 cs nopw, 11 bytes"                , "66 66 2e 0f 1f 84 00 00 00 00 00" , Fast),
    ("5x data16 cs nopw, 15 bytes"             , "66 66 66 66 66 66 2e 0f 1f 84 00 00 00 00 00", Fast),
    ("data16 xchg ax, ax"                      , "66 66 90"                         , Fast),
    ("rex.W nop"                               , "48 90"                            , Fast),
    ("nop dword ptr [r8+0x0]"                  , "41 0f 1f 40 00"                   , Fast),
    ("nop word ptr [rip+0x0]"                  , "66 0f 1f 05 00 00 00 00"          , Fast),
    ("rex.W push rax"                          , "48 50"                            , Fast),
    ("xchg r8, rax (REX.B 90 is no nop)"       , "49 90"                            , Step),
    ("push ax"                                 , "66 50"                            , Step),
    ("push r8w"                                , "66 41 50"                         , Step),
    ("data16 rex.W push rax"                   , "66 48 50"                         , Step),
    ("ds je (branch hint)"                     , "3e 74 00"                         , Branch),
    ("cs jne (branch hint)"                    , "2e 75 00"                         , Branch),
    ("rex.W jmp rel32"                         , "48 e9 00 00 00 00"                , Branch),
    ("data16 call"                             , "66 e8 00 00 00 00"                , Rej(BranchSizePrefix)),
    ("addr32 call"                             , "67 e8 00 00 00 00"                , Rej(BranchSizePrefix)),
    ("data16 ret"                              , "66 c3"                            , Rej(BranchSizePrefix)),
    ("data16 jmp rel8"                         , "66 eb 00"                         , Rej(BranchSizePrefix)),
    ("addr32 jmp rel8"                         , "67 eb 00"                         , Rej(BranchSizePrefix)),
    ("data16 je rel32"                         , "66 0f 84 00 00 00 00"             , Rej(BranchSizePrefix)),
    ("addr32 je rel8"                          , "67 74 00"                         , Rej(BranchSizePrefix)),
    ("sysexit"                                 , "0f 35"                            , Rej(EntersKernel)),
    ("vmmcall"                                 , "0f 01 d9"                         , Rej(EntersKernel)),
    ("mov rax, [rip+0x40] with REX.B"          , "49 8b 05 40 00 00 00"             , Fix(Gpr::Rcx)),
    ("push qword ptr [rip+0x40] with REX.B"    , "41 ff 35 40 00 00 00"             , Fix(Gpr::Rax)),
    ("mulx rax, rbx, [rip+0x40] with VEX.B"    , "c4 c2 e3 f6 05 40 00 00 00"       , Fix(Gpr::Rcx)),
    ("prefetchw byte ptr [rip+0x40]"           , "0f 0d 0d 40 00 00 00"             , Fix(Gpr::Rax)),
    ("data16 pushf"                            , "66 9c"                            , Flags),
];

#[test]
fn every_table_row_classifies_as_expected() {
    let mut failures = Vec::new();
    for &(text, bytes, expect) in ASSEMBLED.iter().chain(HAND_ENCODED) {
        let insn = insn(bytes);
        let all = observe(&insn, All);
        if all != Some(expect) {
            failures
                .push(std::format!("{text} ({bytes}) under All: want {expect:?}, got {all:?} = {:?}", classify(&insn)));
        }
        // Under Branches nop and push are stepped; everything else is the same.
        let want = match expect {
            Fast if text.contains("rip") => Fix(Gpr::Rax),
            Fast => Step,
            other => other,
        };
        let branches = observe(&insn, Branches);
        if branches != Some(want) {
            failures.push(std::format!("{text} ({bytes}) under Branches: want {want:?}, got {branches:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn simulated_forms_carry_their_fields() {
    use Condition as C;
    let rows: &[(&str, Simulation)] = &[
        ("90", Simulation::Nop { len: 1 }),
        ("66 66 66 66 66 66 2e 0f 1f 84 00 00 00 00 00", Simulation::Nop { len: 15 }),
        ("54", Simulation::Push { reg: Gpr::Rsp, len: 1 }),
        ("55", Simulation::Push { reg: Gpr::Rbp, len: 1 }),
        ("41 50", Simulation::Push { reg: Gpr::R8, len: 2 }),
        ("41 57", Simulation::Push { reg: Gpr::R15, len: 2 }),
        ("48 50", Simulation::Push { reg: Gpr::Rax, len: 2 }),
        ("c3", Simulation::Ret),
        ("f3 c3", Simulation::Ret),
        ("e8 fb 0f 00 00", Simulation::Call { offset: 0x1000, len: 5 }),
        ("e8 fb ff ef ff", Simulation::Call { offset: -0x10_0000, len: 5 }),
        ("eb 00", Simulation::Jmp { offset: 2 }),
        ("eb 80", Simulation::Jmp { offset: -0x7e }),
        ("e9 40 23 01 00", Simulation::Jmp { offset: 0x12345 }),
        ("e9 0b 00 00 80", Simulation::Jmp { offset: -0x7fff_fff0 }),
        ("f2 e9 fa 0f 00 00", Simulation::Jmp { offset: 0x1000 }),
        ("75 0e", Simulation::Jcc { condition: C::Ne, offset: 0x10, len: 2 }),
        ("0f 80 fa 0f 00 00", Simulation::Jcc { condition: C::O, offset: 0x1000, len: 6 }),
        ("0f 85 fa ef ff ff", Simulation::Jcc { condition: C::Ne, offset: -0x1000, len: 6 }),
        ("0f 8f ea ff ff 7f", Simulation::Jcc { condition: C::G, offset: 0x7fff_fff0, len: 6 }),
    ];
    for &(bytes, want) in rows {
        assert_eq!(classify(&insn(bytes)), Classification::Simulate(want), "{bytes}");
    }
}

#[test]
fn every_jcc_names_its_condition_like_the_assembler() {
    for cc in 0..16u8 {
        let (text, bytes, _) = ASSEMBLED.iter().find(|row| hex(row.1) == [0x70 + cc, 0x0e]).unwrap();
        let Classification::Simulate(simulation) = classify(&insn(bytes)) else { panic!("{text}") };
        assert_eq!(simulation.mnemonic(), text.split(' ').next().unwrap());
        assert_eq!(simulation, Simulation::Jcc { condition: Condition::from_bits(cc), offset: 0x10, len: 2 });
        assert_eq!(Condition::from_bits(cc).bits(), cc);
    }
}

#[test]
fn mnemonics_and_reasons_read_right() {
    let simulation = |bytes: &str| match classify(&insn(bytes)) {
        Classification::Simulate(simulation) => simulation,
        other => panic!("{bytes}: {other:?}"),
    };
    assert_eq!(simulation("66 90").mnemonic(), "nop");
    assert_eq!(simulation("41 57").mnemonic(), "push");
    assert_eq!(simulation("c3").mnemonic(), "ret");
    assert_eq!(simulation("e8 00 00 00 00").mnemonic(), "call");
    assert_eq!(simulation("eb 00").mnemonic(), "jmp");
    assert_eq!(simulation("0f 8e 00 00 00 00").mnemonic(), "jle");
    assert!(simulation("e8 00 00 00 00").why().contains("pushes its own address"));
    let reason = |bytes: &str| match classify(&insn(bytes)) {
        Classification::Reject(reason) => reason.to_string(),
        other => panic!("{bytes}: {other:?}"),
    };
    assert_eq!(reason("cc"), "int3 enters the kernel or returns from an interrupt");
    assert_eq!(reason("0f 05"), "syscall enters the kernel or returns from an interrupt");
    assert_eq!(reason("48 cf"), "iretq enters the kernel or returns from an interrupt");
    assert_eq!(reason("f4"), "hlt is privileged: in user mode it faults");
    assert_eq!(reason("0f 22 d8"), "mov to or from a control register is privileged: in user mode it faults");
    assert_eq!(reason("0f 01 d5"), "xend is a TSX instruction: the debug exception of a step aborts the transaction");
    assert_eq!(
        reason("66 e8 00 00 00 00"),
        "call has a 0x66/0x67 size prefix, whose effect on a branch differs between Intel and AMD"
    );
    assert_eq!(reason("8e d0"), "mov ss delays the single-step trap past the next instruction");
    assert_eq!(
        reason("62 f1 fe 48 6f 05 40 00 00 00"),
        "its RIP-relative operand cannot be moved to an XOL slot: EVEX-encoded instructions are not rewritten"
    );
    assert_eq!(
        reason("ff d0"),
        "indirect call is a branch the simulator does not handle, and a branch cannot be stepped"
    );
    assert_eq!(reason("ff 28"), "far jmp is a branch the simulator does not handle, and a branch cannot be stepped");
    assert_eq!(
        reason("c2 08 00"),
        "ret imm16 is a branch the simulator does not handle, and a branch cannot be stepped"
    );
    assert_eq!(reason("e3 0e"), "jrcxz is a branch the simulator does not handle, and a branch cannot be stepped");
    assert_eq!(reason("0f 0b"), "unallocated encoding");
}

#[test]
fn nops_of_every_length_decode_whole() {
    let sdm = [
        "90",
        "66 90",
        "0f 1f 00",
        "0f 1f 40 00",
        "0f 1f 44 00 00",
        "66 0f 1f 44 00 00",
        "0f 1f 80 00 00 00 00",
        "0f 1f 84 00 00 00 00 00",
        "66 0f 1f 84 00 00 00 00 00",
    ];
    for (i, bytes) in sdm.iter().enumerate() {
        // Followed by other bytes, as in a text: the length is the nop's.
        let mut text = hex(bytes);
        text.extend_from_slice(&[0xc3, 0xcc, 0x90]);
        let nop = Insn::decode(&text).unwrap();
        assert_eq!(nop.len(), i + 1);
        assert_eq!(classify(&nop), Classification::Simulate(Simulation::Nop { len: i as u8 + 1 }));
    }
    // Longer ones: 66 prefixes in front of `cs nopw`, up to the 15-byte limit.
    for len in 10..=15 {
        let mut bytes = vec![0x66; len - 9];
        bytes.extend_from_slice(&hex("2e 0f 1f 84 00 00 00 00 00"));
        let nop = Insn::decode(&bytes).unwrap();
        assert_eq!((nop.len(), nop.bytes()), (len, &bytes[..]));
        assert_eq!(classify(&nop), Classification::Simulate(Simulation::Nop { len: len as u8 }));
    }
    // One more prefix is one byte too many.
    let mut too_long = vec![0x66; 7];
    too_long.extend_from_slice(&hex("2e 0f 1f 84 00 00 00 00 00"));
    assert_eq!(Insn::decode(&too_long), Err(DecodeError::Invalid));
}

#[test]
fn rex_b_90_is_xchg_not_nop() {
    for bytes in ["41 90", "49 90"] {
        assert_eq!(classify(&insn(bytes)), Classification::Step, "{bytes}");
    }
    assert_eq!(classify(&insn("48 90")), Classification::Simulate(Simulation::Nop { len: 2 }));
}

#[test]
fn decode_errors_say_why() {
    assert_eq!(Insn::decode(&[]), Err(DecodeError::Truncated { available: 0 }));
    assert_eq!(Insn::decode(&hex("48")), Err(DecodeError::Truncated { available: 1 }));
    assert_eq!(Insn::decode(&hex("e8 00 00")), Err(DecodeError::Truncated { available: 3 }));
    assert_eq!(Insn::decode(&hex("48 8b 05 00 01")), Err(DecodeError::Truncated { available: 5 }));
    // Valid in 32-bit mode only.
    assert_eq!(Insn::decode(&hex("06 90 90 90")), Err(DecodeError::Invalid));
    assert_eq!(Insn::decode(&hex("ce 90 90 90")), Err(DecodeError::Invalid));
    // A lock prefix on an instruction that does not write memory.
    assert_eq!(Insn::decode(&hex("f0 90 90 90")), Err(DecodeError::Invalid));
    // Fifteen prefixes and no opcode: too long, not cut short.
    assert_eq!(Insn::decode(&[0x66; 15]), Err(DecodeError::Invalid));
    assert_eq!(Insn::decode(&[0x66; 20]), Err(DecodeError::Invalid));
    assert_eq!(
        DecodeError::Truncated { available: 3 }.to_string(),
        "instruction cut short: it goes on past the 3 readable bytes"
    );
    assert_eq!(DecodeError::Invalid.to_string(), "not a valid x86_64 instruction");
    // Only the first instruction is taken.
    let first = Insn::decode(&hex("55 48 89 e5")).unwrap();
    assert_eq!(first.bytes(), [0x55]);
    assert!(!first.is_empty());
    assert_eq!(std::format!("{:?}", insn("48 8b 05 10 00 00 00")), "Insn(48 8b 05 10 00 00 00)");
}

#[test]
fn the_breakpoint_is_int3() {
    let int3 = X86_64::breakpoint(0x1234);
    assert_eq!(int3.bytes(), [INT3]);
    assert_eq!(int3, insn("cc"));
    assert_eq!(X86_64::breakpoint_immediate(int3), Some(0));
    assert_eq!(X86_64::breakpoint_immediate(insn("90")), None);
    assert_eq!(X86_64::breakpoint_immediate(insn("cd 03")), None);
    assert!(X86_64::classify(int3, All).is_reject());
    assert_eq!(<X86_64 as Arch>::XOL_SLOT_BYTES, 16);
    assert_eq!(<X86_64 as Arch>::INSN_ALIGN, 1);
    assert_eq!(<X86_64 as Arch>::NAME, "x86_64");
}

// ---- the simulator ----

/// A trap frame.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Frame {
    gpr: [u64; 16],
    rip: u64,
    rflags: u64,
}

impl Frame {
    fn new() -> Frame {
        let mut gpr = [0; 16];
        for (i, value) in gpr.iter_mut().enumerate() {
            *value = 0x0101_0101_0000_0000 * (i as u64 + 1) + i as u64;
        }
        gpr[Gpr::Rsp as usize] = STACK_TOP;
        Frame { gpr, rip: 0xdead, rflags: 0x202 }
    }
}

impl Registers for Frame {
    fn gpr(&self, reg: Gpr) -> u64 {
        self.gpr[reg as usize]
    }
    fn set_gpr(&mut self, reg: Gpr, value: u64) {
        self.gpr[reg as usize] = value;
    }
    fn rip(&self) -> u64 {
        self.rip
    }
    fn set_rip(&mut self, value: u64) {
        self.rip = value;
    }
    fn rflags(&self) -> u64 {
        self.rflags
    }
}

const STACK_BASE: u64 = 0x7f_0000_0000;
const STACK_BYTES: usize = 0x100;
const STACK_TOP: u64 = STACK_BASE + 0x80;
const PC: u64 = 0x40_0000_1000;

/// One mapped window of user memory; everything else faults.
struct Memory {
    bytes: Vec<u8>,
    writable: bool,
}

impl Memory {
    fn new() -> Memory {
        Memory { bytes: (0..STACK_BYTES).map(|i| i as u8).collect(), writable: true }
    }

    fn index(&self, addr: u64, len: usize, write: bool) -> Result<usize, SimulationFault> {
        let fault = SimulationFault::UserAccess { addr, write };
        let start = addr.checked_sub(STACK_BASE).ok_or(fault)? as usize;
        if start + len > self.bytes.len() || (write && !self.writable) {
            return Err(fault);
        }
        Ok(start)
    }

    fn quad(&self, addr: u64) -> u64 {
        let i = self.index(addr, 8, false).unwrap();
        u64::from_le_bytes(self.bytes[i..i + 8].try_into().unwrap())
    }

    fn set_quad(&mut self, addr: u64, value: u64) {
        let i = self.index(addr, 8, false).unwrap();
        self.bytes[i..i + 8].copy_from_slice(&value.to_le_bytes());
    }
}

impl UserMemory for Memory {
    fn read_u32(&mut self, addr: u64) -> Result<u32, SimulationFault> {
        let i = self.index(addr, 4, false)?;
        Ok(u32::from_le_bytes(self.bytes[i..i + 4].try_into().unwrap()))
    }
    fn read_u64(&mut self, addr: u64) -> Result<u64, SimulationFault> {
        let i = self.index(addr, 8, false)?;
        Ok(u64::from_le_bytes(self.bytes[i..i + 8].try_into().unwrap()))
    }
    fn write_u64(&mut self, addr: u64, value: u64) -> Result<(), SimulationFault> {
        let i = self.index(addr, 8, true)?;
        self.bytes[i..i + 8].copy_from_slice(&value.to_le_bytes());
        Ok(())
    }
}

fn simulation_of(bytes: &str) -> Simulation {
    match classify(&insn(bytes)) {
        Classification::Simulate(simulation) => simulation,
        other => panic!("{bytes}: {other:?}"),
    }
}

/// Run through the `Arch` entry point, as the kernel does.
fn run(bytes: &str, pc: u64, frame: &mut Frame, mem: &mut Memory) -> Result<(), SimulationFault> {
    X86_64::simulate(&simulation_of(bytes), pc, frame, mem)
}

#[test]
fn nop_moves_rip_only() {
    for (bytes, len) in [("90", 1), ("66 0f 1f 44 00 00", 6), ("48 0f 1f 05 10 00 00 00", 8)] {
        let (mut frame, mut mem) = (Frame::new(), Memory::new());
        let before = (frame.clone(), mem.bytes.clone());
        run(bytes, PC, &mut frame, &mut mem).unwrap();
        assert_eq!(frame, Frame { rip: PC + len, ..before.0 });
        assert_eq!(mem.bytes, before.1);
    }
}

#[test]
fn push_stores_the_register_below_rsp() {
    for (bytes, reg, len) in [("50", Gpr::Rax, 1), ("55", Gpr::Rbp, 1), ("41 50", Gpr::R8, 2), ("41 57", Gpr::R15, 2)] {
        let (mut frame, mut mem) = (Frame::new(), Memory::new());
        let before = frame.clone();
        run(bytes, PC, &mut frame, &mut mem).unwrap();
        assert_eq!(mem.quad(STACK_TOP - 8), before.gpr(reg), "{bytes}");
        let mut want = before;
        want.gpr[Gpr::Rsp as usize] = STACK_TOP - 8;
        want.rip = PC + len;
        assert_eq!(frame, want, "{bytes}");
    }
}

#[test]
fn push_rsp_stores_the_old_rsp() {
    let (mut frame, mut mem) = (Frame::new(), Memory::new());
    run("54", PC, &mut frame, &mut mem).unwrap();
    assert_eq!(mem.quad(STACK_TOP - 8), STACK_TOP);
    assert_eq!(frame.gpr(Gpr::Rsp), STACK_TOP - 8);
}

#[test]
fn push_works_unaligned() {
    // x86 has no stack alignment fault (alignment checking is off).
    let (mut frame, mut mem) = (Frame::new(), Memory::new());
    frame.gpr[Gpr::Rsp as usize] = STACK_TOP - 3;
    run("53", PC, &mut frame, &mut mem).unwrap();
    assert_eq!(mem.quad(STACK_TOP - 11), frame.gpr(Gpr::Rbx));
}

#[test]
fn ret_pops_the_return_address() {
    for bytes in ["c3", "f3 c3", "f2 c3"] {
        let (mut frame, mut mem) = (Frame::new(), Memory::new());
        mem.set_quad(STACK_TOP, 0x40_0000_2345);
        let mut want = frame.clone();
        run(bytes, PC, &mut frame, &mut mem).unwrap();
        want.gpr[Gpr::Rsp as usize] = STACK_TOP + 8;
        want.rip = 0x40_0000_2345;
        assert_eq!(frame, want, "{bytes}");
    }
}

#[test]
fn call_pushes_the_next_address_and_jumps() {
    let (mut frame, mut mem) = (Frame::new(), Memory::new());
    let mut want = frame.clone();
    run("e8 fb 0f 00 00", PC, &mut frame, &mut mem).unwrap();
    assert_eq!(mem.quad(STACK_TOP - 8), PC + 5);
    want.gpr[Gpr::Rsp as usize] = STACK_TOP - 8;
    want.rip = PC + 0x1000;
    assert_eq!(frame, want);
    // Backwards.
    let (mut frame, mut mem) = (Frame::new(), Memory::new());
    run("e8 fb ff ef ff", PC, &mut frame, &mut mem).unwrap();
    assert_eq!(frame.rip, PC - 0x10_0000);
}

#[test]
fn jmp_goes_relative_to_the_probed_address() {
    for (bytes, target) in [
        ("eb 00", PC + 2),
        ("eb 80", PC - 0x7e),
        ("e9 40 23 01 00", PC + 0x12345),
        ("e9 0b 00 00 80", PC - 0x7fff_fff0),
        ("f2 e9 fa 0f 00 00", PC + 0x1000),
    ] {
        let (mut frame, mut mem) = (Frame::new(), Memory::new());
        let want = Frame { rip: target, ..frame.clone() };
        run(bytes, PC, &mut frame, &mut mem).unwrap();
        assert_eq!(frame, want, "{bytes}");
    }
}

/// The conditions as the SDM's `Jcc` table states them, by mnemonic.
fn reference(mnemonic: &str, rflags: u64) -> bool {
    let [cf, pf, zf, sf, of] = [RFLAGS_CF, RFLAGS_PF, RFLAGS_ZF, RFLAGS_SF, RFLAGS_OF].map(|flag| rflags & flag != 0);
    match mnemonic {
        "jo" => of,
        "jno" => !of,
        "jb" => cf,
        "jae" => !cf,
        "je" => zf,
        "jne" => !zf,
        "jbe" => cf || zf,
        "ja" => !cf && !zf,
        "js" => sf,
        "jns" => !sf,
        "jp" => pf,
        "jnp" => !pf,
        "jl" => sf != of,
        "jge" => sf == of,
        "jle" => zf || sf != of,
        "jg" => !zf && sf == of,
        _ => panic!("{mnemonic}"),
    }
}

#[test]
fn jcc_follows_every_condition_on_every_flag_combination() {
    let flags = [RFLAGS_CF, RFLAGS_PF, RFLAGS_ZF, RFLAGS_SF, RFLAGS_OF];
    for cc in 0..16u8 {
        // Both encodings: 70+cc rel8 and 0F 80+cc rel32.
        for (bytes, len, offset) in [
            (std::format!("{:02x} 10", 0x70 + cc), 2, 0x12),
            (std::format!("0f {:02x} 00 01 00 00", 0x80 + cc), 6, 0x106),
        ] {
            let text = ASSEMBLED.iter().find(|row| hex(row.1) == [0x70 + cc, 0x0e]).unwrap().0;
            let mnemonic = text.split(' ').next().unwrap();
            for combination in 0..32u32 {
                let mut rflags = 0x202 | RFLAGS_TF;
                for (bit, flag) in flags.iter().enumerate() {
                    if combination >> bit & 1 == 1 {
                        rflags |= flag;
                    }
                }
                let (mut frame, mut mem) = (Frame::new(), Memory::new());
                frame.rflags = rflags;
                let want =
                    Frame { rip: if reference(mnemonic, rflags) { PC + offset } else { PC + len }, ..frame.clone() };
                run(&bytes, PC, &mut frame, &mut mem).unwrap();
                assert_eq!(frame, want, "{mnemonic} ({bytes}) with rflags {rflags:#x}");
            }
        }
    }
}

/// The decision a trace prints says what the simulator did, with the flags
/// that decided it, for every condition on every flag combination.
#[test]
fn jcc_decisions_agree_with_the_simulator_and_name_the_flags_the_rule_reads() {
    let flags = [RFLAGS_CF, RFLAGS_PF, RFLAGS_ZF, RFLAGS_SF, RFLAGS_OF];
    for cc in 0..16u8 {
        let bytes = std::format!("{:02x} 10", 0x70 + cc);
        let insn = Insn::decode(&hex(&bytes)).unwrap();
        let Classification::Simulate(simulation) = classify(&insn) else { panic!("{bytes} is not simulated") };
        for combination in 0..32u32 {
            let mut frame = Frame::new();
            for (bit, flag) in flags.iter().enumerate() {
                if combination >> bit & 1 == 1 {
                    frame.rflags |= flag;
                }
            }
            let decision = branch_decision(&simulation, &frame).expect("a jcc");
            run(&bytes, PC, &mut frame, &mut Memory::new()).unwrap();
            assert_eq!(decision.taken, frame.rip == PC + 0x12, "{bytes} with rflags {:#x}", frame.rflags);
            let text = decision.to_string();
            for flag in ["CF", "PF", "ZF", "SF", "OF"] {
                assert_eq!(
                    text.contains(&std::format!(" {flag}=")),
                    decision.condition.rule().contains(flag),
                    "{text}"
                );
            }
        }
    }
}

#[test]
fn a_jcc_decision_reads_like_the_rule() {
    let insn = Insn::decode(&hex("7f 10")).unwrap();
    let Classification::Simulate(simulation) = classify(&insn) else { panic!("jg is simulated") };
    let mut frame = Frame::new();
    frame.rflags = 0x202 | RFLAGS_SF | RFLAGS_OF;
    assert_eq!(
        branch_decision(&simulation, &frame).unwrap().to_string(),
        "jg taken: ZF=0 SF=1 OF=1 (RFLAGS=0xa82; jg: ZF=0 and SF=OF)"
    );
    frame.rflags |= RFLAGS_ZF;
    assert_eq!(
        branch_decision(&simulation, &frame).unwrap().to_string(),
        "jg not taken: ZF=1 SF=1 OF=1 (RFLAGS=0xac2; jg: ZF=0 and SF=OF)"
    );
    let Classification::Simulate(nop) = classify(&Insn::decode(&[0x90]).unwrap()) else { panic!("nop") };
    assert_eq!(branch_decision(&nop, &frame), None);
}

#[test]
fn faults_leave_the_registers_as_they_were() {
    let unmapped = STACK_BASE - 0x1000;
    let non_canonical = 0x8000_0000_0000_0000u64;
    let top_of_user = 0x7fff_ffff_fff0u64;
    let cases: &[(&str, &str, u64, SimulationFault)] = &[
        ("push, stack unmapped", "55", unmapped, SimulationFault::UserAccess { addr: unmapped - 8, write: true }),
        (
            "call, stack unmapped",
            "e8 00 00 00 00",
            unmapped,
            SimulationFault::UserAccess { addr: unmapped - 8, write: true },
        ),
        ("ret, stack unmapped", "c3", unmapped, SimulationFault::UserAccess { addr: unmapped, write: false }),
        (
            "ret to a non-canonical address",
            "c3",
            STACK_TOP,
            SimulationFault::UserAccess { addr: non_canonical, write: false },
        ),
    ];
    for &(what, bytes, rsp, fault) in cases {
        let (mut frame, mut mem) = (Frame::new(), Memory::new());
        frame.gpr[Gpr::Rsp as usize] = rsp;
        mem.set_quad(STACK_TOP, non_canonical);
        let (before, memory_before) = (frame.clone(), mem.bytes.clone());
        assert_eq!(run(bytes, PC, &mut frame, &mut mem), Err(fault), "{what}");
        assert_eq!(frame, before, "{what}");
        assert_eq!(mem.bytes, memory_before, "{what}");
    }
    // A read-only stack: the push faults before RSP moves.
    let (mut frame, mut mem) = (Frame::new(), Memory::new());
    mem.writable = false;
    let before = frame.clone();
    assert!(run("41 57", PC, &mut frame, &mut mem).is_err());
    assert_eq!(frame, before);
    // Branches past the top of the lower half.
    let past_top = top_of_user + 0x100;
    assert!(!simulate::is_canonical(past_top));
    for bytes in ["e9 fb 00 00 00", "e8 fb 00 00 00", "0f 84 fa 00 00 00"] {
        let (mut frame, mut mem) = (Frame::new(), Memory::new());
        frame.rflags |= RFLAGS_ZF;
        let (before, memory_before) = (frame.clone(), mem.bytes.clone());
        let fault = run(bytes, top_of_user, &mut frame, &mut mem).unwrap_err();
        assert_eq!(fault, SimulationFault::UserAccess { addr: past_top, write: false }, "{bytes}");
        assert_eq!(frame, before, "{bytes}");
        assert_eq!(mem.bytes, memory_before, "{bytes}");
    }
    // Not taken, the same jcc does not care where it would have gone.
    let (mut frame, mut mem) = (Frame::new(), Memory::new());
    run("0f 84 fa 00 00 00", top_of_user, &mut frame, &mut mem).unwrap();
    assert_eq!(frame.rip, top_of_user + 6);
}

#[test]
fn canonical_means_bits_63_to_47_agree() {
    for (address, canonical) in [
        (0, true),
        (0x7fff_ffff_ffff, true),
        (0x8000_0000_0000, false),
        (0xffff_7fff_ffff_ffff, false),
        (0xffff_8000_0000_0000, true),
        (u64::MAX, true),
    ] {
        assert_eq!(simulate::is_canonical(address), canonical, "{address:#x}");
    }
}

// ---- the XOL rewrite ----

#[rustfmt::skip]
const REWRITES: &[(&str, &str)] = &[
    // original                              image
    ("48 8b 05 00 01 00 00"             , "48 8b 81 00 01 00 00"),              // mov rax, [rcx+0x100]
    ("4c 8b 05 00 01 00 00"             , "4c 8b 80 00 01 00 00"),              // mov r8, [rax+0x100]
    ("49 8b 05 40 00 00 00"             , "48 8b 81 40 00 00 00"),              // REX.B cleared
    ("41 ff 35 40 00 00 00"             , "40 ff b0 40 00 00 00"),              // push [rax+0x40]
    ("48 0f b1 0d 10 00 00 00"          , "48 0f b1 8a 10 00 00 00"),           // cmpxchg [rdx+0x10], rcx
    ("c6 05 10 00 00 00 01"             , "c6 80 10 00 00 00 01"),              // the immediate stays
    ("48 81 05 10 00 00 00 78 56 34 12" , "48 81 80 10 00 00 00 78 56 34 12"),
    ("48 0f c7 0d 40 00 00 00"          , "48 0f c7 8e 40 00 00 00"),           // cmpxchg16b [rsi+0x40]
    ("c4 e2 e3 f6 05 40 00 00 00"       , "c4 e2 e3 f6 81 40 00 00 00"),        // mulx rax, rbx, [rcx+0x40]
    ("c4 c2 e3 f6 05 40 00 00 00"       , "c4 e2 e3 f6 81 40 00 00 00"),        // VEX.B cleared (~B set)
    ("c5 fa 6f 05 40 00 00 00"          , "c5 fa 6f 80 40 00 00 00"),           // vmovdqu xmm0, [rax+0x40]
    ("67 8b 05 40 00 00 00"             , "67 8b 81 40 00 00 00"),              // mov eax, [ecx+0x40]
    ("64 48 8b 05 40 00 00 00"          , "64 48 8b 81 40 00 00 00"),           // fs: stays
    ("48 8d 0d 00 e0 ff ff"             , "48 8d 88 00 e0 ff ff"),              // lea rcx, [rax-0x2000]
];

#[test]
fn rip_relative_operands_move_to_the_scratch_register() {
    for &(original, image) in REWRITES {
        let insn = insn(original);
        assert_eq!(classify_with(&insn, Branches), Classification::Step, "{original}");
        let xol = xol_image(&insn);
        assert_eq!(xol.bytes(), hex(image), "{original}");
        assert_eq!((xol.len(), xol.is_empty()), (insn.len(), false));
        assert!(!xol.fixup.pushes_flags);
        let scratch = xol.fixup.rip_relative_scratch.expect("a scratch register");
        // The rewritten ModRM names it.
        assert!(xol.bytes().iter().zip(insn.bytes()).any(|(new, old)| new != old && new & 7 == scratch.number() & 7));
    }
}

#[test]
fn the_scratch_register_avoids_every_register_the_instruction_uses() {
    // (instruction, registers it uses explicitly or implicitly)
    let cases: &[(&str, &[Gpr])] = &[
        ("48 8b 05 00 01 00 00", &[Gpr::Rax]),              // mov rax, [rip]
        ("48 0f b1 0d 10 00 00 00", &[Gpr::Rax, Gpr::Rcx]), // cmpxchg [rip], rcx: rax implicit
        ("48 f7 25 40 00 00 00", &[Gpr::Rax, Gpr::Rdx]),    // mul [rip]: rdx:rax implicit
        ("48 f7 35 40 00 00 00", &[Gpr::Rax, Gpr::Rdx]),    // div [rip]
        ("48 0f c7 0d 40 00 00 00", &[Gpr::Rax, Gpr::Rbx, Gpr::Rcx, Gpr::Rdx]), // cmpxchg16b
        ("0f ae 25 40 00 00 00", &[Gpr::Rax, Gpr::Rdx]),    // xsave: edx:eax mask
        ("48 d3 25 40 00 00 00", &[Gpr::Rcx]),              // shl [rip], cl
        ("c4 e2 e3 f6 05 40 00 00 00", &[Gpr::Rax, Gpr::Rbx, Gpr::Rdx]), // mulx: rdx implicit, rbx in vvvv
        ("48 87 05 40 00 00 00", &[Gpr::Rax]),              // xchg [rip], rax
        ("ff 35 40 00 00 00", &[Gpr::Rsp]),                 // push [rip]
        // A reserved NOP (0F 1E /0): its reg operand names eax, though the
        // decoder's use table (rightly, for a NOP) lists nothing.
        ("f3 0f 1e 05 40 00 00 00", &[Gpr::Rax]),
    ];
    for &(bytes, used) in cases {
        let scratch = xol_image(&insn(bytes)).fixup.rip_relative_scratch.unwrap();
        assert!(!used.contains(&scratch), "{bytes}: {scratch:?} is used");
        // And it is the first free one in the documented order.
        let first_free = [Gpr::Rax, Gpr::Rcx, Gpr::Rdx, Gpr::Rbx, Gpr::Rsi, Gpr::Rdi]
            .into_iter()
            .find(|r| !used.contains(r))
            .unwrap();
        assert_eq!(scratch, first_free, "{bytes}");
    }
}

#[test]
fn images_without_rip_relative_operands_are_the_instruction() {
    for bytes in ["48 89 d8", "f3 a4", "48 8b 04 25 00 10 00 00", "41 90", "48 8b 44 24 08"] {
        let insn = insn(bytes);
        let image = xol_image(&insn);
        assert_eq!(image.bytes(), insn.bytes());
        assert_eq!(image.fixup, StepFixup::default());
    }
    let pushf = xol_image(&insn("9c"));
    assert_eq!((pushf.bytes(), pushf.fixup.pushes_flags), (&[0x9c][..], true));
}

#[test]
fn the_registry_takes_x86_probes() {
    let spec = |vaddr: u64, bytes: &str| ProbeSpec::<X86_64> {
        space: SpaceId(1),
        vaddr,
        kind: ProbeKind::Uprobe,
        original: insn(bytes),
        program: "demo".into(),
        symbol: "main+0x1".into(),
        trampoline: None,
    };
    let mut registry = ProbeRegistry::<X86_64>::new();
    // Any address is aligned enough on x86.
    let push = registry.register(spec(0x40_0000_1001, "55"), All).unwrap();
    assert_eq!(push.treatment, Treatment::Simulate(Simulation::Push { reg: Gpr::Rbp, len: 1 }));
    let stepped = registry.register(spec(0x40_0000_1003, "48 8b 05 00 01 00 00"), All).unwrap();
    assert_eq!(stepped.treatment, Treatment::Step);
    assert_eq!(
        registry.register(spec(0x40_0000_1009, "0f 05"), All).unwrap_err(),
        RegisterError::Rejected(RejectReason::EntersKernel { mnemonic: "syscall" })
    );
}

// ---- properties ----

/// Decode `bytes` with the decoder directly, at address 0.
fn iced(bytes: &[u8]) -> iced_x86::Instruction {
    Decoder::new(64, bytes, DecoderOptions::NONE).decode()
}

/// Check a stepped instruction's image: same length, same instruction, and
/// a RIP-relative operand now on a scratch register it does not use.
fn check_image(insn: &Insn) -> Result<(), TestCaseError> {
    let image = xol_image(insn);
    prop_assert_eq!(image.len(), insn.len());
    let original = iced(insn.bytes());
    let rewritten = iced(image.bytes());
    prop_assert!(!rewritten.is_invalid(), "{:?}: image {:x?} invalid", insn, image.bytes());
    prop_assert_eq!(rewritten.len(), insn.len());
    prop_assert_eq!(rewritten.code(), original.code());
    match image.fixup.rip_relative_scratch {
        None => {
            prop_assert_eq!(image.bytes(), insn.bytes());
            prop_assert!(!original.is_ip_rel_memory_operand());
        }
        Some(scratch) => {
            prop_assert!(original.is_ip_rel_memory_operand());
            let base = rewritten.memory_base();
            prop_assert_eq!(decode::gpr(base), Some(scratch), "{:?}: base {:?}", insn, base);
            // 32-bit addressing (a 0x67 prefix) stays 32-bit.
            prop_assert_eq!(base.is_gpr32(), original.memory_base() == Register::EIP);
            // Decoded at 0, the original's address is len + disp32; the
            // image's displacement is disp32 itself.
            prop_assert_eq!(
                original.memory_displacement64(),
                rewritten.memory_displacement64().wrapping_add(insn.len() as u64) & mask(&original)
            );
            let mut factory = InstructionInfoFactory::new();
            let explicit: Vec<Register> = (0..original.op_count()).map(|i| original.op_register(i)).collect();
            let uses = factory
                .info(&original)
                .used_registers()
                .iter()
                .map(|used| used.register())
                .chain(explicit)
                .any(|register| decode::gpr(register) == Some(scratch));
            prop_assert!(!uses, "{:?}: scratch {:?} is used", insn, scratch);
            // Everything but the ModRM and the REX/VEX byte is untouched.
            let changed = image.bytes().iter().zip(insn.bytes()).filter(|(a, b)| a != b).count();
            prop_assert!(changed <= 2);
        }
    }
    Ok(())
}

/// 32-bit addressing wraps at 4 GiB.
fn mask(original: &iced_x86::Instruction) -> u64 {
    if original.memory_base() == Register::EIP {
        0xffff_ffff
    } else {
        u64::MAX
    }
}

/// Bytes that are mostly RIP-relative instructions: optional legacy
/// prefixes and REX, an opcode from one of the maps, ModRM `mod=00 rm=101`
/// with a random reg field, a displacement and a random tail.
fn rip_relative_bytes() -> impl Strategy<Value = Vec<u8>> {
    let prefix = prop::sample::select(vec![0x66u8, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x64, 0x65]);
    (
        prop::collection::vec(prefix, 0..3),
        prop::option::of(0x40u8..=0x4f),
        0u8..4,
        any::<u8>(),
        0u8..8,
        any::<[u8; 8]>(),
    )
        .prop_map(|(prefixes, rex, map, opcode, reg, tail)| {
            let mut bytes = prefixes;
            bytes.extend(rex);
            match map {
                0 => bytes.push(opcode),
                1 => bytes.extend([0x0f, opcode]),
                2 => bytes.extend([0x0f, 0x38, opcode]),
                _ => bytes.extend([0x0f, 0x3a, opcode]),
            }
            bytes.push(reg << 3 | 0b101);
            bytes.extend(tail);
            bytes
        })
}

/// VEX-encoded RIP-relative instructions (the BMI and AVX forms).
fn vex_rip_relative_bytes() -> impl Strategy<Value = Vec<u8>> {
    (any::<bool>(), any::<[u8; 3]>(), 0u8..8, any::<[u8; 6]>()).prop_map(|(three, vex, reg, tail)| {
        let mut bytes = if three {
            // Map 1 to 3 in the low bits, so the decoder has something to find.
            vec![0xc4, (vex[0] & 0xe0) | (vex[0] % 3 + 1), vex[1], vex[2]]
        } else {
            vec![0xc5, vex[0], vex[1]]
        };
        bytes.push(reg << 3 | 0b101);
        bytes.extend(tail);
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..20)) {
        match Insn::decode(&bytes) {
            Ok(insn) => {
                prop_assert!((1..=MAX_INSN_LEN).contains(&insn.len()) && insn.len() <= bytes.len());
                prop_assert_eq!(insn.bytes(), &bytes[..insn.len()]);
                for policy in [All, Branches] {
                    if classify_with(&insn, policy) == Classification::Step {
                        check_image(&insn)?;
                    }
                }
            }
            Err(DecodeError::Truncated { available }) => prop_assert_eq!(available, bytes.len().min(MAX_INSN_LEN)),
            Err(DecodeError::Invalid) => {}
        }
    }

    #[test]
    fn rip_relative_rewrites_decode_back(bytes in rip_relative_bytes()) {
        if let Ok(insn) = Insn::decode(&bytes) {
            if classify_with(&insn, Branches) == Classification::Step {
                check_image(&insn)?;
            }
        }
    }

    #[test]
    fn vex_rip_relative_rewrites_decode_back(bytes in vex_rip_relative_bytes()) {
        if let Ok(insn) = Insn::decode(&bytes) {
            if classify_with(&insn, Branches) == Classification::Step {
                check_image(&insn)?;
            }
        }
    }

    #[test]
    fn branch_offsets_count_from_the_instruction_start(rel8 in any::<i8>(), rel32 in any::<i32>(), cc in 0u8..16) {
        let rel32_bytes = rel32.to_le_bytes();
        let jmp8 = insn(&std::format!("eb {:02x}", rel8 as u8));
        prop_assert_eq!(classify(&jmp8), Classification::Simulate(Simulation::Jmp { offset: 2 + i64::from(rel8) }));
        let mut call = vec![0xe8];
        call.extend(rel32_bytes);
        let call = Insn::decode(&call).unwrap();
        prop_assert_eq!(classify(&call), Classification::Simulate(Simulation::Call { offset: 5 + i64::from(rel32), len: 5 }));
        let mut jcc = vec![0x0f, 0x80 + cc];
        jcc.extend(rel32_bytes);
        let jcc = Insn::decode(&jcc).unwrap();
        prop_assert_eq!(
            classify(&jcc),
            Classification::Simulate(Simulation::Jcc { condition: Condition::from_bits(cc), offset: 6 + i64::from(rel32), len: 6 })
        );
    }
}
