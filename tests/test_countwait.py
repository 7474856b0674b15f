"""firmware/countwait (a CNTVCT_EL0 busy-wait, Linux's udelay) and the `counter-wait`
benchmark of `neve bench`.

- How long the wait runs is computed, not written down: the loop is read from the
  image (`counter_wait` up to `counter_wait_done`: where the counter is read, where
  the loop starts, how long it is), the number of ticks to wait is what the guest
  computed from CNTFRQ_EL0 (counter_wait's argument), and neve's virtual counter
  counts instructions.  So the wait must take exactly the instructions that first
  reach the deadline, in vm mode and as kvmlike's nested VM.
- The same run with the compiled fast path (counter reads answered in C) and without
  it (NEVE_FASTPATH=0: every read in Python): same transcript, exit, instruction
  count, virtual time and wait.
- `neve bench --quick --benchmarks counter-wait` (a child process, as a user types
  it): one row per mode, counts equal to the above, the speed fields consistent with
  the row's host time.  Host times are checked for type and consistency, never for
  value.

The transcript against QEMU is tests/test_differential.py's (rows countwait...).
"""
from __future__ import annotations

import csv
import re

import pytest
from unicorn import UC_HOOK_CODE
from unicorn import arm64_const as A

from conftest import IMAGES, one_line_error, quick_bench
from neve.arch import decode, sysregs
from neve.arch.modes import MODES, NESTED_MODES
from neve.bench.catalogue import BENCHMARKS, symbol_window
from neve.bench.recorder import OpRecorder
from neve.core import elf, fastpath
from neve.core.machine import Machine
from neve.devices.timer import CNTFRQ

COUNTWAIT, COUNTWAIT10, KVMLIKE = IMAGES / "countwait.elf", IMAGES / "countwait10.elf", IMAGES / "kvmlike.elf"

needs_images = pytest.mark.skipif(not all(p.exists() for p in (COUNTWAIT, COUNTWAIT10, KVMLIKE)),
                                  reason="images not built")
pytestmark = needs_images


# =============================================================================
# The loop, read from the image
# =============================================================================
def wait_code(path) -> tuple[int, list[int]]:
    """counter_wait's address and its instruction words up to (not including)
    counter_wait_done."""
    im = elf.load(path)
    a, b = im.symbols["counter_wait"], im.symbols["counter_wait_done"]
    seg = next(s for s in im.segments if s.paddr <= a and b <= s.paddr + len(s.data))
    code = bytes(seg.data)[a - seg.paddr:b - seg.paddr]
    return a, [int.from_bytes(code[i:i + 4], "little") for i in range(0, len(code), 4)]


def wait_loop(path) -> dict:
    """Where counter_wait reads the counter, and its loop: `first` (index of the read
    before the loop), `start` (index of the loop's first instruction, the target of
    the backward branch that ends it just before counter_wait_done), `read` (index of
    the read inside the loop) and `length`."""
    base, words = wait_code(path)
    reads = []
    for i, w in enumerate(words):
        k = decode.classify(w)
        assert k.kind not in ("hvc", "smc", "svc", "brk", "hlt", "msr", "sys", "sysl", "eret", "udf"), \
            f"the wait does more than read the counter: {decode.disasm(w)}"
        if k.kind == "mrs":
            row = sysregs.lookup(k.op0, k.op1, k.crn, k.crm, k.op2)
            assert row is not None and row.name == "CNTVCT_EL0", decode.disasm(w)
            reads.append(i)
    last = len(words) - 1
    branch = decode.disasm(words[last], base + 4 * last)
    m = re.fullmatch(r"b\.\w+ #(0x[0-9a-f]+)", branch)
    assert m, f"the wait does not end with a conditional branch: {branch}"
    start = (int(m.group(1), 16) - base) // 4
    assert len(reads) == 2 and reads[0] < start <= reads[1], reads
    return {"first": reads[0], "start": start, "read": reads[1], "length": last + 1 - start}


