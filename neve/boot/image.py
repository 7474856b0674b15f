"""What `--kernel`, `--initrd`, `--dtb` and `--bios` name: the files read with the checks
that turn bad input into a one-line error, and the kernel recognised as QEMU 10's
hw/arm/boot.c does for an AArch64 CPU.

A kernel is, in QEMU's order of trying:

* an ELF file (neve/core/elf.py): loaded at its segments' addresses, started at its
  entry with x0..x3 = 0 (QEMU does not treat an ELF as Linux);
* a gzip file: decompressed (at most 256 MiB, QEMU's LOAD_IMAGE_MAX_GUNZIP_BYTES),
  then it must be an arm64 Linux Image (QEMU would load any decompressed bytes as a
  raw binary; neve refuses what is not a kernel it can start);
* an arm64 Linux `Image` (Documentation/arch/arm64/booting.rst): magic "ARM\\x64" at
  0x38, text_offset at 0x08, image_size at 0x10, flags at 0x18.  Big-endian kernels
  (flags bit 0) are refused.  When the Image is also an EFI PE file (CONFIG_EFI), the
  PE section table says how long the file must be: a shorter file is truncated;
* anything else: a raw binary.

U-Boot legacy images (uImage) and EFI zboot images QEMU also unpacks are refused with
a message saying so, rather than started as raw binaries.
"""
from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from neve.core import elf
from neve.errors import BadInput

ARM64_MAGIC = b"ARM\x64"
ARM64_MAGIC_OFFSET = 0x38
ARM64_HEADER_SIZE = 64
MAX_GUNZIP = 256 << 20          # QEMU's LOAD_IMAGE_MAX_GUNZIP_BYTES
UIMAGE_MAGIC = 0x2705_1956
# The first word of an arm64 Image built with CONFIG_EFI: "MZ" that is also the
# instruction `add x13, x18, #0x16` (booting.rst: code0 of an EFI-capable Image).
EFI_IMAGE_CODE0 = b"MZ\x00\x91"


@dataclass
class Kernel:
    """A kernel as QEMU's loader sees it."""
    path: Path
    kind: str                       # "elf", "image" (arm64 Linux Image) or "raw"
    data: bytes = b""               # the bytes loaded (an Image after decompression); empty for ELF
    elf: elf.Image | None = None    # kind == "elf"
    text_offset: int = 0            # kind == "image"
    image_size: int = 0             # kind == "image": 0 for kernels before Linux 3.17
    flags: int = 0
    gzipped: bool = False

    @property
    def description(self) -> str:
        if self.kind == "elf":
            return "ELF"
        if self.kind == "raw":
            return "raw binary"
        return ("gzip-compressed " if self.gzipped else "") + "arm64 Linux Image"


def read_file(path: str | os.PathLike, what: str) -> bytes:
    """The bytes of a regular file named on the command line (`what`: its option), or
    BadInput (neve/core/elf.py read_regular)."""
    return elf.read_regular(path, f"{what} {Path(path)}",
                            too_large="larger than any RAM neve gives a guest")


def _gunzip(p: Path, raw: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            out = f.read(MAX_GUNZIP + 1)
    except EOFError:
        raise BadInput(f"--kernel {p}: truncated gzip file") from None
    except (OSError, zlib.error) as e:
        raise BadInput(f"--kernel {p}: not a valid gzip file ({e})") from None
    if len(out) > MAX_GUNZIP:
        raise BadInput(f"--kernel {p}: decompresses to more than {MAX_GUNZIP >> 20} MiB (QEMU's limit)")
    return out


def _pe_end(data: bytes) -> int | None:
    """Where the last section's raw data ends, for an Image that is also a PE file
    (CONFIG_EFI), read with lief; None when there is no PE header to read."""
    if len(data) < 0x40 or data[:2] != b"MZ":
        return None
    pe_off, = struct.unpack_from("<I", data, 0x3C)
    if pe_off + 4 > len(data) or data[pe_off:pe_off + 4] != b"PE\0\0":
        return None
    import lief
    lief.logging.disable()
    pe = lief.PE.parse(io.BytesIO(data))
    if pe is None:
        return None
    ends = [s.pointerto_raw_data + s.sizeof_raw_data for s in pe.sections if s.sizeof_raw_data]
    return max(ends) if ends else None


def _image(p: Path, data: bytes, gzipped: bool) -> Kernel:
    what = f"--kernel {p}" + (" (after gunzip)" if gzipped else "")
    if len(data) < ARM64_HEADER_SIZE:
        raise BadInput(f"{what}: truncated arm64 Image ({len(data)} bytes, the header alone is {ARM64_HEADER_SIZE})")
    text_offset, image_size, flags = struct.unpack_from("<QQQ", data, 8)
    if flags & 1:
        raise BadInput(f"{what}: big-endian arm64 Image (header flags bit 0); neve runs little-endian kernels")
    end = _pe_end(data)
    if end is not None and end > len(data):
        raise BadInput(f"{what}: truncated arm64 Image ({len(data):#x} bytes; its PE section table "
                       f"says {end:#x})")
    return Kernel(p, "image", data, text_offset=text_offset, image_size=image_size, flags=flags, gzipped=gzipped)


def _is_image(data: bytes) -> bool:
    return data[ARM64_MAGIC_OFFSET:ARM64_MAGIC_OFFSET + 4] == ARM64_MAGIC


def load_kernel(path: str | os.PathLike) -> Kernel:
    """Read and recognise the file of `--kernel`."""
    p = Path(path)
    raw = read_file(p, "--kernel")
    if raw[:4] == b"\x7fELF":
        return Kernel(p, "elf", elf=elf.load(p))
    if raw[:2] == b"\x1f\x8b":
        data = _gunzip(p, raw)
        if not _is_image(data):
            if data[:len(EFI_IMAGE_CODE0)] == EFI_IMAGE_CODE0 and len(data) < ARM64_HEADER_SIZE:
                return _image(p, data, True)
            raise BadInput(f"--kernel {p}: a gzip file that does not hold an arm64 Linux Image "
                           "(no \"ARM\\x64\" magic at 0x38 once decompressed)")
        return _image(p, data, True)
    if len(raw) >= 4 and struct.unpack_from(">I", raw)[0] == UIMAGE_MAGIC:
        raise BadInput(f"--kernel {p}: a U-Boot legacy image (uImage); neve loads ELF files, arm64 Images "
                       "and raw binaries")
    if raw[:2] == b"MZ" and raw[4:8] == b"zimg":
        raise BadInput(f"--kernel {p}: an EFI zboot image (compressed kernel with an EFI stub); neve does "
                       "not unpack these: give it the kernel's Image (arch/arm64/boot/Image)")
    if _is_image(raw) or (raw[:len(EFI_IMAGE_CODE0)] == EFI_IMAGE_CODE0 and len(raw) < ARM64_HEADER_SIZE):
        return _image(p, raw, False)
    if not raw:
        raise BadInput(f"--kernel {p}: empty file")
    return Kernel(p, "raw", raw)
