"""Where the kernel, the initrd and the device tree go, and where the CPU starts: the
rules of QEMU 10's hw/arm/boot.c for `-M virt` with an AArch64 CPU, in one place.
Each rule is checked against QEMU itself in tests/test_boot_loader.py.

Linux (an arm64 Image or a raw binary), `arm_setup_direct_kernel_boot` and
`load_aarch64_image`:

* the Image at RAM base + text_offset, plus 2 MiB when text_offset is below 4 KiB
  (the page QEMU's boot stub uses); an Image whose image_size is 0 (before Linux
  3.17) and a raw binary at RAM base + 0x80000 (`--kernel-addr` moves a raw binary);
* the kernel's size is image_size (the file's size when that is 0); larger than RAM
  is refused;
* the initrd at RAM base + min(RAM / 2, 128 MiB), or right after the kernel's
  image_size if that ends higher, rounded up to a page;
* the DTB after the initrd, rounded up to 2 MiB (with 128 MiB and no initrd:
  0x4400_0000);
* QEMU's 40-byte boot stub at RAM base, where the CPU starts: `ldr x0, dtb; mov x1,
  xzr; mov x2, xzr; mov x3, xzr; ldr x4, entry; br x4` and the two addresses.  neve
  writes the same words, so the kernel starts with x0 = DTB, x1..x3 = 0, and RAM holds
  what it holds on QEMU.

An ELF kernel is loaded at its segments and started at its entry with x0..x3 = 0 (no
stub: QEMU does not treat it as Linux); the DTB goes at RAM base when the ELF leaves
room for it there, as QEMU does (QEMU then writes it at address 0 when the ELF covers
RAM base; neve leaves it out).  Firmware (`--bios`) starts at 0 and finds the DTB at
RAM base.

The generated DTB takes QEMU virt's 1 MiB (its totalsize), so that every "does it
fit" decision is QEMU's.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from neve.arch.platform import RAM_BASE
from neve.boot.image import Kernel
from neve.errors import BadInput

LOADER_START = RAM_BASE
BOOTLOADER_MAX_SIZE = 0x1000        # QEMU's BOOTLOADER_MAX_SIZE
KERNEL64_LOAD_ADDR = 0x8_0000       # QEMU's KERNEL64_LOAD_ADDR
FDT_SIZE = 1 << 20                  # QEMU virt's device tree blob size (create_device_tree)
INITRD_MAX_OFFSET = 128 << 20
PAGE = 0x1000
MiB = 1 << 20
FLASH_BANK_SIZE = 64 << 20          # one bank of virt's CFI flash, where --bios goes

# hw/arm/boot.c: bootloader_aarch64.
_STUB = (0x5800_00C0,   # ldr x0, arg
         0xAA1F_03E1,   # mov x1, xzr
         0xAA1F_03E2,   # mov x2, xzr
         0xAA1F_03E3,   # mov x3, xzr
         0x5800_0084,   # ldr x4, entry
         0xD61F_0080)   # br x4


def boot_stub(dtb: int, entry: int) -> bytes:
    """QEMU's AArch64 boot stub with its arguments (DTB address and kernel entry)."""
    return struct.pack("<6I", *_STUB) + struct.pack("<QQ", dtb, entry)


@dataclass
class Blob:
    """Something placed in RAM: `data` at `addr`, `size` bytes reserved (>= len(data))."""
    name: str
    addr: int
    data: bytes
    size: int
    executable: bool = False

    @property
    def end(self) -> int:
        return self.addr + self.size


@dataclass
class Layout:
    entry: int                              # where the CPU starts
    blobs: list[Blob] = field(default_factory=list)     # the DTB's blob is a placeholder of its size
    dtb_addr: int | None = None
    initrd: tuple[int, int] | None = None   # [start, end)
    kernel_entry: int | None = None         # where the stub jumps (Linux), or the ELF entry


def _align_up(v: int, a: int) -> int:
    return (v + a - 1) & ~(a - 1)


def check_fit(blobs: list[Blob], ram_end: int) -> None:
    for b in blobs:
        if b.addr < RAM_BASE or b.end > ram_end:
            raise BadInput(f"{b.name} ({b.addr:#x}-{b.end:#x}) does not fit in RAM ({RAM_BASE:#x}-{ram_end:#x}); "
                           "a larger --ram may help")
    for i, a in enumerate(blobs):
        for b in blobs[i + 1:]:
            if a.addr < b.end and b.addr < a.end:
                raise BadInput(f"{b.name} ({b.addr:#x}-{b.end:#x}) overlaps {a.name} ({a.addr:#x}-{a.end:#x}), "
                               "as QEMU would refuse")


