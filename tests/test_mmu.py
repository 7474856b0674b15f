"""Tests for neve.arch.mmu — the VMSAv8-64 translation-table walker."""

from __future__ import annotations

import struct

import pytest

from neve.arch.mmu import (
    ExternalAbort,
    Fault,
    Stage1Regime,
    Translation,
    describe,
    fault_to_fsc,
    stage2_translator,
    walk_stage1,
    walk_stage2,
)

# --------------------------------------------------------------------------
# Descriptor / register bits
# --------------------------------------------------------------------------
TABLE = 0b11
PAGE = 0b11
BLOCK = 0b01
AF = 1 << 10
NG = 1 << 11
AP_RW_EL1 = 0b00 << 6
AP_RW_ALL = 0b01 << 6
AP_RO_EL1 = 0b10 << 6
AP_RO_ALL = 0b11 << 6
PXN = 1 << 53
UXN = 1 << 54
XN = UXN
PXN_TABLE = 1 << 59
XN_TABLE = 1 << 60
AP_TABLE_NO_EL0 = 1 << 61
AP_TABLE_RO = 1 << 62
S2AP_R = 1 << 6
S2AP_W = 1 << 7
S2_RW = S2AP_R | S2AP_W

SCTLR_M = 1
SCTLR_WXN = 1 << 19

TG0_4K, TG0_64K, TG0_16K = 0, 1, 2
TG1_16K, TG1_4K, TG1_64K = 1, 2, 3
IPS_48 = 5
IPS_40 = 2
IPS_32 = 0

MAIR = 0x44_FF_04_00_BB_AA_EE_FF  # distinct byte per AttrIndx: idx0=0xFF idx1=0xEE idx2=0xAA ...


def attr(idx: int) -> int:
    return idx << 2


def tcr_el1(t0sz=16, tg0=TG0_4K, t1sz=16, tg1=TG1_4K, ips=IPS_48, epd0=0, epd1=0, tbi0=0, tbi1=0, hpd0=0):
    return (
        t0sz
        | epd0 << 7
        | tg0 << 14
        | t1sz << 16
        | epd1 << 23
        | tg1 << 30
        | ips << 32
        | tbi0 << 37
        | tbi1 << 38
        | hpd0 << 41
    )


def tcr_el2(t0sz=16, tg0=TG0_4K, ps=IPS_48, tbi=0):
    return t0sz | tg0 << 14 | ps << 16 | tbi << 20 | 1 << 23 | 1 << 31  # RES1 bits 23, 31


def vtcr(t0sz=16, sl0=2, tg0=TG0_4K, ps=IPS_48):
    return t0sz | sl0 << 6 | tg0 << 14 | ps << 16 | 1 << 31


# --------------------------------------------------------------------------
# A bytearray-backed physical memory
# --------------------------------------------------------------------------
class PhysMem:
    def __init__(self, size: int = 16 << 20, base: int = 0):
        self.base = base
        self.buf = bytearray(size)
        self.reads: list[int] = []
        self.abort_at: set[int] = set()

    def read64(self, pa: int) -> int:
        self.reads.append(pa)
        off = pa - self.base
        if pa in self.abort_at or off < 0 or off + 8 > len(self.buf):
            raise ExternalAbort(hex(pa))
        assert pa % 8 == 0
        return struct.unpack_from("<Q", self.buf, off)[0]

    def write64(self, pa: int, val: int) -> None:
        struct.pack_into("<Q", self.buf, pa - self.base, val)

    def __call__(self, pa: int) -> int:
        return self.read64(pa)


# Hand-placed tables at distinctive addresses.
L0 = 0x0010_0000
L1 = 0x0012_3000
L2 = 0x0014_5000
L3 = 0x0016_7000


def setup_4k_4level(mem: PhysMem, leaf=AF | AP_RW_ALL | attr(2)):
    """VA 0x0000_1234_5678_9ABC -> PA 0x0000_00AB_CDEF_0ABC with a 4 KiB page."""
    # indices computed by hand: L0=0x24 L1=0xd1 L2=0xb3 L3=0x189
    mem.write64(L0 + 0x24 * 8, L1 | TABLE)
    mem.write64(L1 + 0xD1 * 8, L2 | TABLE)
    mem.write64(L2 + 0xB3 * 8, L3 | TABLE)
    mem.write64(L3 + 0x189 * 8, 0x00AB_CDEF_0000 | leaf | PAGE)


VA4 = 0x0000_1234_5678_9ABC


def el1_regime(**kw):
    sctlr = kw.pop("sctlr", SCTLR_M)
    ttbr0 = kw.pop("ttbr0", L0)
    ttbr1 = kw.pop("ttbr1", 0)
    return Stage1Regime.el10(sctlr, tcr_el1(**kw), ttbr0, ttbr1, MAIR)


# --------------------------------------------------------------------------
# Fault codes
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind,level,fsc",
    [
        ("translation", 0, 0b000100),
        ("translation", 1, 0b000101),
        ("translation", 3, 0b000111),
        ("access_flag", 1, 0b001001),
        ("access_flag", 3, 0b001011),
        ("permission", 2, 0b001110),
        ("address_size", 0, 0b000000),
        ("address_size", 2, 0b000010),
        ("external", 0, 0b010100),
        ("external", 3, 0b010111),
        ("translation", -1, 0b101011),
        ("address_size", -1, 0b101001),
    ],
)
def test_fsc_encoding(kind, level, fsc):
    assert fault_to_fsc(kind, level) == fsc
    assert Fault(kind, level, 1, False, None).fsc == fsc


def test_hpfar():
    f = Fault("translation", 2, 2, False, 0x0000_1234_5678_9ABC)
    assert f.hpfar == (0x1234_5678_9 << 4)


