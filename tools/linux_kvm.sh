#!/usr/bin/env bash
# Linux's KVM as the guest hypervisor, in one command: build (or reuse) guests/ with
# tools/guests.sh, then in each nested mode boot Debian's 6.12 kernel at virtual EL2,
# whose init runs tools/vmm with images/hypercall.elf as KVM's nested VM, and print the
# transcript (the init script's lines and the nested VM's) and the traps per nested
# hypercall, with where in the kernel they happen (its System.map).
#
#   bash tools/linux_kvm.sh [MODE ...]      # default: v8.3 neve nv2
#
# In a fresh clone it first sets up what tools/test.sh would (apt as root or through
# sudo: the cross toolchain, QEMU 10, the arm64 architecture; pip: neve), without
# running the tests; when neve is installed already, only tools/guests.sh runs (it
# reuses guests/ when up to date).  $PYTHON picks the Python.
# Exit status: 0, or 1 when a step failed (said on stderr).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(v8.3 neve nv2)
for mode in "${modes[@]}"; do
    case "$mode" in v8.3|neve|nv2) ;; *) echo "linux_kvm.sh: $mode: not a nested mode (v8.3, neve, nv2)" >&2; exit 1 ;; esac
done

# The Python with neve: $PYTHON, python3, or the .venv/ tools/test.sh makes on a
# PEP 668 system; "" when none has it.
neve_python() {
    local py
    for py in "${PYTHON:-python3}" .venv/bin/python; do
        if [ -x "$(command -v "$py")" ] && "$py" -c 'import neve' 2>/dev/null; then
            printf '%s\n' "$py"
            return
        fi
    done
}
py=$(neve_python)
if [ -z "$py" ]; then
    bash tools/test.sh --setup-only
    py=$(neve_python)
    [ -n "$py" ] || { echo "linux_kvm.sh: neve is still not importable after tools/test.sh --setup-only" >&2; exit 1; }
else
    bash tools/guests.sh
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for mode in "${modes[@]}"; do
    printf '\n==> neve run --mode %s --kernel guests/vmlinuz --initrd guests/kvm-initrd.gz --symbols guests/System.map\n' "$mode" >&2
    rc=0
    "$py" -m neve run --mode "$mode" --kernel guests/vmlinuz --initrd guests/kvm-initrd.gz \
        --append "console=ttyAMA0 panic=-1 neve.vm=hypercall.elf" --symbols guests/System.map \
        --stats "$tmp/$mode.json" >"$tmp/$mode.out" || rc=$?
    # The kernel's own log ("[    0.000000] ...") left out: the init script's and the nested VM's lines.
    grep -v '^\[' "$tmp/$mode.out" | grep -v '^$' || true
    if [ $rc != 0 ]; then
        echo "linux_kvm.sh: neve exited with status $rc in $mode mode" >&2
        exit 1
    fi
done

"$py" - "$tmp" "${modes[@]}" <<'PY'
import json, sys
from pathlib import Path

d, modes = Path(sys.argv[1]), sys.argv[2:]
print("\n== Linux 6.12 KVM running hypercall.elf as its nested VM: traps per nested hypercall")
print(f"  {'mode':5} {'calls':>5} {'traps/call':>10}  by class; where (the kernel's symbols, top 4)")
for mode in modes:
    h = json.loads((d / f"{mode}.json").read_text())["hypercalls"]
    mc = h["median_call"]
    classes = ", ".join(f"{k} {v}" for k, v in sorted(mc["by_class"].items()))
    top = sorted(mc.get("by_symbol", {}).items(), key=lambda kv: (-kv[1], kv[0]))[:4]
    where = ", ".join(f"{k.removeprefix('__kvm_nvhe_')} {v}" for k, v in top)
    print(f"  {mode:5} {h['count']:>5} {h['traps_per_call']['median']:>10}  {classes}; {where}")
print("  (the paper, KVM/ARM v4.10: v8.3 126, NEVE 15; __kvm_nvhe_ prefixes left out)")
PY
