#!/usr/bin/env python3
"""Where the guest instructions of one trap go, by stage (docs/benchmarks.md,
"A lean trap path").

Boots the aarch64 kernel (target/images/virt/kernel.img, built by `cargo xtask
build --board virt`) under QEMU with `-icount shift=0` and one guest
instruction per translation block, runs `bench-uprobes` on the sections
given, and switches QEMU's exec log on over the monitor once the program has
started (`log exec,nochain`), off when it is done: every logged block is one
executed instruction. The log is cut into kernel excursions (the
instructions between two user-mode ones), each classified by the user
instruction that trapped (svc, brk, the probed nop, a step from the XOL page),
and each kernel instruction is attributed, through `llvm-addr2line -i` on
the kernel ELF, to its inlined function chain and to a stage: entry/save,
dispatch, lookup, simulate/step, the call (a system call's own work),
scheduler return, restore/eret.

    python3 xtask/tools/profile_hit.py "xol-policy=reuse simulate=all"
    python3 xtask/tools/profile_hit.py "xol-policy=reuse simulate=branches" --show nop

Needs qemu-system-aarch64, llvm-objdump and llvm-addr2line.
"""
import argparse, collections, os, re, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = os.path.join(ROOT, "target/images/virt/kernel.img")
KERNEL_ELF = os.path.join(ROOT, "target/images/virt/kernel.elf")
USER_ELF = os.path.join(ROOT, "target/aarch64-unknown-none/release/bench-uprobes")
KERNEL_END = 0x1_0000_0000      # the kernel runs below 4 GiB, user mode above
XOL_PAGE = 0x7F_FFFF_0000       # brk_abi::layout::XOL_PAGE
ASM = ("exception_vector_table", "save_frame_and_dispatch", "el0_", "resume_frame", "restore_frame_and_eret")


def record(config, sections, iters, log):
    sock = os.path.join(tempfile.mkdtemp(), "monitor.sock")
    args = ["qemu-system-aarch64", "-icount", "shift=0", "-accel", "tcg,one-insn-per-tb=on",
            "-M", "virt", "-cpu", "cortex-a72", "-m", "1G", "-nic", "none", "-display", "none",
            "-monitor", f"unix:{sock},server,nowait", "-serial", "stdio", "-semihosting",
            "-kernel", IMAGE, "-append", f"run=bench-uprobes:{sections},{iters},1 {config}", "-D", log]
    qemu = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    time.sleep(0.5)
    monitor = socket.socket(socket.AF_UNIX)
    monitor.connect(sock)

    def say(command):
        try:
            monitor.sendall((command + "\n").encode())
            time.sleep(0.2)
        except BrokenPipeError:
            pass  # QEMU has already exited: the kernel powers off after the run

    for line in qemu.stdout:
        text = line.decode(errors="replace")
        if "bench: start" in text:
            say("log exec,nochain")
        if "bench: done" in text:
            say("log none")
            break
    qemu.wait()


def excursions(log):
    pc_of = re.compile(r"Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")
    pcs = [int(m.group(1), 16) for m in map(pc_of.search, open(log, errors="replace")) if m]
    out, i = [], 1
    while i < len(pcs):
        if pcs[i] < KERNEL_END <= pcs[i - 1]:
            j = i
            while j < len(pcs) and pcs[j] < KERNEL_END:
                j += 1
            if j < len(pcs):
                out.append((pcs[i - 1], pcs[i:j]))
            i = j
        else:
            i += 1
    return out


def user_instructions():
    dump = subprocess.run(["llvm-objdump", "-d", "--no-show-raw-insn", USER_ELF], capture_output=True, text=True).stdout
    return {int(m.group(1), 16): m.group(2) for m in (re.match(r"\s*([0-9a-f]+):\s+(\S+)", l) for l in dump.splitlines()) if m}