# --------------------------------------------------------------------------
# Stage 1, 4 KiB
# --------------------------------------------------------------------------
def test_4k_4level_page():
    mem = PhysMem()
    setup_4k_4level(mem)
    t = walk_stage1(mem, el1_regime(), VA4)
    assert isinstance(t, Translation), t
    assert t.pa == 0x00AB_CDEF_0ABC
    assert t.level == 3
    assert t.block_size == 4096
    assert t.attrs == 0xAA
    assert (t.readable, t.writable) == (True, True)
    assert mem.reads == [L0 + 0x24 * 8, L1 + 0xD1 * 8, L2 + 0xB3 * 8, L3 + 0x189 * 8]
    assert "PA=0xabcdef0abc" in describe(t)


def test_4k_3level_39bit():
    # T0SZ=25 -> 39-bit VA -> start at level 1 (512 entries).
    mem = PhysMem()
    va = 0x0000_0040_8060_3ABC  # L1=0x102 L2=0x3 L3=0x3
    mem.write64(L1 + 0x102 * 8, L2 | TABLE)
    mem.write64(L2 + 0x3 * 8, L3 | TABLE)
    mem.write64(L3 + 0x3 * 8, 0x0000_0077_7000 | AF | PAGE | attr(1))
    reg = el1_regime(t0sz=25, ttbr0=L1)
    t = walk_stage1(mem, reg, va)
    assert isinstance(t, Translation), t
    assert t.pa == 0x0077_7ABC
    assert t.attrs == 0xEE
    assert mem.reads[0] == L1 + 0x102 * 8
    # bit 39 set -> outside the 39-bit TTBR0 range: translation fault level 0
    f = walk_stage1(mem, reg, va | 1 << 39)
    assert isinstance(f, Fault) and (f.kind, f.level, f.fsc) == ("translation", 0, 0b000100)


def test_4k_start_level_2_small_va():
    # T0SZ=34 -> 30-bit VA -> start at level 2 with only 2 entries... (30-12)/9 = 2 levels
    mem = PhysMem()
    va = 0x2AB5_6DEF  # L2 idx = bits[29:21] = 0x155, L3 idx = bits[20:12] = 0x156
    mem.write64(L2 + 0x155 * 8, L3 | TABLE)
    mem.write64(L3 + 0x156 * 8, 0x1234_5000 | AF | PAGE)
    t = walk_stage1(mem, el1_regime(t0sz=34, ttbr0=L2), va)
    assert isinstance(t, Translation), t
    assert t.pa == 0x1234_5DEF


def test_4k_2mib_block():
    mem = PhysMem()
    mem.write64(L0 + 0x24 * 8, L1 | TABLE)
    mem.write64(L1 + 0xD1 * 8, L2 | TABLE)
    mem.write64(L2 + 0xB3 * 8, 0x0000_0080_0060_0000 | AF | BLOCK | AP_RO_EL1)
    t = walk_stage1(mem, el1_regime(), VA4)
    assert isinstance(t, Translation), t
    assert t.level == 2 and t.block_size == 2 << 20
    assert t.pa == 0x0080_0060_0000 | (VA4 & 0x1F_FFFF)
    assert t.attrs == 0xFF
    assert not t.writable
    f = walk_stage1(mem, el1_regime(), VA4, write=True)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("permission", 2) and f.fsc == 0b001110


def test_4k_1gib_block():
    mem = PhysMem()
    mem.write64(L0 + 0x24 * 8, L1 | TABLE)
    mem.write64(L1 + 0xD1 * 8, 0x0000_00C0_4000_0000 | AF | BLOCK)
    t = walk_stage1(mem, el1_regime(), VA4)
    assert isinstance(t, Translation), t
    assert t.level == 1 and t.block_size == 1 << 30
    assert t.pa == 0x00C0_4000_0000 | (VA4 & 0x3FFF_FFFF)


def test_4k_block_at_level0_is_translation_fault():
    mem = PhysMem()
    mem.write64(L0 + 0x24 * 8, 0x0000_0080_0000_0000 | AF | BLOCK)
    f = walk_stage1(mem, el1_regime(), VA4)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("translation", 0)


def test_level3_block_encoding_is_reserved():
    mem = PhysMem()
    setup_4k_4level(mem)
    mem.write64(L3 + 0x189 * 8, 0x00AB_CDEF_0000 | AF | BLOCK)
    f = walk_stage1(mem, el1_regime(), VA4)
    assert isinstance(f, Fault) and (f.kind, f.level, f.fsc) == ("translation", 3, 0b000111)


@pytest.mark.parametrize("level,addr", [(0, L0 + 0x24 * 8), (1, L1 + 0xD1 * 8), (2, L2 + 0xB3 * 8), (3, L3 + 0x189 * 8)])
def test_translation_fault_each_level(level, addr):
    mem = PhysMem()
    setup_4k_4level(mem)
    mem.write64(addr, 0x0000_0000_0000_0002)  # bit0 clear -> invalid
    f = walk_stage1(mem, el1_regime(), VA4)
    assert isinstance(f, Fault)
    assert (f.kind, f.level, f.stage, f.s1ptw, f.ipa) == ("translation", level, 1, False, None)
    assert f.fsc == 0b000100 | level
    assert mem.reads[-1] == addr


def test_neighbouring_entries_not_used():
    # Catch off-by-one index extraction: fill the neighbours with valid but wrong entries.
    mem = PhysMem()
    setup_4k_4level(mem)
    for tbl, idx in ((L0, 0x24), (L1, 0xD1), (L2, 0xB3), (L3, 0x189)):
        for d in (-1, 1):
            mem.write64(tbl + (idx + d) * 8, 0x00DE_AD00_0000 | AF | BLOCK)
    t = walk_stage1(mem, el1_regime(), VA4)
    assert isinstance(t, Translation) and t.pa == 0x00AB_CDEF_0ABC


def test_access_flag_fault():
    mem = PhysMem()
    setup_4k_4level(mem, leaf=AP_RW_ALL)
    f = walk_stage1(mem, el1_regime(), VA4)
    assert isinstance(f, Fault) and (f.kind, f.level, f.fsc) == ("access_flag", 3, 0b001011)


