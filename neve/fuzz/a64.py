"""A64 encoders for the instructions the fuzz generator writes.

Only the forms the generator needs, each a function returning the 32-bit word.  The
field layouts are the Arm ARM's (DDI 0487, "A64 instruction set encoding");
tests/test_fuzz.py checks every encoder against capstone's disassembly.
"""
from __future__ import annotations

from neve.arch.decode import sysreg_word

NOP = 0xD503201F
ISB = 0xD5033FDF
DSB_SY = 0xD5033F9F
ERET = 0xD69F03E0
WFI = 0xD503207F
WFE = 0xD503205F


def _reg(n: int) -> int:
    if not 0 <= n <= 31:
        raise ValueError(f"register {n}")
    return n


def movz(rd: int, imm16: int, hw: int = 0) -> int:
    return 0xD2800000 | (hw & 3) << 21 | (imm16 & 0xFFFF) << 5 | _reg(rd)


def movk(rd: int, imm16: int, hw: int) -> int:
    return 0xF2800000 | (hw & 3) << 21 | (imm16 & 0xFFFF) << 5 | _reg(rd)


def mov_imm(rd: int, value: int) -> list[int]:
    """MOVZ + MOVKs loading a 64-bit constant (1 to 4 instructions)."""
    value &= (1 << 64) - 1
    halves = [(value >> (16 * i)) & 0xFFFF for i in range(4)]
    first = next((i for i, h in enumerate(halves) if h), 0)
    out = [movz(rd, halves[first], first)]
    out += [movk(rd, h, i) for i, h in enumerate(halves) if h and i != first]
    return out


def sysreg(op0: int, op1: int, crn: int, crm: int, op2: int, rt: int, read: bool) -> int:
    """MRS (read) / MSR (register); op0 = 1 gives SYS / SYSL."""
    return sysreg_word(op0, op1, crn, crm, op2, _reg(rt), read)


def mrs(rt: int, key: tuple) -> int:
    return sysreg(*key, rt, True)


def msr(key: tuple, rt: int) -> int:
    return sysreg(*key, rt, False)


def sys(op1: int, crn: int, crm: int, op2: int, rt: int) -> int:
    return sysreg(1, op1, crn, crm, op2, rt, False)


def msr_imm(op1: int, op2: int, crm: int) -> int:
    """MSR <pstatefield>, #imm (DAIFSet op1=3 op2=6, DAIFClr op1=3 op2=7, SPSel op1=0 op2=5)."""
    return 0xD500401F | (op1 & 7) << 16 | (crm & 15) << 8 | (op2 & 7) << 5


def exception(kind: str, imm16: int) -> int:
    """SVC / HVC / SMC / BRK / HLT #imm16."""
    opc, ll = {"svc": (0, 1), "hvc": (0, 2), "smc": (0, 3), "brk": (1, 0), "hlt": (2, 0)}[kind]
    return 0xD4000000 | opc << 21 | (imm16 & 0xFFFF) << 5 | ll


def b(frm: int, to: int, link: bool = False) -> int:
    off = (to - frm) >> 2
    if not -(1 << 25) <= off < (1 << 25) or (to - frm) & 3:
        raise ValueError(f"branch {frm:#x} -> {to:#x} out of range")
    return (0x94000000 if link else 0x14000000) | (off & 0x3FFFFFF)


def adr(rd: int, frm: int, to: int) -> int:
    off = to - frm
    if not -(1 << 20) <= off < (1 << 20):
        raise ValueError(f"adr {frm:#x} -> {to:#x} out of range")
    return 0x10000000 | (off & 3) << 29 | ((off >> 2) & 0x7FFFF) << 5 | _reg(rd)


# --- loads and stores ------------------------------------------------------------
_SIZES = {1: 0, 2: 1, 4: 2, 8: 3}


def ldst_uimm(load: bool, size: int, rt: int, rn: int, offset: int = 0) -> int:
    """LDR/STR (B/H/W/X) Rt, [Rn, #offset], unsigned scaled offset."""
    s = _SIZES[size]
    if offset % size or not 0 <= offset // size < 4096:
        raise ValueError(f"offset {offset} for size {size}")
    return 0x39000000 | s << 30 | (1 if load else 0) << 22 | (offset // size) << 10 | _reg(rn) << 5 | _reg(rt)


def ldst_unscaled(load: bool, size: int, rt: int, rn: int, offset: int = 0) -> int:
    """LDUR/STUR: 9-bit signed unscaled offset."""
    s = _SIZES[size]
    if not -256 <= offset < 256:
        raise ValueError(f"offset {offset}")
    return 0x38000000 | s << 30 | (1 if load else 0) << 22 | (offset & 0x1FF) << 12 | _reg(rn) << 5 | _reg(rt)


def ldst_pair(load: bool, rt: int, rt2: int, rn: int, offset: int = 0) -> int:
    """LDP/STP Xt, Xt2, [Rn, #offset] (signed offset, 64-bit)."""
    if offset % 8 or not -512 <= offset < 512:
        raise ValueError(f"offset {offset}")
    return 0xA9000000 | (1 if load else 0) << 22 | ((offset // 8) & 0x7F) << 15 | _reg(rt2) << 10 | _reg(rn) << 5 | _reg(rt)


def ldst_exclusive(kind: str, size: int, rt: int, rn: int, rs: int = 31) -> int:
    """LDXR / STXR / LDAXR / STLXR / LDAR / STLR (B/H/W/X)."""
    s = _SIZES[size]
    l, o2, o1, o0 = {"ldxr": (1, 0, 0, 0), "stxr": (0, 0, 0, 0), "ldaxr": (1, 0, 0, 1), "stlxr": (0, 0, 0, 1),
                     "ldar": (1, 1, 0, 1), "stlr": (0, 1, 0, 1)}[kind]
    if kind in ("ldar", "stlr", "ldxr", "ldaxr"):
        rs = 31
    return (0x08000000 | s << 30 | o2 << 23 | l << 22 | o1 << 21 | _reg(rs) << 16 | o0 << 15 | 31 << 10
            | _reg(rn) << 5 | _reg(rt))


def ldapr(size: int, rt: int, rn: int) -> int:
    """LDAPR (FEAT_LRCPC)."""
    return 0x38BFC000 | _SIZES[size] << 30 | _reg(rn) << 5 | _reg(rt)


def ldadd(size: int, rs: int, rt: int, rn: int) -> int:
    """LDADD (FEAT_LSE)."""
    return 0x38200000 | _SIZES[size] << 30 | _reg(rs) << 16 | _reg(rn) << 5 | _reg(rt)


def ldr_simd(load: bool, size: int, rt: int, rn: int) -> int:
    """LDR/STR Bt/Ht/St/Dt/Qt, [Rn] (SIMD&FP, unsigned offset 0)."""
    if size == 16:
        return 0x3D800000 | (1 if load else 0) << 22 | _reg(rn) << 5 | _reg(rt)
    return 0x3D000000 | _SIZES[size] << 30 | (1 if load else 0) << 22 | _reg(rn) << 5 | _reg(rt)


def fmov_d_x(rd: int, rn: int) -> int:
    """FMOV Dd, Xn (an FP instruction: traps when FP is disabled)."""
    return 0x9E670000 | _reg(rn) << 5 | _reg(rd)
