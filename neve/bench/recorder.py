"""What one operation of a benchmark executed: `Op`, and `OpRecorder`, which fills
Ops from a machine's event bus and counters between a window's begin() and end().

Counts (traps, emulated traps, world switches, NEVE/VNCR page accesses, redirects,
guest instructions, traps by class and by register) are deterministic; `Op.seconds`
is host time.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from neve.observe import events as ev
from neve.observe.stats import register_key

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine


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

    def __init__(self, machine: Machine) -> None:
        self.m = machine
        self.ops: list[Op] = []
        self.cur: Op | None = None
        self._t0 = 0.0
        self._i0 = 0
        bus = machine.bus
        bus.subscribe(ev.Trap, self.add_trap)
        bus.subscribe(ev.Switch, self._switch)
        self._p0 = (0, 0)

    @property
    def open(self) -> bool:
        return self.cur is not None

    def begin(self) -> None:
        if self.cur is None:
            self.cur = Op()
            self._i0 = self.m.icount()
            self._p0 = self.m.page_counts()
            self._t0 = time.perf_counter()

    def end(self) -> None:
        op = self.cur
        if op is not None:
            op.seconds = time.perf_counter() - self._t0
            op.instructions = self.m.icount() - self._i0
            mem, red = self.m.page_counts()
            op.pages, op.redirects = mem - self._p0[0], red - self._p0[1]
            self.ops.append(op)
            self.cur = None

    def add_trap(self, t: ev.Trap) -> None:
        """Count trap `t` into the open operation (nothing when none is open).  The
        recorder calls it for every Trap on the bus; a window calls it for a trap that
        opened an operation, which was published before its begin()."""
        op = self.cur
        if op is None:
            return
        op.traps += 1
        if t.level == "vEL2" or t.forwarded:
            op.emulated += 1
        op.by_class[t.cls] += 1
        op.by_register[register_key(t)] += 1

    def _switch(self, s: ev.Switch) -> None:
        if self.cur is not None:
            self.cur.switches += 1


def median_op(ops: list[Op]) -> Op | None:
    """The median operation by trap count: the first one whose count is the low median."""
    if not ops:
        return None
    med = statistics.median_low([o.traps for o in ops])
    return next(o for o in ops if o.traps == med)
