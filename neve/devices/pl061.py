"""Arm PrimeCell GPIO (PL061), as QEMU's model of it (hw/gpio/pl061.c), with the
`virt` board's gpio-keys power button on GPIO 3.

Registers (PL061 TRM): GPIODATA at 0x000-0x3FC (address bits [9:2] mask the bits
read or written; only output pins (GPIODIR = 1) take writes), GPIODIR, GPIOIS
(1 = level-sensitive), GPIOIBE (both edges), GPIOIEV (rising edge / high level),
GPIOIE (mask), GPIORIS, GPIOMIS, GPIOIC (clears edge interrupts; a level interrupt
whose level persists is raised again), GPIOAFSEL; the PrimeCell IDs at 0xFE0-0xFFC.
The interrupt line (SPI 7, level) is RIS & IE.

The power button: as QEMU's `gpio-key` device, a press drives GPIO 3 high and
releases it 100 ms of virtual time later (a pulse, which a guest sees as a rising
then a falling edge).  Press it at a fixed point of virtual time with
`--power-button-at TICKS` (system counter ticks, 1 GHz: nanoseconds of virtual
time), or from Python with `press_power_button()`: both are deterministic.  QEMU
presses it on `system_powerdown` (its monitor); Linux's gpio-keys driver reports
KEY_POWER.
"""
from __future__ import annotations

from neve.devices import Registers32, apb_clock_props, cells
from neve.devices.timer import CNTFRQ

_ID = {0xFE0: 0x61, 0xFE4: 0x10, 0xFE8: 0x04, 0xFEC: 0x00, 0xFF0: 0x0D, 0xFF4: 0xF0, 0xFF8: 0x05, 0xFFC: 0xB1}
POWER_BUTTON_GPIO = 3
KEY_POWER = 116                         # linux,code of the power button (input-event-codes.h)
GPIO_KEY_LATENCY = CNTFRQ // 10         # QEMU's gpio-key: released 100 ms after the press

# The phandle convention of neve's device tree: the generator's `phandles` dict
# holds "gic" and "apb-pclk"; the PL061 takes the next free one under this key
# unless the generator has already set it (QEMU's virt: 0x8004, after the ITS's 0x8003).
PHANDLE_KEY = "pl061"


