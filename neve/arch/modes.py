"""The four ways neve runs the first image, and what an access from virtual EL2 does.

`Mode` values are the strings the CLI, the stats JSON and the policy files use.  How a
nested mode treats a register is data: the controls L0 programs while vEL2 runs
(`neve.arch.sysregs.L0_CONTROLS`) and the table column that classifies the register in
that mode (`sysregs.MODE_COLUMN`); see `sysregs.vel2_access`.
"""
from __future__ import annotations

from enum import Enum


class Mode(str, Enum):
    VM = "vm"          # the image is a kernel at EL1, L0 is its hypervisor
    V83 = "v8.3"       # ARMv8.3 FEAT_NV: trap and emulate
    NEVE = "neve"      # the NEVE paper: VM registers logged to a page, hyp controls redirected
    NV2 = "nv2"        # ARMv8.4 FEAT_NV2: the VNCR page, ELR/SPSR/ESR/FAR_EL2 redirected

    def __str__(self) -> str:
        return self.value


MODES: tuple[str, ...] = tuple(m.value for m in Mode)
# The modes where the first image is a guest hypervisor entered at virtual EL2.
NESTED_MODES: tuple[str, ...] = (Mode.V83.value, Mode.NEVE.value, Mode.NV2.value)


class Access(str, Enum):
    """What an MRS/MSR made at virtual EL2 does."""
    NATIVE = "native"      # executes on the CPU, no trap
    TRAP = "trap"          # traps to L0, which emulates it
    MEM = "mem"            # a load/store of the VNCR/NEVE page
    REDIRECT = "redirect"  # executes as an access to the EL1 register the row names

    def __str__(self) -> str:
        return self.value
