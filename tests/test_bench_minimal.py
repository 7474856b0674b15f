"""The `hypercall-minimal` benchmark: firmware/minhyp serving the hypercalls of an EL1
kernel with one ESR_EL2 read and an ERET each, and what `neve bench` reports for it.

- What a hypercall costs in each nested mode is computed, not written down: the
  system-register accesses of minhyp's hypercall path are read from the image
  (its `guest_sync` handler up to the first ERET), the register table says which of
  them trap in each mode (`sysregs.vel2_access`), and `neve run --stats` must count
  exactly that per call, plus the guest's HVC and the handler's ERET.
- `neve bench --quick --benchmarks hypercall-minimal` (a child process, as a user
  types it) must report one row per mode whose counts are those of `neve run --stats`,
  with host time per hypercall and per trap and the ratio to the trap floor measured
  in the same run.  Host times are checked for type and consistency, never for value.

The transcript against QEMU at EL2 is tests/test_differential.py's (rows minhyp+...).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import IMAGES, one_line_error, quick_bench, run_neve
from neve.arch import decode, sysregs
from neve.arch.modes import MODES, NESTED_MODES, Access
from neve.bench.catalogue import BENCHMARKS, hypercall_window_of
from neve.bench.recorder import OpRecorder
from neve.bench.report import CSV_FIELDS
from neve.core import elf
from neve.observe import events as ev

MINHYP = IMAGES / "minhyp.elf"
GUEST = IMAGES / "hypercall1k.elf"          # the benchmark's guest
SHORT_GUEST = IMAGES / "hypercall.elf"      # the same loop, 32 calls

needs_images = pytest.mark.skipif(not all(p.exists() for p in (MINHYP, GUEST, SHORT_GUEST)),
                                  reason="images not built")

# The row keys of `neve bench` before this benchmark came, in their order: they stay,
# and the new ones follow them.
ROW_KEYS_BEFORE = ["benchmark", "mode", "base_mode", "images", "ops", "traps_per_op", "traps_per_op_min",
                   "traps_per_op_max", "emulated_per_op", "switches_per_op", "page_accesses_per_op",
                   "redirects_per_op", "instructions_per_op", "by_class", "by_register", "modeled_cycles",
                   "ratio_to_vm", "paper_cycles", "paper_traps", "paper_ratio_to_vm", "instructions",
                   "deterministic", "repetitions", "host_seconds", "host_run_seconds", "host_construct_seconds",
                   "ops_per_second", "us_per_op", "us_per_trap"]
ROW_KEYS_NEW = ["trap_floor_us", "floor_ratio"]


# =============================================================================
# The firmware: its hypercall path, and what the table makes of it per mode
# =============================================================================
def hypercall_path() -> tuple[list[tuple[str, bool]], int]:
    """The system-register accesses (name, write) minhyp makes on a hypercall, and the
    number of ERETs: its lower-EL synchronous handler, `guest_sync`, read straight
    down to its first ERET (the branches it skips are the exits: SYSTEM_OFF, errors)."""
    im = elf.load(MINHYP)
    pc = im.symbols["guest_sync"]
    data = {s.paddr: bytes(s.data) for s in im.segments}
    base = next(a for a, d in data.items() if a <= pc < a + len(d))
    code = data[base]
    accesses, erets = [], 0
    for off in range(pc - base, len(code), 4):
        k = decode.classify(int.from_bytes(code[off:off + 4], "little"))
        if k.kind in ("mrs", "msr"):
            row = sysregs.lookup(k.op0, k.op1, k.crn, k.crm, k.op2)
            assert row is not None, f"minhyp's hypercall path accesses an unknown register ({k})"
            accesses.append((row.name, k.kind == "msr"))
        assert k.kind not in ("hvc", "smc", "svc", "sys", "sysl"), f"unexpected {k.kind} on the hypercall path"
        if k.kind == "eret":
            erets += 1
            break
    return accesses, erets


def expected_call(mode: str) -> tuple[dict, dict, int]:
    """(by_class, sysreg by_register, page accesses + redirects) of one hypercall in
    `mode`, from the firmware and the register table.  The guest's HVC always traps
    to L0; the ERET at vEL2 traps in every nested mode (HCR_EL2.NV)."""
    accesses, erets = hypercall_path()
    trapping = [(n, w) for n, w in accesses if sysregs.vel2_access(n, w, mode) is Access.TRAP]
    absorbed = [(n, w) for n, w in accesses if sysregs.vel2_access(n, w, mode) in (Access.MEM, Access.REDIRECT)]
    by_class = {"hvc": 1, "eret": erets}
    if trapping:
        by_class["sysreg"] = len(trapping)
    by_reg = {f"{n}:{'w' if w else 'r'}": trapping.count((n, w)) for n, w in trapping}
    return by_class, by_reg, len(absorbed)


def test_the_hypercall_path_is_one_esr_read_and_an_eret():
    accesses, erets = hypercall_path()
    assert accesses == [("ESR_EL2", False)]
    assert erets == 1


def _stats(tmp_path: Path, mode: str, *images: Path) -> tuple[dict, str]:
    out = tmp_path / f"stats-{mode}.json"
    r = run_neve("run", "--mode", mode, "--stats", out, *images)
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr.decode(errors="replace")
    return json.loads(out.read_text()), r.stdout.decode()


@needs_images
@pytest.mark.parametrize("mode", NESTED_MODES)
def test_traps_per_hypercall_follow_the_table(tmp_path, mode):
    stats, transcript = _stats(tmp_path, mode, MINHYP, SHORT_GUEST)
    hc = stats["hypercalls"]
    # Every call the guest made (its own count) is one hypercall of L1's EL1 guest,
    # which minhyp runs as its host-kernel context (HCR_EL2 = RW, no VMID).
    assert "hypercall: 32 calls, all returned NOT_SUPPORTED" in transcript
    assert "after 32 hypercalls" in transcript
    assert hc["guest"] == "vEL1-host" and hc["count"] == 32
    by_class, by_reg, absorbed = expected_call(mode)
    n = sum(by_class.values())
    assert hc["traps_per_call"] == {"min": n, "median": n, "max": n}
    assert hc["median_call"]["by_class"] == by_class
    assert {k: v for k, v in hc["median_call"]["by_register"].items() if k.endswith((":r", ":w"))} == by_reg
    assert stats["page_accesses"] >= hc["count"] * absorbed


def test_the_modes_differ_where_the_table_says():
    """v8.3 traps the ESR_EL2 read; NEVE and NV2 redirect it (as the table has it)."""
    assert sum(expected_call("v8.3")[0].values()) == sum(expected_call("neve")[0].values()) + 1
    for mode in ("neve", "nv2"):
        assert expected_call(mode)[2] == 1


# =============================================================================
# neve bench
# =============================================================================
def test_registered_next_to_the_kvmlike_hypercall():
    names = list(BENCHMARKS)
    assert names.index("hypercall-minimal") == names.index("hypercall") + 1
    b = BENCHMARKS["hypercall-minimal"]
    assert b.window is not None and set(b.modes) == set(MODES)
    for mode in MODES:
        for quick in (False, True):     # --quick runs it (the default selection is every benchmark)
            assert all((IMAGES / i).exists() for i in b.images(mode, quick)), (mode, quick)
    assert b.images("v8.3", True)[0] == "minhyp.elf"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return quick_bench(tmp_path_factory.mktemp("bench-minimal"), "hypercall-minimal")


@pytest.fixture(scope="module")
def run_stats(tmp_path_factory):
    """`neve run --stats` of the benchmark's images in each mode."""
    tmp = tmp_path_factory.mktemp("stats-minimal")
    b = BENCHMARKS["hypercall-minimal"]
    return {m: _stats(tmp, m, *(IMAGES / i for i in b.images(m, True)))[0] for m in MODES}


