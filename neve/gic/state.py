"""The GICv3's interrupt state, shared by its distributor, redistributors and CPU interfaces.

The model is the interrupt controller of the *guest* neve runs directly: the VM's in
vm mode, the guest hypervisor L1's in the nested modes (L0's emulated GIC for its VM,
as KVM's vGIC).  It is built for several CPUs (one redistributor and one CPU interface
per CPU) although the machine has one vCPU today.

`GICv3` holds the interrupt state: SGIs/PPIs per redistributor, SPIs in the distributor
(enable, group, priority, pending latch, line level, active, trigger mode, IROUTER);
`hppi(cpu)` is the highest-priority pending interrupt.  It owns one CpuInterface per
CPU (neve/gic/cpuif.py); the MMIO frames over it are in neve/gic/mmio.py, the virtual
interface in neve/gic/vif.py.
"""
from __future__ import annotations

from neve.gic.cpuif import CpuInterface
from neve.gic.icc import lowest_bit
from neve.gic.regs import (GICD_CTLR_ARE, GICD_CTLR_DS, GICD_CTLR_EN_GRP0, GICD_CTLR_EN_GRP1, GICR_CTLR_CES,
                           GICR_WAKER_CHILDREN_ASLEEP, GICR_WAKER_PROCESSOR_SLEEP, NUM_IRQS, NUM_PRIVATE)


class Bank:
    """Per-interrupt state of a range of INTIDs as bitmaps (bit n = INTID base + n)."""

    def __init__(self, n: int, *, edge: int = 0, group: int = 0) -> None:
        self.n = n
        self.enabled = 0
        self.pending = 0       # the pending latch (edge events, ISPENDR, SGIs)
        self.level = 0         # the input line (level-sensitive interrupts)
        self.active = 0
        self.group = group     # 1 = Group 1 (IRQ), 0 = Group 0 (FIQ); GICD_CTLR.DS = 1
        self.edge = edge       # 1 = edge-triggered
        self.priority = [0] * n

    def is_pending(self) -> int:
        return self.pending | (self.level & ~self.edge)

    def set_line(self, n: int, level: bool) -> None:
        """Drive the input line of interrupt n; a rising edge of an edge-triggered one
        latches it pending."""
        bit = 1 << n
        old = self.level & bit
        self.level = (self.level | bit) if level else (self.level & ~bit)
        if level and not old and self.edge & bit:
            self.pending |= bit