def expected_wait(loop: dict, ticks: int) -> tuple[int, int]:
    """(instructions from counter_wait to counter_wait_done, counter reads) when the
    counter advances by one per instruction: the loop's j-th read (j >= 1) comes
    start + (read - start) + (j - 1) * length instructions after entry, and the loop
    stops at the first one at least `ticks` after the first read."""
    j = 1
    while loop["read"] + (j - 1) * loop["length"] - loop["first"] < ticks:
        j += 1
    return loop["start"] + j * loop["length"], j + 1


def test_the_loop_reads_the_virtual_counter_and_nothing_else():
    loop = wait_loop(COUNTWAIT)
    assert loop["length"] >= 3                        # read, compare, branch at least
    assert wait_code(COUNTWAIT10)[1] == wait_code(COUNTWAIT)[1]     # the quick image waits with the same loop


# =============================================================================
# Running it
# =============================================================================
def run_wait(images, mode: str, python_only: bool, monkeypatch) -> tuple[Machine, object, list, list]:
    """Run `images` in `mode` with the benchmark's window; also collect the argument of
    each counter_wait call (the ticks the guest computed from CNTFRQ_EL0)."""
    with monkeypatch.context() as mp:
        if python_only:
            mp.setenv("NEVE_FASTPATH", "0")
        m = Machine([elf.load(str(p)) for p in images], mode=mode, uart_out=lambda b: None,
                    max_insns=1_000_000_000)
        assert (m.vcpu.fast is None) == python_only
        rec = OpRecorder(m)
        symbol_window("counter_wait", "counter_wait_done")(m, rec)
        ticks = []
        a = m.symbols.by_name["counter_wait"]
        m.cpu.uc.hook_add(UC_HOOK_CODE, lambda uc, addr, size, _: ticks.append(uc.reg_read(A.UC_ARM64_REG_X0)),
                          None, a, a)
        res = m.run()
    return m, res, rec.ops, ticks


def _span_ms(transcript: bytes, name: str) -> int:
    m = re.search(rb"%s: busy-waiting (\d+) ms on CNTVCT_EL0\n" % name.encode(), transcript)
    assert m, transcript
    assert b"FAIL" not in transcript and b"%s: waited %s ms\n" % (name.encode(), m.group(1)) in transcript
    return int(m.group(1))


@pytest.mark.parametrize("images, mode", [((COUNTWAIT10,), "vm"), ((COUNTWAIT,), "vm"),
                                          ((KVMLIKE, COUNTWAIT10), "nv2")], ids=["countwait10-vm", "countwait-vm",
                                                                                "kvmlike+countwait10-nv2"])
