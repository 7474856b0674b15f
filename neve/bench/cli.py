"""`neve bench`: the paper's microbenchmark table, and host-speed figures.

    neve bench [--quick] [--benchmarks a,b] [--modes m1,m2] [--policy FILE.toml]
               [--json FILE] [--csv FILE] [--png FILE] [--reps N] [--cost NAME=VALUE ...]

Two kinds of measurement, kept apart:

* **Counts** (traps, world switches, NEVE/VNCR page accesses, guest instructions per
  operation) come from what the guest executed, through the machine's event bus.  They
  are deterministic: every repetition must give the same counts, and the JSON says
  whether they did (``"deterministic"``).
* **Host time** (seconds, operations/s, microseconds per trap, start-up time) is what
  this Python host took.  It is reported, never asserted: it depends on the machine.

The package, bottom up: recorder.py (what one operation executed), catalogue.py (the
microbenchmarks and what one operation is), runner.py (running a row), costmodel.py
(modeled cycles, calibrated on the paper's hypercall figures), probes.py (host
figures), boot.py (the Linux boot row, next to QEMU), report.py (rows, JSON/CSV/PNG and the console table), and this command.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from neve.bench.boot import GUESTS, guest_files, probe_linux_boot
from neve.bench.catalogue import BENCHMARKS, IMAGES, MODES
from neve.bench.costmodel import FITTED, FIXED_DEFAULTS, CostModel
from neve.bench.probes import HOST_PROBES, probe_compute, probe_floor, probe_startup
from neve.bench.recorder import median_op
from neve.bench.report import (fill_floor, fill_ratios, host_summary, print_report, row_dict, speed_summary,
                               write_csv, write_png)
from neve.bench.runner import RowRun, resolve, run_row
from neve.el2 import policy as pol_mod
from neve.errors import BadInput


# =============================================================================
# The command
# =============================================================================
def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run the microbenchmarks and host-speed probes (the paper's table)",
                       description=__doc__.split("\n\n")[0])
    names = ", ".join([*BENCHMARKS, *HOST_PROBES, LINUX_BOOT])
    p.add_argument("--quick", action="store_true", help="short images and one repetition")
    p.add_argument("--benchmarks", metavar="A,B", help=f"what to run (default all: {names})")
    p.add_argument("--modes", metavar="M1,M2", help=f"modes for the table (default {','.join(MODES)})")
    p.add_argument("--policy", metavar="FILE.toml", help="also run the nested benchmarks under this register policy")
    p.add_argument("--reps", type=int, metavar="N", help="timed repetitions (default 3, 1 with --quick)")
    p.add_argument("--images", metavar="DIR", default=str(IMAGES), help="image directory (default images/)")
    p.add_argument("--guests", metavar="DIR", default=str(GUESTS),
                   help="the kernel and initrd of the linux-boot row (default guests/, from tools/guests.sh)")
    p.add_argument("--cost", action="append", default=[], metavar="NAME=VALUE",
                   help=f"override a fixed cost-model parameter ({', '.join(FIXED_DEFAULTS)})")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--csv", metavar="FILE", help="write the table as CSV")
    p.add_argument("--png", metavar="FILE", help="write a bar chart (matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=cmd_bench)


# The Linux boot row (neve/bench/boot.py): part of a full run when tools/guests.sh has
# fetched the kernel; --quick runs it only when named in --benchmarks.
LINUX_BOOT = "linux-boot"


def _split(s: str | None, allowed, what: str) -> list[str] | None:
    if not s:
        return None
    out = [x.strip() for x in s.split(",") if x.strip()]
    bad = [x for x in out if x not in allowed]
    if bad:
        raise BadInput(f"unknown {what} {', '.join(bad)} (choose from {', '.join(allowed)})")
    return out


def cmd_bench(args) -> int:
    # rich is imported here, not at the top: every `neve` command imports this module.
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress, BarColumn, TextColumn, TimeElapsedColumn
    err = Console(stderr=True)
    out = Console()
    named = _split(args.benchmarks, [*BENCHMARKS, *HOST_PROBES, LINUX_BOOT], "benchmark")
    # Rows that boot Linux (linux-boot, and those with Benchmark.boot) are part of a full
    # run; --quick runs them only when named.
    selected = named or [*(n for n, b in BENCHMARKS.items() if not (args.quick and b.boot)), *HOST_PROBES,
                         *([] if args.quick else [LINUX_BOOT])]
    modes = _split(args.modes, MODES, "mode") or list(MODES)
    reps = args.reps if args.reps is not None else (1 if args.quick else 3)
    if reps < 1:
        raise BadInput("--reps must be at least 1")
    images_dir = Path(args.images)
    if not images_dir.is_dir():
        raise BadInput(f"--images {args.images}: no such directory")
    fixed = dict(FIXED_DEFAULTS)
    for kv in args.cost:
        k, _, v = kv.partition("=")
        if k not in fixed:
            raise BadInput(f"--cost {kv}: {k} is not a fixed parameter ({', '.join(fixed)}); "
                           f"{', '.join(FITTED)} are calibrated")
        try:
            fixed[k] = float(v)
        except ValueError:
            raise BadInput(f"--cost {kv}: not a number") from None
    policy = None
    if args.policy:
        policy = pol_mod.load(args.policy)          # a missing or invalid policy: BadInput
    for path in (args.json, args.csv, args.png):
        if path:
            try:
                open(path, "a").close()
            except OSError as e:
                raise BadInput(f"{path}: {e.strerror}") from None

    # Plan the work.
    plan, skipped = [], []
    for name in selected:
        b = BENCHMARKS.get(name)
        if b is None:
            continue
        if b.window is None:
            skipped.append({"benchmark": name, "mode": ",".join(m for m in modes if m in b.modes),
                            "reason": f"what one operation is is not defined yet (comes with {b.pending})"})
            continue
        targets = [(m, m, None) for m in modes if m in b.modes]
        if policy is not None and policy.base in b.modes:
            targets.append((f"policy:{policy.name}", policy.base, policy))
        for label, mode, pol in targets:
            if b.boot is not None:
                paths = [Path(args.guests) / n for n in b.boot[:2]]
            else:
                paths = [resolve(i, images_dir) for i in b.images(mode, args.quick)]
            missing = [p for p in paths if not p.exists()]
            if missing:
                if b.boot is not None:
                    why = f"{', '.join(str(p) for p in missing)} missing (run tools/guests.sh)"
                else:
                    why = f"{', '.join(p.name for p in missing)} not built yet" + \
                        (f" (comes with {b.pending})" if b.pending else "")
                skipped.append({"benchmark": name, "mode": label, "reason": why})
                continue
            plan.append((b, label, mode, paths, pol))
    probes = [n for n in selected if n in HOST_PROBES]
    boot = LINUX_BOOT in selected
    if boot:
        files = guest_files(Path(args.guests))
        if isinstance(files, str):
            if named:
                raise BadInput(f"--benchmarks {LINUX_BOOT}: {files}")
            skipped.append({"benchmark": LINUX_BOOT, "mode": ",".join(modes), "reason": files})
            boot = False
    if plan and "floor" not in probes:
        # The rows' floor_ratio compares their host time per trap with the trap
        # floor, measured in the same run.
        probes.insert(0, "floor")
    need_calib = "hypercall" in BENCHMARKS and bool(plan)   # only rows need modeled cycles
    steps = len(plan) * reps + (reps * 2 if "compute" in probes else 0) + (reps if "floor" in probes else 0) + \
        (reps * 2 if "startup" in probes else 0) + (reps * len(modes) if boot else 0) + 3

    runs: list[RowRun] = []
    errors: list[dict] = []
    host: dict = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, disable=args.no_progress, transient=True) as prog:
        task = prog.add_task("bench", total=steps)

        def tick():
            prog.advance(task)
        for b, label, mode, paths, pol in plan:
            prog.update(task, description=f"{b.name} / {label}")
            try:
                runs.append(run_row(b, mode, paths, reps, pol, label, tick))
            except Exception as e:  # one broken row must not lose the others
                errors.append({"benchmark": b.name, "mode": label, "error": str(e)})
                err.print(f"[red]neve bench: {b.name} ({label}) failed: {escape(str(e))}")
        # Calibrate the cost model on the hypercall benchmark (vm, v8.3, neve).
        model = None
        if need_calib:
            prog.update(task, description="cost model calibration")
            hb = BENCHMARKS["hypercall"]
            calib_ops = {}
            for m in ("vm", "v8.3", "neve"):
                r = next((x for x in runs if x.benchmark == "hypercall" and x.mode == m), None)
                if r is None:
                    paths = [resolve(i, images_dir) for i in hb.images(m, True)]
                    try:
                        r = run_row(hb, m, paths, 1)
                    except Exception as e:
                        err.print(f"[red]neve bench: cost-model calibration run ({m}) failed: {escape(str(e))}")
                        r = None
                tick()
                op = median_op(r.ops) if r else None
                if op is not None:
                    calib_ops[m] = op
            if len(calib_ops) == 3:
                model = CostModel.calibrate(calib_ops, fixed)
        for name in probes:
            prog.update(task, description=f"host: {name}")
            try:
                if name == "compute":
                    host["compute"] = probe_compute(images_dir, reps, tick)
                elif name == "floor":
                    host["floor"] = probe_floor(reps, tick=tick)
                elif name == "startup":
                    host["startup"] = probe_startup(images_dir, reps, tick)
            except Exception as e:
                errors.append({"benchmark": name, "mode": "host", "error": str(e)})
                err.print(f"[red]neve bench: {name} failed: {escape(str(e))}")
        if boot:
            prog.update(task, description=f"{LINUX_BOOT}: Debian's kernel to poweroff, neve and QEMU")
            try:
                host["linux_boot"] = probe_linux_boot(modes, reps, tick, Path(args.guests))
            except Exception as e:
                errors.append({"benchmark": LINUX_BOOT, "mode": ",".join(modes), "error": str(e)})
                err.print(f"[red]neve bench: {LINUX_BOOT} failed: {escape(str(e))}")

    for r in [r for r in runs if not r.ops]:
        runs.remove(r)
        skipped.append({"benchmark": r.benchmark, "mode": r.mode,
                        "reason": "the run completed but no operation was observed (window never opened)"})
    floor_us = host["floor"]["us_per_trap"] if "floor" in host else None
    rows = [row_dict(r, BENCHMARKS[r.benchmark], model) for r in runs]
    fill_ratios(rows)
    fill_floor(rows, floor_us)
    for key, bench, fits in (("hypercalls", "hypercall", True), ("hypercalls_minimal", "hypercall-minimal", False)):
        if any(r["benchmark"] == bench for r in rows):
            host[key] = host_summary(rows, bench, fits)
    if any(r["benchmark"] == "counter-wait" for r in rows):
        host["counter_wait"] = speed_summary([r for r in rows if r["benchmark"] == "counter-wait"])
    for r in rows:
        if not r["deterministic"]:
            err.print(f"[red]neve bench: {r['benchmark']} ({r['mode']}): counts differ between repetitions")
    doc = {
        "schema": 1,
        "quick": bool(args.quick),
        "repetitions": reps,
        "rows": rows,
        "skipped": skipped,
        "errors": errors,
        "cost_model": model.describe() if model else None,
        "host": host,
        "machine": {"python": sys.version.split()[0], "platform": sys.platform, "cpus": os.cpu_count()},
    }
    print_report(out, doc, BENCHMARKS)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    if args.csv:
        write_csv(args.csv, rows)
    if args.png:
        write_png(args.png, rows)
    return 1 if errors or any(not r["deterministic"] for r in rows) else 0
