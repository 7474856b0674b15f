"""The GICv3 virtualization extension of one CPU: the ICH_*_EL2 registers and the ICV_*
view of them.

ICH_HCR_EL2, ICH_VMCR_EL2, ICH_LR<n>_EL2, ICH_AP0R/AP1R<n>_EL2 and the ICV_* view a VM's
EL1 has of them (with HCR_EL2.IMO/FMO), plus the derived ICH_MISR/EISR/ELRSR_EL2 and
the maintenance interrupt condition.  L0 uses one as the list registers of the nested
VM ("shadow" LRs, see neve/gic/delivery.py); the same class computes L1's own view.
"""
from __future__ import annotations

from neve.gic.icc import IccRegisters, lowest_bit
from neve.gic.regs import (ICC_CTLR_CBPR, ICC_CTLR_EOIMODE, ICC_CTLR_RO, ICH_HCR_EN, ICH_HCR_EOICOUNT_SHIFT,
                           ICH_HCR_LRENPIE, ICH_HCR_NPIE, ICH_HCR_UIE, ICH_HCR_VGRP0DIE, ICH_HCR_VGRP0EIE,
                           ICH_HCR_VGRP1DIE, ICH_HCR_VGRP1EIE, ICH_HCR_WRITABLE, ICH_MISR_EOI, ICH_MISR_LRENP,
                           ICH_MISR_NP, ICH_MISR_U, ICH_MISR_VGRP0D, ICH_MISR_VGRP0E, ICH_MISR_VGRP1D,
                           ICH_MISR_VGRP1E, ICH_VMCR_RESET, ICH_VMCR_VBPR0_SHIFT, ICH_VMCR_VBPR1_SHIFT,
                           ICH_VMCR_VCBPR, ICH_VMCR_VENG0, ICH_VMCR_VENG1, ICH_VMCR_VEOIM, ICH_VMCR_VFIQEN,
                           ICH_VMCR_VPMR_SHIFT, ICH_VMCR_WRITABLE, IDLE_PRIORITY, INTID_SPURIOUS, LR_ACTIVE,
                           LR_EOI, LR_GROUP, LR_HW, LR_NMI, LR_PENDING, LR_PINTID_SHIFT, LR_PRIORITY_SHIFT,
                           LR_STATE_MASK, MIN_BPR0, MIN_BPR1, NUM_IRQS, NUM_LRS, PREBITS, PRIBITS, PRIO_MASK)


def _special(intid: int) -> bool:
    return 1020 <= intid <= 1023


