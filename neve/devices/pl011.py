"""Arm PrimeCell UART (PL011), transmit side plus the registers drivers poll."""
from __future__ import annotations

from typing import Callable

from neve.devices import Device

# Flag register bits.
FR_RXFE = 1 << 4
FR_TXFF = 1 << 5
FR_TXFE = 1 << 7

INT_TX = 1 << 5
_WRITABLE = {0x24: 0xFFFF, 0x28: 0x3F}      # IBRD, FBRD

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

    # The registers are 32-bit and, as on QEMU, so is every access: a 64-bit access
    # is two of them, a narrower one reaches the register its address falls in.
    def read(self, off: int, size: int) -> int:
        if size == 8:
            return self._read32(off) | self._read32(off + 4) << 32
        return self._read32(off) & ((1 << (8 * size)) - 1)

    def write(self, off: int, size: int, value: int) -> None:
        if size == 8:
            self._write32(off, value & 0xFFFF_FFFF)
            self._write32(off + 4, value >> 32)
        else:
            self._write32(off, value & ((1 << (8 * size)) - 1))

    def _read32(self, off: int) -> int:
        reg = off & ~3
        if reg == 0x00:
            return 0          # no receive data
        if reg == 0x18:
            return FR_TXFE | FR_RXFE
        if reg == 0x3C:
            return self.ris
        if reg == 0x40:
            return self.ris & self.regs.get(0x38, 0)
        if reg in _ID:
            return _ID[reg]
        return self.regs.get(reg, 0)

    def _write32(self, off: int, value: int) -> None:
        reg = off & ~3
        if reg == 0x00:
            self.out(bytes((value & 0xFF,)))
            self.ris |= INT_TX                   # the byte left at once: TX interrupt raised
        elif reg == 0x44:
            self.ris &= ~value
        elif reg in self.regs:
            self.regs[reg] = value & _WRITABLE.get(reg, 0xFFFF_FFFF)

    def state(self) -> dict:
        return {"regs": dict(self.regs), "ris": self.ris}
