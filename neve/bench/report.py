"""The outputs of `neve bench`: one dict per row (`row_dict`), the host summary of
the hypercall rows, and the JSON's rows written as CSV, a PNG chart and the console
table.

JSON: ``{"rows": [...], "skipped": [...], "cost_model": {...}, "host": {...}}``, one
row per benchmark x mode with at least benchmark, mode, ops, traps_per_op,
modeled_cycles, by_class, by_register, ratio_to_vm, paper_cycles, host_seconds, and
(after traps_ratio_to_vm when there is a vm row) trap_floor_us and floor_ratio: host
time per trap against the bare-Unicorn trap floor measured in the same run
(probes.probe_floor, `fill_floor`).
"""
from __future__ import annotations

import csv
import json
import statistics
from fractions import Fraction
from pathlib import Path

from neve.bench.catalogue import NESTED, Benchmark
from neve.bench.costmodel import CostModel, solve3
from neve.bench.probes import DOC_FLOOR_US_PER_TRAP
from neve.bench.recorder import median_op
from neve.bench.runner import RowRun
from neve.errors import BadInput


# =============================================================================
# Assembling the rows
# =============================================================================
def _num(x):
    return int(x) if float(x).is_integer() else x


def row_dict(r: RowRun, bench: Benchmark, model: CostModel | None) -> dict:
    med = median_op(r.ops)
    traps = [o.traps for o in r.ops]
    host = statistics.median(r.op_seconds) if r.op_seconds else 0.0
    total_traps = sum(traps)
    d = {
        "benchmark": r.benchmark,
        "mode": r.mode,
        "base_mode": r.base_mode,
        "images": [Path(p).name for p in r.images],
        "ops": len(r.ops),
        "traps_per_op": _num(statistics.median(traps)) if traps else 0,
        "traps_per_op_min": min(traps) if traps else 0,
        "traps_per_op_max": max(traps) if traps else 0,
        "emulated_per_op": med.emulated if med else 0,
        "switches_per_op": med.switches if med else 0,
        "page_accesses_per_op": med.pages if med else 0,
        "redirects_per_op": med.redirects if med else 0,
        "instructions_per_op": med.instructions if med else 0,
        "by_class": dict(sorted(med.by_class.items())) if med else {},
        "by_register": dict(sorted(med.by_register.items())) if med else {},
        "modeled_cycles": round(model.cycles(med)) if (model and med) else None,
        "ratio_to_vm": None,
        "paper_cycles": bench.paper_cycles.get(r.mode),
        "paper_traps": bench.paper_traps.get(r.mode),
        "paper_ratio_to_vm": (round(bench.paper_cycles[r.mode] / bench.paper_cycles["vm"], 1)
                              if r.mode in bench.paper_cycles and "vm" in bench.paper_cycles else None),
        "instructions": r.instructions,
        "deterministic": r.deterministic,
        "repetitions": len(r.run_seconds),
        "host_seconds": host,
        "host_run_seconds": statistics.median(r.run_seconds) if r.run_seconds else 0.0,
        "host_construct_seconds": statistics.median(r.construct_seconds) if r.construct_seconds else 0.0,
        "ops_per_second": (len(r.ops) / host) if host > 0 else None,
        "us_per_op": (host / len(r.ops) * 1e6) if r.ops else None,
        "us_per_trap": (host / total_traps * 1e6) if total_traps else None,
    }
    if bench.speed:
        # Guest instructions per host second inside the operations (the wait of
        # counter-wait): the instructions of a repetition's operations over its host time.
        d["insns_per_second"] = (sum(o.instructions for o in r.ops) / host) if host > 0 else None
    return d


def fill_ratios(rows: list[dict]) -> None:
    vm = {r["benchmark"]: r for r in rows if r["mode"] == "vm"}
    for r in rows:
        b = vm.get(r["benchmark"])
        if b and b["modeled_cycles"] and r["modeled_cycles"] is not None:
            r["ratio_to_vm"] = round(r["modeled_cycles"] / b["modeled_cycles"], 1)
        if b and b["traps_per_op"]:
            r["traps_ratio_to_vm"] = round(r["traps_per_op"] / b["traps_per_op"], 1)


