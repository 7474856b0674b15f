"""Arm PrimeCell real-time clock (PL031), as QEMU's model of it (hw/rtc/pl031.c).

Time is neve's: RTCDR counts whole seconds of *virtual* time, the system counter
(neve/devices/timer.py) divided by its frequency, from a fixed epoch (`--rtc-epoch`,
default 0 = 1970-01-01T00:00:00Z), so the same run reads the same dates.  As in QEMU:
RTCCR reads 1 (the clock is always enabled) and ignores writes; a load (RTCLR)
moves the count, RTCLR reads back the last value loaded; a match register (RTCMR)
write arms the alarm ``(RTCMR - RTCDR) mod 2^32`` whole seconds of virtual time
later (at once when equal), which sets RTCRIS; the interrupt line (SPI 2, level) is
RTCRIS & RTCIMSC; RTCICR clears RTCRIS.
"""
from __future__ import annotations

from neve.devices import Registers32, apb_clock_props, cells as _cells
from neve.devices.timer import CNTFRQ

_ID = {0xFE0: 0x31, 0xFE4: 0x10, 0xFE8: 0x14, 0xFEC: 0x00, 0xFF0: 0x0D, 0xFF4: 0xF0, 0xFF8: 0x05, 0xFFC: 0xB1}
M32 = 0xFFFF_FFFF


class PL031(Registers32):
    name = "PL031 RTC"
    registers = {0x00: "DR", 0x04: "MR", 0x08: "LR", 0x0C: "CR", 0x10: "IMSC", 0x14: "RIS", 0x18: "MIS",
                 0x1C: "ICR", **{o: "ID" for o in _ID}}

    def __init__(self, base: int, intid: int, counter, set_line, epoch: int = 0) -> None:
        self.base, self.intid = base, intid
        self.counter = counter          # neve/devices/timer.py Counter: now() in ticks of CNTFRQ
        self.set_line = set_line        # set_line(level): the GIC input
        self.tick_offset = epoch & M32
        self.mr = self.lr = self.im = self.ris = 0
        self.alarm: int | None = None   # the counter value at which RIS is set
        self.line = False

    @classmethod
    def create(cls, m, row):
        return cls(row.base, row.intid, m.counter, lambda lv: m.set_spi_line(row.intid, lv),
                   getattr(m, "rtc_epoch", 0))

    def count(self) -> int:
        return (self.tick_offset + self.counter.now() // CNTFRQ) & M32

    def _read32(self, off: int) -> int:
        if off == 0x00:
            return self.count()
        if off == 0x04:
            return self.mr
        if off == 0x08:
            return self.lr
        if off == 0x0C:
            return 1
        if off == 0x10:
            return self.im
        if off == 0x14:
            return self.ris
        if off == 0x18:
            return self.ris & self.im
        return _ID.get(off, 0)

    def _write32(self, off: int, value: int) -> None:
        if off == 0x08:
            self.lr = value
            self.tick_offset = (self.tick_offset + value - self.count()) & M32
            self._arm()
        elif off == 0x04:
            self.mr = value
            self._arm()
        elif off == 0x10:
            self.im = value & 1
            self._update()
        elif off == 0x1C:
            self.ris &= ~value & 1
            self._update()

    def _arm(self) -> None:
        ticks = (self.mr - self.count()) & M32
        if ticks == 0:
            self.alarm = None
            self.ris = 1
            self._update()
        else:
            self.alarm = self.counter.now() + ticks * CNTFRQ

    def _update(self) -> None:
        lv = bool(self.ris & self.im)
        if lv != self.line:
            self.line = lv
            self.set_line(lv)

    # --- the board clock (neve/devices/__init__.py DeviceClock) ---------------------------
    def next_deadline(self) -> int | None:
        return self.alarm

    def expire(self, now: int) -> None:
        if self.alarm is not None and self.alarm <= now:
            self.alarm = None
            self.ris = 1
            self._update()

    def state(self) -> dict:
        return {"tick_offset": self.tick_offset, "mr": self.mr, "lr": self.lr, "im": self.im, "ris": self.ris,
                "alarm": self.alarm}

    def describe(self, sw, phandles) -> None:
        with sw.add_node(f"pl031@{self.base:x}"):
            apb_clock_props(sw, phandles, ("apb_pclk",))
            sw.property("interrupts", _cells(0, self.intid - 32, 4))
            sw.property("reg", _cells(0, self.base, 0, self.size))
            sw.property("compatible", b"arm,pl031\0arm,primecell\0")
