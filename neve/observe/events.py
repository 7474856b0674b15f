"""One event stream for everything observable.

The machine publishes events; counters (stats), the trace writer, the timeline, the
debugger and the benchmarks subscribe.  Nothing counts on its own.

Levels are named from the guest's point of view:
  "EL1", "EL0"        a VM kernel run directly by L0 (vm mode), or what L1 runs at
                      virtual EL1/EL0 (its nested VM, or its own host-kernel part)
  "vEL2"              the guest hypervisor at virtual EL2
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# Trap classes.
SYSREG = "sysreg"
ERET = "eret"
HVC = "hvc"
SMC = "smc"
TLBI = "tlbi"
AT = "at"
ABORT = "abort"
MMIO = "mmio"
WFX = "wfx"
SEMIHOSTING = "semihosting"
IRQ = "irq"          # a physical interrupt (timer, GIC maintenance) taken to L0 while a guest runs
DEBUG = "debug"      # a debug exception (BRK) that L1's MDCR_EL2.TDE / HCR_EL2.TGE routes to EL2
TRAP_CLASSES = (SYSREG, ERET, HVC, SMC, TLBI, AT, ABORT, MMIO, WFX, SEMIHOSTING, IRQ, DEBUG)


@dataclass
class Trap:
    """An event that takes the CPU to the host (L0) on real hardware."""

    seq: int
    icount: int
    pc: int | None
    level: str              # virtual level of the code that trapped
    real_el: int            # exception level on the (Unicorn) hardware: 0 or 1
    cls: str                # one of TRAP_CLASSES
    name: str               # register or instruction name (HCR_EL2, ERET, HVC #0, UART DR...)
    rw: str = ""            # "r", "w" or "" (instructions)
    value: int | None = None
    insn: int | None = None  # instruction word, when known
    reason: str = ""        # why it trapped: the control bit and who set it, or the rule
    forwarded: bool = False  # L0 forwarded it to virtual EL2 as a virtual exception
    # The symbol of `pc` from a kernel's System.map (--symbols), found while the trapping
    # context's translation is in place (its code may run at VAs only that context maps).
    symbol: str | None = None


@dataclass
class Switch:
    """A change of level: e.g. EL1 -> vEL2 (a virtual exception) or vEL2 -> EL1 (ERET)."""

    icount: int
    src: str
    dst: str
    pc: int
    why: str
    guest: str = ""         # on entering EL1/EL0 from vEL2: the context (guest id) that runs


@dataclass
class PageAccess:
    """An access from vEL2 that neve/nv2 turned into a memory access (no trap).
    Published only while someone subscribes (Bus.wants); the counts are kept by
    vEL2 itself (VirtualEL2.page_counts), also for the accesses neve's compiled
    path makes without Python."""

    icount: int
    pc: int
    name: str
    rw: str
    value: int
    offset: int
    kind: str = "mem"       # "mem" or "redirect"


@dataclass
class Exit:
    reason: str
    status: int
    message: str = ""


class Bus:
    def __init__(self) -> None:
        self._subs: dict[type, list[Callable]] = {}
        self._watchers: list[Callable[[type], None]] = []
        self.seq = 0

    def watch(self, fn: Callable[[type], None]) -> None:
        """Call `fn(kind)` whenever someone subscribes to `kind` (a publisher that
        decided at start-up not to build some events learns it must now)."""
        self._watchers.append(fn)

    def subscribe(self, kind: type, fn: Callable) -> None:
        self._subs.setdefault(kind, []).append(fn)
        for w in self._watchers:
            w(kind)

    def wants(self, kind: type) -> bool:
        """Has anyone subscribed to `kind`?  A publisher whose events are frequent
        builds them only then (the counts that must always exist are counters)."""
        return kind in self._subs

    def publish(self, ev) -> None:
        for fn in self._subs.get(type(ev), ()):
            fn(ev)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


@dataclass
class Hypercall:
    """A hypercall of the guest: `begin` just before the trap of its HVC, `end` when
    that guest runs again, `cancel` when another context runs first (a guest
    hypervisor's host-kernel HVC that enters its VM: not a round trip)."""

    phase: str              # "begin" | "end" | "cancel"
    icount: int
    guest: str
