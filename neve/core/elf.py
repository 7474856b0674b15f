"""ELF64 AArch64 loader (through lief), with the checks that turn bad input into a
one-line error instead of a traceback."""
from __future__ import annotations

import bisect
import os
import stat
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from neve.errors import BadInput

EM_AARCH64 = 183
PT_LOAD = 1
MAX_IMAGE = 4 << 30     # twice the largest RAM neve gives a guest; a file above it is refused unread
_MACHINES = {3: "x86 (i386)", 40: "ARM (32-bit)", 62: "x86-64", 243: "RISC-V", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64"}


@dataclass
class Segment:
    vaddr: int
    paddr: int
    data: bytes
    memsz: int
    flags: str  # e.g. "r-x"


@dataclass
class Image:
    path: Path
    entry: int
    segments: list[Segment]
    symbols: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.path).name


class SymbolTable:
    """Address -> symbol+offset for traces and the debugger, over several images."""

    def __init__(self, images: list[Image]) -> None:
        pairs = sorted({(a, n) for im in images for n, a in im.symbols.items()})
        self._addrs = [a for a, _ in pairs]
        self._names = [n for _, n in pairs]
        self.by_name = {n: a for im in images for n, a in im.symbols.items()}

        # A Linux kernel's symbols (add_kernel_map), by physical address: its code runs
        # at several VAs (the kernel image's at EL1, the nVHE hypervisor's at EL2).
        self._kpas: list[int] = []
        self._knames: list[str] = []
        self._kend = 0
        self.code_pa: Callable[[int], int | None] | None = None   # PC -> PA (the machine's)

    def lookup(self, addr: int) -> str | None:
        i = bisect.bisect_right(self._addrs, addr) - 1
        if i >= 0 and addr - self._addrs[i] <= 0x10000:
            off = addr - self._addrs[i]
            return self._names[i] if off == 0 else f"{self._names[i]}+{off:#x}"
        if self._kpas and self.code_pa is not None:
            pa = self.code_pa(addr)
            if pa is not None and self._kpas[0] <= pa < self._kend:
                i = bisect.bisect_right(self._kpas, pa) - 1
                off = pa - self._kpas[i]
                return self._knames[i] if off == 0 else f"{self._knames[i]}+{off:#x}"
        return None

    def add_image(self, im: Image) -> None:
        """The symbols of an image that neve does not load (a nested VM's kernel that the
        guest hypervisor's VMM loads at its own addresses)."""
        pairs = sorted({*zip(self._addrs, self._names), *((a, n) for n, a in im.symbols.items())})
        self._addrs = [a for a, _ in pairs]
        self._names = [n for _, n in pairs]
        self.by_name.update(im.symbols)

    @property
    def has_kernel_map(self) -> bool:
        return bool(self._kpas)

    def add_kernel_map(self, entries: list[tuple[int, str]], text_pa: int) -> None:
        """A kernel's code symbols (System.map: VA, name), its image loaded with `_text`
        at physical `text_pa`; looked up by the physical address of a PC (code_pa)."""
        va = dict((n, a) for a, n in entries)
        base = va["_text"]
        pairs = sorted((a - base + text_pa, n) for a, n in entries if a >= base)
        self._kpas = [a for a, _ in pairs]
        self._knames = [n for _, n in pairs]
        self._kend = va.get("_etext", max(va.values())) - base + text_pa


def read_system_map(path: str | os.PathLike) -> list[tuple[int, str]]:
    """The code symbols of a System.map (`nm` output: ADDRESS TYPE NAME per line), or
    one line of BadInput."""
    data = read_regular(path, f"--symbols {path}")
    out = []
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if len(f) < 3 or len(f[1]) != 1:
            raise BadInput(f"--symbols {path}: line {n} is not ADDRESS TYPE NAME (a System.map)")
        try:
            a = int(f[0], 16)
        except ValueError:
            raise BadInput(f"--symbols {path}: line {n}: {f[0]!r} is not a hexadecimal address") from None
        if f[1] in "tTwW":
            out.append((a, f[2]))
    if not any(name == "_text" for _, name in out):
        raise BadInput(f"--symbols {path}: no _text symbol (not a Linux System.map)")
    return out


def read_regular(path: str | os.PathLike, head: str | None = None, *, not_regular: str = "",
                 directory: str = "", too_large: str | None = None) -> bytes:
    """The bytes of a regular file named on the command line, or one line of BadInput:
    missing, a directory, not a regular file (/dev/zero would be read without end, a
    FIFO would block), above MAX_IMAGE (refused unread), unreadable.  `head` starts
    each message (default: the path); `not_regular`, `directory` and `too_large` end
    those messages with what the caller expected."""
    p = Path(path)
    head = head or str(p)
    try:
        st = os.stat(p)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(f"{head}: not a regular file (a device, FIFO or socket){not_regular}")
        if st.st_size > MAX_IMAGE:
            raise BadInput(f"{head}: {st.st_size:,} bytes, "
                           + (too_large or f"larger than any image neve loads ({MAX_IMAGE >> 30} GiB)"))
        return p.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{head}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{head}: is a directory{directory}") from None
    except OSError as e:
        raise BadInput(f"{head}: cannot read: {e.strerror}") from None


