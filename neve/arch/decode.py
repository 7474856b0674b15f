"""A64 instruction decoding for exception-syndrome reconstruction.

Unicorn runs guest AArch64 code but never tells the host *why* an access faulted or
what the trapped instruction was, so the host rebuilds ESR_ELx/FAR_ELx itself by
decoding the instruction word.  Everything here is pure Python over the bit patterns
of the Arm ARM (DDI 0487, "A64 instruction set encoding"); capstone is only used by
`disasm` for human-readable text.

Public API
----------
decode_ldst(insn, *, dczva_size=64) -> LdSt | None
    Every A64 load/store that can take a data abort: LDR/STR (unsigned offset,
    pre/post-index, unscaled, unprivileged, register offset, literal), sign-extending
    loads, LDP/STP/LDPSW/LDNP/STNP/STGP, exclusives (incl. pairs), LDAR/STLR/LDLAR/
    STLLR/LDAPR/LDAPUR/STLUR, LSE atomics/SWP/CAS/CASP, SIMD&FP single registers,
    pairs and LD1-4/ST1-4 structures, and the VA-taking DC/IC/AT maintenance ops
    (DC ZVA reports a write of `dczva_size` bytes).  None for anything else, including
    PRFM/PRFUM (prefetches never fault).
data_abort_iss(ld, *, fsc, ea, s1ptw, cm, with_syndrome, ...) -> int   (EC 0x24/0x25)
classify(insn) -> Insn     kinds: svc hvc smc brk hlt udf eret eretaa eretab wfi wfe
                           wfit wfet mrs msr msr_imm sys sysl fp other
sysreg_iss / sys_iss       (EC 0x18)
eret_iss, wfx_iss, imm16_iss, fp_iss, esr(ec, iss, il) and the EC_* constants
disasm(insn, pc) -> str

Register-31 conventions
-----------------------
`read_reg(n)` callbacks receive n in 0..31 and **read_reg(31) must return the current
SP** (SP_ELx selected by PSTATE.SP).  It is only ever called with 31 for a *base*
register (Rn), where encoding 31 means SP.  For an index register (Rm), a data
register or the Xt of DC/IC/AT, encoding 31 means XZR: the decoder substitutes 0 and
never calls read_reg(31) for it.

Choices made where the Arm ARM leaves the host a decision (see data_abort_iss):
* ISV (instruction syndrome valid) is only ever set for stage 2 aborts reported to
  EL2 (pseudocode: ``IsSecondStage(fault) && !fault.s2fs1walk``), and only for
  "loads and stores of a single general-purpose register (including the register
  specified with 0b11111, including those with Acquire/Release semantics, but
  excluding Load Exclusive or Store Exclusive and excluding those with writeback)".
  `LdSt.isv_ok` is that instruction-side condition: True for LDR/STR/LDRB/LDRH/
  LDRSB/LDRSH/LDRSW/STRB/STRH in the unsigned-offset, unscaled (LDUR/STUR),
  unprivileged (LDTR/STTR), register-offset and literal forms, and for LDAR/STLR/
  LDLAR/STLLR/LDAPR/LDAPUR/STLUR (all sizes).  False for writeback forms, pairs,
  SIMD&FP, exclusives, LSE atomics/SWP/CAS (they are read-modify-writes, not single
  loads or stores; QEMU likewise reports them without ISS) and cache maintenance.
  The caller decides whether the fault is a stage 2 fault taken to EL2 and passes
  `with_syndrome` accordingly; `data_abort_iss` additionally forces ISV=0 when
  S1PTW=1.
* WnR for atomics (LdSt.rmw): the Arm ARM says "for faults from an atomic instruction
  that both reads and writes from a memory location, this bit is set to 0 if a read of
  the address specified by the instruction would have generated the fault which is
  being reported, otherwise it is set to 1".  `LdSt.write` is True for them (they do
  write); `data_abort_iss` takes `read_would_fault`; when the caller does not know, it
  assumes translation/access-flag/external faults would also hit a read (WnR=0) and a
  permission fault would not (WnR=1, the usual case: a read-only page).
* WnR for S1PTW=1 (stage 2 fault on a stage 1 table walk): the instruction's, as for
  any other fault (ARMv8.0 pseudocode: TranslationTableWalk passes the access's
  iswrite to SecondStageWalk; QEMU 10 reports the same), so a store's walk fault has
  WnR=1.
* Cache maintenance / AT (LdSt.cm): CM=1 and WnR=1 ("for faults on cache maintenance
  and address translation instructions, this bit always returns a value of 1").
  DC ZVA (and DC GVA/GZVA) is an ordinary write: CM=0, WnR=1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

MASK64 = (1 << 64) - 1

# --------------------------------------------------------------------------------------
# ESR_ELx exception classes (Arm ARM names; Linux ESR_ELx_EC_* spelling).
# --------------------------------------------------------------------------------------
EC_UNKNOWN = 0x00
EC_WFX = 0x01
EC_CP15_32 = 0x03
EC_CP15_64 = 0x04
EC_CP14_MR = 0x05
EC_CP14_LS = 0x06
EC_FP = 0x07          # Access to SVE, Advanced SIMD or floating-point (FP_ASIMD)
EC_FP_ASIMD = EC_FP
EC_CP10_ID = 0x08
EC_PAC = 0x09
EC_LS64 = 0x0A
EC_CP14_64 = 0x0C
EC_BTI = 0x0D
EC_ILLEGAL = 0x0E     # Illegal Execution state
EC_ILL = EC_ILLEGAL
EC_SVC32 = 0x11
EC_HVC32 = 0x12
EC_SMC32 = 0x13
EC_SVC64 = 0x15
EC_HVC64 = 0x16
EC_SMC64 = 0x17
EC_SYS64 = 0x18       # MSR, MRS, or System instruction trapped
EC_SVE = 0x19
EC_ERET = 0x1A        # ERET/ERETAA/ERETAB trapped (HCR_EL2.NV)
EC_TSTART = 0x1B
EC_FPAC = 0x1C
EC_SME = 0x1D
EC_IMP_DEF = 0x1F
EC_IABT_LOW = 0x20
EC_IABT_CUR = 0x21
EC_PC_ALIGN = 0x22
EC_DABT_LOW = 0x24
EC_DABT_CUR = 0x25
EC_SP_ALIGN = 0x26
EC_MOPS = 0x27
EC_FP_EXC32 = 0x28
EC_FP_EXC64 = 0x2C
EC_SERROR = 0x2F
EC_BREAKPT_LOW = 0x30
EC_BREAKPT_CUR = 0x31
EC_SOFTSTP_LOW = 0x32
EC_SOFTSTP_CUR = 0x33
EC_WATCHPT_LOW = 0x34
EC_WATCHPT_CUR = 0x35
EC_BKPT32 = 0x38
EC_VECTOR32 = 0x3A
EC_BRK64 = 0x3C

ESR_EC_SHIFT = 26
ESR_IL = 1 << 25
ESR_ISS_MASK = (1 << 25) - 1

# Data/instruction abort ISS bits.
ISS_ISV = 1 << 24
ISS_SAS_SHIFT = 22
ISS_SSE = 1 << 21
ISS_SRT_SHIFT = 16
ISS_SF = 1 << 15
ISS_AR = 1 << 14
ISS_VNCR = 1 << 13
ISS_FNV = 1 << 10
ISS_EA = 1 << 9
ISS_CM = 1 << 8
ISS_S1PTW = 1 << 7
ISS_WNR = 1 << 6
ISS_FSC_MASK = 0x3F

# Fault status codes (DFSC/IFSC), level-parameterised ones take the level (0..3).
FSC_ADDR_SIZE = 0x00      # + level
FSC_TRANSLATION = 0x04    # + level
FSC_ACCESS_FLAG = 0x08    # + level
FSC_PERMISSION = 0x0C     # + level
FSC_SEA = 0x10            # synchronous external abort, not on a table walk
FSC_SEA_TTW = 0x14        # + level
FSC_ALIGNMENT = 0x21
FSC_TLB_CONFLICT = 0x30
FSC_UNSUPPORTED_ATOMIC = 0x35


def esr(ec: int, iss: int, il: bool = True) -> int:
    """ESR_ELx = EC[31:26] : IL[25] : ISS[24:0].  IL=1 for every trapped 32-bit A64
    instruction; the Arm ARM requires IL=1 also for SError, instruction aborts,
    PC/SP alignment faults, illegal state and EC_UNKNOWN exceptions."""
    if not 0 <= ec < 64:
        raise ValueError(f"EC out of range: {ec:#x}")
    if not 0 <= iss <= ESR_ISS_MASK:
        raise ValueError(f"ISS out of range: {iss:#x}")
    return (ec << ESR_EC_SHIFT) | (ESR_IL if il else 0) | iss


def esr_ec(value: int) -> int:
    return (value >> ESR_EC_SHIFT) & 0x3F


def esr_iss(value: int) -> int:
    return value & ESR_ISS_MASK


# --------------------------------------------------------------------------------------
# Small bit helpers
# --------------------------------------------------------------------------------------
def _bits(x: int, hi: int, lo: int) -> int:
    return (x >> lo) & ((1 << (hi - lo + 1)) - 1)


def _bit(x: int, n: int) -> int:
    return (x >> n) & 1


def _sext(x: int, width: int) -> int:
    sign = 1 << (width - 1)
    return (x & (sign - 1)) - (x & sign)


# --------------------------------------------------------------------------------------
# Load/store decoding
# --------------------------------------------------------------------------------------
_EXTEND_NAMES = {0b010: "uxtw", 0b011: "lsl", 0b110: "sxtw", 0b111: "sxtx"}


@dataclass(frozen=True)
class LdSt:
    """One decoded data-accessing instruction.

    size      bytes per register access (1, 2, 4, 8, 16; the block size for DC ZVA)
    nregs     registers transferred: 1, 2 for pairs/CASP/LDXP, up to 4 for LD1-4/ST1-4
    write     the instruction writes memory (stores, atomics, CAS, DC ZVA, DC/IC/AT ops)
    read      the instruction reads memory (loads, atomics, CAS)
    rmw       atomic read-modify-write (LSE atomics, SWP, CAS, CASP)
    rt, rt2   data registers (rt2 None unless pair); for SIMD these are V registers
    rn        base register (31 = SP); None for literal loads and DC/IC/AT (use rt)
    rm        index register for register-offset / structure post-index forms (31=XZR)
    rs        status register of STXR/STLXR, compare register of CAS/CASP, source of
              LD<op>/SWP
    sign_extend  SSE: load sign-extends
    sf        SF: Rt is a 64-bit X register (loads into X, STR Xt, LDRS*/LDRSW into X)
    acqrel    AR: acquire/release semantics
    writeback / post_index   addressing-mode writeback; post-index accesses the base
    imm       signed byte offset after scaling (post-index: the writeback amount)
    extend    register-offset extend: "uxtw", "lsl" (UXTX), "sxtw", "sxtx" or None
    shift     register-offset left shift amount (0 or log2(size))
    isv_ok    Arm ARM allows ESR.ISV=1 for this instruction (see module docstring)
    simd      SIMD&FP/vector register transfer
    unpriv    LDTR/STTR family (EL1 accesses checked with EL0 permissions)
    exclusive Load/Store-Exclusive
    literal   PC-relative literal load (address = pc + imm)
    cm        cache-maintenance/AT instruction (ESR.CM=1)
    name      a short mnemonic-class name, e.g. "LDR", "STP", "LDADD", "DC CIVAC"
    """

    name: str
    size: int
    nregs: int = 1
    write: bool = False
    read: bool = True
    rmw: bool = False
    rt: int = 0
    rt2: Optional[int] = None
    rn: Optional[int] = None
    rm: Optional[int] = None
    rs: Optional[int] = None
    sign_extend: bool = False
    sf: bool = False
    acqrel: bool = False
    writeback: bool = False
    post_index: bool = False
    imm: int = 0
    extend: Optional[str] = None
    shift: int = 0
    isv_ok: bool = False
    simd: bool = False
    unpriv: bool = False
    exclusive: bool = False
    literal: bool = False
    cm: bool = False
    align_down: bool = False   # DC ZVA: address is aligned down to `size`
    elem: Optional[int] = None  # LD1-4/ST1-4 (multiple structures): the element size,
    #                             the unit each access (and its alignment) is made of

    @property
    def total_bytes(self) -> int:
        return self.size * self.nregs

    @property
    def sas(self) -> int:
        """ESR.SAS: log2 of the access size (0=byte .. 3=doubleword)."""
        return min(self.size.bit_length() - 1, 3)

    def _offset(self, read_reg: Callable[[int], int]) -> int:
        if self.rm is None:
            return self.imm
        val = 0 if self.rm == 31 else read_reg(self.rm) & MASK64
        if self.extend == "uxtw":
            val &= 0xFFFFFFFF
        elif self.extend == "sxtw":
            val = _sext(val, 32)
        elif self.extend == "sxtx":
            val = _sext(val, 64)
        return val << self.shift

    def base(self, read_reg: Callable[[int], int], pc: Optional[int] = None) -> int:
        """The base address before offset (read_reg(31) = SP for Rn)."""
        if self.literal:
            if pc is None:
                raise ValueError(f"{self.name} (literal) needs the PC")
            return pc & MASK64
        if self.rn is None:  # DC/IC/AT: the VA is in Xt, Xt=31 is XZR
            return 0 if self.rt == 31 else read_reg(self.rt) & MASK64
        return read_reg(self.rn) & MASK64

    def address(self, read_reg: Callable[[int], int], pc: Optional[int] = None, exact: bool = False) -> int:
        """Virtual address of the first byte accessed.

        read_reg(n) returns Xn, and read_reg(31) must return SP (only called for a base
        register).  `pc` is required for literal loads.  Post-index forms access the
        unmodified base; pre-index and offset forms access base + offset.  DC ZVA
        addresses are aligned down to the block size, unless `exact`: the register's
        own address, which a translation fault of DC ZVA reports in FAR (as QEMU).
        """
        b = self.base(read_reg, pc)
        if self.post_index:
            addr = b
        elif self.rn is None and not self.literal:
            addr = b
        else:
            addr = (b + self._offset(read_reg)) & MASK64
        if self.align_down and not exact:
            addr &= ~(self.size - 1) & MASK64
        return addr

    def writeback_value(self, read_reg: Callable[[int], int]) -> Optional[int]:
        """The value written back to Rn (None if no writeback)."""
        if not self.writeback:
            return None
        return (self.base(read_reg) + self._offset(read_reg)) & MASK64


def _int_size_opc(size: int, opc: int):
    """(bytes, load, sign_extend, sf) for general-purpose LDR/STR size:opc, or None
    for PRFM and unallocated encodings."""
    nbytes = 1 << size
    if opc == 0:
        return nbytes, False, False, size == 3
    if opc == 1:
        return nbytes, True, False, size == 3
    if opc == 2:
        if size == 3:
            return None  # PRFM / PRFUM
        return nbytes, True, True, True  # LDRSB/LDRSH/LDRSW Xt
    if size >= 2:
        return None
    return nbytes, True, True, False  # LDRSB/LDRSH Wt


def _fp_size_opc(size: int, opc: int):
    if opc & 2:
        if size != 0:
            return None
        return 16, bool(opc & 1), False, False
    return 1 << size, bool(opc & 1), False, False


_INT_NAMES = {
    (0, 0): "STRB", (0, 1): "LDRB", (0, 2): "LDRSB", (0, 3): "LDRSB",
    (1, 0): "STRH", (1, 1): "LDRH", (1, 2): "LDRSH", (1, 3): "LDRSH",
    (2, 0): "STR", (2, 1): "LDR", (2, 2): "LDRSW",
    (3, 0): "STR", (3, 1): "LDR",
}


def _ldst_reg(insn: int) -> Optional[LdSt]:
    """size 111 V 0x opc ... : unsigned offset, unscaled/post/unpriv/pre, reg offset,
    and (V=0) the atomic memory operations."""
    size = _bits(insn, 31, 30)
    v = _bit(insn, 26)
    opc = _bits(insn, 23, 22)
    rn = _bits(insn, 9, 5)
    rt = _bits(insn, 4, 0)
    unsigned = _bit(insn, 24) == 1

    if not unsigned and _bit(insn, 21) == 1 and _bits(insn, 11, 10) == 0b00:
        return None if v else _atomic(insn)
    if not unsigned and _bit(insn, 21) == 1 and _bits(insn, 11, 10) & 1:
        return None  # LDRAA/LDRAB (FEAT_PAuth): address needs authentication
    if not unsigned and _bit(insn, 21) == 1 and _bits(insn, 11, 10) == 0b10:
        mode = "reg"
    elif unsigned:
        mode = "uimm"
    elif _bit(insn, 21) == 0:
        mode = ("unscaled", "post", "unpriv", "pre")[_bits(insn, 11, 10)]
    else:
        return None

    info = _fp_size_opc(size, opc) if v else _int_size_opc(size, opc)
    if info is None:
        return None
    nbytes, load, sign, sf = info
    if v and mode == "unpriv":
        return None
    scale = nbytes.bit_length() - 1
    if v:
        name = ("LDR" if load else "STR") + ("Q" if nbytes == 16 else "BHSD"[scale])
    else:
        name = _INT_NAMES[(size, opc)]
    if mode == "unscaled":
        name = name.replace("LDR", "LDUR").replace("STR", "STUR")
    elif mode == "unpriv":
        name = name.replace("LDR", "LDTR").replace("STR", "STTR")

    kw = dict(name=name, size=nbytes, write=not load, read=load, rt=rt, rn=rn,
              sign_extend=sign, sf=sf, simd=bool(v))
    if mode == "uimm":
        kw["imm"] = _bits(insn, 21, 10) << scale
    elif mode == "reg":
        option = _bits(insn, 15, 13)
        if option not in _EXTEND_NAMES:
            return None
        kw["rm"] = _bits(insn, 20, 16)
        kw["extend"] = _EXTEND_NAMES[option]
        kw["shift"] = scale if _bit(insn, 12) else 0
    else:
        kw["imm"] = _sext(_bits(insn, 20, 12), 9)
        if mode in ("pre", "post"):
            kw["writeback"] = True
            kw["post_index"] = mode == "post"
        if mode == "unpriv":
            kw["unpriv"] = True
    kw["isv_ok"] = not v and not kw.get("writeback", False)
    return LdSt(**kw)


_ATOMIC_OPS = ("LDADD", "LDCLR", "LDEOR", "LDSET", "LDSMAX", "LDSMIN", "LDUMAX", "LDUMIN")


def _atomic(insn: int) -> Optional[LdSt]:
    """size 111 0 00 A R 1 Rs o3 opc 00 Rn Rt (FEAT_LSE atomics, SWP, FEAT_LRCPC LDAPR)."""
    size = _bits(insn, 31, 30)
    a = _bit(insn, 23)
    r = _bit(insn, 22)
    rs = _bits(insn, 20, 16)
    o3 = _bit(insn, 15)
    opc = _bits(insn, 14, 12)
    rn = _bits(insn, 9, 5)
    rt = _bits(insn, 4, 0)
    nbytes = 1 << size
    if o3 == 1 and opc == 0b100:
        if a == 1 and r == 0 and rs == 31:
            return LdSt(name="LDAPR", size=nbytes, read=True, write=False, rt=rt, rn=rn,
                        sf=size == 3, acqrel=True, isv_ok=True)
        return None
    if o3 == 0:
        name = _ATOMIC_OPS[opc]
    elif opc == 0:
        name = "SWP"
    else:
        return None  # LD64B/ST64B* (FEAT_LS64) and unallocated
    return LdSt(name=name, size=nbytes, read=True, write=True, rmw=True, rt=rt, rn=rn,
                rs=rs, sf=size == 3, acqrel=bool(a or r))


def _exclusive(insn: int) -> Optional[LdSt]:
    """size 001000 o2 L o1 Rs o0 Rt2 Rn Rt: exclusives, LDAR/STLR, LDLAR/STLLR, CAS(P)."""
    size = _bits(insn, 31, 30)
    o2 = _bit(insn, 23)
    load = _bit(insn, 22) == 1
    o1 = _bit(insn, 21)
    rs = _bits(insn, 20, 16)
    o0 = _bit(insn, 15)
    rt2 = _bits(insn, 14, 10)
    rn = _bits(insn, 9, 5)
    rt = _bits(insn, 4, 0)
    if o2 == 0 and o1 == 0:  # LDXR/LDAXR/STXR/STLXR
        base = ("LDAXR" if o0 else "LDXR") if load else ("STLXR" if o0 else "STXR")
        name = base + ("B", "H", "", "")[size]
        return LdSt(name=name, size=1 << size, read=load, write=not load, rt=rt, rn=rn,
                    rs=None if load else rs, sf=size == 3, acqrel=bool(o0), exclusive=True)
    if o2 == 0 and o1 == 1:
        if size >= 2:  # LDXP/LDAXP/STXP/STLXP
            name = ("LDAXP" if o0 else "LDXP") if load else ("STLXP" if o0 else "STXP")
            return LdSt(name=name, size=4 if size == 2 else 8, nregs=2, read=load,
                        write=not load, rt=rt, rt2=rt2, rn=rn, rs=None if load else rs,
                        sf=size == 3, acqrel=bool(o0), exclusive=True)
        if rt2 != 31 or rs & 1 or rt & 1:
            return None  # CASP needs even register pairs
        # CASP/CASPA/CASPL/CASPAL: Rs,Rs+1 compare; Rt,Rt+1 new value
        return LdSt(name="CASP", size=4 if size == 0 else 8, nregs=2, read=True,
                    write=True, rmw=True, rt=rt, rt2=(rt + 1) & 31, rn=rn, rs=rs,
                    sf=size == 1, acqrel=bool(load or o0))
    if o2 == 1 and o1 == 0:  # LDAR/STLR (o0=1), LDLAR/STLLR (o0=0, FEAT_LOR)
        base = ("LDAR" if o0 else "LDLAR") if load else ("STLR" if o0 else "STLLR")
        return LdSt(name=base + ("B", "H", "", "")[size], size=1 << size, read=load,
                    write=not load, rt=rt, rn=rn, sf=size == 3, acqrel=True, isv_ok=True)
    # o2 == 1 and o1 == 1: CAS/CASA/CASL/CASAL{B,H}
    if rt2 != 31:
        return None
    return LdSt(name="CAS" + ("B", "H", "", "")[size], size=1 << size, read=True,
                write=True, rmw=True, rt=rt, rn=rn, rs=rs, sf=size == 3,
                acqrel=bool(load or o0))


def _rcpc2(insn: int) -> Optional[LdSt]:
    """size 011001 opc 0 imm9 00 Rn Rt: LDAPUR*/STLUR* (FEAT_LRCPC2)."""
    size = _bits(insn, 31, 30)
    opc = _bits(insn, 23, 22)
    nbytes = 1 << size
    if opc == 0:
        load, sign, sf = False, False, size == 3
    elif opc == 1:
        load, sign, sf = True, False, size == 3
    elif opc == 2:
        if size == 3:
            return None
        load, sign, sf = True, True, True
    else:
        if size >= 2:
            return None
        load, sign, sf = True, True, False
    sfx = ("B", "H", "", "")[size]
    name = ("LDAPURS" if sign else "LDAPUR") + sfx if load else "STLUR" + sfx
    if sign and size == 2:
        name = "LDAPURSW"
    return LdSt(name=name, size=nbytes, read=load, write=not load, rt=_bits(insn, 4, 0),
                rn=_bits(insn, 9, 5), sign_extend=sign, sf=sf, acqrel=True,
                imm=_sext(_bits(insn, 20, 12), 9), isv_ok=True)


def _pair(insn: int) -> Optional[LdSt]:
    """opc 101 V 0 mode:2 L imm7 Rt2 Rn Rt: LDP/STP/LDPSW/LDNP/STNP/STGP."""
    opc = _bits(insn, 31, 30)
    v = _bit(insn, 26)
    mode = _bits(insn, 24, 23)  # 00 no-allocate, 01 post, 10 offset, 11 pre
    load = _bit(insn, 22) == 1
    imm7 = _sext(_bits(insn, 21, 15), 7)
    rt2 = _bits(insn, 14, 10)
    rn = _bits(insn, 9, 5)
    rt = _bits(insn, 4, 0)
    sign = False
    sf = False
    if v:
        if opc == 3:
            return None
        nbytes = 4 << opc
        scale = 2 + opc
        name = "LDP" if load else "STP"
        if mode == 0:
            name = "LDNP" if load else "STNP"
    else:
        if opc == 3:
            return None
        if opc == 1:
            if mode == 0:
                return None
            if load:
                nbytes, scale, sign, sf, name = 4, 2, True, True, "LDPSW"
            else:  # STGP (FEAT_MTE): stores two X registers, imm scaled by 16
                nbytes, scale, sf, name = 8, 4, True, "STGP"
        else:
            nbytes = 4 if opc == 0 else 8
            scale = 2 if opc == 0 else 3
            sf = opc == 2
            name = ("LDNP" if load else "STNP") if mode == 0 else ("LDP" if load else "STP")
    return LdSt(name=name, size=nbytes, nregs=2, read=load, write=not load, rt=rt,
                rt2=rt2, rn=rn, sign_extend=sign, sf=sf, imm=imm7 << scale,
                writeback=mode in (1, 3), post_index=mode == 1, simd=bool(v))


def _literal(insn: int) -> Optional[LdSt]:
    """opc 011 V 00 imm19 Rt: LDR (literal), LDRSW (literal), SIMD&FP LDR (literal)."""
    opc = _bits(insn, 31, 30)
    v = _bit(insn, 26)
    imm = _sext(_bits(insn, 23, 5), 19) << 2
    rt = _bits(insn, 4, 0)
    if v:
        if opc == 3:
            return None
        nbytes = 4 << opc
        return LdSt(name="LDR" + "SDQ"[opc], size=nbytes, rt=rt, imm=imm, literal=True,
                    simd=True)
    if opc == 3:
        return None  # PRFM (literal)
    if opc == 2:
        return LdSt(name="LDRSW", size=4, rt=rt, imm=imm, literal=True, sign_extend=True,
                    sf=True, isv_ok=True)
    return LdSt(name="LDR", size=4 << opc, rt=rt, imm=imm, literal=True, sf=opc == 1,
                isv_ok=True)


_LD_MULTI = {0b0000: (4, "4"), 0b0010: (4, "1"), 0b0100: (3, "3"), 0b0110: (3, "1"),
             0b0111: (1, "1"), 0b1000: (2, "2"), 0b1010: (2, "1")}


def _simd_struct(insn: int) -> Optional[LdSt]:
    """0 Q 0011 0 0 P L ...: LD1-4/ST1-4 (multiple and single structures, LDnR).

    size = bytes per register (multiple) or per element (single); nregs = register
    count; imm = post-index immediate (total bytes transferred) when Rm == 31."""
    if _bit(insn, 31):
        return None
    q = _bit(insn, 30)
    post = _bit(insn, 23) == 1
    load = _bit(insn, 22) == 1
    rm = _bits(insn, 20, 16)
    rn = _bits(insn, 9, 5)
    rt = _bits(insn, 4, 0)
    if _bit(insn, 24) == 0:  # multiple structures
        if _bit(insn, 21) or (not post and rm != 0):
            return None
        opcode = _bits(insn, 15, 12)
        if opcode not in _LD_MULTI:
            return None
        nregs, n = _LD_MULTI[opcode]
        if n != "1" and _bits(insn, 11, 10) == 3 and not q:
            return None  # LD2-4/ST2-4 .1D: reserved
        regbytes = 16 if q else 8
        name = ("LD" if load else "ST") + n
        nbytes, total = regbytes, regbytes * nregs
        elem = 1 << _bits(insn, 11, 10)
    else:  # single structure
        if not post and rm != 0:
            return None
        opcode = _bits(insn, 15, 13)
        s = _bit(insn, 12)
        size = _bits(insn, 11, 10)
        selem = (((opcode & 1) << 1) | _bit(insn, 21)) + 1
        scale = opcode >> 1
        if scale == 3:  # LDnR replicate
            if not load or s:
                return None
            scale = size
            name = f"LD{selem}R"
        else:
            if scale == 1 and size & 1:
                return None
            if scale == 2:
                if size & 2:
                    return None
                if size & 1:
                    if s:
                        return None
                    scale = 3
            name = ("LD" if load else "ST") + str(selem)
        nbytes = 1 << scale
        nregs = selem
        total = nbytes * selem
        elem = None
    kw = dict(name=name, size=nbytes, nregs=nregs, read=load, write=not load, rt=rt,
              rn=rn, simd=True, elem=elem)
    if post:
        kw["writeback"] = True
        kw["post_index"] = True
        if rm == 31:
            kw["imm"] = total
        else:
            kw["rm"] = rm
            kw["extend"] = "lsl"
    return LdSt(**kw)


def decode_ldst(insn: int, *, dczva_size: int = 64) -> Optional[LdSt]:
    """Decode a data-accessing A64 instruction, or None if `insn` is not one.

    `dczva_size` is the DC ZVA block size in bytes (4 << DCZID_EL0.BS)."""
    insn &= 0xFFFFFFFF
    if _bits(insn, 31, 22) == 0b1101010100:  # system instructions: DC/IC/AT by VA
        return _maint(insn, dczva_size)
    if _bit(insn, 27) == 0 or _bit(insn, 25) == 1:
        return None  # not in the loads-and-stores encoding group (op1 = x1x0)
    top = _bits(insn, 29, 27)
    if top == 0b111:
        return _ldst_reg(insn)
    if top == 0b101:
        return _pair(insn)
    if top == 0b011:
        if _bits(insn, 25, 24) == 0b00:
            return _literal(insn)
        if _bit(insn, 26) == 0 and _bit(insn, 21) == 0 and _bits(insn, 11, 10) == 0:
            return _rcpc2(insn)
        return None  # FEAT_MOPS CPY*/SET* and unallocated
    if top == 0b001:
        if _bits(insn, 29, 24) == 0b001000:
            return _exclusive(insn)
        if _bits(insn, 29, 25) == 0b00110 and _bit(insn, 26) == 1:
            return _simd_struct(insn)
        return None
    return None


# --------------------------------------------------------------------------------------
# Data abort ISS (EC 0x24 / 0x25)
# --------------------------------------------------------------------------------------
def _is_permission_fault(fsc: int) -> bool:
    return (fsc & 0x3C) == FSC_PERMISSION


def data_abort_iss(ld: Optional[LdSt], *, fsc: int, ea: bool = False,
                   s1ptw: bool = False, cm: bool = False, with_syndrome: bool,
                   fnv: bool = False, read_would_fault: Optional[bool] = None) -> int:
    """ISS for a data abort.

    ISS[24] ISV, [23:22] SAS, [21] SSE, [20:16] SRT, [15] SF, [14] AR, [13] VNCR (0),
    [10] FnV, [9] EA, [8] CM, [7] S1PTW, [6] WnR, [5:0] DFSC.

    with_syndrome: the caller asserts this is a stage 2 abort reported to EL2 (the only
    case in which the Arm ARM sets ISV for these instructions).  ISV is 1 only if also
    `ld.isv_ok` and not `s1ptw`.  `ld` may be None (unknown instruction): then ISV=0,
    WnR=0.  `cm` is ORed with `ld.cm`.  See the module docstring for the WnR rules for
    atomics (`read_would_fault`), S1PTW and cache maintenance.
    """
    if not 0 <= fsc <= ISS_FSC_MASK:
        raise ValueError(f"DFSC out of range: {fsc:#x}")
    cm = bool(cm or (ld is not None and ld.cm))
    if ld is None:
        wnr = False
    elif cm:
        wnr = True
    elif ld.rmw:
        if read_would_fault is None:
            read_would_fault = not _is_permission_fault(fsc)
        wnr = not read_would_fault
    else:
        wnr = ld.write
    iss = fsc
    if wnr:
        iss |= ISS_WNR
    if s1ptw:
        iss |= ISS_S1PTW
    if cm:
        iss |= ISS_CM
    if ea:
        iss |= ISS_EA
    if fnv:
        iss |= ISS_FNV
    if with_syndrome and ld is not None and ld.isv_ok and not s1ptw:
        iss |= ISS_ISV | (ld.sas << ISS_SAS_SHIFT) | (ld.rt << ISS_SRT_SHIFT)
        if ld.sign_extend:
            iss |= ISS_SSE
        if ld.sf:
            iss |= ISS_SF
        if ld.acqrel:
            iss |= ISS_AR
    return iss


# --------------------------------------------------------------------------------------
# System instruction names (TLBI / AT / DC / IC), keyed by (op1, CRn, CRm, op2)
# --------------------------------------------------------------------------------------
def _build_sys_names() -> dict[tuple[int, int, int, int], str]:
    t: dict[tuple[int, int, int, int], str] = {}
    # IC
    t[(0, 7, 1, 0)] = "IC IALLUIS"
    t[(0, 7, 5, 0)] = "IC IALLU"
    t[(3, 7, 5, 1)] = "IC IVAU"
    # DC
    for (op1, crm, op2), n in {
        (0, 6, 1): "IVAC", (0, 6, 2): "ISW", (0, 6, 3): "IGVAC", (0, 6, 4): "IGSW",
        (0, 6, 5): "IGDVAC", (0, 6, 6): "IGDSW",
        (0, 10, 2): "CSW", (0, 10, 4): "CGSW", (0, 10, 6): "CGDSW",
        (0, 14, 2): "CISW", (0, 14, 4): "CIGSW", (0, 14, 6): "CIGDSW",
        (3, 4, 1): "ZVA", (3, 4, 3): "GVA", (3, 4, 4): "GZVA",
        (3, 10, 1): "CVAC", (3, 10, 3): "CGVAC", (3, 10, 5): "CGDVAC",
        (3, 11, 1): "CVAU",
        (3, 12, 1): "CVAP", (3, 12, 3): "CGVAP", (3, 12, 5): "CGDVAP",
        (3, 13, 1): "CVADP", (3, 13, 3): "CGVADP", (3, 13, 5): "CGDVADP",
        (3, 14, 1): "CIVAC", (3, 14, 3): "CIGVAC", (3, 14, 5): "CIGDVAC",
    }.items():
        t[(op1, 7, crm, op2)] = "DC " + n
    # AT
    for (op1, crm, op2), n in {
        (0, 8, 0): "S1E1R", (0, 8, 1): "S1E1W", (0, 8, 2): "S1E0R", (0, 8, 3): "S1E0W",
        (0, 9, 0): "S1E1RP", (0, 9, 1): "S1E1WP", (0, 9, 2): "S1E1A",
        (4, 8, 0): "S1E2R", (4, 8, 1): "S1E2W", (4, 8, 4): "S12E1R", (4, 8, 5): "S12E1W",
        (4, 8, 6): "S12E0R", (4, 8, 7): "S12E0W", (4, 9, 2): "S1E2A",
        (6, 8, 0): "S1E3R", (6, 8, 1): "S1E3W", (6, 9, 2): "S1E3A",
    }.items():
        t[(op1, 7, crm, op2)] = "AT " + n
    # TLBI (CRn=8; FEAT_XS nXS variants at CRn=9 for op1 != 0 or CRm != 1... see below)
    el1_ops = {0: "VMALLE1", 1: "VAE1", 2: "ASIDE1", 3: "VAAE1", 5: "VALE1", 7: "VAALE1"}
    el1_range = {1: "RVAE1", 3: "RVAAE1", 5: "RVALE1", 7: "RVAALE1"}
    tlbi: dict[tuple[int, int, int], str] = {}
    for op2, n in el1_ops.items():
        tlbi[(0, 1, op2)] = n + "OS"
        tlbi[(0, 3, op2)] = n + "IS"
        tlbi[(0, 7, op2)] = n
    for op2, n in el1_range.items():
        tlbi[(0, 2, op2)] = n + "IS"
        tlbi[(0, 5, op2)] = n + "OS"
        tlbi[(0, 6, op2)] = n
    el2_ops = {0: "ALLE2", 1: "VAE2", 4: "ALLE1", 5: "VALE2", 6: "VMALLS12E1"}
    for op2, n in el2_ops.items():
        tlbi[(4, 1, op2)] = n + "OS"
        tlbi[(4, 3, op2)] = n + "IS"
        tlbi[(4, 7, op2)] = n
    for op2, n in {1: "RVAE2", 5: "RVALE2"}.items():
        tlbi[(4, 2, op2)] = n + "IS"
        tlbi[(4, 5, op2)] = n + "OS"
        tlbi[(4, 6, op2)] = n
    tlbi.update({
        (4, 0, 1): "IPAS2E1IS", (4, 0, 2): "RIPAS2E1IS",
        (4, 0, 5): "IPAS2LE1IS", (4, 0, 6): "RIPAS2LE1IS",
        (4, 4, 0): "IPAS2E1OS", (4, 4, 1): "IPAS2E1", (4, 4, 2): "RIPAS2E1",
        (4, 4, 3): "RIPAS2E1OS", (4, 4, 4): "IPAS2LE1OS", (4, 4, 5): "IPAS2LE1",
        (4, 4, 6): "RIPAS2LE1", (4, 4, 7): "RIPAS2LE1OS",
    })
    for op2, n in {0: "ALLE3", 1: "VAE3", 5: "VALE3"}.items():
        tlbi[(6, 1, op2)] = n + "OS"
        tlbi[(6, 3, op2)] = n + "IS"
        tlbi[(6, 7, op2)] = n
    for op2, n in {1: "RVAE3", 5: "RVALE3"}.items():
        tlbi[(6, 2, op2)] = n + "IS"
        tlbi[(6, 5, op2)] = n + "OS"
        tlbi[(6, 6, op2)] = n
    for (op1, crm, op2), n in tlbi.items():
        t[(op1, 8, crm, op2)] = "TLBI " + n
        t[(op1, 9, crm, op2)] = "TLBI " + n + "NXS"  # FEAT_XS
    return t


SYS_NAMES: dict[tuple[int, int, int, int], str] = _build_sys_names()
SYS_BY_NAME: dict[str, tuple[int, int, int, int]] = {v: k for k, v in SYS_NAMES.items()}

# DC/IC/AT operations that take a VA in Xt and can therefore take a data abort.
_SYS_VA_OPS = frozenset(
    k for k, v in SYS_NAMES.items()
    if v.startswith("AT ") or v == "IC IVAU"
    or (v.startswith("DC ") and not v.endswith("SW"))
)
_ZVA_OPS = frozenset(SYS_BY_NAME[n] for n in ("DC ZVA", "DC GVA", "DC GZVA"))


def sys_name(op1: int, crn: int, crm: int, op2: int) -> Optional[str]:
    """'TLBI VMALLE1IS', 'AT S1E1R', 'DC CIVAC', 'IC IVAU', ... or None."""
    return SYS_NAMES.get((op1, crn, crm, op2))


def _maint(insn: int, dczva_size: int) -> Optional[LdSt]:
    if _bit(insn, 21) or _bits(insn, 20, 19) != 1:
        return None  # not SYS
    key = (_bits(insn, 18, 16), _bits(insn, 15, 12), _bits(insn, 11, 8), _bits(insn, 7, 5))
    if key not in _SYS_VA_OPS:
        return None
    rt = _bits(insn, 4, 0)
    name = SYS_NAMES[key]
    if key in _ZVA_OPS:
        size = 16 if name == "DC GVA" else dczva_size
        return LdSt(name=name, size=size, read=False, write=True, rt=rt, sf=True,
                    align_down=True)
    return LdSt(name=name, size=1, read=False, write=True, rt=rt, sf=True, cm=True)


# --------------------------------------------------------------------------------------
# Classification of instructions the host must recognise on UNDEF/SVC/HVC/SMC
# --------------------------------------------------------------------------------------
PSTATE_FIELDS: dict[tuple[int, int], str] = {
    (0, 3): "UAO", (0, 4): "PAN", (0, 5): "SPSel", (3, 1): "SSBS", (3, 2): "DIT",
    (3, 3): "SVCR", (3, 4): "TCO", (3, 6): "DAIFSet", (3, 7): "DAIFClr",
}


@dataclass(frozen=True)
class Insn:
    """A classified instruction.  Fields not meaningful for `kind` are None.

    kind: svc hvc smc brk hlt udf eret eretaa eretab wfi wfe wfit wfet mrs msr msr_imm
          sys sysl fp other
    imm16: svc/hvc/smc/brk/hlt/udf immediate
    op0..op2, rt: system-instruction fields (msr_imm: op1, crm, op2; rt=None)
    name: TLBI/AT/DC/IC name for sys, PSTATE field name for msr_imm
    read: True for MRS/SYSL (ESR direction bit)
    sve: for kind "fp", the instruction is SVE/SME (EC 0x19 when ZEN traps)
    """

    kind: str
    insn: int
    imm16: Optional[int] = None
    op0: Optional[int] = None
    op1: Optional[int] = None
    crn: Optional[int] = None
    crm: Optional[int] = None
    op2: Optional[int] = None
    rt: Optional[int] = None
    name: Optional[str] = None
    read: bool = False
    sve: bool = False

    @property
    def imm(self) -> Optional[int]:
        """Alias of imm16 (neve/core/machine.py uses `k.imm`)."""
        return self.imm16

    def sysreg_iss(self) -> int:
        """EC 0x18 ISS for mrs/msr/sys/sysl."""
        if self.kind not in ("mrs", "msr", "sys", "sysl"):
            raise ValueError(f"no EC 0x18 ISS for {self.kind}")
        return sysreg_iss(self.op0, self.op1, self.crn, self.crm, self.op2, self.rt,
                          self.read)


def _is_fp(insn: int) -> tuple[bool, bool]:
    """(is SIMD&FP/SVE/SME, is SVE/SME) by the A64 top-level encoding."""
    op1 = _bits(insn, 28, 25)
    if op1 == 0b0010:
        return True, True  # SVE
    if op1 == 0b0000 and _bit(insn, 31):
        return True, True  # SME
    if op1 & 0b0111 == 0b0111:
        return True, False  # Data processing -- scalar FP and Advanced SIMD
    if op1 & 0b0101 == 0b0100 and _bit(insn, 26):
        # Loads and stores with V=1, except FEAT_MOPS SET* (op0=xx01, bits 25:24=01)
        if _bits(insn, 29, 27) == 0b011 and _bit(insn, 24) == 1:
            return False, False
        return True, False
    return False, False


def classify(insn: int) -> Insn:
    insn &= 0xFFFFFFFF
    # Exception generation: 11010100 opc:3 imm16 op2:3 LL:2
    if _bits(insn, 31, 24) == 0b11010100 and _bits(insn, 4, 2) == 0:
        opc = _bits(insn, 23, 21)
        ll = _bits(insn, 1, 0)
        imm16 = _bits(insn, 20, 5)
        kind = {(0, 1): "svc", (0, 2): "hvc", (0, 3): "smc", (1, 0): "brk",
                (2, 0): "hlt"}.get((opc, ll))
        if kind:
            return Insn(kind, insn, imm16=imm16)
        return Insn("other", insn)
    if insn & 0xFFFF0000 == 0:
        return Insn("udf", insn, imm16=insn & 0xFFFF)
    if insn == 0xD69F03E0:
        return Insn("eret", insn)
    if insn == 0xD69F0BFF:
        return Insn("eretaa", insn)
    if insn == 0xD69F0FFF:
        return Insn("eretab", insn)
    if _bits(insn, 31, 22) == 0b1101010100:
        read = bool(_bit(insn, 21))
        op0 = _bits(insn, 20, 19)
        op1 = _bits(insn, 18, 16)
        crn = _bits(insn, 15, 12)
        crm = _bits(insn, 11, 8)
        op2 = _bits(insn, 7, 5)
        rt = _bits(insn, 4, 0)
        if op0 >= 2:
            return Insn("mrs" if read else "msr", insn, op0=op0, op1=op1, crn=crn,
                        crm=crm, op2=op2, rt=rt, read=read)
        if op0 == 1:
            return Insn("sysl" if read else "sys", insn, op0=1, op1=op1, crn=crn,
                        crm=crm, op2=op2, rt=rt, read=read,
                        name=sys_name(op1, crn, crm, op2))
        if not read:
            if crn == 0b0100 and rt == 31:
                return Insn("msr_imm", insn, op0=0, op1=op1, crn=crn, crm=crm, op2=op2,
                            name=PSTATE_FIELDS.get((op1, op2)))
            if crn == 0b0010 and op1 == 3 and crm == 0 and rt == 31:
                if op2 == 2:
                    return Insn("wfe", insn)
                if op2 == 3:
                    return Insn("wfi", insn)
            if crn == 0b0001 and op1 == 3 and crm == 0 and op2 in (0, 1):
                return Insn("wfet" if op2 == 0 else "wfit", insn, rt=rt)
        return Insn("other", insn)
    fp, sve = _is_fp(insn)
    if fp:
        return Insn("fp", insn, sve=sve)
    return Insn("other", insn)


# --------------------------------------------------------------------------------------
# Other ISS encodings
# --------------------------------------------------------------------------------------
def sysreg_iss(op0: int, op1: int, crn: int, crm: int, op2: int, rt: int,
               read: bool) -> int:
    """EC 0x18 ISS: Op0[21:20] Op2[19:17] Op1[16:14] CRn[13:10] Rt[9:5] CRm[4:1]
    Direction[0] (1 = read: MRS / SYSL)."""
    return ((op0 & 3) << 20 | (op2 & 7) << 17 | (op1 & 7) << 14 | (crn & 15) << 10
            | (rt & 31) << 5 | (crm & 15) << 1 | (1 if read else 0))


def sysreg_word(op0: int, op1: int, crn: int, crm: int, op2: int, rt: int, read: bool) -> int:
    """The instruction word of MRS (read) / MSR (register) Xt, or SYS/SYSL for op0 = 1."""
    return (0xD5000000 | (1 << 21 if read else 0) | (op0 & 3) << 19 | (op1 & 7) << 16 | (crn & 15) << 12
            | (crm & 15) << 8 | (op2 & 7) << 5 | (rt & 31))


def sys_iss(op1: int, crn: int, crm: int, op2: int, rt: int, read: bool = False) -> int:
    """EC 0x18 ISS for SYS (read=False) / SYSL (read=True): op0 = 0b01."""
    return sysreg_iss(1, op1, crn, crm, op2, rt, read)


def imm16_iss(imm16: int) -> int:
    """ISS for SVC/HVC/SMC (EC 0x15/0x16/0x17) and BRK (EC 0x3C): imm16 in [15:0]."""
    return imm16 & 0xFFFF


def eret_iss(kind: str) -> int:
    """EC 0x1A ISS: ERET[1] (1 = ERETAA/ERETAB), ERETA[0] (1 = B key)."""
    return {"eret": 0b00, "eretaa": 0b10, "eretab": 0b11}[kind]


WFX_TI = {"wfi": 0b00, "wfe": 0b01, "wfit": 0b10, "wfet": 0b11}


def wfx_iss(kind: str, rt: Optional[int] = None) -> int:
    """EC 0x01 ISS from AArch64: CV[24]=1, COND[23:20]=0b1110 (the Arm ARM: for
    exceptions taken from AArch64 state CV is 1 and COND is 0b1110; QEMU's
    syn_wfx(1, 0xe, ti, false) agrees), TI[1:0] (WFI 00, WFE 01, WFIT 10, WFET 11),
    and for WFIT/WFET RV[2]=1 with RN[9:5] = the timeout register."""
    iss = 1 << 24 | 0xE << 20 | WFX_TI[kind]
    if kind in ("wfit", "wfet"):
        iss |= 1 << 2 | ((rt or 0) & 31) << 5
    return iss


def fp_iss() -> int:
    """EC 0x07 ISS for an AArch64 SIMD&FP access trap: CV=1, COND=0b1110 (as QEMU's
    syn_fp_access_trap(1, 0xe, false, 0)); EC 0x19 (SVE) ISS is 0."""
    return 1 << 24 | 0xE << 20


# --------------------------------------------------------------------------------------
# Disassembly
# --------------------------------------------------------------------------------------
try:  # pragma: no cover - depends on the environment
    import capstone as _capstone

    _CS = _capstone.Cs(getattr(_capstone, "CS_ARCH_ARM64", None)
                       or getattr(_capstone, "CS_ARCH_AARCH64"), _capstone.CS_MODE_ARM)
except Exception:  # pragma: no cover
    _CS = None


def disasm(insn: int, pc: int = 0) -> str:
    """'mnemonic op_str' via capstone, or '.inst 0x........' if it cannot decode."""
    insn &= 0xFFFFFFFF
    if _CS is not None:
        for i in _CS.disasm(insn.to_bytes(4, "little"), pc & MASK64, 1):
            return f"{i.mnemonic} {i.op_str}".strip()
    return f".inst 0x{insn:08x}"
