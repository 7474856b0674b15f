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

Microbenchmarks
---------------
Each row of the table is a `Benchmark` (a declarative entry in `BENCHMARKS`) run in
one mode.  A benchmark names its images for vm mode and for the nested modes (the
KVM-like guest hypervisor plus the nested VM), and a *window* function that tells
what one operation is: it subscribes to the machine's event bus and calls
`OpRecorder.begin()` / `.end()` around each operation.  `hypercall_window` uses the
machine's Hypercall events (from the trap of the guest's HVC until that guest runs
again, as `Stats.per_call`); `trap_window(match)` opens an operation at a trap of the
guest that `match` accepts and closes it when the guest runs again (device I/O);
`symbol_window(begin, end)` brackets the guest's code between two symbols.  Other
issues add rows with `register(Benchmark(...))`; a row whose images are not built yet
is skipped with a note.

The cost model (modeled cycles)
-------------------------------
Python host time says nothing about hardware, so the table also gives *modeled
cycles* for the median operation, a linear function of what it executed::

    cycles = T * C_trap + E * C_emul + S * C_switch + P * C_page + R * C_redirect + I * C_insn

    T  traps: events that take the CPU to L0 (each costs a trap round trip, C_trap)
    E  emulated traps: traps L0 handles by emulating the architecture for a guest
       hypervisor (an access or ERET from vEL2, an exception forwarded to vEL2); each
       adds L0's emulation work C_emul on top of the round trip.  A VM's hypercall is
       a trap but not an emulated one (L0 answers it itself).
    S  world switches L0 performs between vEL2 and what L1 runs at EL1/EL0 (a virtual
       exception entry, an emulated ERET to a lower level): C_switch each
    P  accesses from vEL2 that NEVE / FEAT_NV2 turn into memory accesses to the page
    R  accesses redirected in hardware to an EL1 register (no trap, no memory)
    I  guest instructions executed in the operation

C_insn, C_page and C_redirect are fixed a priori (defaults 1, 2 and 0 cycles: an
instruction at IPC ~1, an L1-cache hit of the page beyond the instruction itself, a
register rename); `--cost NAME=VALUE` overrides them.  C_trap, C_emul and C_switch are
*calibrated*: they are the exact solution of the three equations given by the paper's
hypercall figures and this emulator's own counts for the hypercall benchmark::

    vm    : model(median vm hypercall)   = 2,729 cycles
    v8.3  : model(median v8.3 hypercall) = 422,720 cycles
    neve  : model(median neve hypercall) = 92,385 cycles