def test_external_abort_on_walk():
    mem = PhysMem()
    setup_4k_4level(mem)
    mem.abort_at.add(L2 + 0xB3 * 8)
    f = walk_stage1(mem, el1_regime(), VA4)
    assert isinstance(f, Fault) and (f.kind, f.level, f.fsc) == ("external", 2, 0b010110)


# --------------------------------------------------------------------------
# Permissions
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ap,el,r,w",
    [
        (AP_RW_EL1, 1, True, True),
        (AP_RW_EL1, 0, False, False),
        (AP_RW_ALL, 1, True, True),
        (AP_RW_ALL, 0, True, True),
        (AP_RO_EL1, 1, True, False),
        (AP_RO_EL1, 0, False, False),
        (AP_RO_ALL, 1, True, False),
        (AP_RO_ALL, 0, True, False),
    ],
)
def test_ap_el0_el1(ap, el, r, w):
    mem = PhysMem()
    setup_4k_4level(mem, leaf=AF | ap)
    reg = el1_regime()
    res = walk_stage1(mem, reg, VA4, el=el)
    if r:
        assert isinstance(res, Translation) and (res.readable, res.writable) == (r, w)
    else:
        assert isinstance(res, Fault) and (res.kind, res.level, res.fsc) == ("permission", 3, 0b001111)
    res = walk_stage1(mem, reg, VA4, el=el, write=True)
    if w:
        assert isinstance(res, Translation)
    else:
        assert isinstance(res, Fault) and res.kind == "permission" and res.write


def test_execute_uxn_pxn():
    mem = PhysMem()
    reg = el1_regime()
    setup_4k_4level(mem, leaf=AF | AP_RO_ALL | UXN)
    assert isinstance(walk_stage1(mem, reg, VA4, execute=True, el=1), Translation)
    f = walk_stage1(mem, reg, VA4, execute=True, el=0)
    assert isinstance(f, Fault) and f.kind == "permission" and f.execute
    setup_4k_4level(mem, leaf=AF | AP_RO_ALL | PXN)
    assert isinstance(walk_stage1(mem, reg, VA4, execute=True, el=0), Translation)
    f = walk_stage1(mem, reg, VA4, execute=True, el=1)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("permission", 3)


def test_implicit_pxn_for_el0_writable():
    mem = PhysMem()
    setup_4k_4level(mem, leaf=AF | AP_RW_ALL)
    reg = el1_regime()
    f = walk_stage1(mem, reg, VA4, execute=True, el=1)
    assert isinstance(f, Fault) and f.kind == "permission"
    assert isinstance(walk_stage1(mem, reg, VA4, execute=True, el=0), Translation)


def test_wxn():
    mem = PhysMem()
    setup_4k_4level(mem, leaf=AF | AP_RW_EL1)
    assert isinstance(walk_stage1(mem, el1_regime(), VA4, execute=True), Translation)
    f = walk_stage1(mem, el1_regime(sctlr=SCTLR_M | SCTLR_WXN), VA4, execute=True)
    assert isinstance(f, Fault) and f.kind == "permission"
    setup_4k_4level(mem, leaf=AF | AP_RO_EL1)
    assert isinstance(walk_stage1(mem, el1_regime(sctlr=SCTLR_M | SCTLR_WXN), VA4, execute=True), Translation)


def test_hierarchical_table_attributes():
    mem = PhysMem()
    reg = el1_regime()
    setup_4k_4level(mem, leaf=AF | AP_RW_ALL | UXN)
    # APTable[1] at level 1 -> read-only everywhere below
    mem.write64(L1 + 0xD1 * 8, L2 | TABLE | AP_TABLE_RO)
    t = walk_stage1(mem, reg, VA4)
    assert isinstance(t, Translation) and t.readable and not t.writable
    f = walk_stage1(mem, reg, VA4, write=True)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("permission", 3)
    # APTable[0] at level 0 -> no EL0 access
    mem.write64(L1 + 0xD1 * 8, L2 | TABLE)
    mem.write64(L0 + 0x24 * 8, L1 | TABLE | AP_TABLE_NO_EL0)
    assert isinstance(walk_stage1(mem, reg, VA4, el=1), Translation)
    f = walk_stage1(mem, reg, VA4, el=0)
    assert isinstance(f, Fault) and f.kind == "permission"
    # PXNTable / UXNTable at level 2
    setup_4k_4level(mem, leaf=AF | AP_RO_ALL)
    mem.write64(L2 + 0xB3 * 8, L3 | TABLE | PXN_TABLE)
    assert isinstance(walk_stage1(mem, reg, VA4, execute=True, el=0), Translation)
    assert isinstance(walk_stage1(mem, reg, VA4, execute=True, el=1), Fault)
    mem.write64(L2 + 0xB3 * 8, L3 | TABLE | XN_TABLE)
    assert isinstance(walk_stage1(mem, reg, VA4, execute=True, el=1), Translation)
    assert isinstance(walk_stage1(mem, reg, VA4, execute=True, el=0), Fault)
    # HPD0 disables the hierarchical bits
    reg_hpd = el1_regime(hpd0=1)
    assert isinstance(walk_stage1(mem, reg_hpd, VA4, execute=True, el=0), Translation)


