"""Shadow stage-2 benchmark: host time per shadow fill / forwarded stage-2 fault /
TLBI, and the memory the shadow holds for a 128 MiB nested VM.

    python tools/bench_stage2.py [--json]
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from neve.core import elf
from neve.core.machine import Machine  # noqa: E402
from neve.arch.platform import RAM_BASE  # noqa: E402

VM_BYTES = 128 << 20
VM_IPA = 0x8000_0000          # the nested VM's RAM in IPA space
VM_PA = RAM_BASE + (64 << 20)  # ... backed by L1's RAM from here (L1 has 256 MiB)


def _machine():
    seg = elf.Segment.__new__(elf.Segment)
    for k, v in dict(paddr=RAM_BASE, vaddr=RAM_BASE, memsz=4, data=b"\x00\x00\x00\x14", flags=7).items():
        object.__setattr__(seg, k, v)
    im = elf.Image.__new__(elf.Image)
    for k, v in dict(path="bench", entry=RAM_BASE, segments=[seg], symbols={}).items():
        object.__setattr__(im, k, v)
    return Machine([im], mode="v8.3", ram_size=256 << 20, max_insns=10, uart_out=lambda b: None)


def _w(m, pa, v):
    o = pa - RAM_BASE
    m.ram[o:o + 8] = v.to_bytes(8, "little")


def build_tables(m, pages: bool) -> None:
    """L1's stage 2 for the 128 MiB VM: 4K pages (64 level-3 tables) or 2 MiB blocks."""
    root, l2 = RAM_BASE + 0x10_0000, RAM_BASE + 0x10_1000
    _w(m, root + 8 * (VM_IPA >> 30), l2 | 3)
    for i in range(VM_BYTES >> 21):
        ipa = VM_IPA + (i << 21)
        if pages:
            l3 = RAM_BASE + 0x20_0000 + (i << 12)
            _w(m, l2 + 8 * ((ipa >> 21) & 511), l3 | 3)
            for j in range(512):
                _w(m, l3 + 8 * j, (VM_PA + (i << 21) + (j << 12)) | 0x7FF)
        else:
            _w(m, l2 + 8 * ((ipa >> 21) & 511), (VM_PA + (i << 21)) | 0x7FD)
    v = m.vel2
    v.set("VTTBR_EL2", root | 1 << 48)
    v.set("VTCR_EL2", 0x8002_3560)
    v.s2.cur = v.s2.context(v.get("VTTBR_EL2"), v.get("VTCR_EL2"))


def bench_fill_and_memory(pages: bool) -> dict:
    m = _machine()
    build_tables(m, pages)
    s2 = m.vel2.s2
    n = VM_BYTES >> 12
    t = time.perf_counter()
    for i in range(n):
        s2.translate_ipa(VM_IPA + (i << 12) + 8)
    fill = time.perf_counter() - t
    walks = s2.counters["s2_walks"]
    t = time.perf_counter()
    for i in range(n):
        s2.translate_ipa(VM_IPA + (i << 12) + 8)
    hit = time.perf_counter() - t
    mem = s2.memory_bytes()
    # TLBI IPAS2E1 on every page, then one VMALLS12E1 after refilling.
    t = time.perf_counter()
    for i in range(n):
        s2.tlbi("TLBI IPAS2E1IS", (VM_IPA + (i << 12)) >> 12)
    tlbi_ipa = (time.perf_counter() - t) / n
    for i in range(n):
        s2.translate_ipa(VM_IPA + (i << 12))
    t = time.perf_counter()
    s2.tlbi("TLBI VMALLS12E1IS", 0)
    vmall = time.perf_counter() - t
    return {"mapping": "4K pages" if pages else "2M blocks", "leaves": walks,
            "us_per_s2_walk_fill": fill / walks * 1e6 if walks else None,
            "us_per_lookup_all_pages": (fill / n) * 1e6, "us_per_hit": hit / n * 1e6,
            "shadow_bytes": mem, "us_per_tlbi_ipas2e1": tlbi_ipa * 1e6, "us_vmalls12e1_full": vmall * 1e6}


def bench_forwarded_faults() -> dict | None:
    """End to end: images/s2hyp.elf (each guest UART access is a forwarded stage-2
    data abort) — host time per forwarded abort and per TLB fill in each mode."""
    img = Path(__file__).resolve().parent.parent / "images" / "s2hyp.elf"
    if not img.is_file():
        return None
    out = {}
    for mode in ("v8.3", "neve", "nv2"):
        m = Machine([elf.load(str(img))], mode=mode, max_insns=50_000_000, uart_out=lambda b: None)
        t = time.perf_counter()
        m.run()
        dt = time.perf_counter() - t
        c = m.vel2.s2.counters
        aborts = m.stats.by_class.get("abort", 0)
        out[mode] = {"seconds": dt, "stage2_aborts": aborts, "fills": c["fills"],
                     "us_per_forwarded_abort_incl_L1_handler": dt / aborts * 1e6 if aborts else None,
                     "traps_per_abort": sum(m.stats.by_class.values()) / aborts if aborts else None}
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    res = {"pages": bench_fill_and_memory(True), "blocks": bench_fill_and_memory(False),
           "s2hyp": bench_forwarded_faults()}
    if "--json" in argv:
        print(json.dumps(res, indent=1))
    else:
        for k, v in res.items():
            print(k, v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
