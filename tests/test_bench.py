"""`neve bench`: the paper's hypercall row, its outputs, and deterministic counts.

Runs `neve bench --quick --benchmarks hypercall` twice in child processes (the
command line as a user types it) and checks the JSON schema, that the trap counts
come out of execution (vm 1, v8.3 132, neve 15, nv2 22 per hypercall), that two runs
give identical counts, that the CSV has the same rows and that the PNG is a PNG
(only that test needs matplotlib: without it the runs leave --png out).  Host times
are only checked for type, never for value.  Also unit tests of the package's parts:
the OpRecorder, the exact solver, the --images default and the modules' layering.
"""
from __future__ import annotations

import argparse
import ast
import csv
import importlib.util
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from neve.bench import cli as bench_cli
from neve.bench.costmodel import solve3
from neve.bench.recorder import OpRecorder
from neve.observe import events as ev

ROOT = Path(__file__).resolve().parent.parent
IMAGES = Path(os.environ.get("NEVE_BENCH_IMAGES", ROOT / "images"))   # override for local runs

EXPECTED_TRAPS = {"vm": 1, "v8.3": 132, "neve": 15, "nv2": 22}
PAPER = {"vm": 2729, "v8.3": 422720, "neve": 92385}

# What must not change between two runs (everything except host time).
COUNT_KEYS = ("benchmark", "mode", "ops", "traps_per_op", "traps_per_op_min", "traps_per_op_max",
              "emulated_per_op", "switches_per_op", "page_accesses_per_op", "redirects_per_op",
              "instructions_per_op", "by_class", "by_register", "modeled_cycles", "ratio_to_vm", "instructions")

needs_images = pytest.mark.skipif(
    not all((IMAGES / n).exists() for n in ("hypercall.elf", "kvmlike.elf")), reason="images not built")

