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


class Registers32(Device):
    """A device of 32-bit registers (`_read32`/`_write32` at word offsets): a byte or
    halfword access reaches its part of the word, a 64-bit access two words."""

    def read(self, off: int, size: int) -> int:
        if size == 8:
            return self._read32(off) | self._read32(off + 4) << 32
        return (self._read32(off & ~3) >> 8 * (off & 3)) & ((1 << 8 * size) - 1)

    def write(self, off: int, size: int, value: int) -> None:
        if size == 8:
            self._write32(off, value & 0xFFFF_FFFF)
            self._write32(off + 4, value >> 32)
        else:
            self._write32(off & ~3, (value << 8 * (off & 3)) & 0xFFFF_FFFF)

    def _read32(self, off: int) -> int:
        raise NotImplementedError

    def _write32(self, off: int, value: int) -> None:
        raise NotImplementedError


def apb_clock_props(sw, phandles: dict, names: tuple[str, ...]) -> None:
    """A PrimeCell's clock properties as QEMU's virt writes them (clock-names, then
    clocks: one reference to the board's 24 MHz `apb-pclk` per name)."""
    sw.property("clock-names", b"".join(n.encode() + b"\0" for n in names))
    sw.property("clocks", b"".join(phandles["apb-pclk"].to_bytes(4, "big") for _ in names))


def cells(*v: int) -> bytes:
    """Big-endian 32-bit cells of a device-tree property."""
    return b"".join(x.to_bytes(4, "big") for x in v)


class DeviceClock:
    """The devices' own deadlines on the system counter (the RTC's alarm, the power
    button's press and release), as one clock of the machine's run loop
    (Machine.add_clock) and for WFI, which skips time to the next of them as to a
    timer's (neve/gic/delivery.py Interrupts.wfi).  A device takes part with
    `next_deadline() -> counter value | None` and `expire(now)`."""

    def __init__(self, counter, devices: list) -> None:
        self.counter = counter
        self.devices = devices

    def next_deadline(self) -> int | None:
        best = None
        for d in self.devices:
            t = d.next_deadline()
            if t is not None and (best is None or t < best):
                best = t
        return best

    def next_event(self, icount: int) -> int | None:
        t = self.next_deadline()
        return None if t is None else self.counter.to_icount(t)

    def tick(self, icount: int = 0) -> None:
        now = self.counter.now()
        for d in self.devices:
            t = d.next_deadline()
            if t is not None and t <= now:
                d.expire(now)