# --------------------------------------------------------------------------
# 16 KiB and 64 KiB granules
# --------------------------------------------------------------------------
def test_16k_granule_4level_48bit():
    # 48-bit VA with 16K: level 0 has 2 entries (bit 47), levels 1-3 11 bits each.
    mem = PhysMem()
    va = 0x0000_FEDC_BA98_7654  # L0=1 L1=0x7ed L2=0x65d L3=0x261 off=0x3654
    t0, t1, t2, t3 = 0x10_0000, 0x20_4000, 0x30_8000, 0x40_C000
    mem.write64(t0 + 1 * 8, t1 | TABLE)
    mem.write64(t1 + 0x7ED * 8, t2 | TABLE)
    mem.write64(t2 + 0x65D * 8, t3 | TABLE)
    mem.write64(t3 + 0x261 * 8, 0x0000_0012_3456_C000 | AF | PAGE | attr(3))
    reg = el1_regime(tg0=TG0_16K, ttbr0=t0)
    t = walk_stage1(mem, reg, va)
    assert isinstance(t, Translation), t
    assert t.pa == 0x0012_3456_C000 | 0x3654
    assert t.block_size == 16 << 10 and t.level == 3
    assert t.attrs == 0xBB
    assert mem.reads == [t0 + 8, t1 + 0x7ED * 8, t2 + 0x65D * 8, t3 + 0x261 * 8]


def test_16k_32mib_block_and_level1_block_fault():
    mem = PhysMem()
    va = 0x0000_0FDC_BA98_7654  # 47-bit VA space (T0SZ=17): start level 1
    t1, t2 = 0x20_4000, 0x30_8000
    i1 = (va >> 36) & 0x7FF
    i2 = (va >> 25) & 0x7FF
    assert (i1, i2) == (0xFD, 0x65D)
    mem.write64(t1 + 0xFD * 8, t2 | TABLE)
    mem.write64(t2 + 0x65D * 8, 0x0000_0004_0600_0000 | AF | BLOCK)
    reg = el1_regime(t0sz=17, tg0=TG0_16K, ttbr0=t1)
    t = walk_stage1(mem, reg, va)
    assert isinstance(t, Translation), t
    assert t.level == 2 and t.block_size == 32 << 20
    assert t.pa == 0x0004_0600_0000 | (va & (32 << 20) - 1)
    # A block at level 1 is not permitted with the 16K granule (no LPA2).
    mem.write64(t1 + 0xFD * 8, 0x0000_0010_0000_0000 | AF | BLOCK)
    f = walk_stage1(mem, reg, va)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("translation", 1)


def test_64k_granule_3level():
    # 48-bit VA with 64K: start level 1 with 64 entries (bits 47:42), L2/L3 13 bits each.
    mem = PhysMem()
    va = 0x0000_7EDC_BA98_7654  # L1=0x1f L2=0x16e5 L3=0x1a98 off=0x7654
    t1, t2, t3 = 0x10_0000, 0x20_0000, 0x30_0000
    mem.write64(t1 + 0x1F * 8, t2 | TABLE)
    mem.write64(t2 + 0x16E5 * 8, t3 | TABLE)
    mem.write64(t3 + 0x1A98 * 8, 0x0000_00AA_BBCC_0000 | AF | PAGE)
    reg = el1_regime(tg0=TG0_64K, ttbr0=t1)
    t = walk_stage1(mem, reg, va)
    assert isinstance(t, Translation), t
    assert t.pa == 0x00AA_BBCC_7654
    assert t.block_size == 64 << 10
    assert mem.reads == [t1 + 0x1F * 8, t2 + 0x16E5 * 8, t3 + 0x1A98 * 8]
    # 512 MiB block at level 2
    mem.write64(t2 + 0x16E5 * 8, 0x0000_00A0_0000_0000 | AF | BLOCK)
    t = walk_stage1(mem, reg, va)
    assert isinstance(t, Translation) and t.level == 2 and t.block_size == 512 << 20
    assert t.pa == 0x00A0_0000_0000 | (va & (512 << 20) - 1)
    # level 1 block not allowed with 64K (no LPA)
    mem.write64(t1 + 0x1F * 8, 0x0000_0400_0000_0000 | AF | BLOCK)
    f = walk_stage1(mem, reg, va)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("translation", 1)


def test_64k_table_descriptor_ignores_low_address_bits():
    # For a 64K granule the next-level table address is desc[47:16].
    mem = PhysMem()
    va = 0x0000_0000_2001_2345  # T0SZ=22 (42-bit): start level 2
    t2, t3 = 0x20_0000, 0x30_0000
    mem.write64(t2 + 1 * 8, t3 | 0xF000 | TABLE)  # bits [15:12] must not be used
    mem.write64(t3 + 1 * 8, 0x0000_0055_0000_0000 | AF | PAGE)
    t = walk_stage1(mem, el1_regime(t0sz=22, tg0=TG0_64K, ttbr0=t2), va)
    assert isinstance(t, Translation), t
    assert t.pa == 0x0055_0000_2345


# --------------------------------------------------------------------------
# TTBR1, TBI, EPD
# --------------------------------------------------------------------------
def test_ttbr1_upper_range_with_tg1_encoding():
    mem = PhysMem()
    # TTBR1: 16K granule via TG1=0b01 (a TG0-style decode would give 64K!), T1SZ=17.
    va = 0xFFFF_8FDC_BA98_7654
    t1, t2, t3 = 0x50_4000, 0x60_8000, 0x70_C000
    i1, i2, i3 = (va >> 36) & 0x7FF, (va >> 25) & 0x7FF, (va >> 14) & 0x7FF
    assert (i1, i2, i3) == (0x0FD, 0x65D, 0x261)
    mem.write64(t1 + i1 * 8, t2 | TABLE)
    mem.write64(t2 + i2 * 8, t3 | TABLE)
    mem.write64(t3 + i3 * 8, 0x0000_0001_2345_C000 | AF | PAGE)
    reg = el1_regime(t1sz=17, tg1=TG1_16K, ttbr1=t1, ttbr0=L0)
    t = walk_stage1(mem, reg, va)
    assert isinstance(t, Translation), t
    assert t.pa == 0x0001_2345_C000 | 0x3654
    assert mem.reads[0] == t1 + i1 * 8
    # Bit 47 clear while bit 55 set: hole between the ranges -> translation fault L0
    f = walk_stage1(mem, reg, va & ~(1 << 47))
    assert isinstance(f, Fault) and (f.kind, f.level) == ("translation", 0)
    # EPD1 disables the TTBR1 walk
    f = walk_stage1(mem, el1_regime(t1sz=17, tg1=TG1_16K, ttbr1=t1, epd1=1), va)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("translation", 0)