def inline_chains(pcs):
    out = subprocess.run(["llvm-addr2line", "-f", "-i", "-C", "-a", "-e", KERNEL_ELF] + [hex(pc) for pc in pcs],
                         capture_output=True, text=True).stdout.splitlines()
    chains, current, k = {}, None, 0
    while k < len(out):
        if out[k].startswith("0x"):
            current = int(out[k], 16)
            chains[current] = []
            k += 1
            continue
        chains[current].append(short(out[k]))
        k += 2
    return {pc: " > ".join(reversed(chain)) for pc, chain in chains.items()}  # outermost first


def short(name):
    name = re.sub(r"::h[0-9a-f]{16}", "", name)
    for a, b in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$u7b$", "{"), ("$u7d$", "}"), ("..", "::")):
        name = name.replace(a, b)
    name = re.sub(r"_?<impl [^>]*>", "impl", name)
    while re.search(r"<[^<>]*>", name):
        name = re.sub(r"<[^<>]*>", "", name)  # generic parameters
    return name


def stage(chain):
    if "scheduler::resume" in chain:
        return "scheduler return"
    if any(k in chain for k in ("find_probe", "breakpoint_trap", "select_trace", "BreakpointTree::lookup", "registry")):
        return "lookup"
    if any(k in chain for k in ("handle_hit", "simulate", "on_step", "set_pc", "arm_step", "choose_slot", "xol",
                                "Counters", "on_trampoline")):
        return "simulate/step"
    if any(k in chain for k in ("syscall::caller", "syscall::running", "scheduler::with", "Scheduler::current")):
        return "the call"
    return "dispatch"


def stages(excursion, chains):
    totals, in_rust = collections.Counter(), False
    for pc in excursion:
        chain = chains.get(pc, "?")
        if any(k in chain for k in ASM):
            late = in_rust or "resume_frame" in chain or "restore_frame" in chain
            totals["restore/eret" if late else "entry/save"] += 1
        else:
            in_rust = True
            totals[stage(chain)] += 1
    return totals


ORDER = ["entry/save", "dispatch", "lookup", "simulate/step", "the call", "scheduler return", "restore/eret"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help='boot arguments, e.g. "xol-policy=reuse simulate=all"')
    parser.add_argument("--sections", default="floor+trig")
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--log", default=os.path.join(tempfile.gettempdir(), "profile_hit.log"))
    parser.add_argument("--show", help="print the function runs of one excursion of this kind")
    options = parser.parse_args()
    record(options.config, options.sections, options.iters, options.log)
    insns = user_instructions()
    found = excursions(options.log)
    chains = inline_chains(sorted({pc for _, e in found for pc in e}))

    def kind(user_pc, excursion):
        if excursion[0] & 0x7FF == 0x480:
            return "irq"
        if XOL_PAGE <= user_pc < XOL_PAGE + 0x1000:
            return "trampoline" if user_pc == XOL_PAGE else "step"
        return insns.get(user_pc, "?")

    groups = collections.defaultdict(list)
    for user_pc, excursion in found:
        groups[(kind(user_pc, excursion), user_pc)].append(excursion)
    print(f"{'trap':<12} {'user pc':>12} {'count':>5} {'insns':>6}  " + ", ".join(ORDER))
    for (name, user_pc), group in sorted(groups.items()):
        if len(group) < 10 or name == "irq":
            continue
        # One row per length seen at least 10 times: the probed `nop` of a
        # uprobe and of a uretprobe trap at the same address, at two lengths.
        for length, count in sorted(collections.Counter(len(e) for e in group).items()):
            if count < 10:
                continue
            typical = next(e for e in group if len(e) == length)
            totals = stages(typical, chains)
            print(f"{name:<12} {user_pc:>#12x} {count:>5} {length:>6}  " + ", ".join(str(totals[s]) for s in ORDER))
            if options.show == name:
                show(typical, chains)


def show(typical, chains):
    runs = []
    for pc in typical:
        chain = chains.get(pc, "?")
        if runs and runs[-1][0] == chain:
            runs[-1][1] += 1
        else:
            runs.append([chain, 1])
    for chain, count in runs:
        print(f"    {count:4d}  {chain}")


if __name__ == "__main__":
    sys.exit(main())
