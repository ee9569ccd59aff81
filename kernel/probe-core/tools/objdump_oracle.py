#!/usr/bin/env python3
"""Check the A64 classifier against GNU objdump on random instruction words.

Usage: objdump_oracle.py [COUNT] [SEED]   (defaults: 1000000, 1)

Needs aarch64-linux-gnu-objdump (Debian: binutils-aarch64-linux-gnu). Builds
and runs examples/classify_words.rs, disassembles the same words with
objdump, and reports, one-sidedly (the classifier is deliberately stricter):

- words the classifier accepts (simulate or step) that objdump calls undefined;
- stepped words that objdump names a branch, a PC-relative load, an exclusive,
  an exception-generating or system-register-writing or SYS instruction;
- simulated words whose objdump mnemonic is not the simulated class.

Half the words are uniform; half have bits 28:25 forced into the encoding
groups the classifier decodes, so every table gets exercised. Exit status 1
if any disagreement is found.
"""
import os, random, re, struct, subprocess, sys, tempfile

count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
crate = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
groups = [0b1000, 0b1001, 0b1010, 0b1011, 0b0100, 0b0110, 0b1100, 0b1110, 0b0101, 0b1101, 0b0111, 0b1111]
rng = random.Random(seed)
words = []
for i in range(count):
    word = rng.getrandbits(32)
    if i % 2:
        word = (word & ~(0xF << 25)) | (rng.choice(groups) << 25)
    words.append(word)
blob = b"".join(struct.pack("<I", w) for w in words)

with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as f:
    f.write(blob)
    path = f.name
ours = subprocess.run(
    ["cargo", "run", "--quiet", "--release", "--example", "classify_words", "-p", "probe-core"],
    input=blob, capture_output=True, cwd=crate, check=True).stdout.decode().splitlines()
disassembly = subprocess.run(
    ["aarch64-linux-gnu-objdump", "-D", "-b", "binary", "-m", "aarch64", path],
    capture_output=True, text=True, check=True).stdout
os.unlink(path)
theirs = [m.group(1).strip() for m in re.finditer(r"^\s*[0-9a-f]+:\s+[0-9a-f]{8}\s+(.*)$", disassembly, re.M)]
assert len(theirs) == len(ours) == count, (len(theirs), len(ours), count)

forbidden = re.compile(r"^(b|bl|b\..*|bc\..*|cbn?z|tbn?z|br|blr|ret|bra.*|blra.*|reta.*|adrp?|ld[a]?xr.*|"
                       r"st[l]?xr.*|ld[a]?xp|st[l]?xp|svc|hvc|smc|brk|hlt|dcps.|eret.*|drps|msr|sysl?|dc|ic|at|"
                       r"tlbi|cfinv|xaflag|axflag|udf|t(start|commit|test|cancel)|wfet|wfit)$")
simulated = {"Branch": {"b"}, "BranchLink": {"bl"}, "CompareBranch": {"cbz", "cbnz"}, "TestBranch": {"tbz", "tbnz"},
             "BranchRegister": {"br", "blr", "ret"}, "Adr": {"adr"}, "Adrp": {"adrp"}, "LoadLiteral": {"ldr", "ldrsw"},
             "PrefetchLiteral": {"prfm"}, "Nop": {"nop"}, "FramePush": {"stp"}}
problems = []
for line, dis in zip(ours, theirs):
    word, verdict = line.split(" ", 1)
    mnemonic = dis.split()[0] if dis else ""
    undefined = dis.startswith(".inst") or "undefined" in dis or mnemonic == "udf"
    if verdict.startswith("REJ"):
        continue
    if undefined:
        problems.append(f"{word} accepted ({verdict}) but objdump says: {dis}")
    elif verdict == "STEP":
        literal = mnemonic in ("ldr", "ldrsw", "prfm") and "[" not in dis
        if forbidden.match(mnemonic) or literal:
            problems.append(f"{word} stepped but is: {dis}")
    else:
        what = verdict[4:]
        name = what.split(" ")[0]
        if name == "BranchConditional":
            ok = mnemonic.startswith("b.") or mnemonic.startswith("bc.")
        else:
            ok = mnemonic in simulated.get(name, ())
        if not ok:
            problems.append(f"{word} simulated as {what} but is: {dis}")
accepted = sum(1 for line in ours if not line.split(" ", 1)[1].startswith("REJ"))
print(f"{count} words, {accepted} accepted, {len(problems)} disagreements")
for problem in problems[:50]:
    print("  " + problem)
sys.exit(1 if problems else 0)
