"""Pure-Python VMSAv8-64 translation-table walker.

Implements the AArch64 long-descriptor stage 1 (EL1&0 and non-VHE EL2
regimes) and stage 2 (VTCR_EL2/VTTBR_EL2) walks as described in the Arm
Architecture Reference Manual (D8, "The AArch64 Virtual Memory System
Architecture"), restricted to 48-bit VA/IPA/PA (no FEAT_LPA/LPA2/D128),
no hardware Access-flag / dirty-state update, no PAN, no FEAT_XNX.

Physical memory is accessed through a ``read64(pa) -> int`` callable that
may raise :class:`ExternalAbort`; a failure is reported as a synchronous
external abort on translation table walk.

Everything returns either a :class:`Translation` or a :class:`Fault`; the
walker never raises for architectural conditions.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Optional, Union

__all__ = [
    "ExternalAbort",
    "Fault",
    "Translation",
    "Stage1Regime",
    "walk_stage1",
    "walk_stage2",
    "stage2_translator",
    "fault_to_fsc",
    "describe",
    "PAMAX",
    "pa_size_bits",
]

#: Implemented physical address size (ID_AA64MMFR0_EL1.PARange = 0b0101).
PAMAX = 48

_MASK48 = (1 << 48) - 1


class ExternalAbort(Exception):
    """Raised by a ``read64`` callable when the physical access aborts."""


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------

_FSC_BASE = {
    "address_size": 0b000000,
    "translation": 0b000100,
    "access_flag": 0b001000,
    "permission": 0b001100,
    "external": 0b010100,  # synchronous external abort on translation table walk
}
# Level -1 encodings (FEAT_LPA2); kept for completeness.
_FSC_LEVEL_M1 = {
    "address_size": 0b101001,
    "translation": 0b101011,
    "external": 0b010011,
}


def fault_to_fsc(kind: str, level: int) -> int:
    """The 6-bit long-descriptor DFSC/IFSC for a fault ``kind`` at ``level``.

    ``kind == "external"`` with ``level is None`` (or < -1) gives the plain
    synchronous external abort (not on a walk), 0b010000.
    """
    if kind not in _FSC_BASE:
        raise ValueError(f"unknown fault kind {kind!r}")
    if kind == "external" and (level is None or level < -1):
        return 0b010000
    if level == -1:
        if kind not in _FSC_LEVEL_M1:
            raise ValueError(f"no level -1 encoding for {kind}")
        return _FSC_LEVEL_M1[kind]
    if not 0 <= level <= 3:
        raise ValueError(f"bad level {level}")
    return _FSC_BASE[kind] | level


@dataclass(frozen=True)
class Fault:
    kind: str  # "translation" | "access_flag" | "permission" | "address_size" | "external"
    level: int  # lookup level (-1..3)
    stage: int  # 1 or 2
    s1ptw: bool = False  # stage-2 fault on a stage-1 table walk
    ipa: Optional[int] = None  # faulting IPA for stage-2 faults (HPFAR_EL2), else None
    va: Optional[int] = None  # input address of the whole translation (for FAR), if known
    write: bool = False
    execute: bool = False

    @property
    def fsc(self) -> int:
        return fault_to_fsc(self.kind, self.level)

    @property
    def hpfar(self) -> Optional[int]:
        """HPFAR_EL2 value (FIPA = IPA[47:12] in bits [43:4]) for stage-2 faults."""
        if self.ipa is None:
            return None
        return ((self.ipa >> 12) & ((1 << 40) - 1)) << 4


@dataclass(frozen=True)
class Translation:
    pa: int
    level: int
    block_size: int  # size of the page/block that mapped it (min over both stages)
    attrs: int  # MAIR attribute byte (stage 1) or S2 MemAttr[3:0] (stage 2)
    readable: bool
    writable: bool
    executable: bool
    stage: int = 1
    sh: int = 0  # shareability field of the leaf descriptor
    ng: bool = False  # stage 1 nG
    ipa: Optional[int] = None  # intermediate address when two stages were combined
    s2: Optional["Translation"] = None  # the stage-2 translation of the output, if any
    descriptor: int = 0  # raw leaf descriptor (0 when the MMU was off)


Result = Union[Translation, Fault]
S2Fn = Callable[..., Result]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

_PS_BITS = {0: 32, 1: 36, 2: 40, 3: 42, 4: 44, 5: 48, 6: 52}


def pa_size_bits(ps: int, pamax: int = PAMAX) -> int:
    """Decode an IPS/PS field, capped at the implemented PA size."""
    return min(_PS_BITS.get(ps & 7, 48), pamax)


# TG0 (TCR_ELx, VTCR_EL2): 00=4K, 01=64K, 10=16K.  11 is reserved: treat as 4K.
_TG0_BITS = {0: 12, 1: 16, 2: 14, 3: 12}
# TG1 (TCR_EL1): 01=16K, 10=4K, 11=64K.  00 is reserved: treat as 4K.
_TG1_BITS = {0: 12, 1: 14, 2: 12, 3: 16}

# Levels at which a block descriptor is permitted (48-bit OA, no LPA/LPA2).
_BLOCK_LEVELS = {12: (1, 2), 14: (2,), 16: (2,)}


def _clamp_inputsize(tsz: int) -> int:
    # CONSTRAINED UNPREDICTABLE: we choose Constraint_FORCE (as QEMU does).
    return max(25, min(48, 64 - tsz))


def _level_lsb(level: int, gb: int) -> int:
    return gb + (gb - 3) * (3 - level)


def _bits(x: int, hi: int, lo: int) -> int:
    return (x >> lo) & ((1 << (hi - lo + 1)) - 1)


def _call_s2(s2: S2Fn, ipa: int, write: bool, execute: bool) -> Result:
    """Call a user-supplied stage-2 function, passing the access type if it accepts it."""
    try:
        params = inspect.signature(s2).parameters
    except (TypeError, ValueError):  # builtins etc.
        params = {}
    takes_kw = any(p.kind == p.VAR_KEYWORD for p in params.values()) or (
        "write" in params and "execute" in params
    )
    if takes_kw:
        return s2(ipa, write=write, execute=execute)
    return s2(ipa)


# --------------------------------------------------------------------------
# Stage 1
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _RangeParams:
    inputsize: int
    gb: int  # granule bits
    disabled: bool  # EPDx
    tbi: bool
    hpd: bool
    ttbr: int


@dataclass(frozen=True)
class Stage1Regime:
    """Register state for one stage 1 translation regime."""

    is_el2: bool
    sctlr: int
    tcr: int
    ttbr0: int
    ttbr1: int
    mair: int
    pamax: int = PAMAX

    @classmethod
    def el10(cls, sctlr: int, tcr: int, ttbr0: int, ttbr1: int, mair: int, *, pamax: int = PAMAX) -> "Stage1Regime":
        """EL1&0 regime: TCR_EL1 format, TTBR0_EL1/TTBR1_EL1 (ASIDs ignored)."""
        return cls(False, sctlr, tcr, ttbr0, ttbr1, mair, pamax)

    @classmethod
    def el2(cls, sctlr: int, tcr: int, ttbr0: int, mair: int, *, pamax: int = PAMAX) -> "Stage1Regime":
        """Non-VHE EL2 regime: TCR_EL2 format (T0SZ, TG0, PS[18:16], TBI[20], HPD[24])."""
        return cls(True, sctlr, tcr, ttbr0, 0, mair, pamax)

    # -- register decoding -------------------------------------------------
    @property
    def mmu_enabled(self) -> bool:
        return bool(self.sctlr & 1)

    @property
    def wxn(self) -> bool:
        return bool((self.sctlr >> 19) & 1)

    @property
    def oasize(self) -> int:
        ps = _bits(self.tcr, 18, 16) if self.is_el2 else _bits(self.tcr, 34, 32)
        return pa_size_bits(ps, self.pamax)

    def tbi(self, va: int) -> bool:
        if self.is_el2:
            return bool((self.tcr >> 20) & 1)
        return bool((self.tcr >> (38 if (va >> 55) & 1 else 37)) & 1)

    def range_params(self, select: int) -> _RangeParams:
        t = self.tcr
        if self.is_el2:
            return _RangeParams(
                inputsize=_clamp_inputsize(t & 0x3F),
                gb=_TG0_BITS[_bits(t, 15, 14)],
                disabled=False,
                tbi=bool((t >> 20) & 1),
                hpd=bool((t >> 24) & 1),
                ttbr=self.ttbr0,
            )
        if select == 0:
            return _RangeParams(
                inputsize=_clamp_inputsize(t & 0x3F),
                gb=_TG0_BITS[_bits(t, 15, 14)],
                disabled=bool((t >> 7) & 1),
                tbi=bool((t >> 37) & 1),
                hpd=bool((t >> 41) & 1),
                ttbr=self.ttbr0,
            )
        return _RangeParams(
            inputsize=_clamp_inputsize(_bits(t, 21, 16)),
            gb=_TG1_BITS[_bits(t, 31, 30)],
            disabled=bool((t >> 23) & 1),
            tbi=bool((t >> 38) & 1),
            hpd=bool((t >> 42) & 1),
            ttbr=self.ttbr1,
        )


def _s1_permissions(regime: Stage1Regime, desc: int, ap_table: int, xn_table: bool, pxn_table: bool, el: int):
    """Return (readable, writable, executable) for ``el`` given a leaf descriptor."""
    ap1 = (desc >> 6) & 1
    ap2 = (desc >> 7) & 1
    ap2 |= (ap_table >> 1) & 1  # APTable[1]: no write at any EL
    if regime.is_el2:
        w = ap2 == 0
        xn = bool((desc >> 54) & 1) or xn_table
        x = not xn and not (regime.wxn and w)
        return True, w, x
    ap1 &= ~ap_table & 1  # APTable[0]: no EL0 access
    pr, pw = True, ap2 == 0
    ur, uw = ap1 == 1, ap1 == 1 and ap2 == 0
    uxn = bool((desc >> 54) & 1) or xn_table
    pxn = bool((desc >> 53) & 1) or pxn_table
    wxn = regime.wxn
    ux = not uxn and not (wxn and uw)
    # Implicit PXN for EL0-writable memory.
    px = not pxn and not uw and not (wxn and pw)
    if el == 0:
        return ur, uw, ux
    return pr, pw, px


def _check_access(t: Translation, write: bool, execute: bool) -> bool:
    if execute:
        return t.executable
    if write:
        return t.writable
    return t.readable



def _descriptor(read64, pa: int, level: int, gb: int, oasize: int, fault):
    """Read the descriptor at `pa` and make the checks every walk makes: valid, a
    block only at a level the granule allows, output address inside `oasize` bits.
    Returns (descriptor, is_table), or the Fault that `fault(kind, level)` builds."""
    try:
        desc = read64(pa) & ((1 << 64) - 1)
    except ExternalAbort:
        return fault("external", level)
    if not desc & 1 or (level == 3 and desc & 3 == 1):
        return fault("translation", level)
    is_table = level < 3 and desc & 3 == 3
    if not is_table and level < 3 and level not in _BLOCK_LEVELS[gb]:
        return fault("translation", level)
    if _bits(desc, 47, oasize) if oasize < 48 else 0:
        return fault("address_size", level)
    return desc, is_table

def walk_stage1(
    read64: Callable[[int], int],
    regime: Stage1Regime,
    va: int,
    *,
    write: bool = False,
    execute: bool = False,
    el: int = 1,
    s2: Optional[S2Fn] = None,
) -> Result:
    """Translate ``va`` through the stage 1 regime (and ``s2`` if given).

    ``s2`` is called as ``s2(ipa)`` or, if it accepts them,
    ``s2(ipa, write=..., execute=...)``; see :func:`stage2_translator`.
    Table-walk IPAs are translated as reads and a stage-2 fault there is
    returned with ``s1ptw=True``.
    """
    va &= (1 << 64) - 1
    if regime.is_el2:
        el = 2

    def fault(kind: str, level: int) -> Fault:
        return Fault(kind, level, 1, False, None, va, write, execute)

    def finish(t: Translation) -> Result:
        if s2 is None:
            return t
        r = _call_s2(s2, t.pa, write, execute)
        if isinstance(r, Fault):
            return Fault(r.kind, r.level, 2, False, r.ipa if r.ipa is not None else t.pa, va, write, execute)
        return Translation(
            pa=r.pa,
            level=t.level,
            block_size=min(t.block_size, r.block_size),
            attrs=t.attrs,
            readable=t.readable and r.readable,
            writable=t.writable and r.writable,
            executable=t.executable and r.executable,
            stage=1,
            sh=t.sh,
            ng=t.ng,
            ipa=t.pa,
            s2=r,
            descriptor=t.descriptor,
        )

    tbi = regime.tbi(va)

    # ---- MMU off: flat mapping ------------------------------------------
    if not regime.mmu_enabled:
        top = 55 if tbi else 63
        if _bits(va, top, regime.pamax):
            return fault("address_size", 0)
        out = va & ((1 << regime.pamax) - 1)
        if execute:
            attrs = 0xAA if (regime.sctlr >> 12) & 1 else 0x44  # Normal WT / NC
        else:
            attrs = 0x00  # Device-nGnRnE
        return finish(Translation(out, 0, 4096, attrs, True, True, True, 1))

    # ---- Range selection ------------------------------------------------
    select = 0 if regime.is_el2 else (va >> 55) & 1
    rp = regime.range_params(select)
    top = 55 if rp.tbi else 63
    upper = _bits(va, top, rp.inputsize)
    if select == 0:
        ok = upper == 0
    else:
        ok = upper == (1 << (top - rp.inputsize + 1)) - 1
    if not ok or rp.disabled:
        return fault("translation", 0)

    gb = rp.gb
    stride = gb - 3
    start = 4 - -(-(rp.inputsize - gb) // stride)
    oasize = regime.oasize

    base = rp.ttbr & _MASK48
    if base >> oasize:
        return fault("address_size", 0)
    start_bits = rp.inputsize - _level_lsb(start, gb)
    base &= ~((1 << (start_bits + 3)) - 1)

    ap_table = 0
    xn_table = False
    pxn_table = False
    table = base
    level = start
    inaddr = va & ((1 << rp.inputsize) - 1)
    while True:
        lsb = _level_lsb(level, gb)
        nbits = start_bits if level == start else stride
        index = (inaddr >> lsb) & ((1 << nbits) - 1)
        desc_addr = table | (index << 3)
        if s2 is not None:
            r = _call_s2(s2, desc_addr, False, False)
            if isinstance(r, Fault):
                return Fault(r.kind, r.level, 2, True, r.ipa if r.ipa is not None else desc_addr, va, write, execute)
            desc_pa = r.pa
        else:
            desc_pa = desc_addr
        r = _descriptor(read64, desc_pa, level, gb, oasize, fault)
        if isinstance(r, Fault):
            return r
        desc, is_table = r
        if is_table:
            if not rp.hpd:
                ap_table |= _bits(desc, 62, 61) if not regime.is_el2 else ((desc >> 62) & 1) << 1
                xn_table |= bool((desc >> 60) & 1)
                if not regime.is_el2:
                    pxn_table |= bool((desc >> 59) & 1)
            table = desc & _MASK48 & ~((1 << gb) - 1)
            level += 1
            continue
        break

    # ---- Leaf ------------------------------------------------------------
    if not (desc >> 10) & 1:
        return fault("access_flag", level)
    block_size = 1 << lsb
    out = (desc & _MASK48 & ~(block_size - 1)) | (inaddr & (block_size - 1))
    attrindx = _bits(desc, 4, 2)
    attrs = (regime.mair >> (8 * attrindx)) & 0xFF
    r, w, x = _s1_permissions(regime, desc, ap_table, xn_table, pxn_table, el)
    t = Translation(
        pa=out,
        level=level,
        block_size=block_size,
        attrs=attrs,
        readable=r,
        writable=w,
        executable=x,
        stage=1,
        sh=_bits(desc, 9, 8),
        ng=bool((desc >> 11) & 1) and not regime.is_el2,
        descriptor=desc,
    )
    if not _check_access(t, write, execute):
        return fault("permission", level)
    return finish(t)


# --------------------------------------------------------------------------
# Stage 2
# --------------------------------------------------------------------------


def _s2_start_level(vtcr: int, gb: int, pamax: int) -> Optional[int]:
    sl0 = _bits(vtcr, 7, 6)
    if gb == 12:
        if sl0 == 3:  # level 3 only with FEAT_TTST (not implemented)
            return None
        level = 2 - sl0
        if level == 0 and pamax <= 42:
            return None
        return level
    level = 3 - sl0
    if level == 0:  # 16K needs FEAT_LPA2; 64K reserved
        return None
    if level == 1 and pamax <= (42 if gb == 16 else 40):
        return None
    return level


def walk_stage2(
    read64: Callable[[int], int],
    vtcr: int,
    vttbr: int,
    ipa: int,
    *,
    write: bool = False,
    execute: bool = False,
    s1ptw: bool = False,
    pamax: int = PAMAX,
) -> Result:
    """Translate ``ipa`` through the stage 2 tables described by VTCR_EL2/VTTBR_EL2."""
    ipa &= (1 << 64) - 1

    def fault(kind: str, level: int) -> Fault:
        return Fault(kind, level, 2, s1ptw, ipa, None, write, execute)

    inputsize = _clamp_inputsize(vtcr & 0x3F)
    gb = _TG0_BITS[_bits(vtcr, 15, 14)]
    stride = gb - 3
    if ipa >> inputsize:
        return fault("translation", 0)
    start = _s2_start_level(vtcr, gb, pamax)
    if start is None:
        return fault("translation", 0)
    # IPA wider than PAMax: CONSTRAINED UNPREDICTABLE, we choose FORCE.
    inputsizecheck = inputsize
    start_bits = inputsizecheck - _level_lsb(start, gb)
    if start_bits < 1 or start_bits > stride + 4:  # <2 entries or >16 concatenated tables
        return fault("translation", 0)
    oasize = pa_size_bits(_bits(vtcr, 18, 16), pamax)

    base = vttbr & _MASK48  # drops VMID[63:48]
    if base >> oasize:
        return fault("address_size", 0)
    base &= ~((1 << (start_bits + 3)) - 1)  # also drops CnP (bit 0)

    table = base
    level = start
    while True:
        lsb = _level_lsb(level, gb)
        nbits = start_bits if level == start else stride
        index = (ipa >> lsb) & ((1 << nbits) - 1)
        r = _descriptor(read64, table | (index << 3), level, gb, oasize, fault)
        if isinstance(r, Fault):
            return r
        desc, is_table = r
        if is_table:
            table = desc & _MASK48 & ~((1 << gb) - 1)
            level += 1
            continue
        break

    if not (desc >> 10) & 1:
        return fault("access_flag", level)
    block_size = 1 << lsb
    out = (desc & _MASK48 & ~(block_size - 1)) | (ipa & (block_size - 1))
    s2ap = _bits(desc, 7, 6)
    t = Translation(
        pa=out,
        level=level,
        block_size=block_size,
        attrs=_bits(desc, 5, 2),
        readable=bool(s2ap & 1),
        writable=bool(s2ap & 2),
        executable=_bits(desc, 54, 53) == 0,
        stage=2,
        sh=_bits(desc, 9, 8),
        descriptor=desc,
    )
    if not _check_access(t, write, execute):
        return fault("permission", level)
    return t


def stage2_translator(read64: Callable[[int], int], vtcr: int, vttbr: int, *, pamax: int = PAMAX) -> S2Fn:
    """A ``s2`` callable for :func:`walk_stage1` bound to the given VTCR/VTTBR."""

    def s2(ipa: int, *, write: bool = False, execute: bool = False) -> Result:
        return walk_stage2(read64, vtcr, vttbr, ipa, write=write, execute=execute, pamax=pamax)

    return s2


# --------------------------------------------------------------------------
# Debugging aid
# --------------------------------------------------------------------------


def _size_str(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return f"{n}B"


def describe(t: Result) -> str:
    """One-line human-readable description of a Translation or Fault."""
    if isinstance(t, Fault):
        s = f"S{t.stage} {t.kind} fault, level {t.level} (FSC=0x{t.fsc:02x})"
        if t.s1ptw:
            s += " on S1 walk"
        if t.ipa is not None:
            s += f", IPA=0x{t.ipa:x}"
        if t.va is not None:
            s += f", VA=0x{t.va:x}"
        return s
    perms = ("r" if t.readable else "-") + ("w" if t.writable else "-") + ("x" if t.executable else "-")
    kind = "page" if t.level == 3 else "block"
    if t.descriptor == 0:
        kind = "flat (MMU off)"
    s = f"PA=0x{t.pa:x} {perms} L{t.level} {kind} {_size_str(t.block_size)}"
    if t.stage == 2:
        s += f" S2 MemAttr=0x{t.attrs:x}"
    else:
        s += f" attr=0x{t.attrs:02x}"
        if t.ng:
            s += " nG"
    if t.ipa is not None:
        s += f" via IPA=0x{t.ipa:x}"
    return s
