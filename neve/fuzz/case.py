"""A fuzz case: what the harness image (firmware/fuzz/harness.S) runs, and how it is
written into a copy of that image.

A case is two programs of slots.  Region A runs where the image starts: at EL1 in
vm mode, at EL2 on a guest-hypervisor run, where its *epilogue* slots then
configure the nested VM (HCR_EL2, stage 2, ...) before the harness enters region
B at EL1 with an ERET.  In vm mode region B runs at EL1 right after A.  A slot is
up to 15 instructions and `bl report`; its flag asks report to print x0.

The harness prints one line per shown value and per exception, naming the region
and slot ("a03", "b1f"), so two transcripts locate the first slot they disagree
on; `Case.describe(line)` says what that slot does.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from neve.core import elf
from neve.fuzz import a64

ROOT = Path(__file__).resolve().parent.parent.parent
HARNESS = ROOT / "images" / "fuzz.elf"

MAGIC = b"NEVEFUZ1"
CASE_SIZE = 0x20000
SLOT_BYTES = 64
SLOT_WORDS = SLOT_BYTES // 4
REGION_SLOTS = 128
OFF_FLAGS_A, OFF_FLAGS_B = 0x100, 0x200
OFF_A, OFF_B = 0x1000, 0x3000
OFF_DATA, DATA_PAGES = 0x5000, 4
OFF_POOL = 0x9000
POOL_PAGES = (CASE_SIZE - OFF_POOL) // 0x1000


@dataclass(frozen=True)
class Layout:
    """Addresses in the harness image, from its symbols."""

    case: int
    after_a: int
    enter_l2: int
    done_b: int
    report: int
    image_start: int
    harness_data: int        # the page of started_el2 / exc_count
    vectors_el1: int
    vectors_el2: int

    @property
    def region_a(self) -> int:
        return self.case + OFF_A

    @property
    def region_b(self) -> int:
        return self.case + OFF_B

    @property
    def data(self) -> int:
        return self.case + OFF_DATA

    @property
    def pool(self) -> int:
        return self.case + OFF_POOL

    def slot_addr(self, region: str, idx: int) -> int:
        return (self.region_a if region == "a" else self.region_b) + idx * SLOT_BYTES


_layouts: dict[Path, tuple[Layout, bytes, int]] = {}


def template(path: Path = HARNESS) -> tuple[Layout, bytes, int]:
    """(layout, the image's bytes, file offset of fuzz_case) of a harness image."""
    path = Path(path)
    hit = _layouts.get(path)
    if hit is not None:
        return hit
    im = elf.load(path)
    s = im.symbols
    lay = Layout(case=s["fuzz_case"], after_a=s["after_a"], enter_l2=s["enter_l2"], done_b=s["done_b"],
                 report=s["report"], image_start=s["__image_start"], harness_data=s["started_el2"] & ~0xFFF,
                 vectors_el1=s["vectors_el1"], vectors_el2=s["vectors_el2"])
    raw = path.read_bytes()
    off = _file_offset(raw, lay.case)
    if raw[off:off + CASE_SIZE] != bytes(CASE_SIZE) and raw[off:off + 8] != MAGIC:
        raise ValueError(f"{path}: fuzz_case is not an empty case")
    _layouts[path] = (lay, raw, off)
    return _layouts[path]


def _file_offset(raw: bytes, vaddr: int) -> int:
    phoff, = struct.unpack_from("<Q", raw, 0x20)
    phnum, = struct.unpack_from("<H", raw, 0x38)
    for i in range(phnum):
        p_type, _f, off, va, _pa, filesz, _m = struct.unpack_from("<IIQQQQQ", raw, phoff + i * 56)
        if p_type == 1 and va <= vaddr and vaddr + CASE_SIZE <= va + filesz:
            return off + vaddr - va
    raise ValueError(f"fuzz_case at {vaddr:#x} is not inside a loaded segment")


@dataclass
class Slot:
    words: list[int]
    show: bool = False           # print x0 after the slot
    note: str = ""               # what the slot does, for reports

    def __post_init__(self) -> None:
        if len(self.words) > SLOT_WORDS - 1:
            raise ValueError(f"slot of {len(self.words)} instructions ({self.note})")


@dataclass
class Case:
    seed: int
    a: list[Slot] = field(default_factory=list)
    epilogue: list[Slot] = field(default_factory=list)
    b: list[Slot] = field(default_factory=list)
    l2_spsr: int = 0x3C5                     # EL1h, DAIF masked
    limit: int = 256                          # exceptions before the harness powers off
    data: bytes = bytes(DATA_PAGES * 0x1000)  # initial content of the data pages
    pool: dict[int, bytes] = field(default_factory=dict)   # page-table pages: pool index -> 4 KiB
    note: str = ""

    def check(self) -> None:
        if len(self.a) + 1 + len(self.epilogue) + 1 > REGION_SLOTS:
            raise ValueError("region A overflows")
        if len(self.b) + 1 > REGION_SLOTS:
            raise ValueError("region B overflows")
        for i in self.pool:
            if not 0 <= i < POOL_PAGES:
                raise ValueError(f"pool page {i} out of range")

    # --- the slot a transcript line names -------------------------------------------------
    def slot(self, region: str, idx: int) -> Slot | None:
        if region == "b":
            return self.b[idx] if idx < len(self.b) else None
        if idx < len(self.a):
            return self.a[idx]
        j = idx - len(self.a) - 1
        return self.epilogue[j] if 0 <= j < len(self.epilogue) else None

    def blob(self, lay: Layout) -> bytes:
        self.check()
        out = bytearray(CASE_SIZE)
        epi = lay.slot_addr("a", len(self.a) + 1)
        struct.pack_into("<8sQQQQ", out, 0, MAGIC, self.l2_spsr, self.limit, self.seed & (2**64 - 1), epi)
        a_slots = self.a + [None] + self.epilogue + [None]
        for i, s in enumerate(a_slots):
            if s is not None and s.show:
                out[OFF_FLAGS_A + i] = 1
        for i, s in enumerate(self.b):
            if s.show:
                out[OFF_FLAGS_B + i] = 1
        self._write_region(out, lay, "a", a_slots, {len(self.a): lay.after_a,
                                                     len(a_slots) - 1: lay.enter_l2})
        self._write_region(out, lay, "b", self.b + [None], {len(self.b): lay.done_b})
        out[OFF_DATA:OFF_DATA + len(self.data)] = self.data
        for i, page in self.pool.items():
            o = OFF_POOL + i * 0x1000
            out[o:o + len(page)] = page
        return bytes(out)

    @staticmethod
    def _write_region(out: bytearray, lay: Layout, region: str, slots: list, branches: dict) -> None:
        base = OFF_A if region == "a" else OFF_B
        for i, s in enumerate(slots):
            addr = lay.slot_addr(region, i)
            words = [a64.NOP] * SLOT_WORDS
            if s is None:
                words[0] = a64.b(addr, branches[i])
            else:
                words[:len(s.words)] = s.words
                words[-1] = a64.b(addr + 4 * (SLOT_WORDS - 1), lay.report, link=True)
            struct.pack_into(f"<{SLOT_WORDS}I", out, base + i * SLOT_BYTES, *words)

    def write(self, path: Path, harness: Path = HARNESS) -> Path:
        lay, raw, off = template(harness)
        img = bytearray(raw)
        img[off:off + CASE_SIZE] = self.blob(lay)
        path = Path(path)
        path.write_bytes(bytes(img))
        return path

    def listing(self) -> str:
        """One line per slot: where it is and what it does."""
        lines = [f"case {self.seed:#x}: {self.note}".rstrip(": ")]
        for region, slots in (("a", self.a + [None] + self.epilogue), ("b", self.b)):
            for i, s in enumerate(slots):
                if s is not None:
                    lines.append(f"  {region}{i:02x}{'*' if s.show else ' '} {s.note}")
        lines.append(f"  L2 SPSR {self.l2_spsr:#x}")
        return "\n".join(lines)