@needs_images
def test_bench_rows_count_what_neve_run_counts(bench, run_stats):
    doc, _, _ = bench
    assert doc["errors"] == [] and doc["skipped"] == []
    rows = {r["mode"]: r for r in doc["rows"] if r["benchmark"] == "hypercall-minimal"}
    assert set(rows) == set(MODES)
    for mode, r in rows.items():
        hc = run_stats[mode]["hypercalls"]
        assert r["deterministic"] is True
        assert r["ops"] == hc["count"] > 0
        assert r["traps_per_op"] == r["traps_per_op_min"] == r["traps_per_op_max"] == hc["traps_per_call"]["median"]
        assert r["by_class"] == hc["median_call"]["by_class"]
        assert r["by_register"] == hc["median_call"]["by_register"]
    for mode in NESTED_MODES:
        by_class, _, absorbed = expected_call(mode)
        assert rows[mode]["traps_per_op"] == sum(by_class.values())
        assert rows[mode]["page_accesses_per_op"] + rows[mode]["redirects_per_op"] == absorbed
        assert rows[mode]["switches_per_op"] == 2                  # EL1 -> vEL2 -> EL1


@needs_images
def test_bench_host_fields(bench):
    doc, _, _ = bench
    floor = doc["host"]["floor"]["us_per_trap"]       # measured although not asked for
    assert isinstance(floor, float) and floor > 0
    summary = doc["host"]["hypercalls_minimal"]
    assert summary["trap_floor_us"] == floor
    assert "marginal_us_per_trap" not in summary and "decomposition_us" not in summary
    for r in doc["rows"]:
        assert list(r)[:len(ROW_KEYS_BEFORE)] == ROW_KEYS_BEFORE
        assert list(r)[len(ROW_KEYS_BEFORE):] == ["traps_ratio_to_vm", *ROW_KEYS_NEW]     # fill_ratios' key first
        assert r["trap_floor_us"] == floor
        for k in ("us_per_op", "us_per_trap", "floor_ratio"):
            assert isinstance(r[k], float) and r[k] > 0, (r["mode"], k)
        assert r["us_per_trap"] == pytest.approx(r["us_per_op"] / r["traps_per_op"])
        assert r["floor_ratio"] == pytest.approx(r["us_per_trap"] / floor)
        s = summary[r["mode"]]
        assert s["us_per_hypercall"] == r["us_per_op"] and s["us_per_trap"] == r["us_per_trap"]
        assert s["floor_ratio"] == r["floor_ratio"] and s["traps_per_op"] == r["traps_per_op"]