def load(path: str | os.PathLike) -> Image:
    p = Path(path)
    raw = read_regular(p, not_regular="; neve loads ELF files", directory=", not an ELF image")
    if len(raw) < 16 or raw[:4] != b"\x7fELF":
        raise BadInput(f"{p}: not an ELF file")
    if raw[4] == 1:
        raise BadInput(f"{p}: 32-bit ELF (ELFCLASS32); neve runs ELF64 AArch64 images")
    if raw[4] != 2:
        raise BadInput(f"{p}: unknown ELF class {raw[4]}")
    if raw[5] != 1:
        raise BadInput(f"{p}: big-endian ELF; neve runs little-endian AArch64 images")
    if len(raw) < 64:
        raise BadInput(f"{p}: truncated ELF header ({len(raw)} bytes)")
    e_type, e_machine = struct.unpack_from("<HH", raw, 16)
    if e_machine != EM_AARCH64:
        what = _MACHINES.get(e_machine, f"machine {e_machine}")
        raise BadInput(f"{p}: ELF for {what}, not AArch64")
    if e_type not in (2, 3):  # ET_EXEC, ET_DYN
        raise BadInput(f"{p}: ELF type {e_type} is not an executable")
    e_entry, e_phoff = struct.unpack_from("<QQ", raw, 24)
    e_phentsize, e_phnum = struct.unpack_from("<HH", raw, 54)
    if e_phnum == 0:
        raise BadInput(f"{p}: no program headers")
    if e_phentsize != 56 or e_phoff + e_phnum * 56 > len(raw):
        raise BadInput(f"{p}: truncated ELF (program headers end past the file)")
    e_shoff, = struct.unpack_from("<Q", raw, 40)
    e_shentsize, e_shnum = struct.unpack_from("<HH", raw, 58)
    if e_shoff and e_shoff + e_shnum * e_shentsize > len(raw):
        raise BadInput(f"{p}: truncated ELF (section headers end at {e_shoff + e_shnum * e_shentsize:#x}, "
                       f"file has {len(raw):#x})")
    # Program headers are checked here; lief then gives the segments and symbols.
    loads: list[tuple[int, int, int]] = []          # (paddr, end, index)
    for i in range(e_phnum):
        p_type, _flags, off, _va, pa, filesz, memsz = struct.unpack_from("<IIQQQQQ", raw, e_phoff + i * 56)
        if p_type == PT_LOAD:
            if off + filesz > len(raw):
                raise BadInput(f"{p}: truncated ELF (segment {i} needs bytes up to {off + filesz:#x}, "
                               f"file has {len(raw):#x})")
            if filesz > memsz:
                raise BadInput(f"{p}: segment {i} has p_filesz > p_memsz")
            if memsz:
                loads.append((pa, pa + memsz, i))
    # Overlapping segments would make what the guest sees depend on the order of
    # loading; QEMU refuses overlapping ROM regions, and so does neve.
    loads.sort()
    for (lo0, hi0, i0), (lo1, hi1, i1) in zip(loads, loads[1:]):
        if lo1 < hi0:
            raise BadInput(f"{p}: segments {i0} and {i1} overlap ({lo0:#x}-{hi0:#x} and {lo1:#x}-{hi1:#x})")
    import lief

    lief.logging.disable()
    with warnings.catch_warnings():
        # lief's enums warn about values they do not name (an unknown p_type or
        # symbol type); those are not errors, and only the one-line kind reach the user.
        warnings.simplefilter("ignore")
        return _from_lief(p, lief, lief.ELF.parse(str(p)))


def _from_lief(p: Path, lief, elf) -> Image:
    if elf is None:
        raise BadInput(f"{p}: malformed ELF")
    segs = []
    for s in elf.segments:
        if s.type != lief.ELF.Segment.TYPE.LOAD or s.virtual_size == 0:
            continue
        data = bytes(s.content)[: s.physical_size]
        flags = "".join(c if s.has(f) else "-" for c, f in (
            ("r", lief.ELF.Segment.FLAGS.R), ("w", lief.ELF.Segment.FLAGS.W), ("x", lief.ELF.Segment.FLAGS.X)))
        segs.append(Segment(s.virtual_address, s.physical_address, data, s.virtual_size, flags))
    if not segs:
        raise BadInput(f"{p}: no loadable segments")
    syms = {}
    for s in elf.symtab_symbols:
        name = s.name
        if isinstance(name, bytes):         # lief gives bytes for a name that is not UTF-8
            name = name.decode("utf-8", "backslashreplace")
        if name and s.value and s.type in (lief.ELF.Symbol.TYPE.FUNC, lief.ELF.Symbol.TYPE.NOTYPE,
                                           lief.ELF.Symbol.TYPE.OBJECT):
            if not name.startswith("$"):
                syms[name] = s.value
    entry = elf.entrypoint
    if not any(sg.vaddr <= entry < sg.vaddr + sg.memsz and "x" in sg.flags for sg in segs) and \
            not any(sg.vaddr <= entry < sg.vaddr + sg.memsz for sg in segs):
        raise BadInput(f"{p}: entry point {entry:#x} is outside the loaded segments")
    return Image(p, entry, segs, syms)
