#!/usr/bin/env bash
# Install neve and show it working:
#   1. the hello and hypercall kernels in vm mode (neve as their hypervisor),
#      with their trap statistics;
#   2. the KVM-like guest hypervisor running the hypercall kernel as its nested
#      VM, at virtual EL2 under ARMv8.3 NV, NEVE and FEAT_NV2, with the traps each
#      of its hypercalls costs.
#
#   bash tools/demo.sh
#
# The guests' UART output goes to stdout, the summaries to stderr.  The package is
# installed with pip (editable) into the active virtualenv, $PYTHON, or .venv/ when
# the system Python is externally managed (PEP 668).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

py=${PYTHON:-python3}
if ! command -v "$py" >/dev/null; then
    sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update && $sudo apt-get install -y python3 python3-venv python3-pip
fi
if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${PYTHON:-}" ] && "$py" - <<'PY'
import os, sys, sysconfig
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
sys.exit(0 if managed and sys.prefix == sys.base_prefix else 1)
PY
then
    if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
        rm -rf .venv
        if ! "$py" -m venv .venv; then
            rm -rf .venv
            sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
            $sudo apt-get install -y python3-venv python3-pip
            "$py" -m venv .venv
        fi
    fi
    py=.venv/bin/python
fi
"$py" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e .

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run NAME MODE IMAGE...: boot, show the UART, keep the stats in $tmp/NAME-MODE.json
run() {
    local name=$1 mode=$2; shift 2
    printf '\n==> neve run --mode %s %s\n' "$mode" "$*" >&2
    local rc=0
    "$py" -m neve run --mode "$mode" --stats "$tmp/$name-$mode.json" "$@" || rc=$?
    [ $rc = 0 ] || echo "    (neve exited with status $rc)" >&2
}

run hello vm images/hello.elf
run hypercall vm images/hypercall.elf
run kvmlike v8.3 images/kvmlike.elf images/hypercall.elf | tee "$tmp/v8.3.out"
for mode in neve nv2; do
    run kvmlike "$mode" images/kvmlike.elf images/hypercall.elf >"$tmp/$mode.out"
    if cmp -s "$tmp/v8.3.out" "$tmp/$mode.out"; then
        echo "    (UART output byte-identical to v8.3 mode, not repeated)" >&2
    else
        cat "$tmp/$mode.out"
    fi
done

"$py" - "$tmp" <<'PY' >&2
import json, sys
from pathlib import Path

d = Path(sys.argv[1])
print("\n== vm mode: trap statistics")
for name in ("hello", "hypercall"):
    f = d / f"{name}-vm.json"
    if not f.exists():
        print(f"  {name + '.elf':15} (no statistics)")
        continue
    s = json.loads(f.read_text())
    t = s["traps"]
    classes = ", ".join(f"{k} {v}" for k, v in sorted(t["by_class"].items()))
    print(f"  {name + '.elf':15} {s['instructions']:>7} instructions, {t['total']:>4} traps ({classes}), "
          f"{s['hypercalls']['count']} hypercalls x {s['hypercalls']['traps_per_call']['median']} trap")

print("\n== kvmlike.elf running hypercall.elf as its nested VM: traps per hypercall")
print(f"  {'mode':6} {'calls':>5} {'traps/call':>10}  breakdown of one call")
for mode in ("v8.3", "neve", "nv2"):
    f = d / f"kvmlike-{mode}.json"
    if not f.exists():
        print(f"  {mode:6} (no statistics)")
        continue
    s = json.loads(f.read_text())
    if s["exit"]["status"] != 0:
        print(f"  {mode:6} stopped: {s['exit']['reason']} (status {s['exit']['status']})")
        continue
    h = s["hypercalls"]
    mc = h.get("median_call", {})
    classes = ", ".join(f"{k} {v}" for k, v in sorted(mc.get("by_class", {}).items()))
    print(f"  {mode:6} {h['count']:>5} {h['traps_per_call']['median']:>10}  {classes}")
print("  (paper: v8.3 126, NEVE 15; the reference path predicts v8.3 132, nv2 22)")
PY
