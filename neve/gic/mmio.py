"""The GICv3's MMIO frames: the distributor and the redistributors.

`Distributor` and `Redistributors` are passive MMIO devices at the QEMU `virt`
addresses over the interrupt state of a GICv3 (neve/gic/state.py); the machine maps
them and counts each access as an MMIO trap.
"""
from __future__ import annotations

from neve.arch.platform import GICD_BASE, GICR_BASE
from neve.devices import Device
from neve.gic.regs import (GIC_IIDR, GICD_CTLR_EN_GRP0, GICD_CTLR_EN_GRP1, GICD_TYPER_VALUE,
                           GICR_CTLR_ENABLE_LPIS, GICR_WAKER_CHILDREN_ASLEEP, GICR_WAKER_PROCESSOR_SLEEP, IDREGS,
                           NUM_IRQS, NUM_PRIVATE, PIDR0_DIST, PIDR0_REDIST)
from neve.gic.state import Bank, GICv3


def _idreg(off: int, pidr0: int) -> int:
    v = IDREGS[(off - 0xFFD0) // 4]
    return pidr0 if v is None else v


_BITMAP_REGS = {0x080: "IGROUPR", 0x100: "ISENABLER", 0x180: "ICENABLER", 0x200: "ISPENDR",
                0x280: "ICPENDR", 0x300: "ISACTIVER", 0x380: "ICACTIVER"}


def _bitmap_read(b: Bank, kind: str, base_intid: int) -> int:
    if kind == "IGROUPR":
        v = b.group
    elif kind in ("ISENABLER", "ICENABLER"):
        v = b.enabled
    elif kind in ("ISPENDR", "ICPENDR"):
        v = b.is_pending()
    else:
        v = b.active
    return (v >> base_intid) & 0xFFFF_FFFF


def _bitmap_write(b: Bank, kind: str, base_intid: int, value: int) -> None:
    m = (value & 0xFFFF_FFFF) << base_intid
    if kind == "IGROUPR":
        b.group = (b.group & ~(0xFFFF_FFFF << base_intid)) | m
    elif kind == "ISENABLER":
        b.enabled |= m
    elif kind == "ICENABLER":
        b.enabled &= ~m
    elif kind == "ISPENDR":
        b.pending |= m
    elif kind == "ICPENDR":
        # Clears the latch; a level-sensitive interrupt whose line is high stays pending.
        b.pending &= ~m
    elif kind == "ISACTIVER":
        b.active |= m
    elif kind == "ICACTIVER":
        b.active &= ~m


def _sub_read(full: int, off: int, size: int) -> int:
    """A `size`-byte read at byte `off & 3` of 32-bit register value `full`."""
    sh = (off & 3) * 8
    return (full >> sh) & ((1 << (size * 8)) - 1)


class Distributor(Device):
    name = "GICD"
    wide = True

    def __init__(self, gic: GICv3, base: int = GICD_BASE) -> None:
        self.gic = gic
        self.base = base
        self.size = 0x10000

    def reg_name(self, off: int) -> str:
        return f"GICD.{_dist_name(off)}"

    @staticmethod
    def _size_ok(off: int, size: int) -> bool:
        """The access sizes a register takes, as QEMU's GICv3: 32-bit for all, bytes
        for IPRIORITYR (ITARGETSR, [CS]PENDSGIR: RAZ/WI), 64-bit for IROUTER<n> only.
        Any other access is RAZ/WI."""
        if size == 4:
            return off % 4 == 0
        if size == 1:
            return 0x400 <= off < 0x800
        if size == 8:
            return 0x6000 <= off < 0x8000 and off % 8 == 0
        return False

    def read(self, off: int, size: int) -> int:
        if not self._size_ok(off, size):
            return 0
        g = self.gic
        if 0x6100 <= off < 0x6000 + 8 * NUM_IRQS:          # IROUTER<n>, n >= 32
            r = g.irouter[(off - 0x6000) // 8]
            return r >> 32 if off & 4 else (r if size == 8 else r & 0xFFFF_FFFF)
        reg = off & ~3
        if reg == 0x000:
            v = g.ctlr
        elif reg == 0x004:
            v = GICD_TYPER_VALUE
        elif reg == 0x008:
            v = GIC_IIDR
        elif 0x080 <= reg < 0x400:
            base = (reg & 0x7F) * 8
            kind = _BITMAP_REGS[reg & ~0x7F]
            v = 0 if base < NUM_PRIVATE or base >= NUM_IRQS else _bitmap_read(g.spi, kind, base)
        elif 0x400 <= off < 0x800:
            i = off - 0x400
            if i < NUM_PRIVATE:
                return 0
            return int.from_bytes(bytes(g.spi.priority[i:i + size]).ljust(size, b"\0"), "little")
        elif 0xC00 <= reg < 0xD00:
            base = (reg - 0xC00) * 4
            v = 0
            if NUM_PRIVATE <= base < NUM_IRQS:
                for k in range(16):
                    if (g.spi.edge >> (base + k)) & 1:
                        v |= 2 << (2 * k)
        elif 0xFFD0 <= reg < 0x10000:
            v = _idreg(reg, PIDR0_DIST)
        else:
            v = 0
        return _sub_read(v, off, size) if size < 4 else v

    def write(self, off: int, size: int, value: int) -> None:
        if not self._size_ok(off, size):
            return
        g = self.gic
        if 0x6100 <= off < 0x6000 + 8 * NUM_IRQS:
            i = (off - 0x6000) // 8
            r = g.irouter[i]
            if size == 8:
                r = value
            elif off & 4:
                r = (r & 0xFFFF_FFFF) | ((value & 0xFFFF_FFFF) << 32)
            else:
                r = (r & ~0xFFFF_FFFF) | (value & 0xFFFF_FFFF)
            g.irouter[i] = r & 0xFF_0000_80FF_FFFF
            g.changed(mmio=True)
            return
        reg = off & ~3
        if reg == 0x000:
            mask = GICD_CTLR_EN_GRP0 | GICD_CTLR_EN_GRP1
            g.ctlr = (g.ctlr & ~mask) | (value & mask)
        elif reg == 0x040:                                   # SETSPI_NSR
            i = value & 0x3FF
            if NUM_PRIVATE <= i < NUM_IRQS:
                g.spi.pending |= 1 << i
        elif reg == 0x048:                                   # CLRSPI_NSR
            i = value & 0x3FF
            if NUM_PRIVATE <= i < NUM_IRQS:
                g.spi.pending &= ~(1 << i)
        elif 0x080 <= reg < 0x400:
            base = (reg & 0x7F) * 8
            if NUM_PRIVATE <= base < NUM_IRQS:
                _bitmap_write(g.spi, _BITMAP_REGS[reg & ~0x7F], base, value)
        elif 0x400 <= off < 0x800:
            i = off - 0x400
            for k in range(size):
                if NUM_PRIVATE <= i + k < NUM_IRQS:
                    g.spi.priority[i + k] = (value >> (8 * k)) & 0xFF
        elif 0xC00 <= reg < 0xD00:
            base = (reg - 0xC00) * 4
            if NUM_PRIVATE <= base < NUM_IRQS:
                for k in range(16):
                    bit = 1 << (base + k)
                    if (value >> (2 * k + 1)) & 1:
                        g.spi.edge |= bit
                    else:
                        g.spi.edge &= ~bit
        # TYPER, IIDR, ID registers, ITARGETSR, SGIR, IGRPMODR, NSACR: RO or RAZ/WI here
        g.changed(mmio=True)

    def state(self) -> dict:
        return self.gic.state()


class Redistributors(Device):
    """One 128 KiB frame per CPU: RD_base, then SGI_base at +64 KiB."""

    name = "GICR"
    wide = True

    def __init__(self, gic: GICv3, base: int = GICR_BASE) -> None:
        self.gic = gic
        self.base = base
        self.size = 0x20000 * gic.ncpus

    def reg_name(self, off: int) -> str:
        cpu, o = divmod(off, 0x20000)
        return f"GICR{cpu}.{_redist_name(o)}"

    @staticmethod
    def _size_ok(o: int, size: int) -> bool:
        """As QEMU's GICv3 redistributor: 32-bit for all, 64-bit for TYPER, PROPBASER
        and PENDBASER, bytes for the SGI frame's IPRIORITYR; anything else RAZ/WI."""
        if size == 4:
            return o % 4 == 0
        if size == 8:
            return o in (0x008, 0x070, 0x078)
        if size == 1:
            return 0x10400 <= o < 0x10420
        return False

    def read(self, off: int, size: int) -> int:
        g = self.gic
        cpu, o = divmod(off, 0x20000)
        if not self._size_ok(o, size):
            return 0
        reg = o & ~3
        if o < 0x10000:
            if reg in (0x070, 0x074, 0x078, 0x07C):          # PROPBASER, PENDBASER: kept, no LPIs
                r = g.lpi_base[cpu][reg >> 3 & 1]
                return r if size == 8 else (r >> 32 if reg & 4 else r & 0xFFFF_FFFF)
            if reg == 0x000:
                v = g.gicr_ctlr[cpu]
            elif reg == 0x004:
                v = GIC_IIDR
            elif reg in (0x008, 0x00C):
                m = g.mpidrs[cpu]
                aff = ((m >> 32) & 0xFF) << 24 | (m & 0xFFFFFF)
                typer = (aff << 32) | (1 << 24) | (cpu << 8) | 1    # PLPIS advertised as QEMU does
                if cpu == g.ncpus - 1:
                    typer |= 1 << 4                          # Last
                if size == 8:
                    return typer
                v = typer >> 32 if reg == 0x00C else typer & 0xFFFF_FFFF
            elif reg == 0x014:
                v = g.waker[cpu]
            elif 0xFFD0 <= reg < 0x10000:
                v = _idreg(reg, PIDR0_REDIST)
            else:
                v = 0
            return _sub_read(v, o, size) if size < 4 else v
        o -= 0x10000
        reg = o & ~3
        b = g.private[cpu]
        if 0x080 <= reg < 0x400 and (reg & 0x7F) == 0:
            v = _bitmap_read(b, _BITMAP_REGS[reg], 0)
        elif 0x400 <= o < 0x420:
            i = o - 0x400
            return int.from_bytes(bytes(b.priority[i:i + size]).ljust(size, b"\0"), "little")
        elif reg in (0xC00, 0xC04):
            base = 0 if reg == 0xC00 else 16
            v = 0
            for k in range(16):
                if (b.edge >> (base + k)) & 1:
                    v |= 2 << (2 * k)
        else:
            v = 0
        return _sub_read(v, o, size) if size < 4 else v

    def write(self, off: int, size: int, value: int) -> None:
        g = self.gic
        cpu, o = divmod(off, 0x20000)
        if not self._size_ok(o, size):
            return
        reg = o & ~3
        if o < 0x10000:
            if reg in (0x070, 0x074, 0x078, 0x07C):
                i = reg >> 3 & 1
                r = g.lpi_base[cpu][i]
                if size == 8:
                    r = value
                elif reg & 4:
                    r = (r & 0xFFFF_FFFF) | (value & 0xFFFF_FFFF) << 32
                else:
                    r = (r & ~0xFFFF_FFFF) | (value & 0xFFFF_FFFF)
                g.lpi_base[cpu][i] = r
                return
            if reg == 0x000:
                # EnableLPIs is kept (CES is RO); LPIs need the ITS, which neve lacks.
                g.gicr_ctlr[cpu] = (g.gicr_ctlr[cpu] & ~GICR_CTLR_ENABLE_LPIS) | (value & GICR_CTLR_ENABLE_LPIS)
                return
            if reg == 0x014:
                # Only ProcessorSleep is writable; ChildrenAsleep follows it at once.
                ps = value & GICR_WAKER_PROCESSOR_SLEEP
                g.waker[cpu] = ps | (GICR_WAKER_CHILDREN_ASLEEP if ps else 0)
            # CTLR (EnableLPIs: LPIs are not implemented), PROPBASER...: ignored
            return
        o -= 0x10000
        reg = o & ~3
        b = g.private[cpu]
        if 0x080 <= reg < 0x400 and (reg & 0x7F) == 0:
            _bitmap_write(b, _BITMAP_REGS[reg], 0, value)
        elif 0x400 <= o < 0x420:
            i = o - 0x400
            for k in range(size):
                if i + k < NUM_PRIVATE:
                    b.priority[i + k] = (value >> (8 * k)) & 0xFF
        elif reg == 0xC04:                                   # PPI trigger modes (SGIs are fixed edge)
            for k in range(16):
                bit = 1 << (16 + k)
                if (value >> (2 * k + 1)) & 1:
                    b.edge |= bit
                else:
                    b.edge &= ~bit
        g.changed(mmio=True)


def _dist_name(off: int) -> str:
    fixed = {0x0: "CTLR", 0x4: "TYPER", 0x8: "IIDR", 0xC: "TYPER2", 0x10: "STATUSR", 0x40: "SETSPI_NSR",
             0x48: "CLRSPI_NSR", 0xF00: "SGIR"}
    if off in fixed:
        return fixed[off]
    if 0x080 <= off < 0x400:
        return f"{_BITMAP_REGS[off & ~0x7F]}{(off & 0x7F) // 4}"
    if 0x400 <= off < 0x800:
        return f"IPRIORITYR{(off - 0x400) // 4}"
    if 0x800 <= off < 0xC00:
        return f"ITARGETSR{(off - 0x800) // 4}"
    if 0xC00 <= off < 0xD00:
        return f"ICFGR{(off - 0xC00) // 4}"
    if 0xD00 <= off < 0xE00:
        return f"IGRPMODR{(off - 0xD00) // 4}"
    if 0x6000 <= off < 0x8000:
        return f"IROUTER{(off - 0x6000) // 8}"
    if 0xFFD0 <= off < 0x10000:
        return "ID"
    return f"+{off:#x}"


def _redist_name(o: int) -> str:
    if o < 0x10000:
        fixed = {0x0: "CTLR", 0x4: "IIDR", 0x8: "TYPER", 0xC: "TYPER", 0x10: "STATUSR", 0x14: "WAKER",
                 0x70: "PROPBASER", 0x78: "PENDBASER"}
        if o in fixed:
            return fixed[o]
        if 0xFFD0 <= o:
            return "ID"
        return f"+{o:#x}"
    s = o - 0x10000
    if 0x080 <= s < 0x400 and (s & 0x7F) == 0:
        return f"{_BITMAP_REGS[s]}0"
    if 0x400 <= s < 0x420:
        return f"IPRIORITYR{(s - 0x400) // 4}"
    if s in (0xC00, 0xC04):
        return f"ICFGR{(s - 0xC00) // 4}"
    return f"SGI+{s:#x}"