def fill_floor(rows: list[dict], floor_us: float | None) -> None:
    """The rows' last two keys: `trap_floor_us`, the bare-Unicorn trap floor measured in
    the same run (host["floor"]["us_per_trap"]; None when it was not measured), and
    `floor_ratio`, the row's host time per trap over it."""
    for r in rows:
        r["trap_floor_us"] = floor_us
        r["floor_ratio"] = (r["us_per_trap"] / floor_us) if (floor_us and r["us_per_trap"]) else None


def host_summary(rows: list[dict], benchmark: str = "hypercall", fits: bool = True) -> dict:
    """Hypercalls/s per mode and host time per trap, from the rows of `benchmark`
    (hypercall, hypercall-minimal), with the ratio to the trap floor measured in the
    same run.  With `fits`, also the marginal cost of a trap (v8.3 vs neve differ only
    in traps and page accesses) and the split of a hypercall's host time; those need
    the KVM-like rows, whose modes differ by many accesses (the minimal guest
    hypervisor's differ by one, within timing noise)."""
    hc = {r["mode"]: r for r in rows if r["benchmark"] == benchmark}
    out = {m: {"hypercalls_per_second": r["ops_per_second"], "us_per_hypercall": r["us_per_op"],
               "us_per_trap": r["us_per_trap"], "traps_per_op": r["traps_per_op"],
               "floor_ratio": r.get("floor_ratio")} for m, r in hc.items()}
    out["floor_us_per_trap_doc"] = DOC_FLOOR_US_PER_TRAP
    out["trap_floor_us"] = next((r["trap_floor_us"] for r in hc.values() if r.get("trap_floor_us")), None)
    if not fits:
        return out
    if "v8.3" in hc and "neve" in hc and hc["v8.3"]["us_per_op"] and hc["neve"]["us_per_op"]:
        dt = hc["v8.3"]["us_per_op"] - hc["neve"]["us_per_op"]
        dn = hc["v8.3"]["traps_per_op"] - hc["neve"]["traps_per_op"]
        if dn:
            out["marginal_us_per_trap"] = dt / dn
    if all(m in hc and hc[m]["us_per_op"] for m in NESTED):
        # Host time of a nested hypercall split into its parts, by solving
        #   us = a*T + b*(P+R) + c*S   over the v8.3, neve and nv2 rows.
        # Every access from vEL2 goes through a Python hook, trapping or not, so b is
        # the cost of a page access / redirect and a - b what trapping adds.
        a = [[Fraction(hc[m]["traps_per_op"]), Fraction(hc[m]["page_accesses_per_op"] + hc[m]["redirects_per_op"]),
              Fraction(hc[m]["switches_per_op"])] for m in NESTED]
        b = [Fraction(hc[m]["us_per_op"]) for m in NESTED]
        sol = solve3(a, b)
        if sol is not None and all(x > 0 for x in sol):     # timing noise can make the fit meaningless
            out["decomposition_us"] = {"per_trap": float(sol[0]), "per_page_access_or_redirect": float(sol[1]),
                                       "per_world_switch": float(sol[2]),
                                       "how": "exact fit of us/hypercall = a*traps + b*(page+redirect) + c*switches "
                                              "on the v8.3, neve and nv2 hypercall rows (host timing noise included)"}
    return out


def speed_summary(rows: list[dict]) -> dict:
    """host.counter_wait: per mode, the guest instructions of the operations (one
    repetition's), their host seconds and the instructions per host second."""
    return {r["mode"]: {"images": r["images"], "instructions": r["instructions_per_op"] * r["ops"],
                        "host_seconds": r["host_seconds"], "insns_per_second": r["insns_per_second"]}
            for r in rows}


