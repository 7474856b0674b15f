"""Divergences from QEMU that are understood: each class names who departs from the
Arm ARM (QEMU 10, or neve through Unicorn) and why, so a fuzz report separates
them from divergences nobody has explained yet.

A class matches a `Divergence` (neve/fuzz/run.py) by what its first diverging slot
does and by the two lines; `explain(div, case)` returns the class's name or None.
Every class is narrow on purpose: a divergence that merely looks alike (an aligned
access, a value read from RAM) stays unexplained.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from neve.core import align
from neve.arch import decode
from neve.fuzz.case import Case

_EXC = re.compile(r"^[ab][0-9a-f]{2}\+[0-9a-f]{2} ([12v]) ([0-9a-f]{8})(?: ([0-9a-f]{16}))?")
_ACCESS = re.compile(r"^(?:ld|st|simd)\S* size (\d+) at (0x[0-9a-f]+) \((\w+)\)")


def _exception(line: str) -> tuple[str, int, int | None] | None:
    """(how, ESR, FAR) of an exception line."""
    m = _EXC.match(line)
    if not m:
        return None
    return m.group(1), int(m.group(2), 16), int(m.group(3), 16) if m.group(3) else None


def _value(line: str) -> bool:
    return " = " in line


def _epilogue_value(case: Case, name: str) -> int:
    """The last value the epilogue (L1's set-up of its VM) writes to `name`, or 0."""
    v = 0
    for s in case.epilogue:
        m = re.match(rf"msr {name}, (0x[0-9a-f]+)", s.note)
        if m:
            v = int(m.group(1), 16)
    return v


def _nested_vm_stage1_off(case: Case) -> bool:
    """The nested VM runs with its stage 1 off under L1's stage 2 (HCR_EL2.VM)."""
    return bool(_epilogue_value(case, "HCR_EL2") & 1) and not _epilogue_value(case, "SCTLR_EL1") & 1


@dataclass(frozen=True)
class Known:
    name: str
    who: str                                  # who departs from the Arm ARM: "QEMU" or "neve"
    why: str
    match: Callable[..., bool]


def _icc_bpr(d, case) -> bool:
    return bool(re.match(r"msr ICC_BPR[01]_EL1, ", d.what)) and _value(d.neve) and _value(d.qemu)


def _daif_el0(d, case) -> bool:
    a, b = _exception(d.neve), _exception(d.qemu)
    return (d.what.startswith("msr daif") and a is not None and b is not None
            and a[1] >> 26 == b[1] >> 26 == 0x18 and a[1] != b[1])


def _device_alignment_under_stage2(d, case) -> bool:
    """neve: an alignment fault (DFSC 0x21) for an access by the nested VM, stage 1
    off, at an address not aligned to its size; QEMU: no alignment fault.  When L1's
    stage 2 leaves the UART unmapped, the VM's own handler cannot print that fault:
    neve's line is then the stage-2 abort of the handler's print ("! v", EC 0x24),
    where QEMU's is the stage-2 abort of the access itself."""
    a, b = _exception(d.neve), _exception(d.qemu)
    acc = _unaligned_access(d, a)
    if acc is None or d.slot[0] != "b" or not _nested_vm_stage1_off(case):
        return False
    va = acc
    if a is not None:
        return a[1] & 0x3F == 0x21 and not (b is not None and d.qemu.startswith(d.slot) and b[1] & 0x3F == 0x21)
    return (d.neve.startswith("! v 9") and int(d.neve.split()[2], 16) >> 26 == 0x24 and b is not None
            and b[0] == "v" and b[1] >> 26 == 0x24 and b[1] & 0x3C in (0x04, 0x08, 0x0C) and b[2] == va)


def _unaligned_access(d, a) -> int | None:
    """The VA of the slot's load/store if it is not aligned to what the access needs,
    else None: a generated access (its note), or a random word that decodes as one
    (the VA is the FAR of neve's line `a`)."""
    m = _ACCESS.match(d.what)
    if m is not None:
        va, need = int(m.group(2), 16), int(m.group(1))
    else:
        w = re.match(r"random word (0x[0-9a-f]+)", d.what)
        ld = decode.decode_ldst(int(w.group(1), 16)) if w else None
        if ld is None or a is None or a[2] is None:
            return None
        va, need = a[2], align.alignment(ld)
    return va if va % need else None


def _tidcp_op0_2(d, case) -> bool:
    a, b = _exception(d.neve), _exception(d.qemu)
    return (bool(re.match(r"(mrs x0, |msr )S2_\d_C1[15]_", d.what)) and a is not None and b is not None
            and b[0] == "v" and b[1] >> 26 == 0x18 and a[1] >> 26 == 0)


def _unaligned_mmio_mmu_on(d, case) -> bool:
    m = _ACCESS.match(d.what)
    return (m is not None and m.group(3) in ("uart", "gicd", "gicr") and _value(d.neve) and _value(d.qemu)
            and int(m.group(2), 16) % int(m.group(1)) != 0)


def _store_exclusive_sentinel(d, case) -> bool:
    """An alignment fault of a store-exclusive at address -1 (QEMU's "no monitor" value):
    neve reports a write (WnR = 1), QEMU a read."""
    a, b = _exception(d.neve), _exception(d.qemu)
    return (re.search(r"\(stl?x[rp]", d.what) is not None and a is not None and b is not None
            and a[1] & 0x3F == b[1] & 0x3F == 0x21 and a[1] & ~0x40 == b[1] and a[1] & 0x40
            and a[2] == b[2] == (1 << 64) - 1)


def _tpmcr(d, case) -> bool:
    """The nested VM's PMCR_EL0 access traps to L1 (MDCR_EL2.TPMCR) in neve, not in QEMU."""
    a, b = _exception(d.neve), _exception(d.qemu)
    return (bool(re.match(r"(msr |mrs x0, )PMCR_EL0\b", d.what)) and d.slot[0] == "b"
            and a is not None and a[0] == "v" and a[1] >> 26 == 0x18 and (b is None or b[0] != "v")
            and bool(_epilogue_value(case, "MDCR_EL2") & 1 << 5))


def _pmceid0(d, case) -> bool:
    """PMCEID0_EL0 reads neve's events (0x20701) where QEMU's (without -icount) are 0x20001."""
    return (bool(re.search(r"mrs x0, PMCEID0_EL0\b", d.what)) and d.neve.endswith("= 0000000000020701")
            and d.qemu.endswith("= 0000000000020001"))


def _wfi_virtual_interrupt_disabled(d, case) -> bool:
    """The nested VM's WFI traps in neve (EC 0x01) and completes on QEMU, while L1 has
    a virtual interrupt pending (HCR_EL2.VI/VF/VSE) whose routing bit (IMO/FMO/AMO)
    is clear."""
    a = _exception(d.neve)
    if d.what != "wfi" or d.slot[0] != "b" or a is None or a[1] >> 26 != 0x01 or d.qemu.startswith(d.slot):
        return False
    hcr = _epilogue_value(case, "HCR_EL2")
    return any(hcr & 1 << v and not hcr & 1 << route for v, route in ((7, 4), (6, 3), (8, 5)))


def _dtb_in_flash(d, case) -> bool:
    """A load whose address, in the 44 bits of the physical address space, falls in flash
    bank 0 reads zero in neve and something else on QEMU."""
    m = _ACCESS.match(d.what)
    if m is None or not (_value(d.neve) and _value(d.qemu)) or not m.group(1):
        return False
    if int(m.group(2), 16) & ((1 << 44) - 1) >= 0x0400_0000:
        return False
    return set(d.neve.split(" = ", 1)[1].strip()) == {"0"}


def _eret_aarch64_el0_under_aarch32_el1(d, case) -> bool:
    """L1 enters its VM at AArch64 EL0 with HCR_EL2.RW = 0 (EL1, hence EL0, AArch32): an
    illegal return in neve (EC 0x0E at vEL2), a return to AArch32 on QEMU."""
    a = _exception(d.neve)
    return (d.slot == "b00" and not _epilogue_value(case, "HCR_EL2") & 1 << 31 and case.l2_spsr & 0x1F == 0
            and a is not None and a[0] == "2" and a[1] == 0x3A00_0000 and d.qemu.startswith("! v a32 "))


def _should_be_one_clear(w: int) -> bool:
    """Does `w` clear a should-be-one field of its encoding (CONSTRAINED UNPREDICTABLE:
    UNDEFINED, or executed as if the field were ones)?  The load/store exclusive and
    LDAR/STLR group's Rs and Rt2 (where they name no register), SMULH/UMULH's Ra."""
    ones = 0
    if w & 0x3F00_0000 == 0x0800_0000:                  # size 001000 o2 L o1 Rs o0 Rt2 Rn Rt
        o2, load, o1 = w >> 23 & 1, w >> 22 & 1, w >> 21 & 1
        if o2 == 1 and o1 == 0:                         # LDAR/STLR, LDLAR/STLLR: Rs, Rt2
            ones = 0x1F << 16 | 0x1F << 10
        elif o2 == 0 and o1 == 0:                       # LDXR/STXR: Rt2; the loads' Rs too
            ones = 0x1F << 10 | (0x1F << 16 if load else 0)
        elif o2 == 0 and load:                          # LDXP: Rs
            ones = 0x1F << 16
    elif w & 0xFF60_0000 == 0x9B40_0000:                # SMULH/UMULH: Ra
        ones = 0x1F << 10
    return bool(ones) and w & ones != ones


def _unicorn_executes(d, case) -> bool:
    """A random word QEMU 10 UNDEFs at its slot, which Unicorn executed: it clears a
    should-be-one field."""
    b = _exception(d.qemu)
    m = re.match(r"random word (0x[0-9a-f]+)", d.what)
    if m is None or b is None or b[1] != 0x02000000 or not d.qemu.startswith(d.slot):
        return False
    a = _exception(d.neve)
    ran = not d.neve.startswith(d.slot) or (a is not None and a[1] != 0x02000000)
    return ran and _should_be_one_clear(int(m.group(1), 16))


KNOWN: tuple[Known, ...] = (
    Known("ICC_BPRn_EL1 minimum", "QEMU",
          "A write of a binary point below the minimum reads back as the minimum (GICv3: the "
          "BinaryPoint field, bits [2:0]); QEMU 10 compares the whole 64-bit value written, so a "
          "value with upper bits set is not clamped.", _icc_bpr),
    Known("MSR DAIFSet/DAIFClr at EL0", "QEMU",
          "Trapped to EL1 (SCTLR_EL1.UMA = 0), the ISS of EC 0x18 encodes Op1 = 3 and Op2 = 6/7; "
          "QEMU 10 swaps the two fields.", _daif_el0),
    Known("Device alignment under stage 2", "QEMU",
          "With its stage 1 off the nested VM's data accesses are Device-nGnRnE, so an unaligned "
          "one takes an alignment fault (Arm ARM); QEMU 10 checks this when no stage 2 applies, "
          "not under L1's stage 2, and goes on to the access or its stage-2 fault.",
          _device_alignment_under_stage2),
    Known("HCR_EL2.TIDCP and op0 = 2", "QEMU",
          "TIDCP traps the IMPLEMENTATION DEFINED encodings, op0 = 3 with CRn = 11 or 15; QEMU 10 "
          "also traps op0 = 2 (debug) encodings with those CRn, which are unallocated: UNDEFINED.",
          _tidcp_op0_2),
    Known("unaligned MMIO, MMU on", "neve",
          "An unaligned access to a device mapped as Device memory by an enabled stage 1 should "
          "take an alignment fault; neither neve (a documented limit: it checks Device alignment "
          "with the MMU off only) nor QEMU 10 takes it, and the bytes they return differ.",
          _unaligned_mmio_mmu_on),
    Known("store-exclusive at QEMU's monitor sentinel", "QEMU",
          "The Arm ARM checks a store-exclusive's alignment first, as a write "
          "(AArch64.ExclusiveMonitorsPass: WnR = 1). QEMU 10 checks it only when the address equals "
          "the monitor's recorded address, which is -1 while no monitor is held, and then does the "
          "pair as a load before the store, so the fault reports a read.", _store_exclusive_sentinel),
    Known("MDCR_EL2.TPMCR", "QEMU",
          "TPMCR traps EL1 and EL0 accesses to PMCR_EL0 to EL2; QEMU 10.0 does not implement the "
          "bit (it came in a later release), so the nested VM's access runs.", _tpmcr),
    Known("PMCEID0_EL0's events", "QEMU",
          "neve's PMU counts INST_RETIRED, EXC_TAKEN and EXC_RETURN besides SW_INCR and CPU_CYCLES "
          "(PMCEID0_EL0 = 0x20701); QEMU 10 without -icount implements SW_INCR and CPU_CYCLES only "
          "(0x20001).", _pmceid0),
    Known("WFI and a disabled virtual interrupt", "QEMU",
          "HCR_EL2.VI/VF/VSE have no effect while IMO/FMO/AMO is clear: no virtual interrupt is "
          "pending, so a WFI that L1 traps (TWI) traps.  QEMU 10 counts the VI/VF/VSE bit itself "
          "as work, and the WFI completes without trapping.", _wfi_virtual_interrupt_disabled),
    Known("QEMU's DTB in flash", "neve",
          "For an ELF -kernel, QEMU 10 writes its device tree blob at the start of flash bank 0 "
          "(a ROM image in the flash); neve's bank 0 is blank (zero) unless --bios or --pflash "
          "fill it, so a load there reads 0 in neve and the DTB's bytes on QEMU.", _dtb_in_flash),
    Known("ERET to AArch64 EL0 under an AArch32 EL1", "QEMU",
          "With HCR_EL2.RW = 0, EL1 and so EL0 use AArch32: a return to AArch64 EL0 is an illegal "
          "exception return (Arm ARM IllegalExceptionReturn).  QEMU 10 checks the register width "
          "for EL1 and EL2 only, and goes to EL0.", _eret_aarch64_el0_under_aarch32_el1),
    Known("encodings Unicorn executes", "neve",
          "Unicorn's decoder (QEMU 5's) executes words whose should-be-one fields are not all "
          "ones, which QEMU 10 treats as UNDEFINED: UMULH/SMULH with Ra != 0b11111, STLR/LDAR/"
          "LDXR with Rs or Rt2 != 0b11111 (CONSTRAINED UNPREDICTABLE: either is allowed).",
          _unicorn_executes),
)


def explain(d, case: Case | None) -> str | None:
    """The name of the known class of divergence `d`, or None."""
    if case is None:
        return None
    for k in KNOWN:
        if k.match(d, case):
            return k.name
    return None
