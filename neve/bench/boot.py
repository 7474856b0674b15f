"""The Linux boot row of `neve bench` (host probe ``linux-boot``): Debian's arm64 kernel
and the busybox initramfs that tools/guests.sh fetches and builds, booted to the init
script's poweroff as a user boots them (`neve run --kernel --initrd --append`), in each
selected mode, next to QEMU 10 TCG booting the same files at the same EL in the same run.

Per mode: host seconds (the whole `neve run` child process, start-up included), guest
instructions, traps by class (from the run's --stats document), M instr/s, and QEMU's
seconds and the ratio neve/QEMU.  The init script's "init: " lines of both must agree,
or the row is an error: a boot that went wrong is not a figure.  Counts are the guest's
and deterministic; seconds are this host's, reported and never asserted.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from neve.bench.catalogue import ROOT
from neve.qemu import boot_command, qemu_binary

GUESTS = ROOT / "guests"
APPEND = "console=ttyAMA0 panic=-1"
TIMEOUT_S = 1800


def guest_files(guests: Path) -> dict[str, Path] | str:
    """The kernel and initrd, or why the row cannot run."""
    files = {"kernel": guests / "vmlinuz", "initrd": guests / "initrd.gz"}
    absent = [str(p) for p in files.values() if not p.is_file()]
    return f"{', '.join(absent)} missing (run tools/guests.sh)" if absent else files


def init_lines(out: bytes) -> list[str]:
    return [ln for ln in out.decode("utf-8", "replace").splitlines() if ln.startswith("init: ")]


def _neve(mode: str, files: dict[str, Path]) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        cmd = [sys.executable, "-m", "neve", "run", "--mode", mode, "--kernel", str(files["kernel"]),
               "--initrd", str(files["initrd"]), "--append", APPEND, "--stats", str(stats),
               "--timeout", str(TIMEOUT_S)]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=env, cwd=ROOT,
                           timeout=TIMEOUT_S + 60, check=False)
        seconds = time.perf_counter() - t0
        if p.returncode != 0:
            last = (p.stderr.decode("utf-8", "replace").strip().splitlines() or [""])[-1]
            raise RuntimeError(f"neve ({mode}) exited {p.returncode}: {last}")
        doc = json.loads(stats.read_text())
    return {"seconds": seconds, "instructions": doc["instructions"], "traps": doc["traps"]["total"],
            "traps_by_class": doc["traps"]["by_class"], "exit": doc["exit"]["reason"],
            "init_lines": init_lines(p.stdout)}


def _qemu(el2: bool, files: dict[str, Path]) -> dict:
    cmd = boot_command(kernel=files["kernel"], initrd=files["initrd"], append=APPEND, el2=el2)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=600, check=False)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"QEMU ({'EL2' if el2 else 'EL1'}) exited {p.returncode}")
    return {"seconds": seconds, "init_lines": init_lines(p.stdout)}


def probe_linux_boot(modes: list[str], reps: int, tick=lambda: None, guests: Path = GUESTS) -> dict:
    files = guest_files(guests)
    if isinstance(files, str):
        raise FileNotFoundError(files)
    if qemu_binary() is None:
        raise FileNotFoundError("qemu-system-aarch64 not found: the row times QEMU beside neve")
    versions = (guests / "VERSIONS").read_text().split() if (guests / "VERSIONS").is_file() else []
    qemu = {}
    for el2 in (False, True):
        if any((m != "vm") == el2 for m in modes):
            runs = [_qemu(el2, files) for _ in range(reps)]
            qemu["EL2" if el2 else "EL1"] = {"seconds": min(r["seconds"] for r in runs),
                                             "init_lines": runs[0]["init_lines"]}
    out = {"kernel": next((v for v in versions if v.startswith("linux-image")), str(files["kernel"])),
           "append": APPEND, "qemu": {k: {"seconds": v["seconds"]} for k, v in qemu.items()}, "modes": {}}
    for mode in modes:
        runs = []
        for _ in range(reps):
            runs.append(_neve(mode, files))
            tick()
        first = runs[0]
        if any((r["instructions"], r["traps_by_class"]) != (first["instructions"], first["traps_by_class"])
               for r in runs[1:]):
            raise RuntimeError(f"linux-boot ({mode}): counts differ between repetitions")
        q = qemu["EL2" if mode != "vm" else "EL1"]
        if first["init_lines"] != q["init_lines"]:
            raise RuntimeError(f"linux-boot ({mode}): the init script's lines differ from QEMU's: "
                               f"{first['init_lines']} vs {q['init_lines']}")
        best = min(r["seconds"] for r in runs)
        out["modes"][mode] = {
            "seconds": best, "instructions": first["instructions"], "traps": first["traps"],
            "traps_by_class": first["traps_by_class"], "minstr_per_s": first["instructions"] / best / 1e6,
            "qemu_seconds": q["seconds"], "ratio_to_qemu": best / q["seconds"], "exit": first["exit"],
            "samples": [r["seconds"] for r in runs]}
    return out
