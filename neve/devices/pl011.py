"""Arm PrimeCell UART (PL011), transmit side plus the registers drivers poll."""
from __future__ import annotations

from typing import Callable

from neve.devices import Device

# Flag register bits.
FR_RXFE = 1 << 4
FR_TXFF = 1 << 5
FR_TXFE = 1 << 7

_ID = {0xFE0: 0x11, 0xFE4: 0x10, 0xFE8: 0x14, 0xFEC: 0x00, 0xFF0: 0x0D, 0xFF4: 0xF0, 0xFF8: 0x05, 0xFFC: 0xB1}


class PL011(Device):
    name = "UART"
    registers = {0x00: "DR", 0x04: "RSR", 0x18: "FR", 0x20: "ILPR", 0x24: "IBRD", 0x28: "FBRD",
                 0x2C: "LCR_H", 0x30: "CR", 0x34: "IFLS", 0x38: "IMSC", 0x3C: "RIS", 0x40: "MIS",
                 0x44: "ICR", 0x48: "DMACR", **{o: "ID" for o in _ID}}

    def __init__(self, base: int, out: Callable[[bytes], None]) -> None:
        self.base = base
        self.out = out
        self.regs = {0x30: 0x300, 0x2C: 0, 0x24: 0, 0x28: 0, 0x38: 0, 0x34: 0x12, 0x20: 0, 0x48: 0}
        self.ris = 0

    def read(self, off: int, size: int) -> int:
        if off == 0x00:
            return 0          # no receive data
        if off == 0x18:
            return FR_TXFE | FR_RXFE
        if off == 0x3C:
            return self.ris
        if off == 0x40:
            return self.ris & self.regs.get(0x38, 0)
        if off in _ID:
            return _ID[off]
        return self.regs.get(off, 0)

    def write(self, off: int, size: int, value: int) -> None:
        if off == 0x00:
            self.out(bytes((value & 0xFF,)))
        elif off == 0x44:
            self.ris &= ~value
        elif off in self.regs:
            self.regs[off] = value

    def state(self) -> dict:
        return {"regs": dict(self.regs), "ris": self.ris}