# =============================================================================
# Output
# =============================================================================
CSV_FIELDS = ["benchmark", "mode", "ops", "traps_per_op", "traps_per_op_min", "traps_per_op_max", "emulated_per_op",
              "switches_per_op", "page_accesses_per_op", "redirects_per_op", "instructions_per_op",
              "modeled_cycles", "ratio_to_vm", "paper_cycles", "paper_ratio_to_vm", "paper_traps", "deterministic",
              "host_seconds", "ops_per_second", "us_per_op", "us_per_trap", "by_class", "by_register",
              "trap_floor_us", "floor_ratio"]


def write_csv(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (json.dumps(r[k], sort_keys=True) if k in ("by_class", "by_register") else
                            ("" if r.get(k) is None else r.get(k))) for k in CSV_FIELDS})


def write_png(path: str, rows: list[dict]) -> None:
    try:        # imported here, not at the top: only --png needs it, and it is slow to import
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BadInput("--png needs matplotlib (pip install 'neve[bench]')") from None
    benches = list(dict.fromkeys(r["benchmark"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    fig, axes = plt.subplots(len(benches), 2, figsize=(11, 3.6 * len(benches)), squeeze=False)
    for i, b in enumerate(benches):
        rs = {r["mode"]: r for r in rows if r["benchmark"] == b}
        ms = [m for m in modes if m in rs]
        xs = range(len(ms))
        ax = axes[i][0]
        vals = [rs[m]["traps_per_op"] for m in ms]
        bars = ax.bar(xs, vals, color="#4878a8")
        ax.bar_label(bars, labels=[str(v) for v in vals])
        paper = [rs[m].get("paper_traps") for m in ms]
        if any(p is not None for p in paper):
            ax.scatter([x for x, p in zip(xs, paper) if p is not None], [p for p in paper if p is not None],
                       marker="_", s=600, color="#c44e52", label="paper", zorder=3)
            ax.legend()
        ax.set_xticks(list(xs), ms)
        ax.set_title(f"{b}: traps per operation (median)")
        ax.set_ylabel("traps")
        ax = axes[i][1]
        w = 0.4
        mc = [rs[m]["modeled_cycles"] or 0 for m in ms]
        pc = [rs[m].get("paper_cycles") for m in ms]
        bars = ax.bar([x - w / 2 for x in xs], mc, width=w, color="#4878a8", label="modeled (cost model)")
        ax.bar_label(bars, labels=[f"{v:,}" for v in mc], fontsize=7)
        if any(p is not None for p in pc):
            bars = ax.bar([x + w / 2 for x, p in zip(xs, pc) if p is not None], [p for p in pc if p is not None],
                          width=w, color="#dd8452", label="paper")
            ax.bar_label(bars, labels=[f"{p:,}" for p in pc if p is not None], fontsize=7)
        ax.set_xticks(list(xs), ms)
        ax.set_yscale("log")
        ax.set_title(f"{b}: cycles per operation")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


# host[key] -> the label of its line in the console report (key: host_summary of a benchmark).
HOST_HYPERCALLS = {"hypercalls": "hypercalls", "hypercalls_minimal": "hypercalls, minimal guest hypervisor"}


def _fmt_us(us: float) -> str:
    return f"{us:,.0f}" if us >= 100 else f"{us:,.1f}"


def _fmt(v, spec=",.0f") -> str:
    if v is None:
        return "-"
    return format(v, spec)


def print_report(console, doc: dict, benches: dict[str, Benchmark]) -> None:
    from rich.table import Table        # imported here: every `neve` command imports this package
    rows = doc["rows"]
    if rows:
        t = Table(title="neve bench: microbenchmarks (counts per operation, median operation)", title_justify="left")
        for col, kw in [("benchmark", {}), ("mode", {}), ("ops", {"justify": "right"}),
                        ("traps/op", {"justify": "right"}), ("paper traps", {"justify": "right"}),
                        ("by class", {}), ("switch", {"justify": "right"}), ("page", {"justify": "right"}),
                        ("redir", {"justify": "right"}), ("insns", {"justify": "right"}),
                        ("modeled cycles", {"justify": "right"}), ("x vm", {"justify": "right"}),
                        ("paper cycles", {"justify": "right"}), ("paper x vm", {"justify": "right"}),
                        ("host us/op", {"justify": "right"}), ("ops/s", {"justify": "right"}),
                        ("us/trap", {"justify": "right"}), ("x floor", {"justify": "right"})]:
            t.add_column(col, **kw)
        for r in rows:
            t.add_row(r["benchmark"], r["mode"], str(r["ops"]), str(r["traps_per_op"]),
                      _fmt(r.get("paper_traps")),
                      ", ".join(f"{k} {v}" for k, v in r["by_class"].items()),
                      str(r["switches_per_op"]), str(r["page_accesses_per_op"]), str(r["redirects_per_op"]),
                      str(r["instructions_per_op"]), _fmt(r["modeled_cycles"]), _fmt(r["ratio_to_vm"], ",.1f"),
                      _fmt(r["paper_cycles"]), _fmt(r["paper_ratio_to_vm"], ",.1f"), _fmt(r["us_per_op"], ",.1f"),
                      _fmt(r["ops_per_second"], ",.0f"), _fmt(r["us_per_trap"], ",.1f"),
                      _fmt(r.get("floor_ratio"), ",.1f"))
        console.print(t)
        # Register breakdown of the median operation, one column per mode.
        for b in dict.fromkeys(r["benchmark"] for r in rows):
            rs = [r for r in rows if r["benchmark"] == b]
            regs = sorted({k for r in rs for k in r["by_register"]})
            if not regs or len(regs) > 120:
                continue
            t = Table(title=f"{b}: traps by register or instruction (median operation)", title_justify="left")
            t.add_column("register / instruction")
            for r in rs:
                t.add_column(r["mode"], justify="right")
            for k in regs:
                t.add_row(k, *[str(r["by_register"].get(k, "")) for r in rs])
            t.add_row("[b]total", *[f"[b]{r['traps_per_op']}" for r in rs])
            console.print(t)
        # Guest speed of the rows that report it (counter-wait).
        for b in dict.fromkeys(r["benchmark"] for r in rows if "insns_per_second" in r):
            t = Table(title=f"{b}: guest speed in the operations (host time)", title_justify="left")
            for col, kw in [("mode", {}), ("images", {}), ("guest instructions", {"justify": "right"}),
                            ("host s", {"justify": "right"}), ("M instr/s", {"justify": "right"})]:
                t.add_column(col, **kw)
            for r in rows:
                if r["benchmark"] == b:
                    t.add_row(r["mode"], " ".join(r["images"]), f"{r['instructions_per_op'] * r['ops']:,}",
                              f"{r['host_seconds']:,.3f}",
                              _fmt(r["insns_per_second"] / 1e6 if r["insns_per_second"] else None, ",.1f"))
            console.print(t)
    cm = doc.get("cost_model")
    if cm:
        p = cm["parameters"]
        console.print(f"[b]cost model[/b]: {cm['formula']}")
        console.print("  " + ", ".join(f"{k} = {p[k]:,.1f}" + (" (fitted)" if k in cm["fitted"] else " (fixed)")
                                       for k in ("C_trap", "C_emul", "C_switch", "C_page", "C_redirect", "C_insn")))
        console.print("  calibrated so that the vm, v8.3 and neve hypercalls cost the paper's 2,729 / 422,720 / "
                      "92,385 cycles; other rows are predictions")
        for w in cm["warnings"]:
            console.print(f"  [yellow]{w}")
    for s in doc.get("skipped", []):
        console.print(f"[dim]skipped {s['benchmark']} ({s['mode']}): {s['reason']}")
    host = doc.get("host", {})
    c = host.get("compute")
    if c:
        console.print(f"[b]compute[/b] ({c['loop_instructions']:,} loop instructions): neve vm "
                      f"{c['neve_vm']['insns_per_second'] / 1e6:,.1f} M instr/s; raw Unicorn "
                      f"{c['raw_unicorn']['insns_per_second'] / 1e6:,.1f} M instr/s (no hooks, the floor), "
                      f"{c['raw_unicorn_counted']['insns_per_second'] / 1e6:,.1f} M instr/s with a count limit; "
                      f"neve/raw = {c['neve_vs_raw']:.2f}; checksum {c['checksum']} "
                      f"{'matches the guest' if c['checksum_matches_guest'] else '[red]DIFFERS from the guest'}")
        s2 = c.get("neve_vm_smp2")
        if s2:
            console.print(f"[b]compute, --smp 2[/b] (compute2.elf, the loop on both CPUs): "
                          f"{s2['instructions']:,} instructions, {s2['insns_per_second'] / 1e6:,.1f} M instr/s")
    f = host.get("floor")
    if f:
        console.print(f"[b]trap floor[/b]: {f['us_per_trap']:.2f} us per MRS-hook trap here "
                      f"(unicorn-aarch64.md: ~{f['doc_us_per_trap']} us)")
    for key, label in HOST_HYPERCALLS.items():
        hs = host.get(key)
        if not hs:
            continue
        parts = [f"{m} {v['hypercalls_per_second']:,.0f}/s ({_fmt_us(v['us_per_hypercall'])} us, "
                 f"{v['traps_per_op']} trap{'' if v['traps_per_op'] == 1 else 's'}, "
                 f"{v['us_per_trap']:,.1f} us/trap"
                 + (f", {v['floor_ratio']:,.1f}x floor)" if v.get("floor_ratio") else ")")
                 for m, v in hs.items() if isinstance(v, dict) and v.get("hypercalls_per_second")]
        console.print(f"[b]{label}[/b]: " + "; ".join(parts))
        if "decomposition_us" in hs:
            d = hs["decomposition_us"]
            console.print(f"  host time of a nested hypercall split (fit on v8.3/neve/nv2): {d['per_trap']:.1f} us per "
                          f"trap, {d['per_page_access_or_redirect']:.1f} us per page access or redirect, "
                          f"{d['per_world_switch']:,.1f} us per world switch")
        elif "marginal_us_per_trap" in hs:
            console.print(f"  marginal host cost of one more trap (v8.3 vs neve): {hs['marginal_us_per_trap']:.1f} us")
    lb = host.get("linux_boot")
    if lb:
        t = Table(title=f"linux-boot: {lb['kernel']} + busybox initramfs to poweroff (host time; QEMU 10 TCG "
                        f"timed in the same run)", title_justify="left")
        for col in ("mode", "instructions", "traps", "traps by class", "host s", "M instr/s", "QEMU s",
                    "neve/QEMU"):
            t.add_column(col, justify="left" if col in ("mode", "traps by class") else "right")
        for mode, v in lb["modes"].items():
            by = ", ".join(f"{k} {n:,}" for k, n in sorted(v["traps_by_class"].items(), key=lambda kv: -kv[1]))
            t.add_row(mode, f"{v['instructions']:,}", f"{v['traps']:,}", by, f"{v['seconds']:,.1f}",
                      f"{v['minstr_per_s']:,.1f}", f"{v['qemu_seconds']:,.1f}", f"{v['ratio_to_qemu']:,.1f}x")
        console.print(t)
    su = host.get("startup")
    if su:
        for mode, v in su.items():
            console.print(f"[b]start-up[/b] ({mode}: {' '.join(v['images'])}): process start -> first guest "
                          f"instruction {v['process_to_first_insn'] * 1e3:,.0f} ms (interpreter "
                          f"{v['interpreter'] * 1e3:,.0f}, imports {v['imports'] * 1e3:,.0f}, ELF load with lief import "
                          f"{v['elf_load'] * 1e3:,.0f}); Machine construction -> first instruction "
                          f"{v['construction_to_first_insn'] * 1e3:,.1f} ms")
