"""The QEMU `virt`-compatible memory map."""
from __future__ import annotations

RAM_BASE = 0x4000_0000
RAM_SIZE_DEFAULT = 128 << 20
UART_BASE = 0x0900_0000
GICD_BASE = 0x0800_0000
GICR_BASE = 0x080A_0000

# Regions that QEMU's virt board populates with devices neve does not model.  An
# access there stops the run with "unsupported: access to <name>" rather than a
# silent external abort that QEMU would not give.
QEMU_VIRT_UNMODELLED = (
    (0x0000_0000, 0x0800_0000, "flash"),
    (0x0800_0000, 0x0801_0000, "GICv3 distributor"),
    (0x0801_0000, 0x0802_0000, "GIC CPU interface (MMIO)"),
    (0x0808_0000, 0x080A_0000, "GICv3 ITS"),
    (0x080A_0000, 0x0900_0000, "GICv3 redistributor"),
    (0x0901_0000, 0x0901_1000, "PL031 RTC"),
    (0x0902_0000, 0x0902_0018, "fw_cfg"),
    (0x0903_0000, 0x0903_1000, "PL061 GPIO"),
    (0x0904_0000, 0x0904_1000, "secure UART"),
    (0x0905_0000, 0x0907_0000, "SMMUv3"),
    (0x090A_0000, 0x090B_0000, "pvtime"),
    (0x0A00_0000, 0x0A00_4000, "virtio-mmio"),
    (0x0C00_0000, 0x0E00_0000, "platform bus"),
    (0x1000_0000, 0x3EFF_0000, "PCIe MMIO window"),
    (0x3EFF_0000, 0x3F00_0000, "PCIe PIO window"),
    (0x3F00_0000, 0x4000_0000, "PCIe ECAM"),
)


def unmodelled_device(pa: int) -> str | None:
    for lo, hi, name in QEMU_VIRT_UNMODELLED:
        if lo <= pa < hi:
            return name
    return None