def test_ttbr0_epd0():
    mem = PhysMem()
    setup_4k_4level(mem)
    f = walk_stage1(mem, el1_regime(epd0=1), VA4)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("translation", 0)
    assert mem.reads == []


def test_tbi():
    mem = PhysMem()
    setup_4k_4level(mem)
    tagged = VA4 | 0x5A << 56
    f = walk_stage1(mem, el1_regime(), tagged)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("translation", 0)
    t = walk_stage1(mem, el1_regime(tbi0=1), tagged)
    assert isinstance(t, Translation) and t.pa == 0x00AB_CDEF_0ABC
    # TBI1 alone does not affect TTBR0 addresses
    f = walk_stage1(mem, el1_regime(tbi1=1), tagged)
    assert isinstance(f, Fault)
    # Upper range: tag in top byte, bit 55 still selects TTBR1
    mem2 = PhysMem()
    va = 0xFFFF_FFC0_2020_1000  # T1SZ=25 -> 39-bit: L1=0x100, L2=0x101, L3=0x1
    assert [(va >> s) & 0x1FF for s in (30, 21, 12)] == [0x100, 0x101, 0x1]
    mem2.write64(L1 + 0x100 * 8, L2 | TABLE)
    mem2.write64(L2 + 0x101 * 8, L3 | TABLE)
    mem2.write64(L3 + 0x1 * 8, 0x9999_9000 | AF | PAGE)
    reg = el1_regime(t1sz=25, ttbr1=L1, tbi1=1)
    for v in (va, (va & ~(0xFF << 56)) | 0x12 << 56):
        t = walk_stage1(mem2, reg, v)
        assert isinstance(t, Translation) and t.pa == 0x9999_9000, (hex(v), t)


# --------------------------------------------------------------------------
# EL2 regime
# --------------------------------------------------------------------------
def test_el2_regime():
    mem = PhysMem()
    # AP[1] is RES1/ignored at EL2: AP_RW_EL1 (AP=00) and AP_RW_ALL (AP=01) both RW.
    setup_4k_4level(mem, leaf=AF | AP_RW_EL1 | PXN)  # bit 53 is RES0 at EL2: no effect
    reg = Stage1Regime.el2(SCTLR_M, tcr_el2(), L0, MAIR)
    t = walk_stage1(mem, reg, VA4, execute=True)
    assert isinstance(t, Translation) and t.writable and t.executable
    assert t.pa == 0x00AB_CDEF_0ABC and not t.ng
    setup_4k_4level(mem, leaf=AF | AP_RO_EL1 | XN)
    t = walk_stage1(mem, reg, VA4)
    assert isinstance(t, Translation) and not t.writable and not t.executable
    assert isinstance(walk_stage1(mem, reg, VA4, write=True), Fault)
    assert isinstance(walk_stage1(mem, reg, VA4, execute=True), Fault)
    # APTable[0] (bit 61) is ignored at EL2; APTable[1] still forces RO.
    setup_4k_4level(mem, leaf=AF | AP_RW_EL1)
    mem.write64(L0 + 0x24 * 8, L1 | TABLE | AP_TABLE_NO_EL0)
    assert isinstance(walk_stage1(mem, reg, VA4, write=True), Translation)
    mem.write64(L0 + 0x24 * 8, L1 | TABLE | AP_TABLE_RO)
    assert isinstance(walk_stage1(mem, reg, VA4, write=True), Fault)


def test_el2_single_range_and_tbi():
    mem = PhysMem()
    setup_4k_4level(mem)
    reg = Stage1Regime.el2(SCTLR_M, tcr_el2(), L0, MAIR)
    f = walk_stage1(mem, reg, VA4 | 0xFFFF << 48)  # no TTBR1 at EL2
    assert isinstance(f, Fault) and (f.kind, f.level) == ("translation", 0)
    reg_tbi = Stage1Regime.el2(SCTLR_M, tcr_el2(tbi=1), L0, MAIR)
    t = walk_stage1(mem, reg_tbi, VA4 | 0xC3 << 56)
    assert isinstance(t, Translation) and t.pa == 0x00AB_CDEF_0ABC
    f = walk_stage1(mem, reg_tbi, VA4 | 1 << 55)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("translation", 0)


def test_el2_ps_field_position():
    # TCR_EL2.PS is at [18:16] (TCR_EL1.IPS is at [34:32]).
    mem = PhysMem()
    setup_4k_4level(mem)
    reg = Stage1Regime.el2(SCTLR_M, tcr_el2(ps=IPS_32), L0, MAIR)
    f = walk_stage1(mem, reg, VA4)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("address_size", 3)  # OA 0xABCDEF0000 >= 2^32
    # bits [34:32] (the TCR_EL1 IPS position) must not be consulted for EL2
    reg = Stage1Regime.el2(SCTLR_M, tcr_el2(ps=IPS_48) | IPS_32 << 32, L0, MAIR)
    assert isinstance(walk_stage1(mem, reg, VA4), Translation)


# --------------------------------------------------------------------------
# Address-size faults, MMU off
# --------------------------------------------------------------------------
def test_address_size_faults():
    mem = PhysMem()
    setup_4k_4level(mem)
    # IPS=40 bits: output 0xAB_CDEF_0ABC (40 bits) fits -> OK
    assert isinstance(walk_stage1(mem, el1_regime(ips=IPS_40), VA4), Translation)
    # IPS=32 bits: leaf OA is too large -> level 3 address size fault
    f = walk_stage1(mem, el1_regime(ips=IPS_32), VA4)
    assert isinstance(f, Fault) and (f.kind, f.level, f.fsc) == ("address_size", 3, 0b000011)
    # A table address beyond the OA size -> fault at the level of that descriptor
    mem.write64(L1 + 0xD1 * 8, 0x0000_0100_0014_5000 | TABLE)
    f = walk_stage1(mem, el1_regime(ips=IPS_40), VA4)
    assert isinstance(f, Fault) and (f.kind, f.level, f.fsc) == ("address_size", 1, 0b000001)
    # TTBR base beyond OA size -> level 0
    f = walk_stage1(mem, el1_regime(ips=IPS_32, ttbr0=0x1_0010_0000), VA4)
    assert isinstance(f, Fault) and (f.kind, f.level, f.fsc) == ("address_size", 0, 0)


