"""Tests for neve.arch.decode against the GNU assembler's encodings."""
from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from neve.arch import decode as d
from neve.arch.decode import classify, data_abort_iss, decode_ldst

AS = shutil.which("aarch64-linux-gnu-as")
OBJCOPY = shutil.which("aarch64-linux-gnu-objcopy")
MARCH = "-march=armv8.7-a+sve+memtag"


def _assemble_raw(lines: tuple[str, ...]) -> tuple[list[int], set[int]]:
    """Assemble `lines`; returns (words, indices of lines the assembler rejected)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "t.s")
        obj = Path(tmp, "t.o")
        binf = Path(tmp, "t.bin")
        src.write_text("\n".join(lines) + "\n")
        r = subprocess.run([AS, MARCH, "-o", str(obj), str(src)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            bad = {int(m) - 1 for m in re.findall(r"t\.s:(\d+): Error", r.stderr)}
            if not bad:
                raise RuntimeError(r.stderr)
            return [], bad
        subprocess.run([OBJCOPY, "-O", "binary", "-j", ".text", str(obj), str(binf)],
                       check=True)
        data = binf.read_bytes()
    return [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)], set()


@functools.lru_cache(maxsize=None)
def assemble(*lines: str, allow_unknown: bool = False) -> dict[str, int]:
    """Map each assembly line to its 32-bit encoding."""
    if AS is None or OBJCOPY is None:
        pytest.skip("aarch64-linux-gnu binutils not installed")
    todo = list(lines)
    while True:
        words, bad = _assemble_raw(tuple(todo))
        if not bad:
            assert len(words) == len(todo)
            return dict(zip(todo, words))
        if not allow_unknown:
            raise AssertionError(f"assembler rejected: {[todo[i] for i in bad]}")
        todo = [l for i, l in enumerate(todo) if i not in bad]


def enc(line: str) -> int:
    return assemble(line)[line]


class Regs:
    """read_reg callback: X0..X30 = given values, 31 = SP."""

    def __init__(self, sp: int = 0x8000_0000, **xs: int):
        self.r = {int(k[1:]): v for k, v in xs.items()}
        self.sp = sp
        self.calls: list[int] = []

    def __call__(self, n: int) -> int:
        self.calls.append(n)
        return self.sp if n == 31 else self.r.get(n, 0)


# ------------------------------------------------------------------------------------
# Hard-coded anchors (verified with aarch64-linux-gnu-as 2.40)
# ------------------------------------------------------------------------------------
def test_hardcoded_encodings_match_assembler():
    assert enc("ldr x1, [x2]") == 0xF9400041
    assert enc("strb w3, [x4, #1]") == 0x39000483
    assert enc("mrs x3, hcr_el2") == 0xD53C1103
    assert enc("tlbi vmalle1os") == 0xD508811F
    assert enc("eret") == 0xD69F03E0


# ------------------------------------------------------------------------------------
# decode_ldst
# ------------------------------------------------------------------------------------
LDST_CASES = [
    # line, name, size, nregs, write, rt, rn, sign, sf, writeback, post, imm, isv_ok
    ("ldr x1, [x2]", "LDR", 8, 1, False, 1, 2, False, True, False, False, 0, True),
    ("ldr w5, [sp, #4092]", "LDR", 4, 1, False, 5, 31, False, False, False, False, 4092, True),
    ("str x0, [x1, #32760]", "STR", 8, 1, True, 0, 1, False, True, False, False, 32760, True),
    ("strb w3, [x4, #1]", "STRB", 1, 1, True, 3, 4, False, False, False, False, 1, True),
    ("strh w3, [x4, #2]", "STRH", 2, 1, True, 3, 4, False, False, False, False, 2, True),
    ("ldrb w3, [x4, #4095]", "LDRB", 1, 1, False, 3, 4, False, False, False, False, 4095, True),
    ("ldrh w7, [x8, #8190]", "LDRH", 2, 1, False, 7, 8, False, False, False, False, 8190, True),
    ("ldrsb x1, [x2]", "LDRSB", 1, 1, False, 1, 2, True, True, False, False, 0, True),
    ("ldrsb w1, [x2]", "LDRSB", 1, 1, False, 1, 2, True, False, False, False, 0, True),
    ("ldrsh x1, [x2, #6]", "LDRSH", 2, 1, False, 1, 2, True, True, False, False, 6, True),
    ("ldrsh w1, [x2, #6]", "LDRSH", 2, 1, False, 1, 2, True, False, False, False, 6, True),
    ("ldrsw x9, [x10, #8]", "LDRSW", 4, 1, False, 9, 10, True, True, False, False, 8, True),
    ("ldr x1, [x2, #16]!", "LDR", 8, 1, False, 1, 2, False, True, True, False, 16, False),
    ("ldr x1, [x2], #-16", "LDR", 8, 1, False, 1, 2, False, True, True, True, -16, False),
    ("str w1, [sp, #-4]!", "STR", 4, 1, True, 1, 31, False, False, True, False, -4, False),
    ("strb w1, [x2], #255", "STRB", 1, 1, True, 1, 2, False, False, True, True, 255, False),
    ("ldur x1, [x2, #-256]", "LDUR", 8, 1, False, 1, 2, False, True, False, False, -256, True),
    ("stur w1, [x2, #3]", "STUR", 4, 1, True, 1, 2, False, False, False, False, 3, True),
    ("ldursw x1, [x2, #-1]", "LDURSW", 4, 1, False, 1, 2, True, True, False, False, -1, True),
    ("ldtr x1, [x2, #8]", "LDTR", 8, 1, False, 1, 2, False, True, False, False, 8, True),
    ("sttrb w1, [x2]", "STTRB", 1, 1, True, 1, 2, False, False, False, False, 0, True),
    ("ldp x1, x2, [x3]", "LDP", 8, 2, False, 1, 3, False, True, False, False, 0, False),
    ("ldp w1, w2, [x3, #-256]", "LDP", 4, 2, False, 1, 3, False, False, False, False, -256, False),
    ("stp x29, x30, [sp, #-16]!", "STP", 8, 2, True, 29, 31, False, True, True, False, -16, False),
    ("ldp x29, x30, [sp], #16", "LDP", 8, 2, False, 29, 31, False, True, True, True, 16, False),
    ("ldpsw x1, x2, [x3, #8]", "LDPSW", 4, 2, False, 1, 3, True, True, False, False, 8, False),
    ("ldnp x1, x2, [x3, #16]", "LDNP", 8, 2, False, 1, 3, False, True, False, False, 16, False),
    ("stnp w1, w2, [x3, #-8]", "STNP", 4, 2, True, 1, 3, False, False, False, False, -8, False),
    ("ldxr x1, [x2]", "LDXR", 8, 1, False, 1, 2, False, True, False, False, 0, False),
    ("ldaxrb w1, [x2]", "LDAXRB", 1, 1, False, 1, 2, False, False, False, False, 0, False),
    ("stxr w3, x1, [x2]", "STXR", 8, 1, True, 1, 2, False, True, False, False, 0, False),
    ("stlxrh w3, w1, [x2]", "STLXRH", 2, 1, True, 1, 2, False, False, False, False, 0, False),
    ("ldxp x1, x2, [x3]", "LDXP", 8, 2, False, 1, 3, False, True, False, False, 0, False),
    ("stlxp w4, w1, w2, [x3]", "STLXP", 4, 2, True, 1, 3, False, False, False, False, 0, False),
    ("ldar x1, [x2]", "LDAR", 8, 1, False, 1, 2, False, True, False, False, 0, True),
    ("ldarb w1, [x2]", "LDARB", 1, 1, False, 1, 2, False, False, False, False, 0, True),
    ("stlr w1, [sp]", "STLR", 4, 1, True, 1, 31, False, False, False, False, 0, True),
    ("stlrh w1, [x2]", "STLRH", 2, 1, True, 1, 2, False, False, False, False, 0, True),
    ("ldlar x1, [x2]", "LDLAR", 8, 1, False, 1, 2, False, True, False, False, 0, True),
    ("ldapr x1, [x2]", "LDAPR", 8, 1, False, 1, 2, False, True, False, False, 0, True),
    ("ldaprb w1, [x2]", "LDAPR", 1, 1, False, 1, 2, False, False, False, False, 0, True),
    ("ldapur x1, [x2, #-3]", "LDAPUR", 8, 1, False, 1, 2, False, True, False, False, -3, True),
    ("ldapursw x1, [x2, #4]", "LDAPURSW", 4, 1, False, 1, 2, True, True, False, False, 4, True),
    ("stlurb w1, [x2, #1]", "STLURB", 1, 1, True, 1, 2, False, False, False, False, 1, True),
    ("ldadd x1, x2, [x3]", "LDADD", 8, 1, True, 2, 3, False, True, False, False, 0, False),
    ("ldaddal w1, w2, [x3]", "LDADD", 4, 1, True, 2, 3, False, False, False, False, 0, False),
    ("stadd w1, [x3]", "LDADD", 4, 1, True, 31, 3, False, False, False, False, 0, False),
    ("ldclrb w1, w2, [x3]", "LDCLR", 1, 1, True, 2, 3, False, False, False, False, 0, False),
    ("ldumin x1, x2, [x3]", "LDUMIN", 8, 1, True, 2, 3, False, True, False, False, 0, False),
    ("swpal x1, x2, [sp]", "SWP", 8, 1, True, 2, 31, False, True, False, False, 0, False),
    ("cas x1, x2, [x3]", "CAS", 8, 1, True, 2, 3, False, True, False, False, 0, False),
    ("casalh w1, w2, [x3]", "CASH", 2, 1, True, 2, 3, False, False, False, False, 0, False),
    ("casp x0, x1, x2, x3, [x4]", "CASP", 8, 2, True, 2, 4, False, True, False, False, 0, False),
    ("caspa w4, w5, w6, w7, [x8]", "CASP", 4, 2, True, 6, 8, False, False, False, False, 0, False),
    ("ldr b0, [x1, #1]", "LDRB", 1, 1, False, 0, 1, False, False, False, False, 1, False),
    ("ldr h0, [x1, #2]", "LDRH", 2, 1, False, 0, 1, False, False, False, False, 2, False),
    ("str s1, [x1, #4]", "STRS", 4, 1, True, 1, 1, False, False, False, False, 4, False),
    ("ldr d2, [x1, #8]", "LDRD", 8, 1, False, 2, 1, False, False, False, False, 8, False),
    ("str q3, [x1, #16]", "STRQ", 16, 1, True, 3, 1, False, False, False, False, 16, False),
    ("ldr q3, [x1], #32", "LDRQ", 16, 1, False, 3, 1, False, False, True, True, 32, False),
    ("ldur q3, [x1, #-1]", "LDURQ", 16, 1, False, 3, 1, False, False, False, False, -1, False),
    ("ldp q0, q1, [sp, #-32]!", "LDP", 16, 2, False, 0, 31, False, False, True, False, -32, False),
    ("stp d0, d1, [x2, #8]", "STP", 8, 2, True, 0, 2, False, False, False, False, 8, False),
    ("stnp s0, s1, [x2, #4]", "STNP", 4, 2, True, 0, 2, False, False, False, False, 4, False),
    ("stgp x1, x2, [x3, #32]", "STGP", 8, 2, True, 1, 3, False, True, False, False, 32, False),
]


@pytest.mark.parametrize("case", LDST_CASES, ids=[c[0] for c in LDST_CASES])
def test_decode_ldst(case):
    line, name, size, nregs, write, rt, rn, sign, sf, wb, post, imm, isv = case
    ld = decode_ldst(enc(line))
    assert ld is not None, line
    assert ld.name == name
    assert ld.size == size
    assert ld.nregs == nregs
    assert ld.write == write
    assert ld.rt == rt
    assert ld.rn == rn
    assert ld.sign_extend == sign
    assert ld.sf == sf
    assert ld.writeback == wb
    assert ld.post_index == post
    assert ld.imm == imm
    assert ld.isv_ok == isv
    assert ld.simd == (line.split()[1][0] in "bhsdq")


def test_pair_rt2_and_status_registers():
    ld = decode_ldst(enc("stp x29, x30, [sp, #-16]!"))
    assert (ld.rt, ld.rt2) == (29, 30)
    ld = decode_ldst(enc("stxr w3, x1, [x2]"))
    assert ld.rs == 3 and ld.exclusive and ld.acqrel is False
    ld = decode_ldst(enc("stlxp w4, w1, w2, [x3]"))
    assert (ld.rs, ld.rt, ld.rt2, ld.acqrel) == (4, 1, 2, True)
    ld = decode_ldst(enc("casp x0, x1, x2, x3, [x4]"))
    assert (ld.rs, ld.rt, ld.rt2, ld.rmw) == (0, 2, 3, True)
    ld = decode_ldst(enc("ldaddal w1, w2, [x3]"))
    assert (ld.rs, ld.acqrel, ld.rmw, ld.read) == (1, True, True, True)
    assert decode_ldst(enc("ldadd x1, x2, [x3]")).acqrel is False


def test_addresses_offset_pre_post():
    regs = Regs(x2=0x1000, sp=0x8000)
    assert decode_ldst(enc("ldr x1, [x2]")).address(regs) == 0x1000
    assert decode_ldst(enc("ldr x1, [x2, #16]!")).address(regs) == 0x1010
    post = decode_ldst(enc("ldr x1, [x2], #-16"))
    assert post.address(regs) == 0x1000          # post-index accesses the base
    assert post.writeback_value(regs) == 0xFF0
    assert decode_ldst(enc("ldur x1, [x2, #-256]")).address(regs) == 0xF00
    assert decode_ldst(enc("stp x29, x30, [sp, #-16]!")).address(regs) == 0x7FF0
    assert decode_ldst(enc("ldp x29, x30, [sp], #16")).address(regs) == 0x8000
    assert decode_ldst(enc("ldr w5, [sp, #4092]")).address(regs) == 0x8FFC
    assert decode_ldst(enc("ldr x1, [x2]")).writeback_value(regs) is None
    # wrap-around modulo 2^64
    assert decode_ldst(enc("ldur x1, [x2, #-256]")).address(Regs(x2=0x10)) == \
        (0x10 - 256) & d.MASK64


def test_register_offset():
    cases = {
        "ldr x1, [x2, x3]": ("lsl", 0, 0x1000 + 0x30),
        "ldr x1, [x2, x3, lsl #3]": ("lsl", 3, 0x1000 + 0x30 * 8),
        "ldr w1, [x2, w4, sxtw]": ("sxtw", 0, 0x1000 - 16),
        "ldr w1, [x2, w4, sxtw #2]": ("sxtw", 2, 0x1000 - 64),
        "ldrb w1, [x2, w5, uxtw]": ("uxtw", 0, 0x1000 + 0xFFFFFFF0),
        "strh w1, [x2, x3, lsl #1]": ("lsl", 1, 0x1000 + 0x60),
        "ldr q0, [x2, x3, lsl #4]": ("lsl", 4, 0x1000 + 0x300),
        "ldrsw x1, [x2, x4, sxtx #2]": ("sxtx", 2, 0x1000 + 4 * (0xFFFFFFFF_FFFFFFF0 - (1 << 64))),
    }
    regs = Regs(x2=0x1000, x3=0x30, x4=0xFFFFFFFF_FFFFFFF0, x5=0xFFFFFFFF_FFFFFFF0)
    for line, (ext, shift, addr) in cases.items():
        ld = decode_ldst(enc(line))
        assert (ld.extend, ld.shift) == (ext, shift), line
        assert ld.rm is not None and not ld.writeback
        assert ld.address(regs) == addr & d.MASK64, line
    ld = decode_ldst(enc("ldr x1, [x2, x3]"))
    assert ld.isv_ok and ld.rm == 3


def test_register_31_conventions():
    # Rm = 31 is XZR: read_reg must not be asked for it.
    regs = Regs(x2=0x1000, sp=0xDEAD0000)
    ld = decode_ldst(enc("ldr x1, [x2, xzr]"))
    assert ld.rm == 31 and ld.address(regs) == 0x1000 and 31 not in regs.calls
    # Rn = 31 is SP
    regs = Regs(sp=0x4000)
    assert decode_ldst(enc("ldr x1, [sp, #8]")).address(regs) == 0x4008
    # Rt = 31 (XZR store) keeps rt=31
    ld = decode_ldst(enc("str xzr, [x1]"))
    assert ld.rt == 31 and ld.isv_ok
    # DC ZVA: the VA is in Xt, aligned down to the block size
    ld = decode_ldst(enc("dc zva, x5"), dczva_size=64)
    assert ld.address(Regs(x5=0x12345)) == 0x12340
    assert ld.write and not ld.cm and ld.size == 64
    assert decode_ldst(enc("dc zva, x5"), dczva_size=32).address(Regs(x5=0x1234F)) == 0x12340


def test_literal():
    words = assemble("lit0: ldr x1, lit1", "ldrsw x2, lit0",
                     "ldr q3, lit1", "prfm pldl1keep, lit0", "nop", "lit1: nop")
    ld = decode_ldst(words["lit0: ldr x1, lit1"])
    assert ld.literal and ld.size == 8 and ld.sf and ld.rn is None and ld.isv_ok
    assert ld.imm == 20
    assert ld.address(Regs(), pc=0x40000) == 0x40014
    with pytest.raises(ValueError):
        ld.address(Regs())
    ld = decode_ldst(words["ldrsw x2, lit0"])
    assert ld.sign_extend and ld.size == 4 and ld.imm == -4
    assert ld.address(Regs(), pc=0x40004) == 0x40000
    ld = decode_ldst(words["ldr q3, lit1"])
    assert ld.simd and ld.size == 16 and ld.imm == 12 and not ld.isv_ok
    assert decode_ldst(words["prfm pldl1keep, lit0"]) is None


def test_simd_structures():
    regs = Regs(x1=0x2000, x2=0x10)
    ld = decode_ldst(enc("ld1 {v0.16b}, [x1]"))
    assert ld.simd and ld.size == 16 and ld.nregs == 1 and not ld.write
    ld = decode_ldst(enc("st4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x1], #64"))
    assert ld.write and ld.nregs == 4 and ld.post_index and ld.imm == 64
    assert ld.address(regs) == 0x2000 and ld.writeback_value(regs) == 0x2040
    ld = decode_ldst(enc("ld1 {v0.8b, v1.8b}, [x1], x2"))
    assert ld.size == 8 and ld.nregs == 2 and ld.rm == 2
    assert ld.writeback_value(regs) == 0x2010
    ld = decode_ldst(enc("ld3 {v0.s, v1.s, v2.s}[1], [x1]"))
    assert ld.size == 4 and ld.nregs == 3
    ld = decode_ldst(enc("ld1r {v0.2d}, [x1], #8"))
    assert ld.size == 8 and ld.imm == 8
    ld = decode_ldst(enc("st1 {v0.d}[1], [x1]"))
    assert ld.size == 8 and ld.write


def test_not_ldst():
    for line in ("add x0, x1, x2", "prfm pldl1keep, [x1]", "prfm pldl1keep, [x1, x2]",
                 "prfum pldl1keep, [x1, #1]", "b .", "mrs x0, sctlr_el1",
                 "tlbi vmalle1is", "dc cisw, x0", "ic iallu", "fadd s0, s1, s2",
                 "nop", "svc #0"):
        assert decode_ldst(enc(line)) is None, line
    assert decode_ldst(0) is None


def test_cache_maintenance_ldst():
    for line in ("dc civac, x1", "dc cvac, x1", "dc ivac, x1", "dc cvau, x1",
                 "ic ivau, x1", "at s1e1r, x1", "at s12e1w, x1"):
        ld = decode_ldst(enc(line))
        assert ld is not None and ld.cm and ld.write and ld.rt == 1, line
        assert ld.address(Regs(x1=0x1234)) == 0x1234
        iss = data_abort_iss(ld, fsc=0x07, with_syndrome=True)
        assert iss == d.ISS_CM | d.ISS_WNR | 0x07, line


# ------------------------------------------------------------------------------------
# data_abort_iss
# ------------------------------------------------------------------------------------
def _fields(iss):
    return dict(isv=iss >> 24 & 1, sas=iss >> 22 & 3, sse=iss >> 21 & 1,
                srt=iss >> 16 & 31, sf=iss >> 15 & 1, ar=iss >> 14 & 1,
                vncr=iss >> 13 & 1, ea=iss >> 9 & 1, cm=iss >> 8 & 1,
                s1ptw=iss >> 7 & 1, wnr=iss >> 6 & 1, dfsc=iss & 0x3F)


def test_iss_ldr_x1():
    ld = decode_ldst(enc("ldr x1, [x2]"))
    iss = data_abort_iss(ld, fsc=0x07, with_syndrome=True)
    f = _fields(iss)
    assert f == dict(isv=1, sas=3, sse=0, srt=1, sf=1, ar=0, vncr=0, ea=0, cm=0,
                     s1ptw=0, wnr=0, dfsc=0x07)
    assert iss == 0x01C18007
    assert d.esr(d.EC_DABT_LOW, iss) == 0x93C18007  # as seen from KVM MMIO traps


def test_iss_strb():
    ld = decode_ldst(enc("strb w3, [x4, #1]"))
    f = _fields(data_abort_iss(ld, fsc=0x0F, with_syndrome=True))
    assert (f["isv"], f["sas"], f["sf"], f["wnr"], f["srt"], f["dfsc"]) == (1, 0, 0, 1, 3, 0x0F)


def test_iss_sign_extend_and_acqrel():
    f = _fields(data_abort_iss(decode_ldst(enc("ldrsh w1, [x2]")), fsc=6, with_syndrome=True))
    assert (f["sas"], f["sse"], f["sf"]) == (1, 1, 0)
    f = _fields(data_abort_iss(decode_ldst(enc("ldrsw x9, [x10]")), fsc=6, with_syndrome=True))
    assert (f["sas"], f["sse"], f["sf"], f["srt"]) == (2, 1, 1, 9)
    f = _fields(data_abort_iss(decode_ldst(enc("stlr w1, [sp]")), fsc=6, with_syndrome=True))
    assert (f["isv"], f["ar"], f["wnr"], f["sas"]) == (1, 1, 1, 2)


def test_iss_no_syndrome_cases():
    for line in ("ldp x1, x2, [x3]", "ldr x1, [x2, #16]!", "ldxr x1, [x2]",
                 "ldr q0, [x1]", "ldadd x1, x2, [x3]", "stp x29, x30, [sp, #-16]!"):
        ld = decode_ldst(enc(line))
        iss = data_abort_iss(ld, fsc=0x07, with_syndrome=True)
        assert iss & ~(d.ISS_WNR | 0x3F) == 0, line
        assert bool(iss & d.ISS_WNR) == (ld.write and not ld.rmw), line
    ld = decode_ldst(enc("str x1, [x2]"))
    assert data_abort_iss(ld, fsc=0x07, with_syndrome=False) == d.ISS_WNR | 0x07
    assert data_abort_iss(None, fsc=0x10, ea=True, with_syndrome=True) == d.ISS_EA | 0x10


def test_iss_s1ptw_and_flags():
    ld = decode_ldst(enc("str x1, [x2]"))
    iss = data_abort_iss(ld, fsc=0x05, s1ptw=True, with_syndrome=True)
    assert iss == d.ISS_S1PTW | d.ISS_WNR | 0x05  # ISV=0; WnR is the store's (as QEMU)
    iss = data_abort_iss(decode_ldst(enc("ldr x1, [x2]")), fsc=0x05, s1ptw=True, with_syndrome=True)
    assert iss == d.ISS_S1PTW | 0x05              # a load's walk fault: WnR=0
    iss = data_abort_iss(ld, fsc=0x10, ea=True, cm=True, with_syndrome=False)
    assert iss == d.ISS_EA | d.ISS_CM | d.ISS_WNR | 0x10


def test_iss_atomic_wnr():
    ld = decode_ldst(enc("ldadd x1, x2, [x3]"))
    assert ld.write and ld.rmw
    assert data_abort_iss(ld, fsc=0x07, with_syndrome=True) & d.ISS_WNR == 0
    assert data_abort_iss(ld, fsc=0x0F, with_syndrome=True) & d.ISS_WNR
    assert data_abort_iss(ld, fsc=0x0F, read_would_fault=True, with_syndrome=True) \
        & d.ISS_WNR == 0


# ------------------------------------------------------------------------------------
# classify
# ------------------------------------------------------------------------------------
def test_classify_exception_generating():
    cases = {"svc #0x12": ("svc", 0x12), "hvc #0": ("hvc", 0), "smc #0xffff": ("smc", 0xFFFF),
             "brk #0x3e8": ("brk", 0x3E8), "hlt #0xf000": ("hlt", 0xF000),
             "udf #7": ("udf", 7)}
    for line, (kind, imm) in cases.items():
        i = classify(enc(line))
        assert (i.kind, i.imm16, i.imm) == (kind, imm, imm), line


def test_classify_simple_kinds():
    words = assemble("eret", "eretaa", "eretab", "wfi", "wfe", "wfit x3", "wfet x4",
                     "nop", "add x0, x1, x2", "dsb sy", "isb", "b .", "ret")
    expect = {"eret": "eret", "eretaa": "eretaa", "eretab": "eretab", "wfi": "wfi",
              "wfe": "wfe", "wfit x3": "wfit", "wfet x4": "wfet", "nop": "other",
              "add x0, x1, x2": "other", "dsb sy": "other", "isb": "other",
              "b .": "other", "ret": "other"}
    for line, kind in expect.items():
        assert classify(words[line]).kind == kind, line
    assert classify(words["wfit x3"]).rt == 3


def test_classify_mrs_msr():
    i = classify(enc("mrs x3, hcr_el2"))
    assert (i.kind, i.op0, i.op1, i.crn, i.crm, i.op2, i.rt, i.read) == \
        ("mrs", 3, 4, 1, 1, 0, 3, True)
    i = classify(enc("msr vbar_el1, x7"))
    assert (i.kind, i.op0, i.op1, i.crn, i.crm, i.op2, i.rt, i.read) == \
        ("msr", 3, 0, 12, 0, 0, 7, False)
    i = classify(enc("mrs x0, mdscr_el1"))
    assert (i.kind, i.op0, i.op1, i.crn, i.crm, i.op2) == ("mrs", 2, 0, 0, 2, 2)


def test_classify_msr_imm():
    for line, (op1, op2, crm, name) in {
        "msr daifset, #0xf": (3, 6, 0xF, "DAIFSet"),
        "msr daifclr, #2": (3, 7, 2, "DAIFClr"),
        "msr spsel, #1": (0, 5, 1, "SPSel"),
        "msr pan, #1": (0, 4, 1, "PAN"),
        "msr uao, #0": (0, 3, 0, "UAO"),
    }.items():
        i = classify(enc(line))
        assert (i.kind, i.op1, i.op2, i.crm, i.name) == ("msr_imm", op1, op2, crm, name), line


def test_classify_fp():
    fp_lines = ["fadd s0, s1, s2", "fmov d0, x1", "add v0.4s, v1.4s, v2.4s",
                "ldr q0, [x1]", "stp d8, d9, [sp, #-16]!", "ld1 {v0.16b}, [x1]",
                "scvtf d0, x1", "fcvtzs x0, d1", "dup v0.4s, w1", "fcmp d0, #0.0",
                "ldr s0, .", "movi v0.2d, #0"]
    words = assemble(*fp_lines)
    for line in fp_lines:
        i = classify(words[line])
        assert i.kind == "fp" and not i.sve, line
    for line in ("ptrue p0.b", "add z0.s, z1.s, z2.s", "ld1w {z0.s}, p0/z, [x1]"):
        i = classify(enc(line))
        assert i.kind == "fp" and i.sve, line
    for line in ("ldr x0, [x1]", "add x0, x1, x2", "stp x29, x30, [sp, #-16]!",
                 "madd x0, x1, x2, x3"):
        assert classify(enc(line)).kind == "other", line


def test_classify_sys_names():
    i = classify(enc("tlbi vmalle1is"))
    assert (i.kind, i.op1, i.crn, i.crm, i.op2, i.rt, i.name) == \
        ("sys", 0, 8, 3, 0, 31, "TLBI VMALLE1IS")
    i = classify(enc("tlbi ipas2e1is, x5"))
    assert (i.name, i.rt) == ("TLBI IPAS2E1IS", 5)
    assert classify(enc("at s1e1r, x0")).name == "AT S1E1R"
    assert classify(enc("ic ivau, x0")).name == "IC IVAU"
    assert classify(enc("dc civac, x0")).name == "DC CIVAC"
    i = classify(enc("sysl x3, #0, c1, c2, #3"))
    assert (i.kind, i.read, i.op1, i.crn, i.crm, i.op2, i.rt) == ("sysl", True, 0, 1, 2, 3, 3)


def _asm_line(name: str) -> str:
    op = name.lower()
    no_reg = (op.startswith("tlbi vmall") or op.startswith("tlbi all")
              or op in ("ic iallu", "ic ialluis"))
    return op if no_reg else op + ", x0"


def test_sys_name_table_against_assembler():
    """Every TLBI/AT/DC/IC name in the table assembles to its (op1,CRn,CRm,op2)."""
    names = [n for n in d.SYS_NAMES.values() if not n.endswith("NXS")]
    lines = tuple(_asm_line(n) for n in names)
    words = assemble(*lines, allow_unknown=True)
    # The ARMv8.4 set the brief requires must all be known to binutils 2.40.
    required = [
        "TLBI VMALLE1", "TLBI VMALLE1IS", "TLBI VMALLE1OS", "TLBI VAE1IS", "TLBI ASIDE1",
        "TLBI VAAE1", "TLBI VALE1OS", "TLBI VAALE1IS", "TLBI ALLE2", "TLBI ALLE2IS",
        "TLBI ALLE2OS", "TLBI VAE2", "TLBI VAE2IS", "TLBI VALE2", "TLBI VALE2OS",
        "TLBI ALLE1", "TLBI ALLE1IS", "TLBI ALLE1OS", "TLBI VMALLS12E1",
        "TLBI VMALLS12E1IS", "TLBI VMALLS12E1OS", "TLBI IPAS2E1", "TLBI IPAS2E1IS",
        "TLBI IPAS2E1OS", "TLBI IPAS2LE1", "TLBI IPAS2LE1IS", "TLBI IPAS2LE1OS",
        "TLBI RVAE1IS", "TLBI RIPAS2E1", "TLBI RVALE2OS", "TLBI ALLE3", "TLBI VAE3IS",
        "AT S1E0R", "AT S1E0W", "AT S1E1R", "AT S1E1W", "AT S1E1RP", "AT S1E1WP",
        "AT S1E2R", "AT S1E2W", "AT S12E1R", "AT S12E1W", "AT S12E0R", "AT S12E0W",
        "DC IVAC", "DC ISW", "DC CSW", "DC CISW", "DC ZVA", "DC CVAC", "DC CVAU",
        "DC CVAP", "DC CVADP", "DC CIVAC", "DC GVA", "DC GZVA",
        "IC IALLU", "IC IALLUIS", "IC IVAU",
    ]
    for n in required:
        assert _asm_line(n) in words, f"{n} not assembled"
    checked = 0
    for n in names:
        line = _asm_line(n)
        if line not in words:
            continue
        i = classify(words[line])
        assert i.kind == "sys" and i.name == n, (n, hex(words[line]), i)
        checked += 1
    assert checked >= 100
    # nXS variants live at CRn=9 with the same other fields
    assert d.sys_name(0, 9, 3, 0) == "TLBI VMALLE1ISNXS"


# ------------------------------------------------------------------------------------
# ISS helpers and ESR
# ------------------------------------------------------------------------------------
def test_sysreg_iss_hcr_el2():
    # MRS X3, HCR_EL2: op0=3 op1=4 CRn=1 CRm=1 op2=0 Rt=3, read
    iss = d.sysreg_iss(3, 4, 1, 1, 0, 3, True)
    assert iss == (3 << 20) | (0 << 17) | (4 << 14) | (1 << 10) | (3 << 5) | (1 << 1) | 1
    assert iss == 0x310463
    assert classify(enc("mrs x3, hcr_el2")).sysreg_iss() == iss
    assert d.esr(d.EC_SYS64, iss) == 0x62310463
    # MSR HCR_EL2, X3: direction 0
    assert classify(enc("msr hcr_el2, x3")).sysreg_iss() == 0x310462


def test_sys_iss():
    i = classify(enc("tlbi vae2is, x9"))
    assert d.sys_iss(i.op1, i.crn, i.crm, i.op2, i.rt) == i.sysreg_iss()
    assert i.sysreg_iss() == (1 << 20) | (1 << 17) | (4 << 14) | (8 << 10) | (9 << 5) | (3 << 1)
    i = classify(enc("sysl x3, #0, c1, c2, #3"))
    assert d.sys_iss(0, 1, 2, 3, 3, read=True) == i.sysreg_iss()
    assert i.sysreg_iss() & 1


def test_esr_and_misc_iss():
    assert d.esr(d.EC_SVC64, d.imm16_iss(0x1234)) == 0x56001234
    assert d.esr(d.EC_HVC64, 0) == 0x5A000000
    assert d.esr(d.EC_BRK64, 0x3E8) == 0xF20003E8
    assert d.esr(d.EC_UNKNOWN, 0, il=True) == 0x02000000
    assert d.esr(d.EC_DABT_CUR, 0, il=False) == 0x94000000
    assert d.eret_iss("eret") == 0
    assert d.eret_iss("eretaa") == 0b10
    assert d.eret_iss("eretab") == 0b11
    assert d.esr(d.EC_ERET, d.eret_iss("eretab")) == 0x6A000003
    assert d.wfx_iss("wfi") == 0x01E00000
    assert d.wfx_iss("wfe") == 0x01E00001
    assert d.wfx_iss("wfit", rt=3) == 0x01E00000 | 3 << 5 | 1 << 2 | 0b10
    assert d.esr(d.EC_WFX, d.wfx_iss("wfi")) == 0x07E00000
    assert d.fp_iss() == 0x01E00000
    with pytest.raises(ValueError):
        d.esr(0x40, 0)
    with pytest.raises(ValueError):
        d.esr(0x15, 1 << 25)
    assert (d.EC_UNKNOWN, d.EC_WFX, d.EC_FP, d.EC_ILLEGAL, d.EC_SVC64, d.EC_HVC64,
            d.EC_SMC64, d.EC_SYS64, d.EC_SVE, d.EC_ERET, d.EC_IABT_LOW, d.EC_IABT_CUR,
            d.EC_PC_ALIGN, d.EC_DABT_LOW, d.EC_DABT_CUR, d.EC_SP_ALIGN, d.EC_SERROR,
            d.EC_BRK64) == (0x00, 0x01, 0x07, 0x0E, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A,
                            0x20, 0x21, 0x22, 0x24, 0x25, 0x26, 0x2F, 0x3C)


# ------------------------------------------------------------------------------------
# disasm
# ------------------------------------------------------------------------------------
def test_disasm():
    assert d.disasm(0xF9400041, 0x1000) == "ldr x1, [x2]"
    assert d.disasm(0xD69F03E0, 0) == "eret"
    assert d.disasm(0x14000002, 0x1000) == "b #0x1008"
    assert d.disasm(0xFFFFFFFF, 0) == ".inst 0xffffffff"


def test_decode_ldst_agrees_with_capstone_on_direction():
    """Cross-check read/write against capstone's mnemonic for a varied set."""
    lines = [c[0] for c in LDST_CASES if not c[0].startswith("stgp")]  # capstone 5: no MTE
    words = assemble(*lines)
    for line in lines:
        ld = decode_ldst(words[line])
        mnem = d.disasm(words[line], 0).split()[0]
        assert mnem == line.split()[0], (line, mnem)
        if mnem.startswith(("st", "sw", "cas")) or mnem.startswith("ld") and ld.rmw:
            assert ld.write
        else:
            assert ld.read and not ld.write
