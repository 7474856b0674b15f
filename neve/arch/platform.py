"""The QEMU `virt`-compatible memory map and the board's device table."""
from __future__ import annotations

import importlib
from dataclasses import dataclass

RAM_BASE = 0x4000_0000
RAM_SIZE_DEFAULT = 128 << 20
UART_BASE = 0x0900_0000
UART_INTID = 33            # the PL011's interrupt: SPI 1, level-sensitive, as on QEMU virt
GICD_BASE = 0x0800_0000
GICR_BASE = 0x080A_0000

SPI_BASE = 32                   # GIC INTID of SPI 0 (a DT `interrupts = <0 n ...>` is INTID 32 + n)


@dataclass(frozen=True)
class Row:
    """One device of QEMU 10's `virt` board (gic-version=3, TCG, no secure world, no
    IOMMU, highmem): its name (as in "unsupported: access to the QEMU virt <name>"),
    physical base and size, GIC INTID of its (first) interrupt, and the class that
    models it ("module:Class"), None when neve does not model it."""
    name: str
    base: int
    size: int
    intid: int | None = None
    model: str | None = None

    def cls(self):
        """The model class, imported on demand (the device modules import this one)."""
        mod, _, name = self.model.partition(":")
        return getattr(importlib.import_module(mod), name)


# The board, in ascending base order.  A row with a model is a device neve emulates:
# the machine builds those whose class has `create(machine, row)` from this table
# (the UART and the GIC frames it builds itself: they need the UART output and the
# GIC state).  A row without one is a device QEMU has and neve does not model,
# each measured by a load on QEMU: an access there stops the run with "unsupported:
# access to the QEMU virt <name>" rather than the synchronous external abort QEMU
# would not give.  The rest of the map (the GICv2 CPU interface, the secure UART,
# SMMUv3, pvtime, the empty platform bus, the low PCIe ECAM, redistributor frames
# past the one CPU's) is absent on QEMU too: an access there is a synchronous
# external abort on both.
BOARD = (
    Row("flash", 0x0000_0000, 0x0800_0000, None, "neve.devices.pflash:CFIFlash"),
    Row("GICv3 distributor", GICD_BASE, 0x1_0000, None, "neve.gic.mmio:Distributor"),
    # The ITS is not modelled and not in neve's device tree: it translates MSIs
    # (message-signalled interrupts, LPIs), which only PCIe devices raise, and neve
    # has none; a guest reading it stops here (see the README).
    Row("GICv3 ITS", 0x0808_0000, 0x2_0000),
    Row("GICv3 redistributor", GICR_BASE, 0x2_0000, None, "neve.gic.mmio:Redistributors"),
    Row("UART", UART_BASE, 0x1000, SPI_BASE + 1, "neve.devices.pl011:PL011"),
    Row("PL031 RTC", 0x0901_0000, 0x1000, SPI_BASE + 2, "neve.devices.pl031:PL031"),
    Row("fw_cfg", 0x0902_0000, 0x18),
    Row("PL061 GPIO", 0x0903_0000, 0x1000, SPI_BASE + 7, "neve.devices.pl061:PL061"),
    Row("virtio-mmio", 0x0A00_0000, 0x4000, SPI_BASE + 16, "neve.devices.virtio:VirtioMMIO"),
    Row("PCIe MMIO window", 0x1000_0000, 0x2EFF_0000),
    Row("PCIe PIO window", 0x3EFF_0000, 0x1_0000),
    Row("PCIe ECAM", 0x40_1000_0000, 0x1000_0000),
    Row("high PCIe MMIO window", 0x80_0000_0000, 0x80_0000_0000),
)

# The rows neve does not model (kept for the callers that name them).
QEMU_VIRT_UNMODELLED = tuple((r.base, r.base + r.size, r.name) for r in BOARD if r.model is None)


def row(name: str) -> Row:
    return next(r for r in BOARD if r.name == name)


def unmodelled_device(pa: int) -> str | None:
    for lo, hi, name in QEMU_VIRT_UNMODELLED:
        if lo <= pa < hi:
            return name
    return None


def board_device(pa: int) -> str | None:
    """The name of the board's device (modelled or not) at a physical address."""
    for r in BOARD:
        if r.base <= pa < r.base + r.size:
            return r.name
    return None
