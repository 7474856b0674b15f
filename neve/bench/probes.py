"""Host figures of `neve bench`, besides the table: what this Python host takes.

``compute``  guest instructions/s of images/compute.elf (50 M instructions) under neve
             in vm mode, next to raw Unicorn running the same `compute_loop` without any
             hook (the floor) and with only Unicorn's instruction-count limit (what
             neve's exact counter costs); and of compute2.elf (the loop on two CPUs at
             once, 100 M instructions) with --smp 2.
``startup``  process start -> first guest instruction, and Machine construction ->
             first guest instruction, for a vm image and a nested pair (child processes).
``floor``    host time of one trap on the cheapest Python path (an MRS hook that writes
             the PC), measured here, next to unicorn-aarch64.md's ~7.8 us.

Hypercalls/s per mode and host time per trap come from the hypercall rows (report.py).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from unicorn import UC_ARCH_ARM64, UC_HOOK_INSN, UC_MODE_ARM, Uc
from unicorn import arm64_const as A

from neve.bench.catalogue import ROOT
from neve.core import elf
from neve.core.machine import Machine

# unicorn-aarch64.md: EL2 access trapped via an MRS hook + PC write, on a 2-core x86-64.
DOC_FLOOR_US_PER_TRAP = 7.8
DOC_FREE_RUN_INSNS_PER_S = 1.5e9

COMPUTE_ITERATIONS = 6_250_000
COMPUTE_SEED = 0x243F6A8885A308D3
COMPUTE_LOOP_INSNS = 8


def probe_compute(images_dir: Path, reps: int, tick=lambda: None) -> dict:
    path = images_dir / "compute.elf"
    im = elf.load(path)
    fn = im.symbols.get("compute_loop")
    if fn is None:
        raise RuntimeError(f"{path}: no compute_loop symbol")
    neve_s, insns, transcript = [], 0, b""
    for _ in range(reps):
        m = Machine([elf.load(path)], mode="vm", uart_out=None)
        t0 = time.perf_counter()
        res = m.run()
        neve_s.append(time.perf_counter() - t0)
        insns, transcript = m.icount(), bytes(m.transcript)
        if res.reason != "system-off":
            raise RuntimeError(f"compute.elf: {res.reason}: {res.message}")
        tick()
    # Raw Unicorn: the same compute_loop, nothing hooked, nothing counted.
    loop_insns = 8 + COMPUTE_LOOP_INSNS * COMPUTE_ITERATIONS     # 6 before, 2 after the loop
    stop = 0x4000_0000

    def raw(counted: bool) -> tuple[float, int]:
        uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        uc.mem_map(0x4000_0000, 128 << 20)
        for s in im.segments:
            uc.mem_write(s.paddr, bytes(s.data))
        uc.reg_write(A.UC_ARM64_REG_X0, COMPUTE_ITERATIONS)
        uc.reg_write(A.UC_ARM64_REG_X1, COMPUTE_SEED)
        uc.reg_write(A.UC_ARM64_REG_X30, stop)
        t0 = time.perf_counter()
        if counted:
            uc.emu_start(fn, stop, count=loop_insns)
        else:
            uc.emu_start(fn, stop)
        dt = time.perf_counter() - t0
        return dt, uc.reg_read(A.UC_ARM64_REG_X0)

    free_s, counted_s, checksum = [], [], None
    for _ in range(reps):
        dt, checksum = raw(False)
        free_s.append(dt)
        dt, _c = raw(True)
        counted_s.append(dt)
        tick()
    # Two CPUs (--smp 2): compute2.elf runs the same loop on both at once.
    smp2 = None
    path2 = images_dir / "compute2.elf"
    if path2.exists():
        secs, insns2 = [], 0
        for _ in range(reps):
            m = Machine([elf.load(path2)], mode="vm", uart_out=None, smp=2)
            t0 = time.perf_counter()
            res = m.run()
            secs.append(time.perf_counter() - t0)
            insns2 = m.icount()
            if res.reason != "system-off" or b"checksums" not in bytes(m.transcript):
                raise RuntimeError(f"compute2.elf: {res.reason}: {res.message}")
            tick()
        t = statistics.median(secs)
        smp2 = {"image": str(path2), "instructions": insns2, "seconds": t, "insns_per_second": insns2 / t,
                "samples": secs}
    expect = f"checksum 0x{checksum:016x}".encode()
    neve_t, free_t, cnt_t = statistics.median(neve_s), statistics.median(free_s), statistics.median(counted_s)
    return {
        "image": str(path),
        "loop_instructions": loop_insns,
        "neve_vm": {"instructions": insns, "seconds": neve_t, "insns_per_second": insns / neve_t,
                    "samples": neve_s},
        "raw_unicorn": {"instructions": loop_insns, "seconds": free_t, "insns_per_second": loop_insns / free_t,
                        "samples": free_s},
        "raw_unicorn_counted": {"instructions": loop_insns, "seconds": cnt_t,
                                "insns_per_second": loop_insns / cnt_t, "samples": counted_s},
        "neve_vm_smp2": smp2,
        "neve_vs_raw": (insns / neve_t) / (loop_insns / free_t),
        "checksum": f"0x{checksum:016x}",
        "checksum_matches_guest": expect in transcript,
        "doc_floor_insns_per_second": DOC_FREE_RUN_INSNS_PER_S,
    }


_MRS_HCR_EL2 = 0xD53C1100        # mrs x0, hcr_el2
_SUBS_X1 = 0xF1000421            # subs x1, x1, #1
_BNE_M8 = 0x54FFFFC1             # b.ne .-8
_NOP = 0xD503201F


def probe_floor(reps: int, n: int = 20000, tick=lambda: None) -> dict:
    """The cheapest trap a Python host can take: an `mrs x0, hcr_el2` at EL1 caught by
    an MRS hook that writes x0 and PC (unicorn-aarch64.md's 7.8 us figure)."""
    base = 0x1000
    code = b"".join(w.to_bytes(4, "little") for w in (_MRS_HCR_EL2, _SUBS_X1, _BNE_M8, _NOP))
    samples = []
    for _ in range(reps):
        uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        uc.mem_map(base, 0x1000)
        uc.mem_write(base, code)
        hits = [0]

        def hook(uc, reg, cp, _):
            hits[0] += 1
            uc.reg_write(reg, 0)
            uc.reg_write(A.UC_ARM64_REG_PC, uc.reg_read(A.UC_ARM64_REG_PC) + 4)
            return 1
        uc.hook_add(UC_HOOK_INSN, hook, None, 1, 0, A.UC_ARM64_INS_MRS)
        uc.reg_write(A.UC_ARM64_REG_X1, n)
        t0 = time.perf_counter()
        uc.emu_start(base, base + 12)
        dt = time.perf_counter() - t0
        if hits[0] != n:
            raise RuntimeError(f"floor probe: {hits[0]} hook calls for {n} traps")
        samples.append(dt / n * 1e6)
        tick()
    return {"us_per_trap": statistics.median(samples), "samples_us": samples, "traps": n,
            "doc_us_per_trap": DOC_FLOOR_US_PER_TRAP,
            "what": "mrs x0, hcr_el2 at EL1 caught by a Python MRS hook writing x0 and PC"}


_CHILD = r"""
import json, sys, time
t_main = time.monotonic()
import neve.cli                      # what the `neve` console script imports
from neve.core import elf
from neve.core.machine import Machine
t_imported = time.monotonic()
mode, paths = sys.argv[1], sys.argv[2:]
ims = [elf.load(p) for p in paths]
t_loaded = time.monotonic()
m = Machine(ims, mode=mode, max_insns=1, uart_out=None)
t_built = time.monotonic()
r = m.run()
t_first = time.monotonic()
print(json.dumps({"t_main": t_main, "t_imported": t_imported, "t_loaded": t_loaded, "t_built": t_built,
                  "t_first": t_first, "icount": m.icount(), "reason": r.reason}))
"""


def probe_startup(images_dir: Path, reps: int, tick=lambda: None) -> dict:
    """Process start -> first guest instruction, in child processes (monotonic clock
    shared across processes).  The first instruction has executed when run() returns
    with --max-insns 1."""
    cases = {"vm": ["compute.elf"], "v8.3": ["kvmlike.elf", "hypercall.elf"]}
    out = {}
    for mode, names in cases.items():
        paths = [str(images_dir / n) for n in names]
        if not all(Path(p).exists() for p in paths):
            continue
        samples = []
        for _ in range(reps):
            env = dict(os.environ)
            env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            t0 = time.monotonic()
            p = subprocess.run([sys.executable, "-c", _CHILD, mode, *paths], capture_output=True, text=True,
                               env=env, cwd=ROOT)
            if p.returncode != 0:
                raise RuntimeError(f"start-up probe failed: {p.stderr.strip().splitlines()[-1:]}")
            d = json.loads(p.stdout.strip().splitlines()[-1])
            if d["icount"] != 1:
                raise RuntimeError(f"start-up probe: {d['icount']} instructions executed, expected 1")
            samples.append({
                "process_to_first_insn": d["t_first"] - t0,
                "interpreter": d["t_main"] - t0,
                "imports": d["t_imported"] - d["t_main"],
                "elf_load": d["t_loaded"] - d["t_imported"],
                "machine_construction": d["t_built"] - d["t_loaded"],
                "construction_to_first_insn": d["t_first"] - d["t_loaded"],
                "run_to_first_insn": d["t_first"] - d["t_built"],
            })
            tick()
        out[mode] = {"images": names} | {k: statistics.median(s[k] for s in samples) for k in samples[0]} | {
            "samples": samples}
    return out


HOST_PROBES = {"compute": probe_compute, "floor": probe_floor, "startup": probe_startup}
