#!/usr/bin/env bash
# Provision QEMU >= 9 (qemu-system-aarch64 with the raspi4b machine), for the
# x86_64 UEFI port qemu-system-x86_64 and the OVMF firmware, gdb-multiarch (the
# boot-order tests stop the kernel under gdb) and dtc (the reserved-memory test
# edits a device tree), on Debian.
#
# Debian 12 ships QEMU 7.2, which has no `raspi4b` machine. The backports suite has
# QEMU 10. We add `<codename>-backports` to the Debian apt source that is already
# configured, reusing its URI (so a mirror or snapshot set up on the machine keeps
# being used) rather than naming a host here.
set -euo pipefail

need_major=9

qemu_major() {
    qemu-system-aarch64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\)\..*/\1/p'
}

# The OVMF build `cargo xtask qemu --arch x86_64` boots with -bios.
ovmf=/usr/share/OVMF/OVMF_CODE.fd

have=$(qemu_major || true)
missing=""
if [ -z "$have" ] || [ "$have" -lt "$need_major" ]; then missing="$missing qemu-system-arm"; fi
if ! command -v qemu-system-x86_64 >/dev/null; then missing="$missing qemu-system-x86"; fi
if [ ! -f "$ovmf" ]; then missing="$missing ovmf"; fi
if ! command -v gdb-multiarch >/dev/null; then missing="$missing gdb-multiarch"; fi
if ! command -v dtc >/dev/null; then missing="$missing device-tree-compiler"; fi
if [ -z "$missing" ]; then
    echo "provision: qemu-system-aarch64 $have.x, qemu-system-x86_64, $ovmf, gdb-multiarch and dtc already present"
    exit 0
fi
echo "provision: missing:$missing"

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "provision: need root and apt-get to install QEMU >= $need_major" >&2
    exit 1
fi

. /etc/os-release
codename=${VERSION_CODENAME:-bookworm}

# Find the URI of the main Debian source (deb822 first, then one-line format).
uri=""
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # Take the URIs line of a stanza whose Suites list has the bare codename.
    uri=$(awk -v c="$codename" '
        /^[[:space:]]*$/ { if (u != "" && s ~ ("(^| )" c "( |$)")) { print u; exit } u=""; s=""; next }
        /^URIs:/   { u=$2 }
        /^Suites:/ { $1=""; s=$0 }
        END { if (u != "" && s ~ ("(^| )" c "( |$)")) print u }' "$f" | head -n1)
    [ -n "$uri" ] && break
done
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk -v c="$codename" '$1=="deb" { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i+1)==c) { print $i; exit } } }' /etc/apt/sources.list)
fi
if [ -z "$uri" ]; then
    echo "provision: found no Debian apt source for '$codename' to extend with backports" >&2
    exit 1
fi

list=/etc/apt/sources.list.d/${codename}-backports.sources
if ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "provision: adding ${codename}-backports from $uri to $list"
    cat > "$list" <<SRC
Types: deb
URIs: $uri
Suites: ${codename}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

export DEBIAN_FRONTEND=noninteractive
echo "+ apt-get update"
apt-get update -q
# Both QEMU system packages come from backports: they share qemu-system-common, so
# they must be the same version. OVMF comes from the main suite.
echo "+ apt-get install -t ${codename}-backports qemu-system-arm qemu-system-x86 ovmf"
apt-get install -y -q --no-install-recommends -t "${codename}-backports" qemu-system-arm qemu-system-x86 ovmf
# gdb and dtc come from the main suite.
echo "+ apt-get install gdb-multiarch device-tree-compiler"
apt-get install -y -q --no-install-recommends gdb-multiarch device-tree-compiler
qemu-system-aarch64 --version | head -n1
qemu-system-x86_64 --version | head -n1
ls -l "$ovmf"