# --png needs matplotlib (exit status 2 without it); the counts do not.
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def _bench(tmp: Path, tag: str) -> tuple[dict, Path, Path]:
    js, cs, png = tmp / f"{tag}.json", tmp / f"{tag}.csv", tmp / f"{tag}.png"
    plot = ["--png", str(png)] if HAVE_MATPLOTLIB else []
    p = subprocess.run([sys.executable, "-m", "neve", "bench", "--quick", "--benchmarks", "hypercall",
                        "--images", str(IMAGES), "--json", str(js), "--csv", str(cs), *plot, "--no-progress"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(js.read_text()), cs, png


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    return _bench(tmp, "a"), _bench(tmp, "b")


def _rows(doc: dict) -> dict[str, dict]:
    return {r["mode"]: r for r in doc["rows"] if r["benchmark"] == "hypercall"}


@needs_images
def test_schema(two_runs):
    (doc, _, _), _ = two_runs
    assert set(doc) >= {"rows", "skipped", "errors", "cost_model", "host"}
    assert doc["errors"] == []
    rows = _rows(doc)
    assert set(rows) == set(EXPECTED_TRAPS)
    for mode, r in rows.items():
        for k in ("benchmark", "mode", "ops", "traps_per_op", "modeled_cycles", "by_class", "by_register",
                  "ratio_to_vm", "paper_cycles", "host_seconds"):
            assert k in r, (mode, k)
        assert isinstance(r["ops"], int) and r["ops"] == 32
        assert isinstance(r["modeled_cycles"], int)
        assert isinstance(r["host_seconds"], float)
        assert r["deterministic"] is True
        assert all(isinstance(v, int) for v in r["by_class"].values())
        assert all(isinstance(v, int) for v in r["by_register"].values())
        assert r["paper_cycles"] == PAPER.get(mode)


@needs_images
def test_counts_come_from_execution(two_runs):
    (doc, _, _), _ = two_runs
    rows = _rows(doc)
    for mode, n in EXPECTED_TRAPS.items():
        r = rows[mode]
        assert type(r["traps_per_op"]) is int and r["traps_per_op"] == n, mode
        assert r["traps_per_op_min"] == r["traps_per_op_max"] == n, mode
        assert sum(r["by_class"].values()) == n
        assert sum(r["by_register"].values()) == n
    assert rows["vm"]["by_class"] == {"hvc": 1}
    assert rows["v8.3"]["by_class"] == {"eret": 2, "hvc": 2, "sysreg": 128}
    # NEVE and NV2 turn the remaining accesses into page accesses / redirects.
    assert rows["v8.3"]["page_accesses_per_op"] == 0
    assert rows["neve"]["page_accesses_per_op"] > 0 and rows["nv2"]["page_accesses_per_op"] > 0
    for mode in ("v8.3", "neve", "nv2"):
        assert rows[mode]["switches_per_op"] == 4        # L2 -> vEL2 -> vEL1 host -> vEL2 -> L2


@needs_images
def test_cost_model_reproduces_calibration(two_runs):
    (doc, _, _), _ = two_runs
    cm = doc["cost_model"]
    assert cm["warnings"] == []
    assert set(cm["parameters"]) >= {"C_trap", "C_emul", "C_switch", "C_page", "C_insn"}
    assert all(v >= 0 for v in cm["parameters"].values())
    rows = _rows(doc)
    for mode, cycles in PAPER.items():
        assert abs(rows[mode]["modeled_cycles"] - cycles) <= 1, mode
    # nv2 is a prediction: between NEVE and v8.3.
    assert PAPER["neve"] < rows["nv2"]["modeled_cycles"] < PAPER["v8.3"]
    assert rows["vm"]["ratio_to_vm"] == 1.0


@needs_images
def test_counts_are_deterministic(two_runs):
    (a, _, _), (b, _, _) = two_runs
    ra, rb = _rows(a), _rows(b)
    for mode in EXPECTED_TRAPS:
        assert {k: ra[mode][k] for k in COUNT_KEYS} == {k: rb[mode][k] for k in COUNT_KEYS}, mode
    assert a["cost_model"]["parameters"] == b["cost_model"]["parameters"]


@needs_images
def test_csv_has_the_same_rows(two_runs):
    (doc, cs, _), _ = two_runs
    with open(cs, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["benchmark"], r["mode"]) for r in rows] == [(r["benchmark"], r["mode"]) for r in doc["rows"]]
    for r, j in zip(rows, doc["rows"]):
        assert int(r["ops"]) == j["ops"]
        assert float(r["traps_per_op"]) == j["traps_per_op"]
        assert int(r["modeled_cycles"]) == j["modeled_cycles"]
        assert json.loads(r["by_register"]) == j["by_register"]


@needs_images
def test_png_is_a_png(two_runs):
    pytest.importorskip("matplotlib")
    (_, _, png), _ = two_runs
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


@needs_images
def test_bad_options_are_refused():
    for argv in (["--benchmarks", "nosuch"], ["--modes", "v9"], ["--cost", "C_trap=5"],
                 ["--images", str(ROOT / "no-such-dir")], ["--policy", str(ROOT / "no-such-policy.toml")]):
        p = subprocess.run([sys.executable, "-m", "neve", "bench", *argv], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 2, (argv, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr


@pytest.fixture(scope="module")
def device_and_irq_rows(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench-io-irq")
    out = tmp / "b.json"
    p = subprocess.run([sys.executable, "-m", "neve", "bench", "--quick", "--no-progress",
                        "--benchmarks", "device-io,virtual-eoi,timer-interrupt", "--json", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    return {(r["benchmark"], r["mode"]): r for r in rows if "traps_per_op" in r}


@needs_images
def test_virtual_eoi_costs_no_trap(device_and_irq_rows):
    """Shadow list registers: the nested VM acknowledges and EOIs a virtual interrupt
    without a single trap, in every mode (issue 6)."""
    for mode in ("vm", "v8.3", "neve", "nv2"):
        r = device_and_irq_rows[("virtual-eoi", mode)]
        assert r["ops"] >= 16 and r["traps_per_op"] == 0, (mode, r)


@needs_images
def test_device_io_traps_per_access(device_and_irq_rows):
    """One MMIO read: one trap for the VM; nested, the forwarded stage-2 abort plus
    L1's world switch (the hypercall path with FAR/HPFAR reads and no VTTBR read)."""
    rows = device_and_irq_rows
    assert rows[("device-io", "vm")]["traps_per_op"] == 1
    assert rows[("device-io", "vm")]["by_class"] == {"mmio": 1}
    assert rows[("device-io", "v8.3")]["traps_per_op"] == 133
    assert rows[("device-io", "nv2")]["traps_per_op"] == 23
    assert rows[("device-io", "neve")]["traps_per_op"] == 16
    for mode in ("v8.3", "neve", "nv2"):
        assert rows[("device-io", mode)]["by_class"]["abort"] == 1


@needs_images
def test_timer_interrupt_rows(device_and_irq_rows):
    rows = device_and_irq_rows
    assert rows[("timer-interrupt", "vm")]["traps_per_op"] == 1
    assert rows[("timer-interrupt", "vm")]["by_class"] == {"irq": 1}
    for mode in ("v8.3", "neve", "nv2"):
        r = rows[("timer-interrupt", mode)]
        assert r["ops"] == 10 and r["by_class"]["irq"] >= 1 and r["by_class"]["eret"] == 2
    assert rows[("timer-interrupt", "v8.3")]["traps_per_op"] > rows[("timer-interrupt", "nv2")]["traps_per_op"] \
        > rows[("timer-interrupt", "neve")]["traps_per_op"]


# =============================================================================
# The package's parts (no images needed)
# =============================================================================
def test_images_default_is_the_repositorys_images_dir():
    """neve/bench/ is a package: --images must still default to <repository>/images."""
    p = argparse.ArgumentParser()
    bench_cli.add_parser(p.add_subparsers(dest="cmd"))
    args = p.parse_args(["bench"])
    assert Path(args.images) == ROOT / "images"
    assert args.func is bench_cli.cmd_bench


class _Machine:
    def __init__(self) -> None:
        self.bus = ev.Bus()
        self.n = 0
        self.pages = (0, 0)

    def icount(self) -> int:
        return self.n

    def page_counts(self) -> tuple[int, int]:
        return self.pages


def _trap(cls=ev.SYSREG, name="HCR_EL2", rw="r", level="vEL2", forwarded=False) -> ev.Trap:
    return ev.Trap(seq=0, icount=0, pc=0, level=level, real_el=1, cls=cls, name=name, rw=rw, forwarded=forwarded)


def test_op_recorder_counts_between_begin_and_end():
    m = _Machine()
    m.pages = (5, 2)                                    # vEL2's page accesses / redirects so far
    rec = OpRecorder(m)
    m.bus.publish(_trap())                              # no operation open: not counted
    opening = _trap(ev.HVC, "HVC #0", "", level="EL1")
    rec.begin()
    rec.add_trap(opening)                               # what a window does with the trap that opened it
    m.bus.publish(_trap())
    m.bus.publish(_trap(ev.ABORT, "DABT", "r", level="EL1", forwarded=True))
    m.bus.publish(ev.Switch(icount=0, src="vEL2", dst="EL1", pc=0, why="eret"))
    m.pages = (6, 3)                                    # one page access, one redirect
    m.n = 7
    rec.end()
    m.bus.publish(_trap())                              # closed again: not counted
    assert not rec.open and len(rec.ops) == 1
    op = rec.ops[0]
    assert (op.traps, op.emulated, op.switches, op.pages, op.redirects, op.instructions) == (3, 2, 1, 1, 1, 7)
    assert op.by_class == {ev.HVC: 1, ev.SYSREG: 1, ev.ABORT: 1}
    assert op.by_register == {"HVC #0": 1, "HCR_EL2:r": 1, "DABT": 1}


def test_solve3_is_exact():
    a = [[Fraction(1), Fraction(0), Fraction(0)], [Fraction(132), Fraction(130), Fraction(4)],
         [Fraction(15), Fraction(13), Fraction(4)]]
    x = [Fraction(2729), Fraction(1, 3), Fraction(-5)]
    b = [sum(r[i] * x[i] for i in range(3)) for r in a]
    assert solve3(a, b) == x
    assert solve3([[Fraction(1)] * 3] * 3, [Fraction(1)] * 3) is None


BENCH_MODULES = ("recorder", "catalogue", "runner", "costmodel", "probes", "boot", "report", "cli")


def test_bench_modules_import_only_modules_below_them():
    """No import circle inside neve/bench/: each module imports only ones listed
    before it in BENCH_MODULES, and only at the top."""
    pkg = ROOT / "neve" / "bench"
    assert {p.stem for p in pkg.glob("*.py")} == {"__init__", *BENCH_MODULES}
    assert ast.parse((pkg / "__init__.py").read_text()).body[1:] == []    # a docstring, nothing else
    for i, name in enumerate(BENCH_MODULES):
        tree = ast.parse((pkg / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("neve.bench"):
                target = node.module.removeprefix("neve.bench").lstrip(".")
                assert target in BENCH_MODULES[:i], (name, node.module)
                assert node in tree.body, (name, "imports", node.module, "inside a function")
            if isinstance(node, ast.ImportFrom) and node.module == "neve" and any(a.name == "bench" for a in node.names) \
                    or isinstance(node, ast.Import) and any(a.name.startswith("neve.bench") for a in node.names):
                pytest.fail(f"{name}: import of the bench package by another spelling")
