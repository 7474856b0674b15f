"""`neve run --timeline FILE.json`: Chrome trace-event JSON (opens in Perfetto), and
the hypercall PNG tool."""
from __future__ import annotations

import json
from collections import defaultdict

import pytest

from conftest import HYPERCALL, ROOT, TINYHYP
from neve import cli


def run_timeline(tmp_path, mode, *images):
    tl, st = tmp_path / "t.json", tmp_path / "s.json"
    assert cli.main(["run", "--mode", mode, "--timeline", str(tl), "--stats", str(st), *images]) == 0
    return json.loads(tl.read_text()), json.loads(st.read_text())


def check_valid(doc: dict) -> list[dict]:
    assert isinstance(doc, dict) and isinstance(doc["traceEvents"], list)
    evs = doc["traceEvents"]
    for e in evs:
        for k in ("name", "ph", "ts", "pid", "tid"):
            assert k in e, (k, e)
        assert e["ph"] in ("X", "i", "M")
        assert isinstance(e["ts"], int) and e["ts"] >= 0
        if e["ph"] == "X":
            assert isinstance(e["dur"], int) and e["dur"] >= 0
        if e["ph"] == "i":
            assert e["s"] == "t"
    tracks = defaultdict(list)
    for e in evs:
        if e["ph"] == "X":
            tracks[e["tid"]].append((e["ts"], e["ts"] + e["dur"]))
    for tid, spans in tracks.items():
        spans.sort()
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            assert a1 <= b0, f"overlap on track {tid}: {(a0, a1)} {(b0, b1)}"
    return evs


@pytest.mark.parametrize("mode", ["v8.3", "nv2"])
def test_nested_timeline(tmp_path, mode):
    doc, stats = run_timeline(tmp_path, mode, TINYHYP)
    evs = check_valid(doc)
    traps = [e for e in evs if e["ph"] == "i"]
    assert len(traps) == stats["traps"]["total"]                 # one instant per trap
    assert all({"class", "name", "reason"} <= set(e["args"]) for e in traps)
    eret = next(e for e in traps if e["args"]["class"] == "eret")
    assert eret["args"]["reason"].startswith("HCR_EL2.NV set by L0")
    assert eret["args"]["symbol"] == "el2_sync+0x60"
    names = {e["args"]["name"] for e in evs if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"L0 (host hypervisor)", "vEL2 (L1, guest hypervisor)", "EL1/EL0 (nested VM, L2)"} <= names
    # One L0 span per trap, of the documented width; the time base is the instruction count.
    l0 = [e for e in evs if e["ph"] == "X" and e["tid"] == 1]
    assert len(l0) == len(traps) and {e["dur"] for e in l0} == {doc["otherData"]["l0_trap_width"]}
    last = max(e["ts"] + e.get("dur", 0) for e in evs)
    assert last == stats["instructions"] + len(traps) * doc["otherData"]["l0_trap_width"]
    calls = [e for e in evs if e.get("cat") == "hypercall"]
    # tinyhyp's guest makes three HVCs; the third (SYSTEM_OFF) never returns.
    assert len(calls) == stats["hypercalls"]["count"] == 2
    levels = {e["tid"] for e in evs if e["ph"] == "X" and e.get("cat") == "level"}
    assert levels == {2, 4}


def test_vm_timeline(tmp_path):
    doc, stats = run_timeline(tmp_path, "vm", HYPERCALL)
    evs = check_valid(doc)
    assert len([e for e in evs if e["ph"] == "i"]) == stats["traps"]["total"]
    assert len([e for e in evs if e.get("cat") == "hypercall"]) == stats["hypercalls"]["count"] == 32
    names = {e["args"]["name"] for e in evs if e["ph"] == "M" and e["name"] == "thread_name"}
    assert "EL1/EL0 (the VM)" in names and not any("vEL2" in n for n in names)


def test_timeline_bad_path(tmp_path, capsys):
    rc = cli.main(["run", "--mode", "vm", "--timeline", str(tmp_path / "no" / "t.json"), HYPERCALL])
    assert rc == 2 and "--timeline" in capsys.readouterr().err


def test_png_tool(tmp_path):
    pytest.importorskip("matplotlib")
    import importlib.util
    spec = importlib.util.spec_from_file_location("timeline_png", ROOT / "tools" / "timeline_png.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "t.png"
    # tinyhyp stands in for kvmlike: a guest hypervisor whose nested VM makes hypercalls.
    assert mod.main(["--modes", "vm,v8.3", "--kvmlike", TINYHYP, "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_smp_timeline_has_a_process_per_cpu(tmp_path):
    """--smp 2: each CPU is a process of the trace with its own level tracks; CPU 1's
    first stay begins at its PSCI CPU_ON, and its traps (its SGI writes, its WFIs) are
    on its own tracks."""
    from conftest import IMAGES
    doc, stats = run_timeline(tmp_path, "vm", "--smp", "2", str(IMAGES / "ipi.elf"))
    names = {e["pid"]: e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"}
    assert sorted(names) == [1, 2] and names[1].startswith("CPU 0: ") and names[2].startswith("CPU 1: ")
    spans1 = [e for e in doc["traceEvents"] if e["pid"] == 2 and e["ph"] == "X" and e.get("cat") == "level"]
    assert spans1 and spans1[0]["args"]["entered_by"] == "PSCI CPU_ON"
    traps = [e for e in doc["traceEvents"] if e["ph"] == "i"]
    by_cpu = {pid: sum(1 for e in traps if e["pid"] == pid) for pid in (1, 2)}
    assert by_cpu[1] > 0 and by_cpu[2] > 0 and sum(by_cpu.values()) == stats["traps"]["total"]
    sgis = [e for e in traps if e["args"]["name"] == "ICC_SGI1R_EL1"]
    assert {e["pid"] for e in sgis} == {1, 2}           # each CPU sends its SGIs
