"""GICv3: distributor, redistributors, the CPU interface and the virtual CPU interface.

The model is the interrupt controller of the *guest* neve runs directly: the VM's in
vm mode, the guest hypervisor L1's in the nested modes (L0's emulated GIC for its VM,
as KVM's vGIC).  It is built for several CPUs (one redistributor and one CPU interface
per CPU) although the machine has one vCPU today.

* `GICv3` holds the interrupt state: SGIs/PPIs per redistributor, SPIs in the
  distributor (enable, group, priority, pending latch, line level, active, trigger
  mode, IROUTER); `hppi(cpu)` is the highest-priority pending interrupt.
* `Distributor` and `Redistributors` are passive MMIO devices at the QEMU `virt`
  addresses; the machine maps them and counts each access as an MMIO trap.
* `CpuInterface` is the ICC_* register interface of one CPU: acknowledge (IAR), priority
  drop / deactivation (EOIR, DIR; EOImode), PMR, BPR, CTLR, IGRPEN, the active-priority
  registers, RPR, HPPIR and SGI generation.  It decides whether the CPU's IRQ or FIQ
  line is asserted.
* `VirtualInterface` is the GICv3 virtualization extension of one CPU: ICH_HCR_EL2,
  ICH_VMCR_EL2, ICH_LR<n>_EL2, ICH_AP0R/AP1R<n>_EL2 and the ICV_* view a VM's EL1 has
  of them (with HCR_EL2.IMO/FMO), plus the derived ICH_MISR/EISR/ELRSR_EL2 and the
  maintenance interrupt condition.  L0 uses one as the list registers of the nested VM
  ("shadow" LRs, see neve/gic/delivery.py); the same class computes L1's own view.

Facts follow the GICv3 architecture specification (IHI 0069) and, where it leaves a
choice, what QEMU 10's `virt` GICv3 does (read in QEMU's hw/intc/arm_gicv3_*.c and
measured on `qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max`):
no security extensions (GICD_CTLR.DS = 1, ARE always on), 5 priority and preemption
bits in both interfaces, 4 list registers, interrupts reset to Group 0, PPIs level-
and SGIs edge-triggered, 288 SPIs (GICD_TYPER.ITLinesNumber = 8), and the ID/TYPER
values QEMU reports (LPIs are advertised as QEMU does but not implemented).
"""
from __future__ import annotations

from neve.devices import Device
from neve.arch.platform import GICD_BASE, GICR_BASE

# --- architecture constants ---------------------------------------------------------
INTID_SPURIOUS = 1023
NUM_PRIVATE = 32
NUM_IRQS = 320                 # 32 private + 288 SPIs (QEMU virt: GICD_TYPER.ITLinesNumber = 8)
PPI_MAINTENANCE = 25

PRIBITS = 5                    # implemented priority bits (physical and virtual)
PREBITS = 5                    # implemented preemption bits
MIN_BPR0 = 7 - PREBITS         # 2
MIN_BPR1 = MIN_BPR0 + 1        # 3
PRIO_MASK = (0xFF << (8 - PRIBITS)) & 0xFF
IDLE_PRIORITY = 0xFF

GICD_CTLR_EN_GRP0 = 1 << 0
GICD_CTLR_EN_GRP1 = 1 << 1
GICD_CTLR_ARE = 1 << 4
GICD_CTLR_DS = 1 << 6

