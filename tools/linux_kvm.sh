#!/usr/bin/env bash
# Linux's KVM as the guest hypervisor, in one command: build (or reuse) guests/ with
# tools/guests.sh, then in each nested mode boot Debian's 6.12 kernel at virtual EL2,
# whose init runs tools/vmm with images/hypercall.elf as KVM's nested VM, and print the
# transcript (the init script's lines and the nested VM's) and the traps per nested
# hypercall, with where in the kernel they happen (its System.map).
#
#   bash tools/linux_kvm.sh [MODE ...]      # default: v8.3 neve nv2
#
# Needs neve installed (tools/demo.sh or tools/test.sh) and apt able to download
# Debian's arm64 packages (tools/test.sh sets that up).  $PYTHON picks the Python.
# Exit status: 0, or 1 when a step failed (said on stderr).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

py=${PYTHON:-python3}
if ! "$py" -c 'import neve' 2>/dev/null; then
    if [ -x .venv/bin/python ] && .venv/bin/python -c 'import neve' 2>/dev/null; then
        py=.venv/bin/python
    else
        echo "linux_kvm.sh: neve is not installed for $py: run tools/demo.sh or tools/test.sh first" >&2
        exit 1
    fi
fi
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(v8.3 neve nv2)
for mode in "${modes[@]}"; do
    case "$mode" in v8.3|neve|nv2) ;; *) echo "linux_kvm.sh: $mode: not a nested mode (v8.3, neve, nv2)" >&2; exit 1 ;; esac
done

bash tools/guests.sh
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
