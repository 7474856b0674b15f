#!/usr/bin/env bash
# Fetch the third-party guests the suite and `neve bench` boot, from Debian's
# arm64 packages, and build the initramfs:
#
#   bash tools/guests.sh [DIR]        (default: guests/ in the repository)
#
# DIR/vmlinuz      Debian's linux-image-6.12.*-cloud-arm64-unsigned kernel (bookworm-backports)
# DIR/initrd.gz    busybox-static + tools/initramfs/init, a gzip'd newc cpio
# DIR/u-boot.bin   u-boot-qemu's qemu_arm64 U-Boot (for --bios)
# DIR/kvm-initrd.gz  busybox-static + tools/vmm (built static with the aarch64 cross
#                  compiler) + tools/initramfs/kvm-init + the test kernels of KVM_IMAGES:
#                  Linux's KVM runs each as a nested VM (issue 15)
# DIR/System.map   the kernel's symbols, from its /proc/kallsyms on QEMU (neve run --symbols)
# DIR/VERSIONS     the package versions used
#
# No root needed here: `apt-get download` and `dpkg-deb -x` only.  The machine's apt
# must know the arm64 architecture and bookworm-backports (tools/test.sh sets both up).
# Nothing is fetched again when DIR/VERSIONS already names what would be fetched.
# NEVE_LINUX_PACKAGE picks another kernel package.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
DIR=${1:-$ROOT/guests}
log() { printf 'guests.sh: %s\n' "$*" >&2; }

# The kernel the README's figures were measured with; the newest 6.12 cloud kernel
# when the archive no longer has it.
PREFERRED=linux-image-6.12.111+deb12-cloud-arm64-unsigned
kernel_package() {
    if [ -n "${NEVE_LINUX_PACKAGE:-}" ]; then echo "$NEVE_LINUX_PACKAGE"; return; fi
    if apt-cache show "$PREFERRED:arm64" >/dev/null 2>&1; then echo "$PREFERRED"; return; fi
    apt-cache search --names-only '^linux-image-6\.12\..*-cloud-arm64-unsigned$' \
        | awk '{print $1}' | sort -V | tail -1
}

version_of() { apt-cache show "$1" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1; }

# The test kernels the KVM initramfs runs as nested VMs.
KVM_IMAGES="gicdread.elf hypercall.elf ipi.elf mmio.elf virteoi.elf vtimer.elf"

KPKG=$(kernel_package)
[ -n "$KPKG" ] || { log "no linux-image-6.12.*-cloud-arm64-unsigned in apt: is arm64 + bookworm-backports set up?"; exit 1; }
WANT="$KPKG:arm64=$(version_of "$KPKG:arm64")
busybox-static:arm64=$(version_of busybox-static:arm64)
u-boot-qemu=$(version_of u-boot-qemu)
init=$(sha256sum tools/initramfs/init | cut -c1-16)
kvm=$(cat tools/initramfs/kvm-init tools/vmm/vmm.c $(printf 'images/%s ' $KVM_IMAGES) | sha256sum | cut -c1-16)"

