"""Passive MMIO devices.  Each declares its registers as data and only answers
reads and writes; the machine maps it and counts every access as an MMIO trap."""
from __future__ import annotations


class Device:
    name = "device"
    base = 0
    size = 0x1000
    registers: dict[int, str] = {}
    wide = False        # has 64-bit registers: a 64-bit access reaches read/write whole

    def reg_name(self, off: int) -> str:
        return f"{self.name}.{self.registers.get(off, f'+{off:#x}')}"

    def read(self, off: int, size: int) -> int:
        raise NotImplementedError

    def write(self, off: int, size: int, value: int) -> None:
        raise NotImplementedError

    def state(self) -> dict:
        return {}