# GICD_TYPER as QEMU 10 virt reports it with the CPU neve models (neve/arch/model.py):
# No1N, A3V, IDbits = 15, LPIS, ITLinesNumber.  No NMI (bit 9): QEMU sets it only
# for a CPU with FEAT_NMI, which cortex-a72 (ARMv8.0) does not have.
GICD_TYPER_VALUE = (1 << 25) | (1 << 24) | (0xF << 19) | (1 << 17) | (NUM_IRQS // 32 - 2)
GIC_IIDR = 0x43B               # Arm, r0p0 (as a GIC-500)
GICR_CTLR_ENABLE_LPIS = 1 << 0
GICR_CTLR_CES = 1 << 1
GICR_WAKER_PROCESSOR_SLEEP = 1 << 1
GICR_WAKER_CHILDREN_ASLEEP = 1 << 2
# CoreSight ID registers from offset 0xFFD0: PIDR4..7, PIDR0..3, CIDR0..3.
_IDREGS = [0x44, 0x00, 0x00, 0x00, None, 0xB4, 0x3B, 0x00, 0x0D, 0xF0, 0x05, 0xB1]
PIDR0_DIST, PIDR0_REDIST = 0x92, 0x93

# ICC_CTLR_EL1 (read-only fields as QEMU): A3V, IDbits = 1 (24-bit), PRIbits = 4.
ICC_CTLR_CBPR = 1 << 0
ICC_CTLR_EOIMODE = 1 << 1
ICC_CTLR_RO = (1 << 15) | (1 << 11) | ((PRIBITS - 1) << 8)
ICC_SRE_EL1_VALUE = 0x7        # SRE, DFB, DIB: RAO/WI

# ICH_* fields.
ICH_HCR_EN = 1 << 0
ICH_HCR_UIE = 1 << 1
ICH_HCR_LRENPIE = 1 << 2
ICH_HCR_NPIE = 1 << 3
ICH_HCR_VGRP0EIE = 1 << 4
ICH_HCR_VGRP0DIE = 1 << 5
ICH_HCR_VGRP1EIE = 1 << 6
ICH_HCR_VGRP1DIE = 1 << 7
ICH_HCR_EOICOUNT_SHIFT = 27
ICH_HCR_WRITABLE = 0xFF | (0x1F << 10) | (0x1F << ICH_HCR_EOICOUNT_SHIFT)   # En..VGrp1DIE, TC..TDIR, EOIcount

ICH_VMCR_VENG0 = 1 << 0
ICH_VMCR_VENG1 = 1 << 1
ICH_VMCR_VFIQEN = 1 << 3
ICH_VMCR_VCBPR = 1 << 4
ICH_VMCR_VEOIM = 1 << 9
ICH_VMCR_VBPR1_SHIFT = 18
ICH_VMCR_VBPR0_SHIFT = 21
ICH_VMCR_VPMR_SHIFT = 24
ICH_VMCR_WRITABLE = (ICH_VMCR_VENG0 | ICH_VMCR_VENG1 | ICH_VMCR_VCBPR | ICH_VMCR_VEOIM
                     | (7 << ICH_VMCR_VBPR1_SHIFT) | (7 << ICH_VMCR_VBPR0_SHIFT) | (0xFF << ICH_VMCR_VPMR_SHIFT))
ICH_VMCR_RESET = ICH_VMCR_VFIQEN | (MIN_BPR1 << ICH_VMCR_VBPR1_SHIFT) | (MIN_BPR0 << ICH_VMCR_VBPR0_SHIFT)

ICH_MISR_EOI = 1 << 0
ICH_MISR_U = 1 << 1
ICH_MISR_LRENP = 1 << 2
ICH_MISR_NP = 1 << 3
ICH_MISR_VGRP0E = 1 << 4
ICH_MISR_VGRP0D = 1 << 5
ICH_MISR_VGRP1E = 1 << 6
ICH_MISR_VGRP1D = 1 << 7

LR_STATE_SHIFT = 62
LR_PENDING = 1 << 62
LR_ACTIVE = 1 << 63
LR_STATE_MASK = 3 << 62
LR_HW = 1 << 61
LR_GROUP = 1 << 60
LR_NMI = 1 << 59
LR_PRIORITY_SHIFT = 48
LR_EOI = 1 << 41               # HW = 0: maintenance interrupt on deactivation
LR_PINTID_SHIFT = 32

NUM_LRS = 4
# ICH_VTR_EL2 as QEMU 10 reports it: PRIbits-1, PREbits-1, IDbits = 1, A3V, nV4, TDS, ListRegs-1.
ICH_VTR_VALUE = (((PRIBITS - 1) << 29) | ((PREBITS - 1) << 26) | (1 << 23) | (1 << 21) | (1 << 20)
                 | (1 << 19) | (NUM_LRS - 1))


def _special(intid: int) -> bool:
    return 1020 <= intid <= 1023


def _lowest_bit(v: int) -> int:
    return (v & -v).bit_length() - 1


# --- interrupt state -----------------------------------------------------------------
class _Bank:
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


class GICv3:
    def __init__(self, ncpus: int = 1, mpidrs: list[int] | None = None) -> None:
        self.ncpus = ncpus
        self.mpidrs = mpidrs or list(range(ncpus))
        self.ctlr = GICD_CTLR_DS | GICD_CTLR_ARE
        # Private interrupts: SGIs edge-triggered, PPIs level (QEMU: edge_trigger = 0xffff).
        self.private = [_Bank(NUM_PRIVATE, edge=0xFFFF) for _ in range(ncpus)]
        self.spi = _Bank(NUM_IRQS)
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
        b = self.private[cpu]
        bit = 1 << intid
        old = b.level & bit
        b.level = (b.level | bit) if level else (b.level & ~bit)
        if level and not old and b.edge & bit:
            b.pending |= bit
        self.changed()

    def set_spi(self, intid: int, level: bool) -> None:
        b = self.spi
        bit = 1 << intid
        old = b.level & bit
        b.level = (b.level | bit) if level else (b.level & ~bit)
        if level and not old and b.edge & bit:
            b.pending |= bit
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
    def _bank(self, cpu: int, intid: int) -> tuple[_Bank, int]:
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
            i = _lowest_bit(cand)
            cand &= cand - 1
            g = (b.group >> i) & 1
            if grp_en & (1 << g):
                p = b.priority[i]
                if best is None or p < best[1]:
                    best = (i, p, g)
        s = self.spi
        cand = s.is_pending() & s.enabled & ~s.active
        while cand:
            i = _lowest_bit(cand)
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


# --- the CPU interface (ICC_*) ------------------------------------------------------------
class CpuInterface:
    def __init__(self, gic: GICv3, index: int) -> None:
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
                return ((n * 32 + _lowest_bit(a)) << (MIN_BPR0 + 1)) & 0xFF
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
            c0 = _lowest_bit(a0) if a0 else 99
            c1 = _lowest_bit(a1) if a1 else 99
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

    def write_ctlr(self, v: int) -> None:
        mask = ICC_CTLR_CBPR | ICC_CTLR_EOIMODE
        self.ctlr = (self.ctlr & ~mask) | (v & mask)
        self.gic.changed()

    def write_igrpen(self, group: int, v: int) -> None:
        self.igrpen[group] = v & 1
        self.gic.changed()

    def write_apr(self, group: int, n: int, v: int) -> None:
        self.apr[group][n] = v & 0xFFFF_FFFF
        self.gic.changed()

    def read(self, name: str) -> int:
        """An MRS of ICC_<name>_EL1 (name without the ICC_ prefix and _EL1 suffix)."""
        if name == "IAR1":
            return self.iar(1)
        if name == "IAR0":
            return self.iar(0)
        if name == "HPPIR1":
            return self.hppir(1)
        if name == "HPPIR0":
            return self.hppir(0)
        if name == "PMR":
            return self.pmr
        if name == "RPR":
            return self.running_priority()
        if name == "BPR1":
            return self.read_bpr(1)
        if name == "BPR0":
            return self.read_bpr(0)
        if name == "CTLR":
            return self.ctlr
        if name == "SRE":
            return ICC_SRE_EL1_VALUE
        if name == "IGRPEN1":
            return self.igrpen[1]
        if name == "IGRPEN0":
            return self.igrpen[0]
        if name.startswith("AP"):
            return self.apr[int(name[2])][int(name[4])]
        return 0

    def write(self, name: str, v: int) -> None:
        if name == "EOIR1":
            self.eoir(1, v)
        elif name == "EOIR0":
            self.eoir(0, v)
        elif name == "DIR":
            self.dir(v)
        elif name == "PMR":
            self.write_pmr(v)
        elif name == "BPR1":
            self.write_bpr(1, v)
        elif name == "BPR0":
            self.write_bpr(0, v)
        elif name == "CTLR":
            self.write_ctlr(v)
        elif name == "IGRPEN1":
            self.write_igrpen(1, v)
        elif name == "IGRPEN0":
            self.write_igrpen(0, v)
        elif name in ("SGI1R", "ASGI1R"):
            self.gic.send_sgi(self.index, v, 1)
        elif name == "SGI0R":
            self.gic.send_sgi(self.index, v, 0)
        elif name.startswith("AP"):
            self.write_apr(int(name[2]), int(name[4]), v)
        # SRE: RAO/WI


# --- the virtual CPU interface (ICH_* / ICV_*) ---------------------------------------------
class VirtualInterface:
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

    def load(self, get) -> None:
        """Load from register storage (`get(name)`), with the masks an MSR to the real
        register applies (RES0 priority bits, writable HCR/VMCR fields)."""
        self.hcr = get("ICH_HCR_EL2") & ICH_HCR_WRITABLE
        self.vmcr = mask_vmcr(get("ICH_VMCR_EL2"))
        for n in range(NUM_LRS):
            self.lr[n] = mask_lr(get(f"ICH_LR{n}_EL2"))
        for n in range(4):
            self.apr[0][n] = get(f"ICH_AP0R{n}_EL2") & 0xFFFF_FFFF
            self.apr[1][n] = get(f"ICH_AP1R{n}_EL2") & 0xFFFF_FFFF

    def store(self, set_) -> None:
        set_("ICH_HCR_EL2", self.hcr)
        set_("ICH_VMCR_EL2", self.vmcr)
        for n in range(NUM_LRS):
            set_(f"ICH_LR{n}_EL2", self.lr[n])
        for n in range(4):
            set_(f"ICH_AP0R{n}_EL2", self.apr[0][n])
            set_(f"ICH_AP1R{n}_EL2", self.apr[1][n])

    @classmethod
    def from_regs(cls, get) -> "VirtualInterface":
        v = cls()
        v.load(get)
        return v

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
            return (_lowest_bit(a) << (MIN_BPR0 + 1)) & 0xFF
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
        c0 = _lowest_bit(a0) if a0 else 99
        c1 = _lowest_bit(a1) if a1 else 99
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

    def read(self, name: str) -> int:
        """An MRS of ICC_<name>_EL1 executed as ICV_<name>_EL1."""
        vmcr = self.vmcr
        if name == "IAR1":
            return self.iar(1)
        if name == "IAR0":
            return self.iar(0)
        if name == "HPPIR1":
            return self.hppir(1)
        if name == "HPPIR0":
            return self.hppir(0)
        if name == "PMR":
            return (vmcr >> ICH_VMCR_VPMR_SHIFT) & 0xFF
        if name == "RPR":
            return self.running_priority()
        if name == "BPR1":
            if vmcr & ICH_VMCR_VCBPR:
                return min(self._vbpr(0) + 1, 7)
            return self._vbpr(1)
        if name == "BPR0":
            return self._vbpr(0)
        if name == "CTLR":
            v = ICC_CTLR_RO
            if vmcr & ICH_VMCR_VEOIM:
                v |= ICC_CTLR_EOIMODE
            if vmcr & ICH_VMCR_VCBPR:
                v |= ICC_CTLR_CBPR
            return v
        if name == "SRE":
            return ICC_SRE_EL1_VALUE
        if name == "IGRPEN1":
            return (vmcr >> 1) & 1
        if name == "IGRPEN0":
            return vmcr & 1
        if name.startswith("AP"):
            return self.apr[int(name[2])][int(name[4])]
        return 0

    def write(self, name: str, v: int) -> None:
        if name == "EOIR1":
            self.eoir(1, v)
        elif name == "EOIR0":
            self.eoir(0, v)
        elif name == "DIR":
            self.dir(v)
        elif name == "PMR":
            self._set_vmcr_field(ICH_VMCR_VPMR_SHIFT, 0xFF, v & PRIO_MASK)
        elif name in ("BPR1", "BPR0"):
            g = 1 if name == "BPR1" else 0
            if g == 1 and self.vmcr & ICH_VMCR_VCBPR:
                return
            self._set_vmcr_field(ICH_VMCR_VBPR1_SHIFT if g else ICH_VMCR_VBPR0_SHIFT, 7,
                                 max(v & 7, MIN_BPR1 if g else MIN_BPR0))
        elif name == "CTLR":
            self._set_vmcr_field(4, 1, v & ICC_CTLR_CBPR)
            self._set_vmcr_field(9, 1, 1 if v & ICC_CTLR_EOIMODE else 0)
        elif name == "IGRPEN1":
            self._set_vmcr_field(1, 1, v & 1)
        elif name == "IGRPEN0":
            self._set_vmcr_field(0, 1, v & 1)
        elif name.startswith("AP"):
            self.apr[int(name[2])][int(name[4])] = v & 0xFFFF_FFFF

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


# --- MMIO frames -------------------------------------------------------------------------
def _idreg(off: int, pidr0: int) -> int:
    v = _IDREGS[(off - 0xFFD0) // 4]
    return pidr0 if v is None else v


_BITMAP_REGS = {0x080: "IGROUPR", 0x100: "ISENABLER", 0x180: "ICENABLER", 0x200: "ISPENDR",
                0x280: "ICPENDR", 0x300: "ISACTIVER", 0x380: "ICACTIVER"}


def _bitmap_read(b: _Bank, kind: str, base_intid: int) -> int:
    if kind == "IGROUPR":
        v = b.group
    elif kind in ("ISENABLER", "ICENABLER"):
        v = b.enabled
    elif kind in ("ISPENDR", "ICPENDR"):
        v = b.is_pending()
    else:
        v = b.active
    return (v >> base_intid) & 0xFFFF_FFFF


def _bitmap_write(b: _Bank, kind: str, base_intid: int, value: int) -> None:
    m = (value & 0xFFFF_FFFF) << base_intid
    if kind == "IGROUPR":
        b.group = (b.group & ~(0xFFFF_FFFF << base_intid)) | m
    elif kind == "ISENABLER":
        b.enabled |= m
    elif kind == "ICENABLER":
        b.enabled &= ~m
    elif kind == "ISPENDR":
        b.pending |= m
    elif kind == "ICPENDR":
        # Clears the latch; a level-sensitive interrupt whose line is high stays pending.
        b.pending &= ~m
    elif kind == "ISACTIVER":
        b.active |= m
    elif kind == "ICACTIVER":
        b.active &= ~m


def _sub_read(full: int, off: int, size: int) -> int:
    """A `size`-byte read at byte `off & 3` of 32-bit register value `full`."""
    sh = (off & 3) * 8
    return (full >> sh) & ((1 << (size * 8)) - 1)


class Distributor(Device):
    name = "GICD"
    wide = True

    def __init__(self, gic: GICv3, base: int = GICD_BASE) -> None:
        self.gic = gic
        self.base = base
        self.size = 0x10000

    def reg_name(self, off: int) -> str:
        return f"GICD.{_dist_name(off)}"

    @staticmethod
    def _size_ok(off: int, size: int) -> bool:
        """The access sizes a register takes, as QEMU's GICv3: 32-bit for all, bytes
        for IPRIORITYR (ITARGETSR, [CS]PENDSGIR: RAZ/WI), 64-bit for IROUTER<n> only.
        Any other access is RAZ/WI."""
        if size == 4:
            return off % 4 == 0
        if size == 1:
            return 0x400 <= off < 0x800
        if size == 8:
            return 0x6000 <= off < 0x8000 and off % 8 == 0
        return False

    def read(self, off: int, size: int) -> int:
        if not self._size_ok(off, size):
            return 0
        g = self.gic
        if 0x6100 <= off < 0x6000 + 8 * NUM_IRQS:          # IROUTER<n>, n >= 32
            r = g.irouter[(off - 0x6000) // 8]
            return r >> 32 if off & 4 else (r if size == 8 else r & 0xFFFF_FFFF)
        reg = off & ~3
        if reg == 0x000:
            v = g.ctlr
        elif reg == 0x004:
            v = GICD_TYPER_VALUE
        elif reg == 0x008:
            v = GIC_IIDR
        elif 0x080 <= reg < 0x400:
            base = (reg & 0x7F) * 8
            kind = _BITMAP_REGS[reg & ~0x7F]
            v = 0 if base < NUM_PRIVATE or base >= NUM_IRQS else _bitmap_read(g.spi, kind, base)
        elif 0x400 <= off < 0x800:
            i = off - 0x400
            if i < NUM_PRIVATE:
                return 0
            return int.from_bytes(bytes(g.spi.priority[i:i + size]).ljust(size, b"\0"), "little")
        elif 0xC00 <= reg < 0xD00:
            base = (reg - 0xC00) * 4
            v = 0
            if NUM_PRIVATE <= base < NUM_IRQS:
                for k in range(16):
                    if (g.spi.edge >> (base + k)) & 1:
                        v |= 2 << (2 * k)
        elif 0xFFD0 <= reg < 0x10000:
            v = _idreg(reg, PIDR0_DIST)
        else:
            v = 0
        return _sub_read(v, off, size) if size < 4 else v

    def write(self, off: int, size: int, value: int) -> None:
        if not self._size_ok(off, size):
            return
        g = self.gic
        if 0x6100 <= off < 0x6000 + 8 * NUM_IRQS:
            i = (off - 0x6000) // 8
            r = g.irouter[i]
            if size == 8:
                r = value
            elif off & 4:
                r = (r & 0xFFFF_FFFF) | ((value & 0xFFFF_FFFF) << 32)
            else:
                r = (r & ~0xFFFF_FFFF) | (value & 0xFFFF_FFFF)
            g.irouter[i] = r & 0xFF_0000_80FF_FFFF
            g.changed(mmio=True)
            return
        reg = off & ~3
        if reg == 0x000:
            mask = GICD_CTLR_EN_GRP0 | GICD_CTLR_EN_GRP1
            g.ctlr = (g.ctlr & ~mask) | (value & mask)
        elif reg == 0x040:                                   # SETSPI_NSR
            i = value & 0x3FF
            if NUM_PRIVATE <= i < NUM_IRQS:
                g.spi.pending |= 1 << i
        elif reg == 0x048:                                   # CLRSPI_NSR
            i = value & 0x3FF
            if NUM_PRIVATE <= i < NUM_IRQS:
                g.spi.pending &= ~(1 << i)
        elif 0x080 <= reg < 0x400:
            base = (reg & 0x7F) * 8
            if NUM_PRIVATE <= base < NUM_IRQS:
                _bitmap_write(g.spi, _BITMAP_REGS[reg & ~0x7F], base, value)
        elif 0x400 <= off < 0x800:
            i = off - 0x400
            for k in range(size):
                if NUM_PRIVATE <= i + k < NUM_IRQS:
                    g.spi.priority[i + k] = (value >> (8 * k)) & 0xFF
        elif 0xC00 <= reg < 0xD00:
            base = (reg - 0xC00) * 4
            if NUM_PRIVATE <= base < NUM_IRQS:
                for k in range(16):
                    bit = 1 << (base + k)
                    if (value >> (2 * k + 1)) & 1:
                        g.spi.edge |= bit
                    else:
                        g.spi.edge &= ~bit
        # TYPER, IIDR, ID registers, ITARGETSR, SGIR, IGRPMODR, NSACR: RO or RAZ/WI here
        g.changed(mmio=True)

    def state(self) -> dict:
        return self.gic.state()


class Redistributors(Device):
    """One 128 KiB frame per CPU: RD_base, then SGI_base at +64 KiB."""

    name = "GICR"
    wide = True

    def __init__(self, gic: GICv3, base: int = GICR_BASE) -> None:
        self.gic = gic
        self.base = base
        self.size = 0x20000 * gic.ncpus

    def reg_name(self, off: int) -> str:
        cpu, o = divmod(off, 0x20000)
        return f"GICR{cpu}.{_redist_name(o)}"

    @staticmethod
    def _size_ok(o: int, size: int) -> bool:
        """As QEMU's GICv3 redistributor: 32-bit for all, 64-bit for TYPER, PROPBASER
        and PENDBASER, bytes for the SGI frame's IPRIORITYR; anything else RAZ/WI."""
        if size == 4:
            return o % 4 == 0
        if size == 8:
            return o in (0x008, 0x070, 0x078)
        if size == 1:
            return 0x10400 <= o < 0x10420
        return False

    def read(self, off: int, size: int) -> int:
        g = self.gic
        cpu, o = divmod(off, 0x20000)
        if not self._size_ok(o, size):
            return 0
        reg = o & ~3
        if o < 0x10000:
            if reg in (0x070, 0x074, 0x078, 0x07C):          # PROPBASER, PENDBASER: kept, no LPIs
                r = g.lpi_base[cpu][reg >> 3 & 1]
                return r if size == 8 else (r >> 32 if reg & 4 else r & 0xFFFF_FFFF)
            if reg == 0x000:
                v = g.gicr_ctlr[cpu]
            elif reg == 0x004:
                v = GIC_IIDR
            elif reg in (0x008, 0x00C):
                m = g.mpidrs[cpu]
                aff = ((m >> 32) & 0xFF) << 24 | (m & 0xFFFFFF)
                typer = (aff << 32) | (1 << 24) | (cpu << 8) | 1    # PLPIS advertised as QEMU does
                if cpu == g.ncpus - 1:
                    typer |= 1 << 4                          # Last
                if size == 8:
                    return typer
                v = typer >> 32 if reg == 0x00C else typer & 0xFFFF_FFFF
            elif reg == 0x014:
                v = g.waker[cpu]
            elif 0xFFD0 <= reg < 0x10000:
                v = _idreg(reg, PIDR0_REDIST)
            else:
                v = 0
            return _sub_read(v, o, size) if size < 4 else v
        o -= 0x10000
        reg = o & ~3
        b = g.private[cpu]
        if 0x080 <= reg < 0x400 and (reg & 0x7F) == 0:
            v = _bitmap_read(b, _BITMAP_REGS[reg], 0)
        elif 0x400 <= o < 0x420:
            i = o - 0x400
            return int.from_bytes(bytes(b.priority[i:i + size]).ljust(size, b"\0"), "little")
        elif reg in (0xC00, 0xC04):
            base = 0 if reg == 0xC00 else 16
            v = 0
            for k in range(16):
                if (b.edge >> (base + k)) & 1:
                    v |= 2 << (2 * k)
        else:
            v = 0
        return _sub_read(v, o, size) if size < 4 else v

    def write(self, off: int, size: int, value: int) -> None:
        g = self.gic
        cpu, o = divmod(off, 0x20000)
        if not self._size_ok(o, size):
            return
        reg = o & ~3
        if o < 0x10000:
            if reg in (0x070, 0x074, 0x078, 0x07C):
                i = reg >> 3 & 1
                r = g.lpi_base[cpu][i]
                if size == 8:
                    r = value
                elif reg & 4:
                    r = (r & 0xFFFF_FFFF) | (value & 0xFFFF_FFFF) << 32
                else:
                    r = (r & ~0xFFFF_FFFF) | (value & 0xFFFF_FFFF)
                g.lpi_base[cpu][i] = r
                return
            if reg == 0x000:
                # EnableLPIs is kept (CES is RO); LPIs need the ITS, which neve lacks.
                g.gicr_ctlr[cpu] = (g.gicr_ctlr[cpu] & ~GICR_CTLR_ENABLE_LPIS) | (value & GICR_CTLR_ENABLE_LPIS)
                return
            if reg == 0x014:
                # Only ProcessorSleep is writable; ChildrenAsleep follows it at once.
                ps = value & GICR_WAKER_PROCESSOR_SLEEP
                g.waker[cpu] = ps | (GICR_WAKER_CHILDREN_ASLEEP if ps else 0)
            # CTLR (EnableLPIs: LPIs are not implemented), PROPBASER...: ignored
            return
        o -= 0x10000
        reg = o & ~3
        b = g.private[cpu]
        if 0x080 <= reg < 0x400 and (reg & 0x7F) == 0:
            _bitmap_write(b, _BITMAP_REGS[reg], 0, value)
        elif 0x400 <= o < 0x420:
            i = o - 0x400
            for k in range(size):
                if i + k < NUM_PRIVATE:
                    b.priority[i + k] = (value >> (8 * k)) & 0xFF
        elif reg == 0xC04:                                   # PPI trigger modes (SGIs are fixed edge)
            for k in range(16):
                bit = 1 << (16 + k)
                if (value >> (2 * k + 1)) & 1:
                    b.edge |= bit
                else:
                    b.edge &= ~bit
        g.changed(mmio=True)


def _dist_name(off: int) -> str:
    fixed = {0x0: "CTLR", 0x4: "TYPER", 0x8: "IIDR", 0xC: "TYPER2", 0x10: "STATUSR", 0x40: "SETSPI_NSR",
             0x48: "CLRSPI_NSR", 0xF00: "SGIR"}
    if off in fixed:
        return fixed[off]
    if 0x080 <= off < 0x400:
        return f"{_BITMAP_REGS[off & ~0x7F]}{(off & 0x7F) // 4}"
    if 0x400 <= off < 0x800:
        return f"IPRIORITYR{(off - 0x400) // 4}"
    if 0x800 <= off < 0xC00:
        return f"ITARGETSR{(off - 0x800) // 4}"
    if 0xC00 <= off < 0xD00:
        return f"ICFGR{(off - 0xC00) // 4}"
    if 0xD00 <= off < 0xE00:
        return f"IGRPMODR{(off - 0xD00) // 4}"
    if 0x6000 <= off < 0x8000:
        return f"IROUTER{(off - 0x6000) // 8}"
    if 0xFFD0 <= off < 0x10000:
        return "ID"
    return f"+{off:#x}"


def _redist_name(o: int) -> str:
    if o < 0x10000:
        fixed = {0x0: "CTLR", 0x4: "IIDR", 0x8: "TYPER", 0xC: "TYPER", 0x10: "STATUSR", 0x14: "WAKER",
                 0x70: "PROPBASER", 0x78: "PENDBASER"}
        if o in fixed:
            return fixed[o]
        if 0xFFD0 <= o:
            return "ID"
        return f"+{o:#x}"
    s = o - 0x10000
    if 0x080 <= s < 0x400 and (s & 0x7F) == 0:
        return f"{_BITMAP_REGS[s]}0"
    if 0x400 <= s < 0x420:
        return f"IPRIORITYR{(s - 0x400) // 4}"
    if s in (0xC00, 0xC04):
        return f"ICFGR{(s - 0xC00) // 4}"
    return f"SGI+{s:#x}"
