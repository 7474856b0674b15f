"""Booting what QEMU's `virt` boots: `--kernel` (ELF, arm64 Image, gzip-compressed
Image, raw binary), `--initrd`, `--append`, `--dtb`, `--bios`, and the generated device
tree.

    neve/boot/image.py   the files and what kind of kernel one is
    neve/boot/place.py   where each thing goes and where the CPU starts (QEMU's rules)
    neve/boot/dtb.py     the device tree of the board neve models; a user's --dtb checked

`prepare` turns the options into what the Machine takes: the images to load (the
kernel and the initrd as images of one segment, and a reservation for the device
tree) and a `Boot` saying where the CPU starts, where the DTB goes, and what the
generated tree's /chosen holds.  The Machine builds the tree once its devices exist
(`Machine.dtb`), writes it at `Boot.dtb_addr`, and maps the firmware.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neve.arch.platform import RAM_BASE
from neve.boot import dtb as dtbmod
from neve.boot import place
from neve.boot.image import load_kernel, read_file
from neve.core import elf
from neve.errors import BadInput


@dataclass
class Boot:
    entry: int                          # the PC at reset
    dtb_addr: int | None = None         # where the DTB goes in RAM (None: nowhere)
    user_dtb: bytes | None = None       # --dtb, checked (and /chosen updated as QEMU does)
    bootargs: str | None = None         # the generated tree's /chosen
    initrd: tuple[int, int] | None = None
    bios: bytes | None = None           # firmware for flash bank 0 (at address 0)
    bios_name: str = ""
    kernel_pa: int | None = None        # where an arm64 Image's _text is (its load address)


def _blob_image(b: place.Blob) -> elf.Image:
    seg = elf.Segment(b.addr, b.addr, b.data, b.size, "r-x" if b.executable else "r--")
    return elf.Image(Path(b.name), 0, [seg])


def prepare(*, kernel: str | None, initrd: str | None, append: str | None, dtb: str | None,
            bios: str | None, kernel_addr: int | None, ram_size: int,
            dump_only: bool = False) -> tuple[list[elf.Image], Boot | None]:
    """(images to load first, Boot) for the boot options; (…, None) when none is given."""
    if kernel is None and bios is None:
        if initrd is not None or append is not None or kernel_addr is not None:
            what = "--initrd" if initrd is not None else "--append" if append is not None else "--kernel-addr"
            raise BadInput(f"{what} needs --kernel")
        if not dump_only:
            if dtb is not None:
                raise BadInput("--dtb needs --kernel or --bios (ELF images given without them get no device tree)")
            return [], None
    if kernel is not None and bios is not None:
        raise BadInput("--kernel with --bios: QEMU hands the kernel to the firmware through fw_cfg, which neve "
                       "does not model; give one of them")
    if bios is not None and (initrd is not None or append is not None):
        raise BadInput(f"{'--initrd' if initrd is not None else '--append'} is only allowed with --kernel "
                       "(as QEMU's -initrd and -append)")
    user = None
    if dtb is not None:
        user = dtbmod.open_like_qemu(dtbmod.validate(read_file(dtb, "--dtb"), dtb))
    rd = read_file(initrd, "--initrd") if initrd is not None else None
    dtb_size = len(user) if user is not None else place.FDT_SIZE
    if bios is not None:
        fw = read_file(bios, "--bios")
        if len(fw) > place.FLASH_BANK_SIZE:
            raise BadInput(f"--bios {bios}: {len(fw):#x} bytes, larger than flash bank 0 "
                           f"({place.FLASH_BANK_SIZE >> 20} MiB)")
        lay = place.plan_bios(ram_size, dtb_size)
        boot = Boot(entry=lay.entry, dtb_addr=lay.dtb_addr, user_dtb=user, bios=fw, bios_name=Path(bios).name)
        return [_blob_image(b) for b in lay.blobs], boot
    if kernel is None:                  # --dumpdtb (or --dtb) alone: nothing to start
        return [], Boot(entry=RAM_BASE, user_dtb=user)
    k = load_kernel(kernel)
    lay = place.plan(k, ram_size, initrd=rd, initrd_name=f"the initrd {initrd}", dtb_size=dtb_size,
                     kernel_addr=kernel_addr)
    if user is not None:
        user = dtbmod.patch_chosen(user, bootargs=append, initrd=lay.initrd)
    images = [_blob_image(b) for b in lay.blobs]
    if k.kind == "elf":
        images.insert(0, k.elf)
    return images, Boot(entry=lay.entry, dtb_addr=lay.dtb_addr, user_dtb=user, bootargs=append, initrd=lay.initrd,
                        kernel_pa=lay.kernel_entry if k.kind == "image" else None)
