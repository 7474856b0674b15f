"""Running one row of the table: a benchmark in one mode, `reps` times, with the
counts of every repetition compared (`RowRun.deterministic`)."""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from neve.bench.catalogue import IMAGES, Benchmark
from neve.bench.recorder import Op, OpRecorder
from neve import boot
from neve.arch.platform import RAM_SIZE_DEFAULT
from neve.core import elf
from neve.core.machine import Machine


@dataclass
class RowRun:
    benchmark: str
    mode: str                 # vm | v8.3 | neve | nv2 | policy:<name>
    base_mode: str
    images: list[str]
    ops: list[Op]
    run_seconds: list[float]
    op_seconds: list[float]
    construct_seconds: list[float]
    instructions: int
    deterministic: bool
    exit_reason: str


def resolve(image: str, images_dir: Path) -> Path:
    p = Path(image)
    return p if p.is_absolute() else images_dir / p


def run_once(bench: Benchmark, mode: str, paths: list[Path], policy=None):
    how = None
    if bench.boot is not None:          # paths: the kernel and the initrd
        ims, how = boot.prepare(kernel=paths[0], initrd=paths[1], append=bench.boot[2], dtb=None, bios=None,
                                kernel_addr=None, ram_size=RAM_SIZE_DEFAULT)
    else:
        ims = [elf.load(p) for p in paths]
    t0 = time.perf_counter()
    m = Machine(ims, mode=mode, uart_out=None, policy=policy, max_insns=bench.max_insns, boot=how, smp=bench.smp)
    for name in bench.symbols_from:
        m.symbols.add_image(elf.load(IMAGES / name))
    t1 = time.perf_counter()
    rec = OpRecorder(m)
    bench.window(m, rec)
    # What exists before the run (this machine, earlier rows' results and garbage, the
    # libraries) is left out of the collector's passes: a full pass over it inside a
    # timed run measured the heap, not neve (a row ran 2.7x slower when run last).
    gc.collect()
    gc.freeze()
    try:
        t2 = time.perf_counter()
        res = m.run()
        t3 = time.perf_counter()
    finally:
        gc.unfreeze()
    if res.reason not in ("system-off", "system-reset", "semihosting-exit") or res.status != 0:
        raise RuntimeError(f"{res.reason} (status {res.status}): {res.message}")
    return rec.ops, t3 - t2, t1 - t0, m.icount(), res.reason


def run_row(bench: Benchmark, mode: str, paths: list[Path], reps: int, policy=None, label: str | None = None,
            tick: Callable[[], None] = lambda: None) -> RowRun:
    base = policy.base if policy is not None else mode
    row = RowRun(bench.name, label or mode, base, [str(p) for p in paths], [], [], [], [], 0, True, "")
    first = None
    for _ in range(reps):
        ops, run_s, build_s, icount, reason = run_once(bench, base, paths, policy)
        sig = ([o.counts() for o in ops], icount)
        if first is None:
            first = sig
            row.ops, row.instructions, row.exit_reason = ops, icount, reason
        elif sig != first:
            row.deterministic = False
        row.run_seconds.append(run_s)
        row.op_seconds.append(sum(o.seconds for o in ops))
        row.construct_seconds.append(build_s)
        tick()
    return row