def test_the_wait_takes_the_instructions_that_reach_the_deadline(images, mode, monkeypatch):
    m, res, ops, ticks = run_wait(images, mode, False, monkeypatch)
    assert (res.reason, res.status) == ("system-off", 0)
    name = images[-1].stem
    ms = _span_ms(bytes(m.transcript), name)
    assert ticks == [CNTFRQ // 1000 * ms]             # the guest's deadline, from CNTFRQ_EL0
    insns, reads = expected_wait(wait_loop(images[-1]), ticks[0])
    assert len(ops) == 1 and ops[0].instructions == insns
    assert ops[0].traps == 0 and ops[0].switches == 0     # the nested VM never leaves
    # The virtual counter is the instruction count (nothing slept in WFI).
    assert m.counter.now() == m.icount()
    if mode == "vm":
        # Every counter read of the run is the wait's, and the compiled path made them all.
        assert m.vcpu.fast.hits()["counter"] == reads


def test_same_wait_with_and_without_the_fast_path(monkeypatch):
    """countwait10 (countwait's loop, 10 ms): the counter reads go through C in one run
    and through Python in the other."""
    if fastpath.library() is None:
        pytest.fail("the compiled fast path is not built (pip install -e . builds it)")
    runs = []
    for python_only in (False, True):
        m, res, ops, ticks = run_wait((COUNTWAIT10,), "vm", python_only, monkeypatch)
        runs.append((bytes(m.transcript), res.reason, res.status, m.icount(), m.counter.now(),
                     [o.counts() for o in ops], ticks, m.stats.total))
        if not python_only:
            assert m.vcpu.fast.hits()["counter"] > 0
    assert runs[0] == runs[1]


# =============================================================================
# neve bench
# =============================================================================
def test_registered_with_a_quick_image():
    b = BENCHMARKS["counter-wait"]
    assert b.window is not None and b.speed and set(b.modes) == set(MODES)
    assert b.images("vm", False) == ("countwait.elf",) and b.images("vm", True) == ("countwait10.elf",)
    for mode in NESTED_MODES:
        assert b.images(mode, False) == ("kvmlike.elf", "countwait.elf")
        assert b.images(mode, True) == ("kvmlike.elf", "countwait10.elf")
    assert [n for n, x in BENCHMARKS.items() if x.speed] == ["counter-wait"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return quick_bench(tmp_path_factory.mktemp("bench-countwait"), "counter-wait")


@pytest.fixture(scope="module")
def quick_wait():
    """The quick image's wait, computed from its loop and the ticks it asks for (a run
    of it in vm mode)."""
    mp = pytest.MonkeyPatch()
    try:
        m, _, _, ticks = run_wait((COUNTWAIT10,), "vm", False, mp)
    finally:
        mp.undo()
    return expected_wait(wait_loop(COUNTWAIT10), ticks[0])[0]


def test_bench_rows(bench, quick_wait):
    doc, _, _ = bench
    assert doc["errors"] == [] and doc["skipped"] == []
    rows = {r["mode"]: r for r in doc["rows"] if r["benchmark"] == "counter-wait"}
    assert set(rows) == set(MODES)
    b = BENCHMARKS["counter-wait"]
    for mode, r in rows.items():
        assert r["images"] == list(b.images(mode, True))
        assert r["deterministic"] is True and r["ops"] == 1
        assert r["instructions_per_op"] == quick_wait
        assert r["traps_per_op"] == 0 and r["by_class"] == {} and r["switches_per_op"] == 0
        assert r["us_per_trap"] is None and r["floor_ratio"] is None


def test_bench_speed_fields(bench, quick_wait):
    doc, cs, stdout = bench
    summary = doc["host"]["counter_wait"]
    assert set(summary) == set(MODES)
    for r in doc["rows"]:
        keys = list(r)
        assert keys.index("insns_per_second") == keys.index("us_per_trap") + 1
        assert keys[-2:] == ["trap_floor_us", "floor_ratio"]
        assert isinstance(r["host_seconds"], float) and r["host_seconds"] > 0
        assert isinstance(r["insns_per_second"], float)
        assert r["insns_per_second"] == pytest.approx(quick_wait / r["host_seconds"])
        assert summary[r["mode"]] == {"images": r["images"], "instructions": quick_wait,
                                      "host_seconds": r["host_seconds"], "insns_per_second": r["insns_per_second"]}
    with open(cs, newline="") as f:
        assert [(x["benchmark"], x["mode"]) for x in csv.DictReader(f)] == \
            [(r["benchmark"], r["mode"]) for r in doc["rows"]]
    assert "counter-wait: guest speed" in stdout and "M instr/s" in stdout
    assert f"{quick_wait:,}" in stdout


def test_bench_bad_input_is_one_line(neve_in_process):
    for argv in (["--benchmarks", "counter-wait,counter-wiat"],
                 ["--benchmarks", "counter-wait", "--modes", "vm,v9"]):
        r = neve_in_process("bench", "--no-progress", *argv)
        assert r.returncode == 2, argv
        one_line_error(r)