class PL061(Registers32):
    name = "PL061 GPIO"
    registers = {**{o: "DATA" for o in range(0, 0x400, 4)}, 0x400: "DIR", 0x404: "IS", 0x408: "IBE", 0x40C: "IEV",
                 0x410: "IE", 0x414: "RIS", 0x418: "MIS", 0x41C: "IC", 0x420: "AFSEL", **{o: "ID" for o in _ID}}

    def __init__(self, base: int, intid: int, counter, set_line, power_button_at: int | None = None) -> None:
        self.base, self.intid = base, intid
        self.counter = counter
        self.set_line = set_line
        self.data = self.old_in = self.dir = self.isense = self.ibe = self.iev = self.im = self.istate = 0
        self.afsel = 0
        self.line = False
        self.press_at = power_button_at      # counter value of a pending press
        self.release_at: int | None = None   # ... and of the release of the pressed button

    @classmethod
    def create(cls, m, row):
        return cls(row.base, row.intid, m.counter, lambda lv: m.set_spi_line(row.intid, lv),
                   getattr(m, "power_button_at", None))

    # --- registers ------------------------------------------------------------------------
    def _read32(self, off: int) -> int:
        if off < 0x400:
            return self.data & (off >> 2)
        return {0x400: self.dir, 0x404: self.isense, 0x408: self.ibe, 0x40C: self.iev, 0x410: self.im,
                0x414: self.istate, 0x418: self.istate & self.im, 0x420: self.afsel}.get(off, _ID.get(off, 0))

    def _write32(self, off: int, value: int) -> None:
        value &= 0xFF
        if off < 0x400:
            mask = (off >> 2) & self.dir
            self.data = (self.data & ~mask) | (value & mask)
        elif off == 0x400:
            self.dir = value
        elif off == 0x404:
            self.isense = value
        elif off == 0x408:
            self.ibe = value
        elif off == 0x40C:
            self.iev = value
        elif off == 0x410:
            self.im = value
        elif off == 0x41C:
            self.istate &= ~value
        elif off == 0x420:
            self.afsel = value
        else:
            return
        self._update()

    # --- inputs ---------------------------------------------------------------------------
    def set_input(self, pin: int, level: bool) -> None:
        """Drive input pin `pin` (ignored while the pin is an output)."""
        mask = 1 << pin
        if not self.dir & mask:
            self.data = (self.data | mask) if level else (self.data & ~mask)
            self._update()

    def _update(self) -> None:
        # Only input pins see edges (an output pin's data changes raise nothing), as
        # QEMU's pl061_update; level interrupts are the line below the loop.
        changed = (self.old_in ^ self.data) & ~self.dir & 0xFF
        if changed:
            self.old_in = self.data
            for i in range(8):
                mask = 1 << i
                if changed & mask and not self.isense & mask:
                    if self.ibe & mask or bool(self.data & mask) == bool(self.iev & mask):
                        self.istate |= mask
        self.istate |= ~(self.data ^ self.iev) & self.isense & 0xFF      # a level interrupt persists
        lv = bool(self.istate & self.im)
        if lv != self.line:
            self.line = lv
            self.set_line(lv)

    def press_power_button(self) -> None:
        """Press the gpio-keys power button now (released 100 ms of virtual time later)."""
        self.set_input(POWER_BUTTON_GPIO, True)
        self.release_at = self.counter.now() + GPIO_KEY_LATENCY

    # --- the board clock (neve/devices/__init__.py DeviceClock) ---------------------------
    def next_deadline(self) -> int | None:
        p, r = self.press_at, self.release_at
        return r if p is None else p if r is None else min(p, r)

    def expire(self, now: int) -> None:
        if self.release_at is not None and self.release_at <= now:
            self.release_at = None
            self.set_input(POWER_BUTTON_GPIO, False)
        if self.press_at is not None and self.press_at <= now:
            self.press_at = None
            self.press_power_button()

    def state(self) -> dict:
        return {"data": self.data, "dir": self.dir, "is": self.isense, "ibe": self.ibe, "iev": self.iev,
                "ie": self.im, "ris": self.istate, "afsel": self.afsel}

    def describe(self, sw, phandles) -> None:
        """The gpio-keys node, then the PL061's, as in QEMU's DTB."""
        ph = phandles.get(PHANDLE_KEY)
        if ph is None:          # the generator's allocator (neve/boot/dtb.py Phandles), else the next value
            alloc = getattr(phandles, "alloc", None)
            if alloc is not None:
                if "its" not in phandles:
                    alloc("its")    # QEMU numbers its ITS (0x8003) before the GPIO, also when neve's tree omits it
                ph = alloc(PHANDLE_KEY)
            else:
                ph = phandles.setdefault(PHANDLE_KEY, max(phandles.values()) + 1)
        with sw.add_node("gpio-keys"):
            sw.property_string("compatible", "gpio-keys")
            with sw.add_node("poweroff"):
                sw.property("gpios", cells(ph, POWER_BUTTON_GPIO, 0))
                sw.property("linux,code", cells(KEY_POWER))
                sw.property_string("label", "GPIO Key Poweroff")
        with sw.add_node(f"pl061@{self.base:x}"):
            sw.property("phandle", cells(ph))
            apb_clock_props(sw, phandles, ("apb_pclk",))
            sw.property("interrupts", cells(0, self.intid - 32, 4))
            sw.property("gpio-controller", b"")
            sw.property("#gpio-cells", cells(2))
            sw.property("compatible", b"arm,pl061\0arm,primecell\0")
            sw.property("reg", cells(0, self.base, 0, self.size))