(SOSP'17 NEVE paper, KVM/ARM v4.10 on APM X-Gene).  With this repository's counts
(1 / 132 / 15 traps, 0 / 4 / 4 switches, and the page accesses NEVE makes) this gives
C_trap ~ 2.7k cycles (a KVM exit and return, as the VM row says), C_emul ~ 0.1k (the
paper's v8.3 -> NEVE saving per removed trap is a little more than a VM exit) and
C_switch ~ 12k cycles (a world switch of L1's context, which also absorbs the work of
the paper's full Linux/KVM guest hypervisor per exit that the small KVM-like firmware
does not execute).  The nv2 row and every other benchmark are then *predictions* of the
model, not fits.  The parameters are printed with the table and stored in the JSON.

Host figures (besides the table)
--------------------------------
``compute``  guest instructions/s of images/compute.elf (50 M instructions) under neve
             in vm mode, next to raw Unicorn running the same `compute_loop` without any
             hook (the floor) and with only Unicorn's instruction-count limit (what
             neve's exact counter costs).
``startup``  process start -> first guest instruction, and Machine construction ->
             first guest instruction, for a vm image and a nested pair (child processes).
``floor``    host time of one trap on the cheapest Python path (an MRS hook that writes
             the PC), measured here, next to unicorn-aarch64.md's ~7.8 us.
Hypercalls/s per mode and host time per trap come from the hypercall rows.

JSON: ``{"rows": [...], "skipped": [...], "cost_model": {...}, "host": {...}}``, one
row per benchmark x mode with at least benchmark, mode, ops, traps_per_op,
modeled_cycles, by_class, by_register, ratio_to_vm, paper_cycles, host_seconds.
"""
from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

from neve.observe import events as ev
from neve.errors import BadInput

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
MODES = ("vm", "v8.3", "neve", "nv2")
NESTED = ("v8.3", "neve", "nv2")

# unicorn-aarch64.md: EL2 access trapped via an MRS hook + PC write, on a 2-core x86-64.
DOC_FLOOR_US_PER_TRAP = 7.8
DOC_FREE_RUN_INSNS_PER_S = 1.5e9


# =============================================================================
# Operations: what one "operation" of a benchmark is
# =============================================================================
@dataclass
class Op:
    """What one operation executed (counts) and how long the host took (seconds)."""

    traps: int = 0
    emulated: int = 0
    switches: int = 0
    pages: int = 0
    redirects: int = 0
    instructions: int = 0
    by_class: Counter = field(default_factory=Counter)
    by_register: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def counts(self) -> tuple:
        return (self.traps, self.emulated, self.switches, self.pages, self.redirects, self.instructions,
                tuple(sorted(self.by_class.items())), tuple(sorted(self.by_register.items())))


class OpRecorder:
    """Subscribes to a machine's bus and accumulates the events between begin() and
    end() into one Op.  A window function decides when operations begin and end."""

    def __init__(self, machine) -> None:
        self.m = machine
        self.ops: list[Op] = []
        self.cur: Op | None = None
        self._t0 = 0.0
        self._i0 = 0
        bus = machine.bus
        bus.subscribe(ev.Trap, self._trap)
        bus.subscribe(ev.Switch, self._switch)
        bus.subscribe(ev.PageAccess, self._page)

    @property
    def open(self) -> bool:
        return self.cur is not None

    def begin(self) -> None:
        if self.cur is None:
            self.cur = Op()
            self._i0 = self.m.icount()
            self._t0 = time.perf_counter()

    def end(self) -> None:
        op = self.cur
        if op is not None:
            op.seconds = time.perf_counter() - self._t0
            op.instructions = self.m.icount() - self._i0
            self.ops.append(op)
            self.cur = None

    def _trap(self, t: ev.Trap) -> None:
        op = self.cur
        if op is None:
            return
        from neve.observe.stats import register_key
        op.traps += 1
        if t.level == "vEL2" or t.forwarded:
            op.emulated += 1
        op.by_class[t.cls] += 1
        op.by_register[register_key(t)] += 1

    def _switch(self, s: ev.Switch) -> None:
        if self.cur is not None:
            self.cur.switches += 1

    def _page(self, p: ev.PageAccess) -> None:
        if self.cur is not None:
            if p.kind == "redirect":
                self.cur.redirects += 1
            else:
                self.cur.pages += 1


Window = Callable[[object, OpRecorder], None]


def hypercall_window(machine, rec: OpRecorder) -> None:
    """One operation = one hypercall of the benchmark guest (the nested VM, or the VM
    kernel in vm mode): from the trap of its HVC until it runs again (the machine's
    Hypercall events).  The benchmarks' guest hypervisors all run a nested VM, so
    this is what Stats.per_call counts for them."""
    def on(h: ev.Hypercall) -> None:
        if h.guest not in ("nested-VM", "EL1"):
            return                  # L1's host-kernel calls are not the benchmark's
        rec.begin() if h.phase == "begin" else rec.end()
    machine.bus.subscribe(ev.Hypercall, on)


def trap_window(match: Callable[[ev.Trap], bool]) -> Window:
    """One operation = a trap of the benchmark guest that `match` accepts (e.g. a
    stage-2 abort or an MMIO access of the nested VM), until that guest runs again.
    In vm mode L0 handles the trap inline, so the operation is that trap alone; in the
    nested modes it ends at the world switch that resumes the nested VM."""
    def window(machine, rec: OpRecorder) -> None:
        def on_trap(t: ev.Trap) -> None:
            if rec.open or t.level == "vEL2" or not match(t):
                return
            if machine.vel2 is not None and machine.vel2.active:
                return
            if machine.vel2 is not None and machine.vel2.guest_id() != "nested-VM":
                return
            rec.begin()
            rec._trap(t)            # the opening trap was published before begin()
            if machine.vel2 is None:
                rec.end()

        def on_switch(s: ev.Switch) -> None:
            if rec.open and s.dst != "vEL2" and machine.vel2.guest_id() == "nested-VM":
                rec.end()
        machine.bus.subscribe(ev.Trap, on_trap)
        machine.bus.subscribe(ev.Switch, on_switch)
    return window


def symbol_window(begin: str, end: str) -> Window:
    """One operation = from the guest reaching symbol `begin` until it reaches `end`
    (each time, in that order).  Symbols are looked up in the loaded images (the
    last image wins a clash, i.e. the nested VM's).  Only those two instructions are
    hooked, so counts are unaffected."""
    def window(machine, rec: OpRecorder) -> None:
        from unicorn import UC_HOOK_CODE
        names = machine.symbols.by_name
        for sym in (begin, end):
            if sym not in names:
                raise RuntimeError(f"symbol_window: no symbol {sym!r} in the images")
        a, b = names[begin], names[end]
        uc = machine.cpu.uc
        uc.hook_add(UC_HOOK_CODE, lambda uc, addr, size, _: rec.begin(), None, a, a)
        uc.hook_add(UC_HOOK_CODE, lambda uc, addr, size, _: rec.end(), None, b, b)
    return window


# =============================================================================
# The registry of microbenchmarks
# =============================================================================
@dataclass(frozen=True)
class Benchmark:
    name: str
    operation: str                         # what one operation is, for the table's note
    vm_images: tuple[str, ...]             # relative to images/ (or absolute)
    nested_images: tuple[str, ...]         # the guest hypervisor first
    window: Window | None                  # None: not defined yet, the row is skipped
    quick_vm_images: tuple[str, ...] | None = None
    quick_nested_images: tuple[str, ...] | None = None
    modes: tuple[str, ...] = MODES
    paper_cycles: dict = field(default_factory=dict)    # mode -> cycles reported by the paper
    paper_traps: dict = field(default_factory=dict)     # mode -> traps reported by the paper
    pending: str = ""                      # which issue provides the images, for the skip note
    max_insns: int = 1_000_000_000         # a guest that never stops fails its row instead of hanging

    def images(self, mode: str, quick: bool) -> tuple[str, ...]:
        if mode == "vm":
            return (self.quick_vm_images if quick and self.quick_vm_images else self.vm_images)
        return (self.quick_nested_images if quick and self.quick_nested_images else self.nested_images)


BENCHMARKS: dict[str, Benchmark] = {}


def register(b: Benchmark) -> Benchmark:
    """Add (or replace) a microbenchmark row of `neve bench`."""
    BENCHMARKS[b.name] = b
    return b


PAPER_HYPERCALL = {"vm": 2729, "v8.3": 422720, "neve": 92385}

register(Benchmark(
    name="hypercall",
    operation="one hypercall of the (nested) VM: its HVC trap until it runs again",
    vm_images=("hypercall1k.elf",),
    nested_images=("kvmlike.elf", "hypercall1k.elf"),
    quick_vm_images=("hypercall.elf",),
    quick_nested_images=("kvmlike.elf", "hypercall.elf"),
    window=hypercall_window,
    paper_cycles=PAPER_HYPERCALL,
    paper_traps={"vm": 1, "v8.3": 126, "neve": 15},
))

register(Benchmark(
    name="device-io",
    operation="one MMIO read of the (nested) VM from an emulated device register (mmio.elf reads UARTFR), "
              "until it runs again",
    vm_images=("mmio.elf",),
    nested_images=("kvmlike.elf", "mmio.elf"),
    # mmio.elf's only device reads are the benchmark's UARTFR loads (its UART output
    # is writes): in vm mode an MMIO trap to L0, nested a stage-2 abort forwarded to L1.
    window=trap_window(lambda t: t.rw == "r" and t.cls in (ev.MMIO, ev.ABORT)),
    pending="the stage-2 issue (firmware/mmio)",
))

def trap_to_symbol_window(match: Callable[[ev.Trap], bool], end: str) -> Window:
    """One operation = from a trap of the benchmark guest that `match` accepts (e.g.
    the physical interrupt of its expiring timer) until the guest reaches symbol `end`
    (e.g. the exception return of its interrupt handler)."""
    def window(machine, rec: OpRecorder) -> None:
        from unicorn import UC_HOOK_CODE
        if end not in machine.symbols.by_name:
            raise RuntimeError(f"trap_to_symbol_window: no symbol {end!r} in the images")
        b = machine.symbols.by_name[end]

        def on_trap(t: ev.Trap) -> None:
            if rec.open or t.level == "vEL2" or not match(t):
                return
            if machine.vel2 is not None and machine.vel2.guest_id() != "nested-VM":
                return
            rec.begin()
            rec._trap(t)            # the opening trap was published before begin()

        def on_end(uc, addr, size, _) -> None:
            if rec.open:
                rec.end()
        machine.bus.subscribe(ev.Trap, on_trap)
        machine.cpu.uc.hook_add(UC_HOOK_CODE, on_end, None, b, b)
    return window


register(Benchmark(
    name="virtual-eoi",
    operation="the (nested) VM handling one virtual interrupt: IRQ vector entry, ICC_IAR1_EL1 acknowledge, "
              "ICC_EOIR1_EL1 EOI, until its exception return (virteoi.elf)",
    vm_images=("virteoi.elf",),
    nested_images=("kvmlike.elf", "virteoi.elf"),
    window=symbol_window("irq_entry", "irq_return"),
))

register(Benchmark(
    name="timer-interrupt",
    operation="one virtual timer interrupt handled end to end: from the physical interrupt of the VM's expiring "
              "virtual timer (a trap to L0) until the VM's handler returns (vtimer.elf)",
    vm_images=("vtimer.elf",),
    nested_images=("kvmlike.elf", "vtimer.elf"),
    window=trap_to_symbol_window(lambda t: t.cls == ev.IRQ, "irq_return"),
))


# =============================================================================
# Running one row
# =============================================================================
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
    from neve.core import elf
    from neve.core.machine import Machine
    ims = [elf.load(p) for p in paths]
    t0 = time.perf_counter()
    m = Machine(ims, mode=mode, uart_out=None, policy=policy, max_insns=bench.max_insns)
    t1 = time.perf_counter()
    rec = OpRecorder(m)
    bench.window(m, rec)
    t2 = time.perf_counter()
    res = m.run()
    t3 = time.perf_counter()
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


def median_op(ops: list[Op]) -> Op | None:
    """The median operation by trap count: the first one whose count is the low median."""
    if not ops:
        return None
    med = statistics.median_low([o.traps for o in ops])
    return next(o for o in ops if o.traps == med)


def _num(x):
    return int(x) if float(x).is_integer() else x


# =============================================================================
# The cost model
# =============================================================================
FIXED_DEFAULTS = {"C_insn": 1.0, "C_page": 2.0, "C_redirect": 0.0}
FITTED = ("C_trap", "C_emul", "C_switch")


def _features(op: Op) -> dict:
    return {"T": op.traps, "E": op.emulated, "S": op.switches, "P": op.pages, "R": op.redirects,
            "I": op.instructions}


class CostModel:
    def __init__(self, params: dict, calibration: dict, warnings: list[str]) -> None:
        self.params = params
        self.calibration = calibration
        self.warnings = warnings

    def cycles(self, op: Op) -> float:
        p = self.params
        f = _features(op)
        return (f["T"] * p["C_trap"] + f["E"] * p["C_emul"] + f["S"] * p["C_switch"] + f["P"] * p["C_page"]
                + f["R"] * p["C_redirect"] + f["I"] * p["C_insn"])

    @classmethod
    def calibrate(cls, ops: dict[str, Op], fixed: dict) -> "CostModel":
        """Solve for C_trap, C_emul, C_switch so that the model gives the paper's
        hypercall cycles for our vm, v8.3 and neve median hypercalls."""
        rows, rhs = [], []
        for mode in ("vm", "v8.3", "neve"):
            f = _features(ops[mode])
            rows.append([Fraction(f["T"]), Fraction(f["E"]), Fraction(f["S"])])
            known = f["P"] * fixed["C_page"] + f["R"] * fixed["C_redirect"] + f["I"] * fixed["C_insn"]
            rhs.append(Fraction(PAPER_HYPERCALL[mode]) - Fraction(known).limit_denominator(10 ** 6))
        sol = _solve3(rows, rhs)
        warnings = []
        if sol is None:
            warnings.append("cost model: the calibration equations are singular (the hypercall counts do not "
                            "separate traps, emulation and switches); C_emul and C_switch set to 0")
            t = _features(ops["vm"])["T"] or 1
            sol = [rhs[0] / t, Fraction(0), Fraction(0)]
        params = dict(fixed)
        for name, v in zip(FITTED, sol):
            params[name] = float(v)
            if v < 0:
                warnings.append(f"cost model: calibrated {name} = {float(v):.1f} cycles is negative")
        calib = {m: {"features": _features(ops[m]), "paper_cycles": PAPER_HYPERCALL[m]} for m in ops}
        return cls(params, calib, warnings)

    def describe(self) -> dict:
        return {
            "formula": "cycles = T*C_trap + E*C_emul + S*C_switch + P*C_page + R*C_redirect + I*C_insn",
            "terms": {"T": "traps to L0", "E": "traps L0 emulates for a guest hypervisor (from vEL2 or forwarded)",
                      "S": "world switches between vEL2 and EL1/EL0", "P": "NEVE/VNCR page accesses",
                      "R": "accesses redirected to an EL1 register", "I": "guest instructions"},
            "parameters": {k: round(v, 3) for k, v in self.params.items()},
            "fitted": list(FITTED),
            "fixed": [k for k in self.params if k not in FITTED],
            "calibration": {"benchmark": "hypercall", "source": "NEVE paper (SOSP'17), KVM/ARM v4.10, APM X-Gene",
                            "points": self.calibration},
            "warnings": self.warnings,
        }


def _solve3(a: list[list[Fraction]], b: list[Fraction]) -> list[Fraction] | None:
    """Gaussian elimination in exact arithmetic; None if singular."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        piv = next((r for r in range(c, n) if m[r][c] != 0), None)
        if piv is None:
            return None
        m[c], m[piv] = m[piv], m[c]
        for r in range(n):
            if r != c and m[r][c] != 0:
                f = m[r][c] / m[c][c]
                m[r] = [x - f * y for x, y in zip(m[r], m[c])]
    return [m[i][n] / m[i][i] for i in range(n)]


# =============================================================================
# Host figures: compute speed, the trap floor, start-up time
# =============================================================================
COMPUTE_ITERATIONS = 6_250_000
COMPUTE_SEED = 0x243F6A8885A308D3
COMPUTE_LOOP_INSNS = 8


def probe_compute(images_dir: Path, reps: int, tick=lambda: None) -> dict:
    from unicorn import Uc, UC_ARCH_ARM64, UC_MODE_ARM
    from unicorn import arm64_const as A
    from neve.core import elf
    from neve.core.machine import Machine
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
    from unicorn import Uc, UC_ARCH_ARM64, UC_MODE_ARM, UC_HOOK_INSN
    from unicorn import arm64_const as A
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


# =============================================================================
# Assembling the rows
# =============================================================================
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
    return d


def fill_ratios(rows: list[dict]) -> None:
    vm = {r["benchmark"]: r for r in rows if r["mode"] == "vm"}
    for r in rows:
        b = vm.get(r["benchmark"])
        if b and b["modeled_cycles"] and r["modeled_cycles"] is not None:
            r["ratio_to_vm"] = round(r["modeled_cycles"] / b["modeled_cycles"], 1)
        if b and b["traps_per_op"]:
            r["traps_ratio_to_vm"] = round(r["traps_per_op"] / b["traps_per_op"], 1)


def host_summary(rows: list[dict]) -> dict:
    """Hypercalls/s per mode and host time per trap, from the hypercall rows, plus
    the marginal cost of a trap (v8.3 vs neve differ only in traps and page accesses)."""
    hc = {r["mode"]: r for r in rows if r["benchmark"] == "hypercall"}
    out = {m: {"hypercalls_per_second": r["ops_per_second"], "us_per_hypercall": r["us_per_op"],
               "us_per_trap": r["us_per_trap"], "traps_per_op": r["traps_per_op"]} for m, r in hc.items()}
    out["floor_us_per_trap_doc"] = DOC_FLOOR_US_PER_TRAP
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
        sol = _solve3(a, b)
        if sol is not None and all(x > 0 for x in sol):     # timing noise can make the fit meaningless
            out["decomposition_us"] = {"per_trap": float(sol[0]), "per_page_access_or_redirect": float(sol[1]),
                                       "per_world_switch": float(sol[2]),
                                       "how": "exact fit of us/hypercall = a*traps + b*(page+redirect) + c*switches "
                                              "on the v8.3, neve and nv2 hypercall rows (host timing noise included)"}
    return out


# =============================================================================
# Output
# =============================================================================
CSV_FIELDS = ["benchmark", "mode", "ops", "traps_per_op", "traps_per_op_min", "traps_per_op_max", "emulated_per_op",
              "switches_per_op", "page_accesses_per_op", "redirects_per_op", "instructions_per_op",
              "modeled_cycles", "ratio_to_vm", "paper_cycles", "paper_ratio_to_vm", "paper_traps", "deterministic",
              "host_seconds", "ops_per_second", "us_per_op", "us_per_trap", "by_class", "by_register"]


def write_csv(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (json.dumps(r[k], sort_keys=True) if k in ("by_class", "by_register") else
                            ("" if r.get(k) is None else r.get(k))) for k in CSV_FIELDS})


def write_png(path: str, rows: list[dict]) -> None:
    try:
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


def _fmt(v, spec=",.0f") -> str:
    if v is None:
        return "-"
    return format(v, spec)


def print_report(console, doc: dict, benches: dict[str, Benchmark]) -> None:
    from rich.table import Table
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
                        ("us/trap", {"justify": "right"})]:
            t.add_column(col, **kw)
        for r in rows:
            t.add_row(r["benchmark"], r["mode"], str(r["ops"]), str(r["traps_per_op"]),
                      _fmt(r.get("paper_traps")),
                      ", ".join(f"{k} {v}" for k, v in r["by_class"].items()),
                      str(r["switches_per_op"]), str(r["page_accesses_per_op"]), str(r["redirects_per_op"]),
                      str(r["instructions_per_op"]), _fmt(r["modeled_cycles"]), _fmt(r["ratio_to_vm"], ",.1f"),
                      _fmt(r["paper_cycles"]), _fmt(r["paper_ratio_to_vm"], ",.1f"), _fmt(r["us_per_op"], ",.1f"),
                      _fmt(r["ops_per_second"], ",.0f"), _fmt(r["us_per_trap"], ",.1f"))
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
    f = host.get("floor")
    if f:
        console.print(f"[b]trap floor[/b]: {f['us_per_trap']:.2f} us per MRS-hook trap here "
                      f"(unicorn-aarch64.md: ~{f['doc_us_per_trap']} us)")
    hs = host.get("hypercalls")
    if hs:
        parts = [f"{m} {v['hypercalls_per_second']:,.0f}/s ({v['us_per_hypercall']:,.0f} us, "
                 f"{v['us_per_trap']:,.1f} us/trap)" for m, v in hs.items() if isinstance(v, dict)
                 and v.get("hypercalls_per_second")]
        console.print("[b]hypercalls[/b]: " + "; ".join(parts))
        if "decomposition_us" in hs:
            d = hs["decomposition_us"]
            console.print(f"  host time of a nested hypercall split (fit on v8.3/neve/nv2): {d['per_trap']:.1f} us per "
                          f"trap, {d['per_page_access_or_redirect']:.1f} us per page access or redirect, "
                          f"{d['per_world_switch']:,.1f} us per world switch")
        elif "marginal_us_per_trap" in hs:
            console.print(f"  marginal host cost of one more trap (v8.3 vs neve): {hs['marginal_us_per_trap']:.1f} us")
    su = host.get("startup")
    if su:
        for mode, v in su.items():
            console.print(f"[b]start-up[/b] ({mode}: {' '.join(v['images'])}): process start -> first guest "
                          f"instruction {v['process_to_first_insn'] * 1e3:,.0f} ms (interpreter "
                          f"{v['interpreter'] * 1e3:,.0f}, imports {v['imports'] * 1e3:,.0f}, ELF load with lief import "
                          f"{v['elf_load'] * 1e3:,.0f}); Machine construction -> first instruction "
                          f"{v['construction_to_first_insn'] * 1e3:,.1f} ms")


# =============================================================================
# The command
# =============================================================================
def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run the microbenchmarks and host-speed probes (the paper's table)",
                       description=__doc__.split("\n\n")[0])
    names = ", ".join([*BENCHMARKS, *HOST_PROBES])
    p.add_argument("--quick", action="store_true", help="short images and one repetition")
    p.add_argument("--benchmarks", metavar="A,B", help=f"what to run (default all: {names})")
    p.add_argument("--modes", metavar="M1,M2", help=f"modes for the table (default {','.join(MODES)})")
    p.add_argument("--policy", metavar="FILE.toml", help="also run the nested benchmarks under this register policy")
    p.add_argument("--reps", type=int, metavar="N", help="timed repetitions (default 3, 1 with --quick)")
    p.add_argument("--images", metavar="DIR", default=str(IMAGES), help="image directory (default images/)")
    p.add_argument("--cost", action="append", default=[], metavar="NAME=VALUE",
                   help=f"override a fixed cost-model parameter ({', '.join(FIXED_DEFAULTS)})")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--csv", metavar="FILE", help="write the table as CSV")
    p.add_argument("--png", metavar="FILE", help="write a bar chart (matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=cmd_bench)


def _split(s: str | None, allowed, what: str) -> list[str] | None:
    if not s:
        return None
    out = [x.strip() for x in s.split(",") if x.strip()]
    bad = [x for x in out if x not in allowed]
    if bad:
        raise BadInput(f"unknown {what} {', '.join(bad)} (choose from {', '.join(allowed)})")
    return out


def cmd_bench(args) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress, BarColumn, TextColumn, TimeElapsedColumn
    err = Console(stderr=True)
    out = Console()
    selected = _split(args.benchmarks, [*BENCHMARKS, *HOST_PROBES], "benchmark") or [*BENCHMARKS, *HOST_PROBES]
    modes = _split(args.modes, MODES, "mode") or list(MODES)
    reps = args.reps if args.reps else (1 if args.quick else 3)
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
        from neve.el2 import policy as pol_mod
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
            paths = [resolve(i, images_dir) for i in b.images(mode, args.quick)]
            missing = [p for p in paths if not p.exists()]
            if missing:
                why = f"{', '.join(p.name for p in missing)} not built yet"
                skipped.append({"benchmark": name, "mode": label,
                                "reason": why + (f" (comes with {b.pending})" if b.pending else "")})
                continue
            plan.append((b, label, mode, paths, pol))
    probes = [n for n in selected if n in HOST_PROBES]
    need_calib = "hypercall" in BENCHMARKS and bool(plan)   # only rows need modeled cycles
    steps = len(plan) * reps + (reps * 2 if "compute" in probes else 0) + (reps if "floor" in probes else 0) + \
        (reps * 2 if "startup" in probes else 0) + 3

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

    for r in [r for r in runs if not r.ops]:
        runs.remove(r)
        skipped.append({"benchmark": r.benchmark, "mode": r.mode,
                        "reason": "the run completed but no operation was observed (window never opened)"})
    rows = [row_dict(r, BENCHMARKS[r.benchmark], model) for r in runs]
    fill_ratios(rows)
    if any(r["benchmark"] == "hypercall" for r in rows):
        host["hypercalls"] = host_summary(rows)
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
