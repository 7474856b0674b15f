"""Counters built from the event stream, and the --stats JSON document."""
from __future__ import annotations

import json
import statistics
from collections import Counter
from typing import Callable

from neve.observe import events as ev


class Stats:
    """Subscribes to the bus; counts traps by class and register, and traps per
    hypercall (from the trap of the guest's HVC up to the moment it runs again).

    Which guest's hypercalls are counted: the nested VM's in the nested modes (L1
    gives it a VMID or stage 2, or traps something of it) once one has run, or, in
    a run where L1 never runs such a context (a minimal guest hypervisor whose EL1 guest it runs
    with HCR_EL2 = RW only and VTTBR_EL2 = 0), the HVCs of that EL1 context, which
    is otherwise taken for L1's own host kernel; the VM kernel's in vm mode."""

    def __init__(self, bus: ev.Bus) -> None:
        self.total = 0
        self.by_class: Counter[str] = Counter()
        self.by_register: Counter[str] = Counter()
        self.calls: dict[str, list[tuple[int, dict[str, int], dict[str, int]]]] = {}   # guest -> calls
        self.page_counts: Callable[[], tuple[int, int]] = lambda: (0, 0)   # the machine's (mem, redirect)
        self._open: int | None = None
        self._open_class: dict[str, int] | None = None     # the open hypercall's traps by class
        self._open_reg: dict[str, int] | None = None
        self._open_guest = ""
        self._open_sym: dict[str, int] | None = None
        # With a kernel's System.map (--symbols): the traps of each call by the symbol of
        # their PC (Trap.symbol), parallel to `calls`.
        self.by_symbol = False
        self.call_symbols: dict[str, list[dict[str, int]]] = {}
        self.nested_vm_ran = False
        bus.subscribe(ev.Trap, self._trap)
        bus.subscribe(ev.Switch, self._switch)
        bus.subscribe(ev.Hypercall, self._hypercall)

    def _trap(self, t: ev.Trap) -> None:
        self.total += 1
        cls = t.cls
        self.by_class[cls] += 1
        key = register_key(t)
        self.by_register[key] += 1
        if self._open is not None:
            self._open += 1
            oc, orr = self._open_class, self._open_reg
            oc[cls] = oc.get(cls, 0) + 1
            orr[key] = orr.get(key, 0) + 1
            if self._open_sym is not None:
                sym = t.symbol.split("+", 1)[0] if t.symbol else "?"
                self._open_sym[sym] = self._open_sym.get(sym, 0) + 1

    @property
    def page_accesses(self) -> int:
        """vEL2's accesses turned into page accesses or redirects (no trap)."""
        return sum(self.page_counts())

    def _switch(self, s: ev.Switch) -> None:
        if s.guest == "nested-VM":
            self.nested_vm_ran = True

    def _hypercall(self, h: ev.Hypercall) -> None:
        if h.phase == "begin":
            self._open, self._open_class, self._open_reg = 0, {}, {}
            self._open_sym = {} if self.by_symbol else None
            self._open_guest = h.guest
        elif self._open is not None:
            if h.phase == "end":
                self.calls.setdefault(self._open_guest, []).append((self._open, self._open_class, self._open_reg))
                self.call_symbols.setdefault(self._open_guest, []).append(self._open_sym or {})
            self._open = self._open_class = self._open_reg = self._open_sym = None

    @property
    def guest(self) -> str | None:
        """The guest whose hypercalls count (see the class docstring)."""
        if self.nested_vm_ran:
            return "nested-VM"
        for g in ("EL1", "vEL1-host"):
            if self.calls.get(g):
                return g
        return None

    @property
    def per_call(self) -> list[int]:
        return [n for n, _, _ in self.calls.get(self.guest, [])]

    def hypercall_summary(self) -> dict:
        calls = self.per_call
        if not calls:
            return {"count": 0, "guest": None, "traps_per_call": {"min": 0, "median": 0, "max": 0}}
        med = statistics.median(calls)
        return {
            "count": len(calls), "guest": self.guest,
            "traps_per_call": {"min": min(calls), "median": med if med != int(med) else int(med), "max": max(calls)},
        }

    def median_call_symbols(self) -> dict[str, int]:
        """The median call's traps by the symbol of their PC ("?" where none names
        it); empty without --symbols."""
        if not self.per_call or not self.by_symbol:
            return {}
        med = statistics.median_low(self.per_call)
        by_sym = self.call_symbols[self.guest][self.per_call.index(med)]
        return dict(sorted(by_sym.items(), key=lambda kv: (-kv[1], kv[0])))

    def median_call_breakdown(self) -> tuple[dict, dict]:
        """By-class and by-register counts of the median hypercall (the first call
        whose trap count equals the median, or the nearest)."""
        if not self.per_call:
            return {}, {}
        med = statistics.median_low(self.per_call)
        _, by_class, by_reg = self.calls[self.guest][self.per_call.index(med)]
        return dict(sorted(by_class.items())), dict(sorted(by_reg.items()))


def register_key(t: ev.Trap) -> str:
    """The by_register key: the register name for sysreg and MMIO traps, the
    instruction name otherwise, suffixed with the direction for sysregs."""
    if t.cls == ev.SYSREG and t.rw:
        return f"{t.name}:{t.rw}"
    return t.name


def document(*, mode: str, exit_reason: str, status: int, instructions: int, stats: Stats,
             counter: int, wfi_skipped: int, frequency: int, extra: dict | None = None) -> dict:
    """The --stats document.  `counter` is the system counter at the end of the run
    (instructions plus `wfi_skipped`, the ticks skipped in WFI) and `frequency` its
    rate, CNTFRQ_EL0."""
    cls, reg = stats.median_call_breakdown()
    doc = {
        "schema": 1,
        "mode": mode,
        "exit": {"reason": exit_reason, "status": status},
        "instructions": instructions,
        "traps": {
            "total": stats.total,
            "by_class": dict(sorted(stats.by_class.items())),
            "by_register": dict(sorted(stats.by_register.items())),
        },
        "hypercalls": stats.hypercall_summary() | {"median_call": {"by_class": cls, "by_register": reg}
                                                   | ({"by_symbol": stats.median_call_symbols()}
                                                      if stats.by_symbol else {})},
        "page_accesses": stats.page_accesses,
        "virtual_time": {"counter": counter, "wfi_skipped": wfi_skipped, "frequency_hz": frequency},
    }
    if extra:
        doc.update(extra)
    return doc


def write(path, doc: dict) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")
