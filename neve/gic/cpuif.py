"""The physical CPU interface of one CPU: the ICC_*_EL1 registers.

Acknowledge (IAR), priority drop / deactivation (EOIR, DIR; EOImode), PMR, BPR, CTLR,
IGRPEN, the active-priority registers, RPR, HPPIR and SGI generation, over the
interrupt state of the GIC (neve/gic/state.py, which makes one per CPU).  It decides
whether the CPU's IRQ or FIQ line is asserted.
"""
from __future__ import annotations

from typing import Protocol

from neve.gic.icc import IccRegisters, lowest_bit
from neve.gic.regs import (ICC_CTLR_CBPR, ICC_CTLR_EOIMODE, ICC_CTLR_RO, IDLE_PRIORITY, INTID_SPURIOUS,
                           MIN_BPR0, MIN_BPR1, NUM_IRQS, PREBITS, PRIO_MASK)


class GicState(Protocol):
    """What a CPU interface uses of the GIC's interrupt state (state.GICv3)."""

    def hppi(self, cpu: int) -> tuple[int, int, int] | None: ...
    def activate(self, cpu: int, intid: int) -> None: ...
    def deactivate(self, cpu: int, intid: int) -> None: ...
    def send_sgi(self, src: int, value: int, group: int) -> list[int]: ...
    def changed(self, mmio: bool = False) -> None: ...


class CpuInterface(IccRegisters):
    """The ICC_* registers of CPU `index` over the interrupt state of `gic`."""

    def __init__(self, gic: GicState, index: int) -> None:
        self.gic = gic
        self.index = index
        self.pmr = 0
        self.bpr = [MIN_BPR0, MIN_BPR1]
        self.ctlr = ICC_CTLR_RO
        self.igrpen = [0, 0]
        self.apr = [[0] * 4, [0] * 4]     # [group][n]: ICC_AP0R<n>, ICC_AP1R<n>

    def _gprio_mask(self, group: int) -> int:
        if group == 1 and self.ctlr & ICC_CTLR_CBPR:
            group = 0
        bpr = self.bpr[group]
        if group == 1:
            bpr -= 1
        return (0xFF << (bpr + 1)) & 0xFF

    def running_priority(self) -> int:
        for n in range(4):
            a = self.apr[0][n] | self.apr[1][n]
            if a:
                return ((n * 32 + lowest_bit(a)) << (MIN_BPR0 + 1)) & 0xFF
        return IDLE_PRIORITY

    def _hppi(self):
        h = self.gic.hppi(self.index)
        if h is None or not self.igrpen[h[2]]:
            return None
        return h

    def _can_preempt(self, h) -> bool:
        if h is None or h[1] >= self.pmr:
            return False
        rp = self.running_priority()
        if rp == IDLE_PRIORITY:
            return True
        mask = self._gprio_mask(h[2])
        return (h[1] & mask) < (rp & mask)

    def signal(self) -> str | None:
        """'irq', 'fiq' or None: what this interface asserts to its CPU."""
        h = self._hppi()
        if not self._can_preempt(h):
            return None
        return "irq" if h[2] == 1 else "fiq"

    def pending(self) -> bool:
        return self.signal() is not None

    # Registers.
    def iar(self, group: int) -> int:
        h = self._hppi()
        if not self._can_preempt(h) or h[2] != group:
            return INTID_SPURIOUS
        intid, prio, g = h
        aprbit = (prio & self._gprio_mask(g)) >> (8 - PREBITS)
        self.apr[g][aprbit // 32] |= 1 << (aprbit % 32)
        self.gic.activate(self.index, intid)
        self.gic.changed()
        return intid

    def hppir(self, group: int) -> int:
        h = self._hppi()
        return h[0] if h is not None and h[2] == group else INTID_SPURIOUS

    def _highest_active_group(self) -> int | None:
        for n in range(4):
            a0, a1 = self.apr[0][n], self.apr[1][n]
            if not (a0 or a1):
                continue
            c0 = lowest_bit(a0) if a0 else 99
            c1 = lowest_bit(a1) if a1 else 99
            return 1 if c1 < c0 else 0
        return None

    def eoir(self, group: int, value: int) -> None:
        intid = value & 0xFFFFFF
        if intid >= NUM_IRQS:
            return
        g = self._highest_active_group()
        if g is None or g != group:
            return
        for n in range(4):
            if self.apr[g][n]:
                self.apr[g][n] &= self.apr[g][n] - 1
                break
        if not self.ctlr & ICC_CTLR_EOIMODE:
            self.gic.deactivate(self.index, intid)
        self.gic.changed()

    def dir(self, value: int) -> None:
        intid = value & 0xFFFFFF
        if intid >= NUM_IRQS or not self.ctlr & ICC_CTLR_EOIMODE:
            return
        self.gic.deactivate(self.index, intid)

    def read_pmr(self) -> int:
        return self.pmr

    def write_pmr(self, v: int) -> None:
        self.pmr = v & PRIO_MASK
        self.gic.changed()

    def read_bpr(self, group: int) -> int:
        if group == 1 and self.ctlr & ICC_CTLR_CBPR:
            return min(self.bpr[0] + 1, 7)
        return self.bpr[group]

    def write_bpr(self, group: int, v: int) -> None:
        if group == 1 and self.ctlr & ICC_CTLR_CBPR:
            return
        self.bpr[group] = max(v & 7, MIN_BPR1 if group else MIN_BPR0)
        self.gic.changed()

    def read_ctlr(self) -> int:
        return self.ctlr

    def write_ctlr(self, v: int) -> None:
        mask = ICC_CTLR_CBPR | ICC_CTLR_EOIMODE
        self.ctlr = (self.ctlr & ~mask) | (v & mask)
        self.gic.changed()

    def read_igrpen(self, group: int) -> int:
        return self.igrpen[group]

    def write_igrpen(self, group: int, v: int) -> None:
        self.igrpen[group] = v & 1
        self.gic.changed()

    def read_apr(self, group: int, n: int) -> int:
        return self.apr[group][n]

    def write_apr(self, group: int, n: int, v: int) -> None:
        self.apr[group][n] = v & 0xFFFF_FFFF
        self.gic.changed()

    # ICC_<name>_EL1 by name (neve/gic/icc.py), plus SGI generation; SRE is RAO/WI.
    WRITES = {**IccRegisters.WRITES,
              "SGI1R": lambda c, v: c.gic.send_sgi(c.index, v, 1),
              "ASGI1R": lambda c, v: c.gic.send_sgi(c.index, v, 1),
              "SGI0R": lambda c, v: c.gic.send_sgi(c.index, v, 0)}
