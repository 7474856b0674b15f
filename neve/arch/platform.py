"""The QEMU `virt`-compatible memory map."""
from __future__ import annotations

RAM_BASE = 0x4000_0000
RAM_SIZE_DEFAULT = 128 << 20
UART_BASE = 0x0900_0000
UART_INTID = 33            # the PL011's interrupt: SPI 1, level-sensitive, as on QEMU virt
GICD_BASE = 0x0800_0000
GICR_BASE = 0x080A_0000

# Regions where QEMU 10's virt board (gic-version=3, TCG, no secure world, no IOMMU,
# highmem) has devices neve does not model, each measured by a load on QEMU: an
# access there stops the run with "unsupported: access to <name>" rather than the
# synchronous external abort QEMU would not give.  The rest of the map (the GICv2
# CPU interface, the secure UART, SMMUv3, pvtime, the empty platform bus, the low
# PCIe ECAM, redistributor frames past the one CPU's) is absent on QEMU too: an
# access there is a synchronous external abort on both.
QEMU_VIRT_UNMODELLED = (
    (0x0000_0000, 0x0800_0000, "flash"),
    (0x0800_0000, 0x0801_0000, "GICv3 distributor"),
    (0x0808_0000, 0x080A_0000, "GICv3 ITS"),
    (0x080A_0000, 0x080C_0000, "GICv3 redistributor"),
    (0x0901_0000, 0x0901_1000, "PL031 RTC"),
    (0x0902_0000, 0x0902_0018, "fw_cfg"),
    (0x0903_0000, 0x0903_1000, "PL061 GPIO"),
    (0x0A00_0000, 0x0A00_4000, "virtio-mmio"),
    (0x1000_0000, 0x3EFF_0000, "PCIe MMIO window"),
    (0x3EFF_0000, 0x3F00_0000, "PCIe PIO window"),
    (0x40_1000_0000, 0x40_2000_0000, "PCIe ECAM"),
    (0x80_0000_0000, 0x100_0000_0000, "high PCIe MMIO window"),
)


def unmodelled_device(pa: int) -> str | None:
    for lo, hi, name in QEMU_VIRT_UNMODELLED:
        if lo <= pa < hi:
            return name
    return None
