"""PSCI 1.1 as L0 (the firmware) answers it: VERSION, FEATURES, SYSTEM_OFF,
SYSTEM_RESET; every other function returns NOT_SUPPORTED."""
from __future__ import annotations

PSCI_VERSION = 0x8400_0000
PSCI_CPU_SUSPEND = 0xC400_0001
PSCI_CPU_OFF = 0x8400_0002
PSCI_CPU_ON = 0xC400_0003
PSCI_SYSTEM_OFF = 0x8400_0008
PSCI_SYSTEM_RESET = 0x8400_0009
PSCI_FEATURES = 0x8400_000A

VERSION_1_1 = 0x0001_0001
NOT_SUPPORTED = -1

NAMES = {PSCI_VERSION: "PSCI_VERSION", PSCI_SYSTEM_OFF: "PSCI_SYSTEM_OFF",
         PSCI_SYSTEM_RESET: "PSCI_SYSTEM_RESET", PSCI_FEATURES: "PSCI_FEATURES",
         PSCI_CPU_ON: "PSCI_CPU_ON", PSCI_CPU_OFF: "PSCI_CPU_OFF", PSCI_CPU_SUSPEND: "PSCI_CPU_SUSPEND"}

SUPPORTED = (PSCI_VERSION, PSCI_FEATURES, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET)


def call(fid: int, arg1: int) -> tuple[int | None, str | None]:
    """Returns (x0 result or None, shutdown reason or None)."""
    fid &= 0xFFFF_FFFF
    if fid == PSCI_VERSION:
        return VERSION_1_1, None
    if fid == PSCI_FEATURES:
        return (0 if (arg1 & 0xFFFF_FFFF) in SUPPORTED else NOT_SUPPORTED), None
    if fid == PSCI_SYSTEM_OFF:
        return None, "system-off"
    if fid == PSCI_SYSTEM_RESET:
        return None, "system-reset"
    return NOT_SUPPORTED, None