@needs_images
def test_bench_csv_and_table(bench):
    doc, cs, stdout = bench
    with open(cs, newline="") as f:
        rd = csv.DictReader(f)
        rows = list(rd)
    assert rd.fieldnames == CSV_FIELDS and CSV_FIELDS[-2:] == ROW_KEYS_NEW
    assert [(r["benchmark"], r["mode"]) for r in rows] == [(r["benchmark"], r["mode"]) for r in doc["rows"]]
    for r, j in zip(rows, doc["rows"]):
        assert float(r["floor_ratio"]) == pytest.approx(j["floor_ratio"])
    assert "x floor" in stdout and "trap floor" in stdout
    assert "hypercalls, minimal guest hypervisor" in stdout


@needs_images
def test_bench_bad_input_is_one_line(neve_in_process):
    for argv in (["--benchmarks", "hypercall-minimal,hypercall-minimum"],
                 ["--benchmarks", "hypercall-minimal", "--reps", "0"]):
        r = neve_in_process("bench", "--no-progress", *argv)
        assert r.returncode == 2, argv
        one_line_error(r)


# =============================================================================
# The window
# =============================================================================
class _Machine:
    def __init__(self) -> None:
        self.bus = ev.Bus()

    def icount(self) -> int:
        return 0

    def page_counts(self) -> tuple[int, int]:
        return (0, 0)


def test_window_counts_its_guests_calls_and_drops_cancelled_ones():
    m = _Machine()
    rec = OpRecorder(m)
    hypercall_window_of("vEL1-host")(m, rec)
    hvc = ev.Trap(seq=0, icount=0, pc=0, level="EL1", real_el=1, cls=ev.HVC, name="HVC #0x0", rw="", value=None,
                  insn=None, reason="", forwarded=True)
    for guest, phases in (("vEL1-host", ("begin", "end")), ("nested-VM", ("begin", "end")),
                          ("vEL1-host", ("begin", "cancel")), ("vEL1-host", ("begin", "end"))):
        m.bus.publish(ev.Hypercall(phases[0], 0, guest))
        m.bus.publish(hvc)
        m.bus.publish(ev.Hypercall(phases[1], 0, guest))
    assert [o.traps for o in rec.ops] == [1, 1]
    assert not rec.open
