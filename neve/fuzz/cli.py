"""`neve fuzz`: random kernels in every mode, on QEMU too, and a summary.

    neve fuzz [--runs N] [--seed S] [--jobs J] [--modes vm,v8.3,neve,nv2] [--qemu auto|yes|no]
              [--budget N] [--timeout S] [--corrupt N] [--out DIR] [--json FILE]
    neve fuzz --show SEED       one case: its slots, every transcript, the divergences
    neve fuzz --emit SEED FILE  write the case's image (to run it with neve run or QEMU)

Exit status: 0 when no run was a defect, 1 when one was, 2 for bad usage.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from neve.errors import BadInput
from neve.fuzz.case import HARNESS
from neve.fuzz.gen import generate
from neve.fuzz.run import MODES, QEMU_CPU, Options, qemu_available, run_case, run_neve
from neve.fuzz.known import KNOWN


def add_parser(sub) -> None:
    p = sub.add_parser("fuzz", help="random kernels in every mode and on QEMU (defects, divergences)")
    p.add_argument("--runs", type=int, default=100, help="kernels to generate (default 100)")
    p.add_argument("--seed", type=lambda s: int(s, 0), default=0, help="the first seed (default 0)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel workers (default: CPUs)")
    p.add_argument("--modes", default=",".join(MODES), help="modes to run (default: all four)")
    p.add_argument("--qemu", choices=("auto", "yes", "no"), default="auto",
                   help="compare with QEMU 10 (cortex-a72): auto = when qemu-system-aarch64 10.x is found")
    p.add_argument("--budget", type=int, default=2_000_000, help="instruction budget per run (default 2M)")
    p.add_argument("--timeout", type=float, default=20.0, help="neve's --timeout per run, s (default 20)")
    p.add_argument("--corrupt", type=int, default=0, metavar="N", help="also run N corrupted images")
    p.add_argument("--out", type=Path, help="keep the image and transcripts of every defect and divergence here")
    p.add_argument("--json", type=Path, help="write the summary (and every case's verdicts) as JSON")
    p.add_argument("--show", type=lambda s: int(s, 0), metavar="SEED", help="run one case and show everything")
    p.add_argument("--emit", nargs=2, metavar=("SEED", "FILE"), help="write one case's image and stop")
    p.add_argument("--harness", type=Path, default=None, help=f"the harness image (default {HARNESS})")
    p.set_defaults(func=main)


def _options(args, qemu: bool) -> Options:
    modes = tuple(m for m in args.modes.split(",") if m)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise BadInput(f"--modes: unknown mode {', '.join(bad) or '(none)'} (choose from {', '.join(MODES)})")
    if args.runs < 0 or args.jobs < 1 or args.budget < 1 or not 0 < args.timeout < float("inf"):
        raise BadInput("--runs, --jobs, --budget and --timeout must be positive (and --timeout finite)")
    harness = args.harness or HARNESS
    if not Path(harness).is_file():
        raise BadInput(f"harness image {harness} not found (build it: tools/build_firmware.py fuzz)")
    return Options(modes=modes, budget=args.budget, timeout=args.timeout, qemu=qemu, keep=args.out,
                   harness=args.harness)


def main(args) -> int:
    if args.emit:
        try:
            seed = int(args.emit[0], 0)
        except ValueError:
            raise BadInput(f"--emit: not a seed: {args.emit[0]!r}") from None
        case = generate(seed, args.harness)
        try:
            case.write(Path(args.emit[1]), *([args.harness] if args.harness else []))
        except OSError as e:
            raise BadInput(f"--emit: cannot write {args.emit[1]}: {e.strerror}") from None
        print(case.listing())
        return 0
    want_qemu = args.qemu == "yes" or (args.qemu == "auto" and qemu_available())
    if args.qemu == "yes" and not qemu_available():
        raise BadInput("--qemu yes: qemu-system-aarch64 10.x not found (set NEVE_QEMU)")
    opts = _options(args, want_qemu)
    if args.show is not None:
        return _show(args.show, opts)
    t0 = time.monotonic()
    seeds = list(range(args.seed, args.seed + args.runs))
    reports = _pool(_one_case, [(s, opts) for s in seeds], args.jobs)
    corrupt = _pool(_one_corrupt, [(args.seed + i, opts) for i in range(args.corrupt)], args.jobs) \
        if args.corrupt else []
    summary = summarise(reports, corrupt, time.monotonic() - t0, want_qemu)
    _print(summary)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "cases": reports, "corrupt": corrupt}, indent=1))
    return 1 if summary["defects"] else 0


def _pool(fn, items, jobs: int) -> list:
    if jobs == 1 or len(items) <= 1:
        return [fn(i) for i in items]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=ctx) as ex:
        return list(ex.map(fn, items, chunksize=1))


def _one_case(item) -> dict:
    seed, opts = item
    rep = run_case(seed, opts)
    return {
        "seed": seed,
        "runs": {m: {"status": r.status, "verdict": r.verdict, "why": r.why, "seconds": round(r.seconds, 3),
                     "rss_kb": r.rss_kb} for m, r in rep.runs.items()},
        "qemu": {k: q.verdict for k, q in rep.qemu.items()},
        "defects": rep.defects,
        "agreements": rep.agreements,
        "divergences": [{"mode": d.mode, "line": d.line, "neve": d.neve, "qemu": d.qemu, "slot": d.slot,
                         "what": d.what, "class": d.cls, "known": d.known} for d in rep.divergences],
    }


# --- corrupted images -----------------------------------------------------------------------
def corrupt_image(raw: bytes, rnd: random.Random) -> bytes:
    """An ELF image damaged where a loader looks: header, program headers, or its length."""
    b = bytearray(raw)
    k = rnd.random()
    if k < 0.15:
        return bytes(b[:rnd.randrange(len(b))])                      # truncated
    phoff = int.from_bytes(b[0x20:0x28], "little")
    for _ in range(rnd.randint(1, 6)):
        where = rnd.choice([rnd.randrange(0x40), phoff + rnd.randrange(0x38 * 2)])
        if where < len(b):
            b[where] = rnd.getrandbits(8) if rnd.random() < 0.7 else rnd.choice([0, 0xFF, 0x80, 0x7F])
    return bytes(b)


def _one_corrupt(item) -> dict:
    seed, opts = item
    rnd = random.Random(seed)
    case = generate(seed, opts.harness)
    with tempfile.TemporaryDirectory(prefix="neve-corrupt-") as d:
        tmp = Path(d)
        good = case.write(tmp / "good.elf", *([opts.harness] if opts.harness else []))
        bad = tmp / "bad.elf"
        bad.write_bytes(corrupt_image(good.read_bytes(), rnd))
        r = run_neve(bad, rnd.choice(opts.modes), opts, tmp)
    if r.status == 2 and r.verdict == "defect" and r.why.startswith("exit 2"):
        r.verdict, r.why = "bad-input", ""          # refused with one line: what it should do
    return {"seed": seed, "status": r.status, "verdict": r.verdict, "why": r.why}


# --- summary ----------------------------------------------------------------------------------
def summarise(reports: list[dict], corrupt: list[dict], seconds: float, qemu: bool) -> dict:
    verdicts: Counter = Counter()
    unsupported: Counter = Counter()
    defects = []
    classes: dict[str, dict] = {}
    agree = {"el1": 0, "el2": 0}
    compared = {"el1": 0, "el2": 0}
    kernels_agree = kernels_compared = kernels_explained = 0
    known: dict[str, dict] = {}
    for r in reports:
        for mode, run in r["runs"].items():
            verdicts[(mode, run["verdict"])] += 1
            if run["verdict"] == "unsupported":
                unsupported[run["why"]] += 1
        for d in r["defects"]:
            defects.append({"seed": r["seed"], "defect": d})
        for mode in r["agreements"]:
            agree["el1" if mode == "vm" else "el2"] += 1
        n_div = n_unexplained = 0
        for d in r["divergences"]:
            key = "el1" if d["mode"] == "vm" else "el2"
            compared[key] += 1
            n_div += 1
            if d["known"] is None:
                n_unexplained += 1
                c = classes.setdefault(d["class"], {"count": 0, "seeds": []})
            else:
                c = known.setdefault(d["known"], {"count": 0, "seeds": []})
            c["count"] += 1
            if len(c["seeds"]) < 5 and r["seed"] not in c["seeds"]:
                c["seeds"].append(r["seed"])
        if r["agreements"] or n_div:
            kernels_compared += 1
            kernels_agree += not n_div
            kernels_explained += not n_unexplained
    for k in compared:
        compared[k] += agree[k]
    for c in corrupt:
        if c["verdict"] == "defect":
            defects.append({"seed": c["seed"], "defect": f"corrupted image: {c['why']}"})
    return {
        "cases": len(reports), "runs": sum(len(r["runs"]) for r in reports), "corrupted": len(corrupt),
        "seconds": round(seconds, 1), "qemu": qemu,
        "verdicts": {f"{m} {v}": n for (m, v), n in sorted(verdicts.items())},
        "unsupported": dict(unsupported.most_common()),
        "defects": defects,
        "agreement": {
            "kernels_compared": kernels_compared, "kernels_agree": kernels_agree,
            "rate": round(kernels_agree / kernels_compared, 4) if kernels_compared else None,
            "kernels_agree_or_explained": kernels_explained,
            "runs_el1": [agree["el1"], compared["el1"]], "runs_el2": [agree["el2"], compared["el2"]],
        },
        "divergence_classes": dict(sorted(classes.items(), key=lambda kv: -kv[1]["count"])),
        "known_divergences": dict(sorted(known.items(), key=lambda kv: -kv[1]["count"])),
        "corrupt_verdicts": dict(Counter(c["verdict"] for c in corrupt)),
    }


def _print(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    con = Console(file=sys.stdout, width=120)
    con.print(f"neve fuzz: {s['cases']} kernels, {s['runs']} runs, {s['corrupted']} corrupted images, "
              f"{s['seconds']} s; QEMU {'compared' if s['qemu'] else 'not used'}")
    t = Table("mode", "verdict", "runs", title="verdicts")
    for k, n in s["verdicts"].items():
        m, v = k.split(" ", 1)
        t.add_row(m, v, str(n))
    con.print(t)
    if s["unsupported"]:
        t = Table("runs", "unsupported: what", title="unsupported (exit 125, clean)")
        for w, n in list(s["unsupported"].items())[:15]:
            t.add_row(str(n), w)
        con.print(t)
    a = s["agreement"]
    if s["qemu"]:
        rate = f"{100 * a['rate']:.1f} %" if a["rate"] is not None else "-"
        con.print(f"QEMU agreement: {a['kernels_agree']} of {a['kernels_compared']} kernels that completed on both "
                  f"({rate}); runs: vm {a['runs_el1'][0]}/{a['runs_el1'][1]}, "
                  f"nested {a['runs_el2'][0]}/{a['runs_el2'][1]}")
        con.print(f"  of the others, {a['kernels_agree_or_explained'] - a['kernels_agree']} diverge only in known "
                  f"classes (neve/fuzz/known.py)")
        if s["known_divergences"]:
            who = {k.name: k.who for k in KNOWN}
            t = Table("runs", "known divergence", "departs from the Arm ARM", "seeds", title="known divergences")
            for c, d in s["known_divergences"].items():
                t.add_row(str(d["count"]), c, who.get(c, "?"), " ".join(f"{x:#x}" for x in d["seeds"]))
            con.print(t)
        if s["divergence_classes"]:
            t = Table("runs", "first divergence: class", "seeds", title="unexplained divergences")
            for c, d in list(s["divergence_classes"].items())[:25]:
                t.add_row(str(d["count"]), c[:90], " ".join(f"{x:#x}" for x in d["seeds"]))
            con.print(t)
    if s["corrupt_verdicts"]:
        con.print("corrupted images: " + ", ".join(f"{v} {n}" for v, n in s["corrupt_verdicts"].items()))
    if s["defects"]:
        t = Table("seed", "defect", title=f"{len(s['defects'])} DEFECTS")
        for d in s["defects"][:40]:
            t.add_row(f"{d['seed']:#x}", d["defect"][:100])
        con.print(t)
    else:
        con.print("no defect")


def _show(seed: int, opts: Options) -> int:
    rep = run_case(seed, opts)
    print(rep.listing)
    for m, r in rep.runs.items():
        print(f"== neve {m}: exit {r.status}, {r.verdict} {r.why} ({r.seconds:.2f} s, {r.rss_kb // 1024} MiB)")
        print(r.out, end="" if r.out.endswith("\n") else "\n")
        if r.err.strip():
            print(f"   stderr: {r.err.strip()}")
    for k, q in rep.qemu.items():
        print(f"== QEMU {QEMU_CPU} at {k.upper()}: {q.verdict} ({q.seconds:.2f} s)")
        print(q.out, end="" if q.out.endswith("\n") else "\n")
    for d in rep.defects:
        print(f"DEFECT: {d}")
    for d in rep.divergences:
        known = f" [known: {d.known}]" if d.known else ""
        print(f"DIVERGENCE {d.mode} line {d.line}, slot {d.slot} ({d.what}){known}:\n   neve: {d.neve}\n"
              f"   QEMU: {d.qemu}")
    if rep.agreements:
        print(f"agree with QEMU: {', '.join(rep.agreements)}")
    return 1 if rep.defects else 0

