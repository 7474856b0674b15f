"""What the two CPU interfaces share: the physical one (neve/gic/cpuif.py) and the
virtual one (neve/gic/vif.py).

An MRS or MSR of ICC_<name>_EL1 reaches an interface as `read(name)` / `write(name, v)`,
<name> without the ICC_ prefix and _EL1 suffix; a VM's ICC_* access that HCR_EL2.IMO/FMO
turns into an ICV_* access is the same name on the virtual interface.  Both answer the
same names through the tables below, one handler per name over the methods both
classes implement (iar, hppir, eoir, dir, running_priority, read_*/write_* of PMR, BPR,
CTLR, IGRPEN and the active-priority registers); the physical interface adds SGI
generation.  A name outside the tables reads as 0 and ignores writes (SRE is RAO/WI).
"""
from __future__ import annotations

from neve.gic.regs import ICC_SRE_EL1_VALUE


def lowest_bit(v: int) -> int:
    return (v & -v).bit_length() - 1


READS = {
    "IAR0": lambda i: i.iar(0),
    "IAR1": lambda i: i.iar(1),
    "HPPIR0": lambda i: i.hppir(0),
    "HPPIR1": lambda i: i.hppir(1),
    "RPR": lambda i: i.running_priority(),
    "PMR": lambda i: i.read_pmr(),
    "BPR0": lambda i: i.read_bpr(0),
    "BPR1": lambda i: i.read_bpr(1),
    "CTLR": lambda i: i.read_ctlr(),
    "IGRPEN0": lambda i: i.read_igrpen(0),
    "IGRPEN1": lambda i: i.read_igrpen(1),
    "SRE": lambda i: ICC_SRE_EL1_VALUE,
    **{f"AP{g}R{n}": (lambda i, g=g, n=n: i.read_apr(g, n)) for g in (0, 1) for n in range(4)},
}

WRITES = {
    "EOIR0": lambda i, v: i.eoir(0, v),
    "EOIR1": lambda i, v: i.eoir(1, v),
    "DIR": lambda i, v: i.dir(v),
    "PMR": lambda i, v: i.write_pmr(v),
    "BPR0": lambda i, v: i.write_bpr(0, v),
    "BPR1": lambda i, v: i.write_bpr(1, v),
    "CTLR": lambda i, v: i.write_ctlr(v),
    "IGRPEN0": lambda i, v: i.write_igrpen(0, v),
    "IGRPEN1": lambda i, v: i.write_igrpen(1, v),
    **{f"AP{g}R{n}": (lambda i, v, g=g, n=n: i.write_apr(g, n, v)) for g in (0, 1) for n in range(4)},
}


class IccRegisters:
    """`read`/`write` of a CPU interface by register name, through the class's tables."""

    READS = READS
    WRITES = WRITES

    def read(self, name: str) -> int:
        """An MRS of ICC_<name>_EL1 (ICV_<name>_EL1 on the virtual interface)."""
        h = self.READS.get(name)
        return 0 if h is None else h(self)

    def write(self, name: str, v: int) -> None:
        """An MSR of ICC_<name>_EL1 (ICV_<name>_EL1 on the virtual interface)."""
        h = self.WRITES.get(name)
        if h is not None:
            h(self, v)
