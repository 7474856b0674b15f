"""PSCI 1.1 as L0 (the firmware) answers it, as QEMU's `virt` does.

The function ID is all of x0 (QEMU compares the whole register).  Answered:
VERSION (1.1), MIGRATE_INFO_TYPE (2: no Trusted OS to migrate), AFFINITY_INFO
(ON or OFF for a CPU's affinity at level 0, 0 above level 0, INVALID_PARAMETERS for
an affinity no CPU has), CPU_ON (SUCCESS for a CPU that is off, ALREADY_ON for one
that is on, INVALID_PARAMETERS for an affinity no CPU has), CPU_SUSPEND (a WFI;
INVALID_PARAMETERS when a power level is asked for), CPU_OFF (the caller stops; with
the last CPU off nothing can run), SYSTEM_OFF, SYSTEM_RESET, and FEATURES for each of
them; every other function returns NOT_SUPPORTED.  The PSCI 0.1 function IDs
QEMU also answers are included.
"""
from __future__ import annotations

PSCI_VERSION = 0x8400_0000
PSCI_CPU_SUSPEND = 0x8400_0001
PSCI_CPU_SUSPEND64 = 0xC400_0001
PSCI_CPU_OFF = 0x8400_0002
PSCI_CPU_ON = 0x8400_0003
PSCI_CPU_ON64 = 0xC400_0003
PSCI_AFFINITY_INFO = 0x8400_0004
PSCI_AFFINITY_INFO64 = 0xC400_0004
PSCI_MIGRATE = 0x8400_0005
PSCI_MIGRATE64 = 0xC400_0005
PSCI_MIGRATE_INFO_TYPE = 0x8400_0006
PSCI_SYSTEM_OFF = 0x8400_0008
PSCI_SYSTEM_RESET = 0x8400_0009
PSCI_FEATURES = 0x8400_000A
# PSCI 0.1 (pre-standard) function IDs, as QEMU and KVM still accept them.
PSCI_0_1_CPU_SUSPEND = 0x95C1_BA5E
PSCI_0_1_CPU_OFF = 0x95C1_BA5F
PSCI_0_1_CPU_ON = 0x95C1_BA60
PSCI_0_1_MIGRATE = 0x95C1_BA61

VERSION_1_1 = 0x0001_0001
SUCCESS = 0
NOT_SUPPORTED = -1
INVALID_PARAMETERS = -2
ALREADY_ON = -4
AFFINITY_OFF = 1
MIGRATION_NOT_REQUIRED = 2
AFFINITY_ON = 0
# The MPIDR_EL1 fields that name a CPU (Aff3, Aff2, Aff1, Aff0): what CPU_ON and
# AFFINITY_INFO compare their target with.
MPIDR_AFFINITY = 0xFF_00FF_FFFF

NAMES = {PSCI_VERSION: "PSCI_VERSION", PSCI_SYSTEM_OFF: "PSCI_SYSTEM_OFF",
         PSCI_SYSTEM_RESET: "PSCI_SYSTEM_RESET", PSCI_FEATURES: "PSCI_FEATURES",
         PSCI_CPU_ON: "PSCI_CPU_ON", PSCI_CPU_ON64: "PSCI_CPU_ON", PSCI_CPU_OFF: "PSCI_CPU_OFF",
         PSCI_CPU_SUSPEND: "PSCI_CPU_SUSPEND", PSCI_CPU_SUSPEND64: "PSCI_CPU_SUSPEND",
         PSCI_AFFINITY_INFO: "PSCI_AFFINITY_INFO", PSCI_AFFINITY_INFO64: "PSCI_AFFINITY_INFO",
         PSCI_MIGRATE_INFO_TYPE: "PSCI_MIGRATE_INFO_TYPE"}

SUPPORTED = frozenset((PSCI_VERSION, PSCI_MIGRATE_INFO_TYPE, PSCI_AFFINITY_INFO, PSCI_AFFINITY_INFO64,
                       PSCI_SYSTEM_RESET, PSCI_SYSTEM_OFF, PSCI_CPU_ON, PSCI_CPU_ON64, PSCI_CPU_OFF,
                       PSCI_CPU_SUSPEND, PSCI_CPU_SUSPEND64, PSCI_FEATURES,
                       PSCI_0_1_CPU_ON, PSCI_0_1_CPU_OFF, PSCI_0_1_CPU_SUSPEND))


def call(x: list[int], mpidr: int, power: dict[int, str] | None = None) -> tuple[int | None, str | None]:
    """x = [x0, x1, x2, x3] of the caller; mpidr = the calling CPU's affinity; power =
    every CPU's affinity -> "on" or "off" (default: the caller alone, on).
    Returns (the x0 result or None, an action or None).  Actions: "system-off",
    "system-reset", "cpu-off" (the CPU stops), "suspend" (x0 = 0, then a WFI),
    "cpu-on" (x0 = SUCCESS; the CPU of affinity x1 starts at x2 with x0 = x3)."""
    fid, a1, a2 = x[0], x[1], x[2]
    if power is None:
        power = {mpidr: "on"}
    if fid == PSCI_VERSION:
        return VERSION_1_1, None
    if fid == PSCI_MIGRATE_INFO_TYPE:
        return MIGRATION_NOT_REQUIRED, None
    if fid in (PSCI_AFFINITY_INFO, PSCI_AFFINITY_INFO64):
        if a2 != 0:
            return 0, None              # everything above affinity level 0 is on
        state = power.get(a1)
        if state is None:
            return INVALID_PARAMETERS, None
        return (AFFINITY_ON if state == "on" else AFFINITY_OFF), None
    if fid == PSCI_SYSTEM_OFF:
        return None, "system-off"
    if fid == PSCI_SYSTEM_RESET:
        return None, "system-reset"
    if fid in (PSCI_CPU_ON, PSCI_CPU_ON64, PSCI_0_1_CPU_ON):
        state = power.get(a1)
        if state is None:
            return INVALID_PARAMETERS, None
        return (ALREADY_ON, None) if state == "on" else (SUCCESS, "cpu-on")
    if fid in (PSCI_CPU_OFF, PSCI_0_1_CPU_OFF):
        return None, "cpu-off"
    if fid in (PSCI_CPU_SUSPEND, PSCI_CPU_SUSPEND64, PSCI_0_1_CPU_SUSPEND):
        if a1 & 0xFFFE_0000:
            return INVALID_PARAMETERS, None
        return SUCCESS, "suspend"
    if fid == PSCI_FEATURES:
        return (SUCCESS if a1 in SUPPORTED else NOT_SUPPORTED), None
    return NOT_SUPPORTED, None