def test_mmu_off_flat():
    mem = PhysMem()
    reg = el1_regime(sctlr=0)
    t = walk_stage1(mem, reg, 0x0000_8765_4321_0FED)
    assert isinstance(t, Translation) and t.pa == 0x8765_4321_0FED and t.writable and t.executable
    assert mem.reads == []
    f = walk_stage1(mem, reg, 0x0001_0000_0000_0000)  # beyond 48-bit PA
    assert isinstance(f, Fault) and (f.kind, f.level, f.stage) == ("address_size", 0, 1)
    # TBI applies with the MMU off
    t = walk_stage1(mem, el1_regime(sctlr=0, tbi0=1), 0x7700_0000_1234_5678)
    assert isinstance(t, Translation) and t.pa == 0x1234_5678


# --------------------------------------------------------------------------
# Stage 2
# --------------------------------------------------------------------------
IPA = 0x0000_0012_3456_789A  # 4K: L0=0 L1=0x48 L2=0x1a2 L3=0x167


def test_stage2_4k_sl0_level1_ipa40():
    # T0SZ=24 (40-bit IPA), SL0=01 -> start level 1, 2 concatenated tables (bits 39:30 = 10 bits)
    mem = PhysMem()
    ipa = 0x0000_0092_3456_789A  # bits[39:30] = 0x248
    base = 0x0020_0000  # 8 KiB aligned
    i1 = (ipa >> 30) & 0x3FF
    assert i1 == 0x248  # > 512: lands in the second concatenated table
    mem.write64(base + i1 * 8, L2 | TABLE)
    mem.write64(L2 + 0x1A2 * 8, L3 | TABLE)
    mem.write64(L3 + 0x167 * 8, 0x0000_0000_0ABC_D000 | AF | PAGE | S2_RW | 0xF << 2)
    vt = vtcr(t0sz=24, sl0=1)
    t = walk_stage2(mem, vt, base | 0x00AB << 48 | 1, ipa)  # VMID and CnP set
    assert isinstance(t, Translation), t
    assert t.pa == 0x0ABC_D89A and t.attrs == 0xF and t.stage == 2
    assert mem.reads == [base + 0x248 * 8, L2 + 0x1A2 * 8, L3 + 0x167 * 8]


def test_stage2_4k_sl0_level0():
    mem = PhysMem()
    base = 0x0030_0000
    mem.write64(base + 0 * 8, L1 | TABLE)
    mem.write64(L1 + 0x48 * 8, 0x0000_0000_4000_0000 | AF | BLOCK | S2AP_R)
    vt = vtcr(t0sz=16, sl0=2)
    t = walk_stage2(mem, vt, base, IPA)
    assert isinstance(t, Translation) and t.level == 1 and t.block_size == 1 << 30
    assert t.pa == 0x4000_0000 | (IPA & 0x3FFF_FFFF)
    f = walk_stage2(mem, vt, base, IPA, write=True)
    assert isinstance(f, Fault)
    assert (f.kind, f.level, f.stage, f.ipa, f.s1ptw) == ("permission", 1, 2, IPA, False)
    assert f.fsc == 0b001101


def test_stage2_4k_sl0_level2_concatenated_16():
    # T0SZ=30 (34-bit IPA), SL0=00 -> start level 2, 16 concatenated tables (13 bits)
    mem = PhysMem()
    base = 0x0040_0000  # 64 KiB aligned
    ipa = 0x3_5B5B_5000
    i2 = (ipa >> 21) & 0x1FFF
    assert i2 == 0x1ADA
    mem.write64(base + i2 * 8, L3 | TABLE)
    mem.write64(L3 + ((ipa >> 12) & 0x1FF) * 8, 0x7_0000_0000 | AF | PAGE | S2AP_R)
    vt = vtcr(t0sz=30, sl0=0)
    t = walk_stage2(mem, vt, base, ipa)
    assert isinstance(t, Translation) and t.pa == 0x7_0000_0000
    # Same IPA size starting at level 1 needs only 16 entries: also valid (SL0=01)
    # 35-bit IPA at level 2 would need 32 tables -> translation fault level 0
    f = walk_stage2(mem, vtcr(t0sz=29, sl0=0), base, ipa)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("translation", 0)


def test_stage2_inconsistent_start_level():
    mem = PhysMem()
    # 39-bit IPA starting at level 0: start level resolves < 1 bit -> fault
    f = walk_stage2(mem, vtcr(t0sz=25, sl0=2), 0x30_0000, 0x1000)
    assert isinstance(f, Fault) and (f.kind, f.level, f.stage) == ("translation", 0, 2)
    # 4K SL0=11 (level 3) needs FEAT_TTST -> fault
    f = walk_stage2(mem, vtcr(t0sz=34, sl0=3), 0x30_0000, 0x1000)
    assert isinstance(f, Fault) and (f.kind, f.level, f.stage) == ("translation", 0, 2)
    assert mem.reads == []


def test_stage2_ipa_out_of_range():
    mem = PhysMem()
    f = walk_stage2(mem, vtcr(t0sz=24, sl0=1), 0x20_0000, 1 << 40 | 0x1000)
    assert isinstance(f, Fault) and (f.kind, f.level, f.ipa) == ("translation", 0, 1 << 40 | 0x1000)


