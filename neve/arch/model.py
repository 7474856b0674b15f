"""The CPU the guest sees: QEMU 10's `cortex-a72` on the `virt` board.

Unicorn executes an older QEMU's Cortex-A72 (ARMv8.0, no VHE, no FEAT_NV/NV2) with
a GICv3 CPU interface of 5 priority bits and 4 list registers (neve/gic/).
What that Unicorn model does differently from QEMU 10's is set right here, measured
by reading and writing each register on QEMU 10 (`-cpu cortex-a72`, at EL1 and at
EL2) against neve; `neve fuzz` compares the two on random kernels.

* `implemented(row)`: does this CPU have the register?  Rows of the table that need a
  feature it lacks (VHE: TTBR1_EL2, CONTEXTIDR_EL2, the EL2 virtual timer; FEAT_NV2:
  VNCR_EL2) or a list register / active-priority register beyond the GIC's are
  UNDEFINED, as on QEMU.
* `id_value(name, ...)`: ID register values where QEMU 10 reports something else than
  Unicorn: ID_AA64PFR0_EL1 as the board has it (no EL3, EL2 only when the image
  starts at EL2, GIC system registers present), CCSIDR_EL1 of the L1 data cache.
* The PMU is neve's (neve/devices/pmu.py): QEMU's A72 has 6 event counters.
* `OWNED`: registers neve keeps itself because Unicorn lacks them or gets them wrong
  (reset value, writable bits): MDCCSR_EL0, OSDLR_EL1, and the Cortex-A72's
  IMPLEMENTATION DEFINED registers (L2CTLR_EL1, CPUECTLR_EL1, CBAR_EL1...).
The writable bits of every register are the table's `wmask` (neve/arch/sysregs.py).
"""
from __future__ import annotations

import re

from neve.gic.regs import NUM_LRS, PREBITS, PRIBITS
from neve.arch.sysregs import REGISTERS

NAME = "cortex-a72"
FEATURES: frozenset[str] = frozenset()     # ARMv8.0: no "vhe", no "nv2"
PMU_COUNTERS = 6                           # event counters (QEMU 10's cortex-a72: PMCR_EL0.N = 6)
PA_BITS = 44                               # ID_AA64MMFR0_EL1.PARange = 0b0100

# Active-priority registers per group: 2^(bits - 5) of them (GICv3 spec).
NUM_ICH_APRS = 1 << (PREBITS - 5)
NUM_ICC_APRS = 1 << (PRIBITS - 5)

_LR = re.compile(r"ICH_LR(\d+)_EL2$")
_ICH_APR = re.compile(r"ICH_AP[01]R(\d)_EL2$")
_ICC_APR = re.compile(r"ICC_AP[01]R(\d)_EL1$")
_PMEV = re.compile(r"PMEV(?:CNTR|TYPER)(\d+)_EL0$")

# ID_AA64PFR0_EL1 on QEMU's virt with cortex-a72: EL0/EL1 AArch64+AArch32 (0x22),
# EL2 AArch64+AArch32 only with virtualization=on (0x200), no EL3, GIC = 1.
PFR0_BASE = 0x0100_0022
PFR0_EL2 = 0x200
CCSIDR_L1D = 0x700F_E01A        # 32 KiB, 4 ways, 64-byte lines (QEMU 10)
DCZID = 0x4                     # DC ZVA zeroes 64 bytes
DCZID_DZP = 1 << 4
HCR_TDZ = 1 << 28

# name -> (reset value, writable bits)
OWNED: dict[str, tuple[int, int]] = {
    "MDCCSR_EL0": (0, 0),           # debug communications channel: idle
    "OSDLR_EL1": (0, 1),            # OS double lock: DLK only
    # The Cortex-A72's IMPLEMENTATION DEFINED registers (the table's "impdef" group).
    **{r.name: (r.reset, r.wmask) for r in REGISTERS if r.group == "impdef"},
}


_implemented: dict[str, bool] = {}


def implemented(row) -> bool:
    """Does this CPU have the register of this table row?  (Cached: it is asked on
    every trapped access.)"""
    v = _implemented.get(row.name)
    if v is None:
        v = _implemented[row.name] = _has(row)
    return v


def _has(row) -> bool:
    if row.feature is not None and row.feature not in FEATURES:
        return False
    for pat, n in ((_LR, NUM_LRS), (_ICH_APR, NUM_ICH_APRS), (_ICC_APR, NUM_ICC_APRS), (_PMEV, PMU_COUNTERS)):
        m = pat.match(row.name)
        if m:
            return int(m.group(1)) < n
    return True


ID_VALUES = frozenset({"ID_AA64PFR0_EL1", "CCSIDR_EL1", "DCZID_EL0"})     # the names id_value answers


def id_value(name: str, el2: bool, csselr: int, hcr: int = 0) -> int | None:
    """The value this CPU reads for an ID register, where it is not Unicorn's.  `hcr`
    is the HCR_EL2 in force for the code reading it (its guest hypervisor's)."""
    if name == "ID_AA64PFR0_EL1":
        return PFR0_BASE | (PFR0_EL2 if el2 else 0)
    if name == "CCSIDR_EL1" and csselr == 0:
        return CCSIDR_L1D
    if name == "DCZID_EL0" and hcr & HCR_TDZ:
        return DCZID | DCZID_DZP                # DC ZVA prohibited at EL1/EL0
    return None
