"""The `virt` board's 32 virtio-mmio transports, present and empty, as QEMU answers
them with no `-device` (hw/virtio/virtio-mmio.c; virtio spec 1.2, 4.2.2/4.2.4).

Each transport is 0x200 bytes at 0x0A00_0000 + 0x200*i with SPI 16+i.  MagicValue
reads "virt" (0x74726976), Version 1 (QEMU's virt keeps the legacy interface:
`force-legacy` defaults to on), DeviceID 0 (no device: a driver stops there),
VendorID "QEMU" (0x554D4551); every other register reads 0 and writes are ignored,
as QEMU does for a transport without a backend.
"""
from __future__ import annotations

from neve.devices import Device, cells

COUNT = 32
STRIDE = 0x200
MAGIC = 0x7472_6976         # "virt"
VERSION = 1                 # legacy, as QEMU 10's virt
VENDOR = 0x554D_4551        # "QEMU"


class VirtioMMIO(Device):
    name = "virtio-mmio"
    registers = {0x000: "MagicValue", 0x004: "Version", 0x008: "DeviceID", 0x00C: "VendorID",
                 0x010: "DeviceFeatures", 0x014: "DeviceFeaturesSel", 0x020: "DriverFeatures",
                 0x024: "DriverFeaturesSel", 0x028: "GuestPageSize", 0x030: "QueueSel", 0x034: "QueueNumMax",
                 0x038: "QueueNum", 0x03C: "QueueAlign", 0x040: "QueuePFN", 0x050: "QueueNotify",
                 0x060: "InterruptStatus", 0x064: "InterruptACK", 0x070: "Status"}

    def __init__(self, base: int, intid: int, count: int = COUNT) -> None:
        self.base, self.intid, self.count = base, intid, count
        self.size = count * STRIDE

    @classmethod
    def create(cls, m, row):
        return cls(row.base, row.intid, row.size // STRIDE)

    def reg_name(self, off: int) -> str:
        i, o = divmod(off, STRIDE)
        return f"virtio-mmio{i}.{self.registers.get(o & ~3, f'+{o:#x}')}"

    def read(self, off: int, size: int) -> int:
        if size == 8:
            return self.read(off, 4) | self.read(off + 4, 4) << 32
        # QEMU matches the exact offset: a narrower access at another byte reads 0.
        return {0x000: MAGIC, 0x004: VERSION, 0x00C: VENDOR}.get(off % STRIDE, 0) & ((1 << 8 * size) - 1)

    def write(self, off: int, size: int, value: int) -> None:
        pass                    # no backend: QEMU ignores every write

    def describe(self, sw, phandles) -> None:
        for i in range(self.count):
            base = self.base + i * STRIDE
            with sw.add_node(f"virtio_mmio@{base:x}"):
                sw.property("dma-coherent", b"")
                sw.property("interrupts", cells(0, self.intid - 32 + i, 1))
                sw.property("reg", cells(0, base, 0, STRIDE))
                sw.property_string("compatible", "virtio,mmio")