def plan(kernel: Kernel, ram_size: int, *, initrd: bytes | None = None, initrd_name: str = "the initrd",
         dtb_size: int = FDT_SIZE, kernel_addr: int | None = None) -> Layout:
    """The layout for `--kernel` (with `--initrd`, `--kernel-addr`)."""
    ram_end = RAM_BASE + ram_size
    kname = f"the kernel {kernel.path}"
    if kernel_addr is not None and kernel.kind != "raw":
        raise BadInput(f"--kernel-addr is for raw binaries; {kernel.path} is an {kernel.description}, placed "
                       "where its " + ("segments say" if kernel.kind == "elf" else "header says"))
    if kernel.kind == "elf":
        if initrd is not None:
            raise BadInput(f"--initrd needs a Linux kernel (an arm64 Image or raw binary): {kernel.path} is an ELF, "
                           "which QEMU starts without the Linux boot protocol (it would ignore the initrd)")
        im = kernel.elf
        low = min(s.paddr for s in im.segments)
        high = max(s.paddr + s.memsz for s in im.segments)
        lay = Layout(entry=im.entry, kernel_entry=im.entry)
        # arm_setup_direct_kernel_boot: room at the base of RAM, below the image (or an
        # image wholly below RAM base: no limit), takes the DTB as -bios boots have it.
        if low > LOADER_START or high < LOADER_START:
            limit = low if low > LOADER_START else None
            if limit is None or dtb_size <= limit - LOADER_START:
                lay.dtb_addr = LOADER_START
                lay.blobs.append(Blob("the device tree", LOADER_START, b"", dtb_size))
        check_fit(lay.blobs, ram_end)
        return lay
    if kernel.kind == "image" and kernel.image_size:
        off = kernel.text_offset
        if off < BOOTLOADER_MAX_SIZE:
            off += 2 * MiB
        entry = LOADER_START + off
        size = kernel.image_size
    else:
        entry = LOADER_START + KERNEL64_LOAD_ADDR if kernel_addr is None else kernel_addr
        size = len(kernel.data)
        if kernel_addr is not None:
            if kernel_addr % 4:
                raise BadInput(f"--kernel-addr {kernel_addr:#x}: not a multiple of 4 (an instruction's address)")
            if not RAM_BASE <= kernel_addr < ram_end:
                raise BadInput(f"--kernel-addr {kernel_addr:#x}: outside RAM ({RAM_BASE:#x}-{ram_end:#x})")
    if size > ram_size:
        raise BadInput(f"{kname} is too large to fit in RAM ({kernel.description} of {size:#x} bytes, "
                       f"RAM is {ram_size:#x}; use a larger --ram)")
    if entry + size > ram_end:
        raise BadInput(f"{kname} does not fit in RAM: it needs {entry:#x}-{entry + size:#x}, RAM ends at "
                       f"{ram_end:#x} (use a larger --ram)")
    high = entry + size
    initrd_start = _align_up(max(LOADER_START + min(ram_size // 2, INITRD_MAX_OFFSET), high), PAGE)
    initrd_size = 0
    lay = Layout(entry=LOADER_START, kernel_entry=entry)
    if initrd is not None:
        if initrd_start >= ram_end:
            raise BadInput(f"not enough space after {kname} to load {initrd_name}: the initrd would start at "
                           f"{initrd_start:#x}, RAM ends at {ram_end:#x} (use a larger --ram)")
        initrd_size = len(initrd)
        if initrd_start + initrd_size > ram_end:
            raise BadInput(f"{initrd_name} ({initrd_size:#x} bytes at {initrd_start:#x}) is too big to fit into RAM "
                           f"after the kernel (RAM ends at {ram_end:#x}; use a larger --ram)")
        lay.initrd = (initrd_start, initrd_start + initrd_size)
    dtb = _align_up(initrd_start + initrd_size, 2 * MiB)
    if dtb >= ram_end:
        raise BadInput(f"not enough space for the device tree after the kernel and initrd: it would start at "
                       f"{dtb:#x}, RAM ends at {ram_end:#x} (use a larger --ram)")
    lay.dtb_addr = dtb
    lay.blobs = [Blob("QEMU's boot stub", LOADER_START, boot_stub(dtb, entry), len(_STUB) * 4 + 16, True),
                 Blob(kname, entry, kernel.data, len(kernel.data), True)]
    if initrd is not None:
        lay.blobs.append(Blob(initrd_name, initrd_start, initrd, initrd_size))
    lay.blobs.append(Blob("the device tree", dtb, b"", dtb_size))
    check_fit(lay.blobs, ram_end)
    return lay


def plan_bios(ram_size: int, dtb_size: int = FDT_SIZE) -> Layout:
    """Firmware in flash: the CPU starts at 0, the DTB at RAM base."""
    lay = Layout(entry=0, dtb_addr=LOADER_START, blobs=[Blob("the device tree", LOADER_START, b"", dtb_size)])
    check_fit(lay.blobs, RAM_BASE + ram_size)
    return lay
