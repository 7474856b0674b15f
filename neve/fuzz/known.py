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


def _nested_vm_stage1_off(case: Case) -> bool:
    """The nested VM runs with its stage 1 off under L1's stage 2 (HCR_EL2.VM)."""
    hcr = sctlr = 0
    for s in case.epilogue:
        m = re.match(r"msr (HCR_EL2|SCTLR_EL1), (0x[0-9a-f]+)", s.note)
        if m and m.group(1) == "HCR_EL2":
            hcr = int(m.group(2), 16)
        elif m:
            sctlr = int(m.group(2), 16)
    return bool(hcr & 1) and not sctlr & 1


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
    off, at an address not aligned to its size; QEMU: no alignment fault."""
    a, m = _exception(d.neve), _ACCESS.match(d.what)
    if a is None or m is None or d.slot[0] != "b" or a[1] & 0x3F != 0x21 or not _nested_vm_stage1_off(case):
        return False
    b = _exception(d.qemu)
    if b is not None and b[1] & 0x3F == 0x21:
        return False
    return int(m.group(2), 16) % int(m.group(1)) != 0


def _tidcp_op0_2(d, case) -> bool:
    a, b = _exception(d.neve), _exception(d.qemu)
    return (bool(re.match(r"(mrs x0, |msr )S2_\d_C1[15]_", d.what)) and a is not None and b is not None
            and b[0] == "v" and b[1] >> 26 == 0x18 and a[1] >> 26 == 0)


def _unaligned_mmio_mmu_on(d, case) -> bool:
    m = _ACCESS.match(d.what)
    return (m is not None and m.group(3) in ("uart", "gicd", "gicr") and _value(d.neve) and _value(d.qemu)
            and int(m.group(2), 16) % int(m.group(1)) != 0)


def _unicorn_executes(d, case) -> bool:
    """A random word QEMU 10 UNDEFs at its slot, which Unicorn executed."""
    b = _exception(d.qemu)
    return (d.what.startswith("random word ") and b is not None and b[1] == 0x02000000
            and d.qemu.startswith(d.slot) and not d.neve.startswith(d.slot))


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
    Known("encodings Unicorn executes", "neve",
          "Unicorn's decoder (QEMU 5's) executes some words QEMU 10 treats as UNDEFINED, e.g. "
          "UMULH with Ra != 0b11111 (should-be-one bits: CONSTRAINED UNPREDICTABLE, either is "
          "allowed).", _unicorn_executes),
)


def explain(d, case: Case | None) -> str | None:
    """The name of the known class of divergence `d`, or None."""
    if case is None:
        return None
    for k in KNOWN:
        if k.match(d, case):
            return k.name
    return None
