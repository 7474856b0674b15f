"""Hand-written fuzz cases (neve/fuzz/case.py) for the regression tests of
tests/test_fuzz.py: slot builders, and identity page tables for the nested VM's
two stages of translation, built in the case's pool pages.

Memory of a case (neve/fuzz/case.py): the harness and the case lie in the first
2 MiB of RAM (0x40000000); the stage-1 and stage-2 tables below map that range
with 4 KiB pages (so one page of it can be unmapped) and the rest of RAM with
2 MiB blocks, the UART and the GIC distributor as Device memory.
"""
from __future__ import annotations

import struct

from neve.fuzz import a64
from neve.fuzz.case import Case, Layout, Slot, template
from neve.fuzz.gen import read_reg, set_reg

RAM = 0x4000_0000
UART, GICD = 0x0900_0000, 0x0800_0000
HCR_RW, HCR_VM = 1 << 31, 1 << 0
PAR_EL1 = (3, 0, 7, 4, 0)

# AT operations: name -> (op1, CRn, CRm, op2) of SYS.
AT = {
    "S1E1R": (0, 7, 8, 0), "S1E1W": (0, 7, 8, 1), "S1E0R": (0, 7, 8, 2), "S1E0W": (0, 7, 8, 3),
    "S1E1RP": (0, 7, 9, 0), "S1E1WP": (0, 7, 9, 1),
    "S1E2R": (4, 7, 8, 0), "S1E2W": (4, 7, 8, 1),
    "S12E1R": (4, 7, 8, 4), "S12E1W": (4, 7, 8, 5), "S12E0R": (4, 7, 8, 6), "S12E0W": (4, 7, 8, 7),
}

# Stage-1 descriptor bits (4 KiB granule).
S1_AF, S1_ISH = 1 << 10, 3 << 8
S1_AP_EL1_RW, S1_AP_ALL_RW = 0, 1 << 6
S1_UXN, S1_PXN = 1 << 54, 1 << 53
# Stage-2 descriptor bits.
S2_AF, S2_RW, S2_NORMAL, S2_DEVICE, S2_ISH = 1 << 10, 3 << 6, 0xF << 2, 0, 3 << 8

MAIR = 0x44FF00                         # Attr0 Device-nGnRnE, Attr1 Normal WB, Attr2 Normal NC
TCR_39 = 25 | 1 << 8 | 1 << 10 | 3 << 12 | 1 << 23 | 2 << 32       # T0SZ 25, WB, ISH, EPD1, IPS 40 bits
VTCR_39 = 25 | 1 << 6 | 1 << 8 | 1 << 10 | 3 << 12 | 2 << 16 | 1 << 31   # start level 1, PS 40 bits
SCTLR_EL1_MMU = 0x00C50838 | 1 | 1 << 2 | 1 << 12

LAYOUT: Layout = template()[0]


def slot(*words: int, show: bool = False, note: str = "") -> Slot:
    return Slot(list(words), show=show, note=note)


def mov(rd: int, v: int) -> list[int]:
    return a64.mov_imm(rd, v)


def at(name: str, va: int) -> Slot:
    """AT <name>, va; then x0 = PAR_EL1, shown."""
    op1, crn, crm, op2 = AT[name]
    return Slot(mov(1, va) + [a64.sys(op1, crn, crm, op2, 1), a64.ISB, a64.mrs(0, PAR_EL1)], show=True,
                note=f"at {name}, {va:#x}; mrs x0, PAR_EL1")


def load(va: int, size: int = 8) -> Slot:
    return Slot(mov(1, va) + [a64.ldst_uimm(True, size, 0, 1)], show=True, note=f"ldr size {size} at {va:#x}")


class Tables:
    """Page tables in a case's pool pages."""

    def __init__(self, case: Case) -> None:
        self.case = case

    def page(self) -> tuple[int, bytearray]:
        i = len(self.case.pool)
        page = bytearray(4096)
        self.case.pool[i] = page
        return LAYOUT.pool + i * 4096, page

    @staticmethod
    def put(page: bytearray, index: int, desc: int) -> None:
        struct.pack_into("<Q", page, index * 8, desc)

    def stage2(self) -> tuple[int, bytearray]:
        """Identity stage 2 of the first 1 GiB (UART, GICD) and the 128 MiB of RAM:
        (VTTBR_EL2 base, the L3 table of RAM's first 2 MiB)."""
        l1, l1p = self.page()
        dev, devp = self.page()
        ram, ramp = self.page()
        l3, l3p = self.page()
        self.put(l1p, 0, dev | 3)
        self.put(l1p, 1, ram | 3)
        for pa in (UART, GICD):
            self.put(devp, pa >> 21, pa | S2_AF | S2_RW | S2_DEVICE | 2 << 53 | 1)
        self.put(ramp, 0, l3 | 3)
        for i in range(1, 64):
            self.put(ramp, i, RAM + (i << 21) | S2_AF | S2_RW | S2_NORMAL | S2_ISH | 1)
        for i in range(512):
            self.put(l3p, i, RAM + (i << 12) | S2_AF | S2_RW | S2_NORMAL | S2_ISH | 3)
        return l1, l3p

    def stage1(self) -> tuple[int, bytearray]:
        """Identity stage 1 for the EL1&0 regime (EL1 read/write, executable at EL1):
        (TTBR0 base, the L1 table, whose entries 2 and 3 are free for tests)."""
        l1, l1p = self.page()
        dev, devp = self.page()
        ram, ramp = self.page()
        self.put(l1p, 0, dev | 3)
        self.put(l1p, 1, ram | 3)
        for pa in (UART, GICD):
            self.put(devp, pa >> 21, pa | S1_AF | S1_AP_ALL_RW | S1_UXN | S1_PXN | 0 << 2 | 1)
        for i in range(64):
            self.put(ramp, i, RAM + (i << 21) | S1_AF | S1_ISH | 1 << 2 | S1_AP_EL1_RW | 1)
        return l1, l1p

    @staticmethod
    def s2_unmap(l3p: bytearray, ipa: int) -> None:
        """Unmap one 4 KiB page of RAM's first 2 MiB at stage 2."""
        assert RAM <= ipa < RAM + (2 << 20)
        Tables.put(l3p, (ipa - RAM) >> 12, 0)


def mmu_on_el1(ttbr0: int) -> list[Slot]:
    """The writes that turn the EL1&0 stage 1 on (an EL1 kernel's, or L1's for its VM)."""
    return [set_reg("MAIR_EL1", MAIR), set_reg("TCR_EL1", TCR_39), set_reg("TTBR0_EL1", ttbr0),
            set_reg("SCTLR_EL1", SCTLR_EL1_MMU)]


def stage2_on(vttbr: int, hcr: int = 0) -> list[Slot]:
    return [set_reg("VTCR_EL2", VTCR_39), set_reg("VTTBR_EL2", vttbr), set_reg("HCR_EL2", HCR_RW | HCR_VM | hcr)]


__all__ = ["AT", "HCR_RW", "HCR_VM", "LAYOUT", "Case", "Slot", "Tables", "at", "load", "mmu_on_el1", "mov",
           "read_reg", "set_reg", "slot", "stage2_on"]
