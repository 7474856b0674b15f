#!/usr/bin/env python3
"""Render one guest hypercall round trip per mode as a PNG (the exit multiplication).

    python tools/timeline_png.py [--out docs/timeline-hypercall.png]
                                 [--kvmlike images/kvmlike.elf] [--hypercall images/hypercall.elf]
    python tools/timeline_png.py --linux guests [--out docs/timeline-hypercall-linux.png]

For each mode it runs the hypercall benchmark (vm: images/hypercall.elf as the VM
kernel; v8.3, neve, nv2: kvmlike as the guest hypervisor, hypercall.elf as its nested
VM), records the timeline of neve/observe/timeline.py, picks the median hypercall (by its
length, from the Hypercall begin/end events) and draws its spans: one row per level
(L0, vEL2, L1's host kernel, the nested VM / the VM).  The x axis is the timeline's
time: guest instructions plus a fixed width per trap for L0 (10 by default), the same
scale for every mode, so a round trip that traps 132 times is visibly longer than one
that traps 15 times.

With --linux DIR (what tools/guests.sh builds: vmlinuz, kvm-initrd.gz, System.map) the
guest hypervisor is Linux 6.12's KVM instead (the nested modes only): the kernel boots
at vEL2 and its init runs tools/vmm with hypercall.elf as the nested VM; the chart marks
each of the round trip's HVCs and ERETs with the kernel symbol it trapped at (the
nested VM's HVC, KVM's EL2 code returning to the host kernel, the host kernel's HVC
back into it, the ERET into the nested VM).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neve.core import elf
from neve.core.machine import Machine  # noqa: E402
from neve.observe.timeline import L0_WIDTH, Timeline, TRACKS  # noqa: E402

MODES = ("vm", "v8.3", "neve", "nv2")
ROWS = [("L0", "L0"), ("vEL2", "vEL2 (L1)"), ("vEL1-host", "L1 host kernel"), ("nested-VM", "nested VM (L2)")]
VM_ROWS = [("L0", "L0"), ("VM", "VM kernel (EL1)")]
COLOURS = {"L0": "#d62728", "vEL2": "#1f77b4", "vEL1-host": "#2ca02c", "nested-VM": "#ff7f0e", "VM": "#ff7f0e"}


def machine(mode: str, kvmlike: str, hypercall: str, max_insns: int, linux: Path | None) -> Machine:
    if linux is None:
        paths = [hypercall] if mode == "vm" else [kvmlike, hypercall]
        return Machine([elf.load(p) for p in paths], mode=mode, max_insns=max_insns, uart_out=lambda b: None)
    from neve import boot
    from neve.arch.platform import RAM_SIZE_DEFAULT
    ims, how = boot.prepare(kernel=linux / "vmlinuz", initrd=linux / "kvm-initrd.gz",
                            append="console=ttyAMA0 panic=-1 neve.vm=hypercall.elf", dtb=None, bios=None,
                            kernel_addr=None, ram_size=RAM_SIZE_DEFAULT)
    m = Machine(ims, mode=mode, max_insns=4_000_000_000, uart_out=lambda b: None, boot=how)
    m.symbols.add_kernel_map(elf.read_system_map(linux / "System.map"), how.kernel_pa)
    m.symbols.add_image(elf.load(hypercall))      # the nested VM's, which the VMM loads
    return m


def median_round_trip(mode: str, kvmlike: str, hypercall: str, l0_width: int, max_insns: int,
                      margin: int = 40, linux: Path | None = None) -> dict:
    m = machine(mode, kvmlike, hypercall, max_insns, linux)
    tl = Timeline(m, l0_width=l0_width)
    res = m.run()
    if res.reason not in ("system-off", "system-reset", "semihosting-exit"):
        raise SystemExit(f"timeline_png: {mode}: the run ended with {res.reason}: {res.message}")
    doc = tl.document()
    guest = "EL1" if mode == "vm" else "nested-VM"        # (not L1's host kernel's calls)
    calls = [e for e in doc["traceEvents"] if e.get("cat") == "hypercall" and e["args"]["guest"] == guest]
    if not calls:
        raise SystemExit(f"timeline_png: {mode}: no hypercall completed")
    med = statistics.median_low(e["dur"] for e in calls)
    same = [e for e in calls if e["dur"] == med]
    call = same[len(same) // 2]
    b, end = call["ts"], call["ts"] + call["dur"]
    lo_w, hi_w = b - margin, end + margin
    tid_key = {}
    for key, (tid, _name) in TRACKS.items():
        if key in ("VM", "nested-VM"):
            tid_key[tid] = "VM" if mode == "vm" else "nested-VM"
        else:
            tid_key.setdefault(tid, key)
    spans = []
    for e in doc["traceEvents"]:
        if e["ph"] != "X" or e.get("cat") == "hypercall":
            continue
        lo, hi = max(e["ts"], lo_w), min(e["ts"] + e["dur"], hi_w)
        if hi > lo:
            spans.append((tid_key[e["tid"]], lo - b, hi - lo))
    traps = sum(1 for e in doc["traceEvents"] if e.get("cat") == "trap" and b <= e["ts"] < end)
    # The round trip's changes of level, named where they trapped (with --linux).
    marks = [(e["ts"] - b, f"{e['args']['name']} at {e['args']['symbol']}") for e in doc["traceEvents"]
             if e.get("cat") == "trap" and b <= e["ts"] < end and e["args"]["class"] in ("hvc", "eret")
             and e["args"]["symbol"]] if linux is not None else []
    return {"mode": mode, "spans": spans, "length": end - b, "margin": margin, "traps": traps, "marks": marks,
            "instructions": call["args"]["instructions"], "index": calls.index(call) + 1, "calls": len(calls)}


def render(results: list[dict], out: Path, l0_width: int, what: str = "kvmlike + hypercall") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    n = len(results)
    heights = [len(VM_ROWS if r["mode"] == "vm" else ROWS) for r in results]
    fig, axes = plt.subplots(n, 1, figsize=(12, 1.0 + 0.55 * sum(heights)), sharex=True,
                             gridspec_kw={"height_ratios": heights})
    if n == 1:
        axes = [axes]
    xmax = max(r["length"] for r in results)
    for ax, r in zip(axes, results):
        rows = VM_ROWS if r["mode"] == "vm" else ROWS
        for y, (key, _label) in enumerate(rows):
            bars = [(x, max(w, 0.8)) for k, x, w in r["spans"] if k == key]
            if bars:
                ax.broken_barh(bars, (y - 0.35, 0.7), facecolors=COLOURS[key], edgecolor="none")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([label for _k, label in rows])
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlim(-r["margin"], xmax + r["margin"])
        for x in (0, r["length"]):
            ax.axvline(x, color="black", linestyle="--", linewidth=0.8, alpha=0.6)
        ax.grid(axis="x", alpha=0.3)
        for i, (x, label) in enumerate(r["marks"]):       # between the last two rows, left of the mark
            y = len(rows) - 1.72 + 0.3 * (i % 2)
            ax.plot([x, x], [0, len(rows) - 1], color="grey", linewidth=0.5, linestyle=":")
            ax.text(x + 8, y, label, fontsize=7, ha="left", va="center", color="#333333")
        ax.set_title(f"{r['mode']}: {r['traps']} trap{'s' if r['traps'] != 1 else ''} to L0, "
                     f"{r['instructions']} guest instructions (median of {r['calls']} hypercalls: #{r['index']})",
                     loc="left", fontsize=10)
    axes[-1].set_xlabel(f"timeline time from the guest's HVC (dashed: HVC trapped .. guest runs again): "
                        f"guest instructions + {l0_width} per trap handled by L0")
    fig.suptitle(f"One hypercall round trip of the nested VM ({what}), per mode", fontsize=12)
    fig.legend(handles=[Patch(color=COLOURS[k], label=lbl) for k, lbl in ROWS], loc="lower right", ncol=4,
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "timeline-hypercall.png"))
    p.add_argument("--kvmlike", default=str(ROOT / "images" / "kvmlike.elf"))
    p.add_argument("--hypercall", default=str(ROOT / "images" / "hypercall.elf"))
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated (default: all four)")
    p.add_argument("--l0-width", type=int, default=L0_WIDTH, help="timeline units per trap for L0 (default 10)")
    p.add_argument("--max-insns", type=int, default=20_000_000)
    p.add_argument("--linux", metavar="DIR", help="Linux 6.12's KVM as the guest hypervisor: the kernel, "
                   "kvm-initrd.gz and System.map from tools/guests.sh in DIR (nested modes)")
    a = p.parse_args(argv)
    linux = Path(a.linux) if a.linux else None
    modes = a.modes.split(",") if a.linux is None or a.modes != ",".join(MODES) else list(MODES[1:])
    if linux is not None:
        if "vm" in modes:
            p.error("--linux: nested modes only (v8.3, neve, nv2)")
        missing = [n for n in ("vmlinuz", "kvm-initrd.gz", "System.map") if not (linux / n).is_file()]
        if missing:
            p.error(f"--linux {linux}: no {', '.join(missing)} (run tools/guests.sh)")
        if a.out == p.get_default("out"):
            a.out = str(ROOT / "docs" / "timeline-hypercall-linux.png")
    results = [median_round_trip(m, a.kvmlike, a.hypercall, a.l0_width, a.max_insns, linux=linux) for m in modes]
    render(results, Path(a.out), a.l0_width, "Linux 6.12 KVM + hypercall" if linux else "kvmlike + hypercall")
    for r in results:
        print(f"{r['mode']:5} traps {r['traps']:4}  instructions {r['instructions']:5}  length {r['length']}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