class VirtualInterface(IccRegisters):
    """ICH_HCR/VMCR/LR/APR state and the ICV_* behaviour over it (GICv3 spec ch. 6,
    pseudocode HighestPriorityVirtualInterrupt / CanSignalVirtualInt)."""

    def __init__(self) -> None:
        self.hcr = 0
        self.vmcr = ICH_VMCR_RESET
        self.lr = [0] * NUM_LRS
        self.apr = [[0] * 4, [0] * 4]     # [group][n]: ICH_AP0R<n>, ICH_AP1R<n>
        self.deactivate_physical = None   # callback(pintid) for LRs with HW = 1

    # Storage: the register names of the architecture.
    NAMES = (["ICH_HCR_EL2", "ICH_VMCR_EL2"] + [f"ICH_LR{n}_EL2" for n in range(NUM_LRS)]
             + [f"ICH_AP0R{n}_EL2" for n in range(4)] + [f"ICH_AP1R{n}_EL2" for n in range(4)])

    def load_values(self, vals) -> None:
        """Load the registers' values in NAMES order, with the masks an MSR to the real
        register applies (RES0 priority bits, writable HCR/VMCR fields)."""
        self.hcr = vals[0] & ICH_HCR_WRITABLE
        self.vmcr = mask_vmcr(vals[1])
        self.lr[:] = [mask_lr(v) for v in vals[2:2 + NUM_LRS]]
        self.apr[0][:] = [v & 0xFFFF_FFFF for v in vals[2 + NUM_LRS:6 + NUM_LRS]]
        self.apr[1][:] = [v & 0xFFFF_FFFF for v in vals[6 + NUM_LRS:10 + NUM_LRS]]

    def values(self) -> list[int]:
        """The registers' values in NAMES order."""
        return [self.hcr, self.vmcr, *self.lr, *self.apr[0], *self.apr[1]]

    # --- derived registers -----------------------------------------------------------
    def eisr(self) -> int:
        v = 0
        for n, lr in enumerate(self.lr):
            if lr & (LR_STATE_MASK | LR_HW | LR_EOI) == LR_EOI:
                v |= 1 << n
        return v

    def elrsr(self) -> int:
        v = 0
        for n, lr in enumerate(self.lr):
            if not lr & LR_STATE_MASK and (lr & LR_HW or not lr & LR_EOI):
                v |= 1 << n
        return v

    def misr(self) -> int:
        hcr, vmcr = self.hcr, self.vmcr
        v = 0
        if self.eisr():
            v |= ICH_MISR_EOI
        valid = sum(1 for lr in self.lr if lr & LR_STATE_MASK)
        if hcr & ICH_HCR_UIE and valid < 2:
            v |= ICH_MISR_U
        if hcr & ICH_HCR_LRENPIE and (hcr >> ICH_HCR_EOICOUNT_SHIFT) & 0x1F:
            v |= ICH_MISR_LRENP
        if hcr & ICH_HCR_NPIE and not any((lr & LR_STATE_MASK) == LR_PENDING for lr in self.lr):
            v |= ICH_MISR_NP
        if hcr & ICH_HCR_VGRP0EIE and vmcr & ICH_VMCR_VENG0:
            v |= ICH_MISR_VGRP0E
        if hcr & ICH_HCR_VGRP0DIE and not vmcr & ICH_VMCR_VENG0:
            v |= ICH_MISR_VGRP0D
        if hcr & ICH_HCR_VGRP1EIE and vmcr & ICH_VMCR_VENG1:
            v |= ICH_MISR_VGRP1E
        if hcr & ICH_HCR_VGRP1DIE and not vmcr & ICH_VMCR_VENG1:
            v |= ICH_MISR_VGRP1D
        return v

    def maintenance(self) -> bool:
        return bool(self.hcr & ICH_HCR_EN) and self.misr() != 0

    # --- priority logic ----------------------------------------------------------------
    def _vbpr(self, group: int) -> int:
        return (self.vmcr >> (ICH_VMCR_VBPR0_SHIFT if group == 0 else ICH_VMCR_VBPR1_SHIFT)) & 7

    def _gprio_mask(self, group: int) -> int:
        if group == 1 and self.vmcr & ICH_VMCR_VCBPR:
            group = 0
        bpr = self._vbpr(group)
        if group == 1:
            bpr -= 1
        return (0xFF << (bpr + 1)) & 0xFF

    def running_priority(self) -> int:
        a = self.apr[0][0] | self.apr[1][0]       # one APR register with 5 preemption bits
        if a:
            return (lowest_bit(a) << (MIN_BPR0 + 1)) & 0xFF
        return IDLE_PRIORITY

    def hppvi(self) -> int:
        """Index of the highest-priority pending LR whose group is enabled, or -1."""
        vmcr = self.vmcr
        if not vmcr & (ICH_VMCR_VENG0 | ICH_VMCR_VENG1):
            return -1
        idx, prio = -1, 0xFF
        for n, lr in enumerate(self.lr):
            if (lr & LR_STATE_MASK) != LR_PENDING:
                continue
            if not vmcr & (ICH_VMCR_VENG1 if lr & LR_GROUP else ICH_VMCR_VENG0):
                continue
            p = (lr >> LR_PRIORITY_SHIFT) & 0xFF
            if p < prio:
                idx, prio = n, p
        return idx

    def _can_signal(self, lr: int) -> bool:
        if not self.hcr & ICH_HCR_EN:
            return False
        prio = (lr >> LR_PRIORITY_SHIFT) & 0xFF
        if prio >= (self.vmcr >> ICH_VMCR_VPMR_SHIFT) & 0xFF:
            return False
        rp = self.running_priority()
        if rp == IDLE_PRIORITY:
            return True
        mask = self._gprio_mask(1 if lr & LR_GROUP else 0)
        return (prio & mask) < (rp & mask)

    def signal(self) -> str | None:
        """'irq' (vIRQ), 'fiq' (vFIQ) or None."""
        i = self.hppvi()
        if i < 0 or not self._can_signal(self.lr[i]):
            return None
        return "irq" if self.lr[i] & LR_GROUP else "fiq"

    # --- ICV_* registers ---------------------------------------------------------------
    def iar(self, group: int) -> int:
        i = self.hppvi()
        if i < 0:
            return INTID_SPURIOUS
        lr = self.lr[i]
        g = 1 if lr & LR_GROUP else 0
        if g != group or not self._can_signal(lr):
            return INTID_SPURIOUS
        intid = lr & 0xFFFF_FFFF
        if _special(intid):
            self.lr[i] = lr & ~LR_PENDING
            return intid
        prio = ((lr >> LR_PRIORITY_SHIFT) & 0xFF) & self._gprio_mask(g)
        aprbit = prio >> (8 - PREBITS)
        self.lr[i] = (lr & ~LR_PENDING) | LR_ACTIVE
        self.apr[g][aprbit // 32] |= 1 << (aprbit % 32)
        return intid

    def hppir(self, group: int) -> int:
        i = self.hppvi()
        if i < 0:
            return INTID_SPURIOUS
        lr = self.lr[i]
        return (lr & 0xFFFF_FFFF) if (1 if lr & LR_GROUP else 0) == group else INTID_SPURIOUS

    def _find_active(self, intid: int) -> int:
        for n, lr in enumerate(self.lr):
            if lr & LR_ACTIVE and (lr & 0xFFFF_FFFF) == intid:
                return n
        return -1

    def _deactivate(self, i: int) -> None:
        lr = self.lr[i]
        if lr & LR_HW and self.deactivate_physical is not None:
            pintid = (lr >> LR_PINTID_SHIFT) & 0x1FFF
            if pintid < 1020:
                self.deactivate_physical(pintid)
        self.lr[i] = lr & ~LR_ACTIVE

    def _inc_eoicount(self) -> None:
        c = ((self.hcr >> ICH_HCR_EOICOUNT_SHIFT) + 1) & 0x1F
        self.hcr = (self.hcr & ~(0x1F << ICH_HCR_EOICOUNT_SHIFT)) | (c << ICH_HCR_EOICOUNT_SHIFT)

    def _drop_priority(self) -> int:
        a0, a1 = self.apr[0][0], self.apr[1][0]
        if not (a0 or a1):
            return IDLE_PRIORITY
        c0 = lowest_bit(a0) if a0 else 99
        c1 = lowest_bit(a1) if a1 else 99
        if c0 <= c1:
            self.apr[0][0] = a0 & (a0 - 1)
            return (c0 << (MIN_BPR0 + 1)) & 0xFF
        self.apr[1][0] = a1 & (a1 - 1)
        return (c1 << (MIN_BPR0 + 1)) & 0xFF

    def eoir(self, group: int, value: int) -> None:
        intid = value & 0xFFFFFF
        if _special(intid):
            return
        drop = self._drop_priority()
        if drop == IDLE_PRIORITY:
            return
        i = self._find_active(intid)
        if i < 0:
            self._inc_eoicount()
            return
        lr = self.lr[i]
        g = 1 if lr & LR_GROUP else 0
        if g == group and (((lr >> LR_PRIORITY_SHIFT) & 0xFF) & self._gprio_mask(group)) == drop:
            if not self.vmcr & ICH_VMCR_VEOIM:
                self._deactivate(i)

    def dir(self, value: int) -> None:
        intid = value & 0xFFFFFF
        if intid >= NUM_IRQS or not self.vmcr & ICH_VMCR_VEOIM:
            return
        i = self._find_active(intid)
        if i < 0:
            self._inc_eoicount()
        else:
            self._deactivate(i)

    def read_pmr(self) -> int:
        return (self.vmcr >> ICH_VMCR_VPMR_SHIFT) & 0xFF

    def write_pmr(self, v: int) -> None:
        self._set_vmcr_field(ICH_VMCR_VPMR_SHIFT, 0xFF, v & PRIO_MASK)

    def read_bpr(self, group: int) -> int:
        if group == 1 and self.vmcr & ICH_VMCR_VCBPR:
            return min(self._vbpr(0) + 1, 7)
        return self._vbpr(group)

    def write_bpr(self, group: int, v: int) -> None:
        if group == 1 and self.vmcr & ICH_VMCR_VCBPR:
            return
        self._set_vmcr_field(ICH_VMCR_VBPR1_SHIFT if group else ICH_VMCR_VBPR0_SHIFT, 7,
                             max(v & 7, MIN_BPR1 if group else MIN_BPR0))

    def read_ctlr(self) -> int:
        v = ICC_CTLR_RO
        if self.vmcr & ICH_VMCR_VEOIM:
            v |= ICC_CTLR_EOIMODE
        if self.vmcr & ICH_VMCR_VCBPR:
            v |= ICC_CTLR_CBPR
        return v

    def write_ctlr(self, v: int) -> None:
        self._set_vmcr_field(4, 1, v & ICC_CTLR_CBPR)
        self._set_vmcr_field(9, 1, 1 if v & ICC_CTLR_EOIMODE else 0)

    def read_igrpen(self, group: int) -> int:
        return (self.vmcr >> group) & 1            # VENG0, VENG1

    def write_igrpen(self, group: int, v: int) -> None:
        self._set_vmcr_field(group, 1, v & 1)

    def read_apr(self, group: int, n: int) -> int:
        return self.apr[group][n]

    def write_apr(self, group: int, n: int, v: int) -> None:
        self.apr[group][n] = v & 0xFFFF_FFFF

    def _set_vmcr_field(self, shift: int, mask: int, v: int) -> None:
        self.vmcr = (self.vmcr & ~(mask << shift)) | ((v & mask) << shift)


def mask_lr(v: int) -> int:
    """ICH_LR<n>_EL2 as the register holds it: RES0 low priority bits and NMI."""
    return v & ~(((1 << (8 - PRIBITS)) - 1) << LR_PRIORITY_SHIFT) & ~LR_NMI


def mask_vmcr(v: int) -> int:
    v = (v & ICH_VMCR_WRITABLE) | ICH_VMCR_VFIQEN
    b0 = max((v >> ICH_VMCR_VBPR0_SHIFT) & 7, MIN_BPR0)
    b1 = max((v >> ICH_VMCR_VBPR1_SHIFT) & 7, MIN_BPR1)
    v &= ~((7 << ICH_VMCR_VBPR0_SHIFT) | (7 << ICH_VMCR_VBPR1_SHIFT))
    return v | (b0 << ICH_VMCR_VBPR0_SHIFT) | (b1 << ICH_VMCR_VBPR1_SHIFT)