if [ -f "$DIR/VERSIONS" ] && [ "$(cat "$DIR/VERSIONS")" = "$WANT" ] \
   && [ -s "$DIR/vmlinuz" ] && [ -s "$DIR/initrd.gz" ] && [ -s "$DIR/u-boot.bin" ] && [ -s "$DIR/kvm-initrd.gz" ] \
   && { [ -s "$DIR/System.map" ] || ! command -v "${NEVE_QEMU:-qemu-system-aarch64}" >/dev/null; }; then
    log "guests up to date in $DIR"
    exit 0
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$DIR"
(cd "$WORK" && apt-get download -q "$KPKG:arm64" busybox-static:arm64 u-boot-qemu >&2)
for deb in "$WORK"/*.deb; do dpkg-deb -x "$deb" "$WORK/x"; done

cp "$(ls "$WORK"/x/boot/vmlinuz-* | head -1)" "$DIR/vmlinuz"
cp "$WORK/x/usr/lib/u-boot/qemu_arm64/u-boot.bin" "$DIR/u-boot.bin"

# The initramfs: busybox and its applet links, /init; every file dated 0 and owned
# by root so the archive is the same bytes on every machine.
R=$WORK/root
mkdir -p "$R"/{bin,sbin,dev,proc,sys}
cp "$WORK/x/bin/busybox" "$R/bin/busybox"
for a in sh mount echo cat grep head dmesg uname poweroff ls; do ln -s busybox "$R/bin/$a"; done
ln -s ../bin/busybox "$R/sbin/poweroff"
cp tools/initramfs/init "$R/init"
chmod 755 "$R/init" "$R/bin/busybox"
cpio_of() {      # a directory as a gzip'd newc cpio, the same bytes on every machine
    find "$1" -exec touch -h -d @0 {} +
    (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9n
}
cpio_of "$R" > "$DIR/initrd.gz"

# The KVM initramfs: the same busybox, the VMM and the nested VMs' kernels.
K=$WORK/kvmroot
mkdir -p "$K"/{bin,sbin,dev,proc,sys,images}
cp "$WORK/x/bin/busybox" "$K/bin/busybox"
for a in sh mount echo cat grep head dmesg poweroff; do ln -s busybox "$K/bin/$a"; done
ln -s ../bin/busybox "$K/sbin/poweroff"
aarch64-linux-gnu-gcc -static -O2 -Wall -Wextra -Werror -pthread -o "$K/bin/vmm" tools/vmm/vmm.c
for img in $KVM_IMAGES; do cp "images/$img" "$K/images/$img"; done
cp tools/initramfs/kvm-init "$K/init"
chmod 755 "$K/init" "$K/bin/busybox" "$K/bin/vmm"
cpio_of "$K" > "$DIR/kvm-initrd.gz"

# The kernel's symbols: Debian's System.map is a stub (the real one is in the -dbg
# package, 320 MB), so the kernel prints its own /proc/kallsyms on QEMU (kvm-init with
# neve.kallsyms).  KASLR moves them all by one offset; neve places them by their
# offsets from _text (neve run --symbols).
QEMU=${NEVE_QEMU:-qemu-system-aarch64}
if command -v "$QEMU" >/dev/null; then
    "$QEMU" -M virt,gic-version=3 -cpu cortex-a72 -m 128M -nographic -monitor none -serial stdio \
        -no-reboot -nic none -kernel "$DIR/vmlinuz" -initrd "$DIR/kvm-initrd.gz" \
        -append "console=ttyAMA0 panic=-1 neve.kallsyms" </dev/null 2>/dev/null \
        | tr -d '\r' | sed -n '/^init: kallsyms begin$/,/^init: kallsyms end$/p' | sed '1d;$d' \
        | python3 -c '
import sys   # KASLR moved everything by one offset: back to the link addresses, the same file every time
rows = [ln.split() for ln in sys.stdin if len(ln.split()) >= 3]
base = next(int(a, 16) for a, t, n, *_ in rows if n == "_text")
for a, t, n, *_ in sorted(rows, key=lambda r: (int(r[0], 16), r[2])):
    print(f"{int(a, 16) - base + 0xffff800080000000:016x} {t} {n}")' > "$WORK/System.map"
    grep -q ' _text$' "$WORK/System.map" || { log "the kernel printed no kallsyms on $QEMU"; exit 1; }
    mv "$WORK/System.map" "$DIR/System.map"
else
    log "no $QEMU: guests/System.map (the kernel's symbols) not built"
    rm -f "$DIR/System.map"
fi

printf '%s\n' "$WANT" > "$DIR/VERSIONS"
log "guests in $DIR: $(tr '\n' ' ' < "$DIR/VERSIONS")"