def test_stage2_64k_and_16k():
    mem = PhysMem()
    # 64K, T0SZ=22 (42-bit IPA), SL0=01 -> start level 2 (13 bits: 41:29), level 3 (28:16)
    ipa = 0x0000_02AB_CDEF_1234
    base, t3 = 0x0010_0000, 0x0030_0000
    i2, i3 = (ipa >> 29) & 0x1FFF, (ipa >> 16) & 0x1FFF
    assert (i2, i3) == (0x155E, 0xDEF)
    mem.write64(base + i2 * 8, t3 | TABLE)
    mem.write64(t3 + i3 * 8, 0x0000_0066_0000_0000 | AF | PAGE | S2_RW)
    t = walk_stage2(mem, vtcr(t0sz=22, sl0=1, tg0=TG0_64K), base, ipa)
    assert isinstance(t, Translation) and t.pa == 0x0066_0000_1234 and t.block_size == 64 << 10
    # 16K, T0SZ=28 (36-bit IPA), SL0=01 -> start level 2, 36-25 = 11 bits
    mem = PhysMem()
    ipa = 0x0000_000A_BCDE_F123
    base, t3 = 0x0010_0000, 0x0030_4000
    i2, i3 = (ipa >> 25) & 0x7FF, (ipa >> 14) & 0x7FF
    mem.write64(base + i2 * 8, t3 | TABLE)
    mem.write64(t3 + i3 * 8, 0x0000_0001_0000_4000 | AF | PAGE | S2_RW)
    t = walk_stage2(mem, vtcr(t0sz=28, sl0=1, tg0=TG0_16K), base, ipa)
    assert isinstance(t, Translation) and t.pa == 0x0001_0000_4000 | (ipa & 0x3FFF)
    # 64K SL0=11 is reserved
    f = walk_stage2(mem, vtcr(t0sz=22, sl0=3, tg0=TG0_64K), base, ipa)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("translation", 0)


def test_stage2_faults_carry_ipa():
    mem = PhysMem()
    base = 0x0030_0000
    vt = vtcr(t0sz=16, sl0=2)
    mem.write64(base, L1 | TABLE)
    f = walk_stage2(mem, vt, base, IPA, write=True)
    assert isinstance(f, Fault) and (f.kind, f.level, f.stage, f.ipa) == ("translation", 1, 2, IPA)
    assert f.hpfar == (IPA >> 12) << 4
    mem.write64(L1 + 0x48 * 8, 0x0000_0000_4000_0000 | BLOCK | S2_RW)  # AF=0
    f = walk_stage2(mem, vt, base, IPA)
    assert isinstance(f, Fault) and (f.kind, f.level, f.ipa) == ("access_flag", 1, IPA)
    mem.write64(L1 + 0x48 * 8, 0x0000_0000_4000_0000 | AF | BLOCK | S2_RW | 1 << 54)
    f = walk_stage2(mem, vt, base, IPA, execute=True)
    assert isinstance(f, Fault) and (f.kind, f.ipa) == ("permission", IPA)
    assert isinstance(walk_stage2(mem, vt, base, IPA, write=True), Translation)
    mem.write64(L1 + 0x48 * 8, 0x0000_0000_4000_0000 | AF | BLOCK | S2AP_W)  # write-only
    assert isinstance(walk_stage2(mem, vt, base, IPA), Fault)
    # output beyond PS -> address size fault at the leaf
    mem.write64(L1 + 0x48 * 8, 0x0000_0100_4000_0000 | AF | BLOCK | S2_RW)
    f = walk_stage2(mem, vtcr(t0sz=16, sl0=2, ps=IPS_40), base, IPA)
    assert isinstance(f, Fault) and (f.kind, f.level, f.fsc) == ("address_size", 1, 0b000001)
    # VTTBR base beyond PS -> level 0
    f = walk_stage2(mem, vtcr(t0sz=24, sl0=1, ps=IPS_32), 0x1_0000_0000, 0x1000)
    assert isinstance(f, Fault) and (f.kind, f.level) == ("address_size", 0)


# --------------------------------------------------------------------------
# Nested: stage 1 over stage 2
# --------------------------------------------------------------------------
GUEST_IPA_OFFSET = 0x0000_0040_0000_0000  # guest IPA -> PA: add nothing; PA = IPA - offset


def build_identity_s2(mem: PhysMem, base: int, l1: int, offset: int = 0):
    """Stage 2 (T0SZ=24 40-bit IPA, SL0=01, 4K) mapping IPA [0, 4GiB) -> PA + offset with 1 GiB blocks."""
    for i in range(4):
        mem.write64(base + i * 8, (i << 30) + offset | AF | BLOCK | S2_RW | 0xF << 2)
    return vtcr(t0sz=24, sl0=1)


def test_nested_stage1_over_stage2():
    mem = PhysMem()
    s2base = 0x0080_0000
    # Guest "physical" memory is IPA; map IPA x -> PA x (identity) for the first 4 GiB.
    vt = build_identity_s2(mem, s2base, 0)
    setup_4k_4level(mem, leaf=AF | AP_RW_ALL | attr(1))
    # but the final output IPA 0xAB_CDEF_0ABC is above 4 GiB -> unmapped at stage 2 L1
    s2 = stage2_translator(mem, vt, s2base)
    f = walk_stage1(mem, el1_regime(), VA4, s2=s2, write=True)
    assert isinstance(f, Fault)
    assert (f.kind, f.stage, f.s1ptw, f.ipa, f.level) == ("translation", 2, False, 0x00AB_CDEF_0ABC, 1)
    assert f.write
    # remap the final page into the first GiB
    mem.write64(L3 + 0x189 * 8, 0x3456_7000 | AF | AP_RW_ALL | attr(1) | PAGE)
    t = walk_stage1(mem, el1_regime(), VA4, s2=s2)
    assert isinstance(t, Translation), t
    assert t.ipa == 0x3456_7ABC and t.pa == 0x3456_7ABC
    assert t.attrs == 0xEE and t.s2 is not None and t.s2.attrs == 0xF
    assert t.block_size == 4096
    assert "via IPA" in describe(t)