class GICv3:
    def __init__(self, ncpus: int = 1, mpidrs: list[int] | None = None) -> None:
        self.ncpus = ncpus
        self.mpidrs = mpidrs or list(range(ncpus))
        self.ctlr = GICD_CTLR_DS | GICD_CTLR_ARE
        # Private interrupts: SGIs edge-triggered, PPIs level (QEMU: edge_trigger = 0xffff).
        self.private = [Bank(NUM_PRIVATE, edge=0xFFFF) for _ in range(ncpus)]
        self.spi = Bank(NUM_IRQS)
        self.spi.priority = [0] * NUM_IRQS          # indexed by INTID (0..31 unused)
        self.irouter = [0] * NUM_IRQS
        self.waker = [GICR_WAKER_PROCESSOR_SLEEP | GICR_WAKER_CHILDREN_ASLEEP] * ncpus
        self.gicr_ctlr = [GICR_CTLR_CES] * ncpus
        self.lpi_base = [[0, 0] for _ in range(ncpus)]     # GICR_PROPBASER, GICR_PENDBASER
        self.cpu = [CpuInterface(self, i) for i in range(ncpus)]
        self.on_change = None     # callback: some CPU's signals may have changed

    # --- inputs ------------------------------------------------------------------------
    def changed(self, mmio: bool = False) -> None:
        """State changed; `mmio` when from inside an MMIO write (see Interrupts.kick)."""
        if self.on_change is not None:
            self.on_change(mmio)

    def set_ppi(self, cpu: int, intid: int, level: bool) -> None:
        self.private[cpu].set_line(intid, level)
        self.changed()

    def set_spi(self, intid: int, level: bool) -> None:
        self.spi.set_line(intid, level)
        self.changed()

    def send_sgi(self, src: int, value: int, group: int) -> list[int]:
        """ICC_SGI1R_EL1 / ICC_SGI0R_EL1 from CPU `src`; returns the targeted CPUs."""
        intid = (value >> 24) & 0xF
        irm = (value >> 40) & 1
        aff = ((value >> 48) & 0xFF) << 16 | ((value >> 32) & 0xFF) << 8 | ((value >> 16) & 0xFF)
        targets = value & 0xFFFF
        hit = []
        for c in range(self.ncpus):
            if irm:
                if c == src:
                    continue
            else:
                m = self.mpidrs[c]
                caff = ((m >> 32) & 0xFF) << 16 | ((m >> 16) & 0xFF) << 8 | ((m >> 8) & 0xFF)
                aff0 = m & 0xFF
                if caff != aff or aff0 > 15 or not (targets >> aff0) & 1:
                    continue
            b = self.private[c]
            if ((b.group >> intid) & 1) != group:
                continue          # an SGI of the other group is not generated (single security state)
            b.pending |= 1 << intid
            hit.append(c)
        self.changed()
        return hit

    # --- state queries -----------------------------------------------------------------
    def _bank(self, cpu: int, intid: int) -> tuple[Bank, int]:
        if intid < NUM_PRIVATE:
            return self.private[cpu], intid
        return self.spi, intid

    def group_of(self, cpu: int, intid: int) -> int:
        b, i = self._bank(cpu, intid)
        return (b.group >> i) & 1

    def priority_of(self, cpu: int, intid: int) -> int:
        b, i = self._bank(cpu, intid)
        return b.priority[i]

    def _spi_targets(self, intid: int, cpu: int) -> bool:
        r = self.irouter[intid]
        if r & (1 << 31):
            return cpu == 0       # 1-of-N: this implementation picks CPU 0
        aff = ((r >> 32) & 0xFF) << 24 | (r & 0xFFFFFF)
        m = self.mpidrs[cpu]
        return aff == (((m >> 32) & 0xFF) << 24 | (m & 0xFFFFFF))

    def hppi(self, cpu: int) -> tuple[int, int, int] | None:
        """(INTID, priority, group) of the highest-priority pending, enabled, inactive
        interrupt for `cpu` whose group the distributor enables; None if none."""
        grp_en = self.ctlr & (GICD_CTLR_EN_GRP0 | GICD_CTLR_EN_GRP1)
        if not grp_en:
            return None
        best = None
        b = self.private[cpu]
        cand = b.is_pending() & b.enabled & ~b.active & ((1 << NUM_PRIVATE) - 1)
        while cand:
            i = lowest_bit(cand)
            cand &= cand - 1
            g = (b.group >> i) & 1
            if grp_en & (1 << g):
                p = b.priority[i]
                if best is None or p < best[1]:
                    best = (i, p, g)
        s = self.spi
        cand = s.is_pending() & s.enabled & ~s.active
        while cand:
            i = lowest_bit(cand)
            cand &= cand - 1
            if not self._spi_targets(i, cpu):
                continue
            g = (s.group >> i) & 1
            if grp_en & (1 << g):
                p = s.priority[i]
                if best is None or p < best[1]:
                    best = (i, p, g)
        return best

    # --- actions of the CPU interface ----------------------------------------------
    def activate(self, cpu: int, intid: int) -> None:
        b, i = self._bank(cpu, intid)
        b.active |= 1 << i
        b.pending &= ~(1 << i)

    def deactivate(self, cpu: int, intid: int) -> None:
        if intid >= NUM_IRQS:
            return
        b, i = self._bank(cpu, intid)
        b.active &= ~(1 << i)
        self.changed()

    def state(self) -> dict:
        return {"ctlr": self.ctlr,
                "private": [{"enabled": b.enabled, "pending": b.is_pending(), "active": b.active,
                             "group": b.group} for b in self.private],
                "spi": {"enabled": self.spi.enabled, "pending": self.spi.is_pending(), "active": self.spi.active}}