def test_nested_with_offset_and_s1ptw_fault():
    mem = PhysMem(size=32 << 20)
    s2base = 0x0180_0000
    # Stage 2: IPA 0x4000_0000.. (second GiB) -> PA 0 ; page-granular table for IPA GiB 1
    s2l2 = 0x0181_0000
    s2l3 = 0x0182_0000
    vt = vtcr(t0sz=24, sl0=1)
    mem.write64(s2base + 1 * 8, s2l2 | TABLE)
    # IPA 0x4000_0000 + 2MiB*k -> PA 2MiB*k for k < 8 (blocks), except k=0 via L3 pages
    for k in range(1, 8):
        mem.write64(s2l2 + k * 8, (k << 21) | AF | BLOCK | S2_RW)
    mem.write64(s2l2 + 0, s2l3 | TABLE)
    for p in range(512):
        mem.write64(s2l3 + p * 8, (p << 12) | AF | PAGE | S2_RW)
    s2 = stage2_translator(mem, vt, s2base)
    ipa_of = lambda pa: pa + 0x4000_0000  # noqa: E731
    # Guest stage 1 tables, addressed by IPA
    mem.write64(L0 + 0x24 * 8, ipa_of(L1) | TABLE)
    mem.write64(L1 + 0xD1 * 8, ipa_of(L2) | TABLE)
    mem.write64(L2 + 0xB3 * 8, ipa_of(L3) | TABLE)
    mem.write64(L3 + 0x189 * 8, ipa_of(0x0034_5000) | AF | PAGE | AP_RW_EL1)
    reg = el1_regime(ttbr0=ipa_of(L0))
    t = walk_stage1(mem, reg, VA4, s2=s2)
    assert isinstance(t, Translation), t
    assert t.ipa == 0x4034_5ABC and t.pa == 0x0034_5ABC
    # Walk reads go to the PAs of the tables (after stage 2)
    assert L2 + 0xB3 * 8 in mem.reads and L3 + 0x189 * 8 in mem.reads
    # Unmap the stage-2 page holding the guest's level-2 table -> s1ptw fault
    l2_s2 = s2l3 + (L2 >> 12) * 8  # stage-2 L3 entry mapping IPA page of the guest L2 table
    mem.write64(l2_s2, 0)
    f = walk_stage1(mem, reg, VA4, s2=s2)
    assert isinstance(f, Fault)
    assert (f.kind, f.stage, f.s1ptw, f.level) == ("translation", 2, True, 3)  # stage-2 level
    assert f.ipa == ipa_of(L2) + 0xB3 * 8
    assert f.va == VA4
    # Stage 2 read-only for the table page: walk still works (reads only)
    mem.write64(l2_s2, L2 | AF | PAGE | S2AP_R)
    assert isinstance(walk_stage1(mem, reg, VA4, s2=s2), Translation)
    # Stage 2 no-read on the table page -> permission fault on the walk
    mem.write64(l2_s2, L2 | AF | PAGE | S2AP_W)
    f = walk_stage1(mem, reg, VA4, s2=s2)
    assert isinstance(f, Fault) and (f.kind, f.stage, f.s1ptw, f.level) == ("permission", 2, True, 3)
    # Stage-2 access flag fault on the walk
    mem.write64(l2_s2, L2 | PAGE | S2_RW)
    f = walk_stage1(mem, reg, VA4, s2=s2)
    assert isinstance(f, Fault) and (f.kind, f.s1ptw, f.fsc) == ("access_flag", True, 0b001011)
    # Stage 1 permission faults take priority over stage 2 on the output
    mem.write64(l2_s2, L2 | AF | PAGE | S2_RW)
    f = walk_stage1(mem, reg, VA4, s2=s2, el=0)
    assert isinstance(f, Fault) and (f.kind, f.stage) == ("permission", 1)
    # Final output write-protected at stage 2 -> stage 2 permission fault, not s1ptw
    mem.write64(s2l2 + 1 * 8, (1 << 21) | AF | BLOCK | S2AP_R)  # IPA 0x4020_0000 2 MiB block
    f = walk_stage1(mem, reg, VA4, s2=s2, write=True)
    assert isinstance(f, Fault)
    assert (f.kind, f.stage, f.s1ptw, f.ipa, f.level) == ("permission", 2, False, 0x4034_5ABC, 2)
    assert isinstance(walk_stage1(mem, reg, VA4, s2=s2), Translation)


def test_nested_mmu_off_goes_through_stage2():
    mem = PhysMem()
    s2base = 0x0080_0000
    vt = build_identity_s2(mem, s2base, 0, offset=0x10_0000_0000)
    s2 = stage2_translator(mem, vt, s2base)
    t = walk_stage1(mem, el1_regime(sctlr=0), 0x1234_5678, s2=s2)
    assert isinstance(t, Translation) and t.pa == 0x10_1234_5678 and t.ipa == 0x1234_5678


def test_plain_ipa_only_s2_callable():
    # An s2 callable taking only the IPA is accepted.
    mem = PhysMem()
    setup_4k_4level(mem)
    calls = []

    def s2(ipa):
        calls.append(ipa)
        return Translation(ipa + 0x100_0000_0000 if ipa > 0x1000_0000 else ipa, 3, 4096, 0xF, True, True, True, stage=2)

    t = walk_stage1(mem, el1_regime(), VA4, s2=s2)
    assert isinstance(t, Translation) and t.pa == 0x00AB_CDEF_0ABC + 0x100_0000_0000
    assert len(calls) == 5


def test_describe_fault():
    f = Fault("translation", 2, 2, True, 0x1234_5000)
    s = describe(f)
    assert "S2" in s and "level 2" in s and "S1 walk" in s and "0x12345000" in s
