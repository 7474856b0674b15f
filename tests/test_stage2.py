"""Shadow stage 2 (neve/el2/stage2.py): unit tests on tables built in guest RAM, and
end-to-end runs of small plain-asm guest hypervisors in the three nested modes."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import IMAGES
from neve.core import elf
from neve.observe import events as ev
from neve.arch import mmu
from neve.core.machine import Machine
from neve.arch.platform import RAM_BASE

NESTED = ("v8.3", "neve", "nv2")
HERE = Path(__file__).resolve().parent / "stage2_src"

# S2 descriptors: block/page, MemAttr normal WB, S2AP RW, SH inner, AF.
S2_BLOCK = 0x7FD
S2_PAGE = 0x7FF
S2_TABLE = 3
VTCR_4K_L1 = 0x8002_3560            # T0SZ=32, SL0=1, 4K, PS=40 bits


def _machine(mode="v8.3") -> Machine:
    """A machine whose image is a branch-to-self at RAM_BASE (never run)."""
    return Machine([_tiny_image()], mode=mode, max_insns=10, uart_out=lambda b: None)


_TINY = None


def _tiny_image():
    global _TINY
    if _TINY is None:
        _TINY = elf.Image.__new__(elf.Image)
    return _fake_image()


def _fake_image():
    seg = elf.Segment.__new__(elf.Segment)
    for k, v in dict(paddr=RAM_BASE, vaddr=RAM_BASE, memsz=4, data=b"\x00\x00\x00\x14", flags=7).items():
        object.__setattr__(seg, k, v)
    im = elf.Image.__new__(elf.Image)
    for k, v in dict(path="tiny", entry=RAM_BASE, segments=[seg], symbols={}).items():
        object.__setattr__(im, k, v)
    return im


def w64(m, pa, v):
    o = pa - RAM_BASE
    m.ram[o:o + 8] = v.to_bytes(8, "little")


def setup_s2(m, vmid=1, l1=0x4010_0000):
    """L1's stage 2 (4K granule, level-1 start, 32-bit IPA) at PA l1:
    IPA 0x80000000 1 GiB block -> PA 0x40000000; IPA 0x0 -> level 2 table with
    IPA 0x0a000000 -> level-3 table: page 0 -> PA 0x40300000, page 1 -> same (alias),
    page 2 -> PA 0x40301000 read-only, page 3 -> AF clear; IPA 0x0a200000 2 MiB block
    -> PA 0x40400000; IPA 0xc0000000 -> PA 0x1_0000_0000 (outside RAM)."""
    l2, l3 = l1 + 0x1000, l1 + 0x2000
    w64(m, l1 + 0, l2 | S2_TABLE)
    w64(m, l1 + 16, 0x4000_0000 | S2_BLOCK)
    w64(m, l1 + 24, 0x1_0000_0000 | S2_BLOCK)
    w64(m, l2 + 8 * 0x50, l3 | S2_TABLE)
    w64(m, l2 + 8 * 0x51, 0x4040_0000 | S2_BLOCK)
    w64(m, l3 + 0, 0x4030_0000 | S2_PAGE)
    w64(m, l3 + 8, 0x4030_0000 | S2_PAGE)
    w64(m, l3 + 16, 0x4030_1000 | (S2_PAGE & ~0x80))     # S2AP = 01: read-only
    w64(m, l3 + 24, 0x4030_4000 | (S2_PAGE & ~0x400))    # AF = 0
    v = m.vel2
    v.set("VTTBR_EL2", l1 | vmid << 48)
    v.set("VTCR_EL2", VTCR_4K_L1)
    v.s2.cur = v.s2.context(v.get("VTTBR_EL2"), v.get("VTCR_EL2"))
    return v.s2.cur


# --- unit: the shadow ----------------------------------------------------------------------
def test_blocks_pages_alias_and_lazy_fill():
    m = _machine()
    s2 = m.vel2.s2
    setup_s2(m)
    assert s2.entries() == 0                                  # lazily built
    assert s2.translate_ipa(0x8123_4568)[0] == 0x4123_4568    # 1 GiB block
    assert s2.translate_ipa(0x0A20_0010)[0] == 0x4040_0010    # 2 MiB block
    assert s2.translate_ipa(0x0A00_0008)[0] == 0x4030_0008    # 4 KiB page
    assert s2.translate_ipa(0x0A00_1008)[0] == 0x4030_0008    # alias
    assert s2.entries() == 4 and s2.counters["s2_walks"] == 4
    s2.translate_ipa(0x8000_0000)                             # same 1 GiB leaf: a hit
    assert s2.counters["s2_walks"] == 4 and s2.counters["s2_hits"] == 1


@pytest.mark.parametrize("ipa, write, kind, level", [
    (0x4000_0000, False, "translation", 1),
    (0x0900_0000, True, "translation", 2),
    (0x0A00_2000, True, "permission", 3),
    (0x0A00_3000, False, "access_flag", 3),
])
def test_stage2_faults(ipa, write, kind, level):
    m = _machine()
    setup_s2(m)
    f = m.vel2.s2.translate_ipa(ipa + 0x18, write=write)
    assert isinstance(f, mmu.Fault) and (f.kind, f.level, f.stage) == (kind, level, 2)
    assert f.hpfar == ((ipa >> 12) << 4)
    assert f.fsc == mmu.fault_to_fsc(kind, level)


def test_permission_from_cached_leaf():
    m = _machine()
    s2 = m.vel2.s2
    setup_s2(m)
    assert s2.translate_ipa(0x0A00_2000)[0] == 0x4030_1000     # read fills the RO leaf
    f = s2.translate_ipa(0x0A00_2000, write=True)              # the write faults from the cache
    assert isinstance(f, mmu.Fault) and f.kind == "permission" and f.level == 3
    assert s2.counters["s2_walks"] == 1


def test_tlbi_ipa_is_narrow_and_remap_seen():
    m = _machine()
    s2 = m.vel2.s2
    setup_s2(m)
    for ipa in (0x8000_0000, 0x0A00_0000, 0x0A00_1000, 0x0A20_0000):
        s2.translate_ipa(ipa)
    w64(m, 0x4010_2000, 0x4030_2000 | S2_PAGE)                 # L1 remaps page 0
    assert s2.translate_ipa(0x0A00_0000)[0] == 0x4030_0000     # stale until the TLBI (allowed)
    s2.tlbi("TLBI IPAS2E1IS", 0x0A00_0000 >> 12)
    assert s2.counters["ipa_drops"] == 1 and s2.entries() == 3
    assert s2.counters["vmid_flushes"] == 0 and s2.counters["all_flushes"] == 0
    assert s2.translate_ipa(0x0A00_0000)[0] == 0x4030_2000
    assert s2.translate_ipa(0x0A00_1000)[0] == 0x4030_0000     # the alias was not touched
    s2.tlbi("TLBI IPAS2LE1", 0x9000_0000 >> 12)                # inside the 1 GiB block
    assert s2.counters["ipa_drops"] == 2
    s2.tlbi("TLBI VMALLS12E1IS", 0)
    assert s2.entries() == 0 and s2.counters["vmid_flushes"] == 1


def test_vmids_and_alle1_and_vttbr_change():
    m = _machine()
    s2 = m.vel2.s2
    v = m.vel2
    setup_s2(m, vmid=1)
    s2.translate_ipa(0x8000_0000)
    s2.cur = s2.context(v.get("VTTBR_EL2") & ~(0xFF << 48) | 2 << 48, VTCR_4K_L1)   # VMID 2, same tables
    s2.translate_ipa(0x8000_0000)
    assert len(s2.vmids) == 2 and s2.entries() == 2
    s2.tlbi("TLBI VMALLS12E1", 0)                              # current VMID (VTTBR_EL2 still says 1)
    assert len(s2.vmids[1]) == 0 and len(s2.vmids[2]) == 1
    # Same VMID, same base: kept; a new base for VMID 2: dropped.
    s2.cur = s2.context(0x4010_0000 | 2 << 48, VTCR_4K_L1)
    assert len(s2.cur) == 1
    s2.cur = s2.context(0x4020_0000 | 2 << 48, VTCR_4K_L1)
    assert len(s2.cur) == 0 and s2.counters["vmid_flushes"] == 2
    s2.tlbi("TLBI ALLE1OS", 0)
    assert not s2.vmids


@pytest.mark.parametrize("tg, gb", [(2, 14), (1, 16)])
def test_16k_64k_granules(tg, gb):
    m = _machine()
    s2 = m.vel2.s2
    v = m.vel2
    # 32-bit IPA; level 2 start for 16K (32 MiB blocks) and for 64K (512 MiB blocks).
    vtcr = 0x8002_0000 | 32 | (tg << 14) | (1 << 6 if gb == 14 else 1 << 6)
    root = 0x4010_0000
    lsb = gb + (gb - 3)                                         # level-2 block size
    idx = 0x8000_0000 >> lsb
    w64(m, root + 8 * idx, 0x4000_0000 | S2_BLOCK)
    v.set("VTTBR_EL2", root | 1 << 48)
    v.set("VTCR_EL2", vtcr)
    s2.cur = s2.context(v.get("VTTBR_EL2"), vtcr)
    assert s2.translate_ipa(0x8000_1238)[0] == 0x4000_1238
    f = s2.translate_ipa(0x4000_0000)
    assert isinstance(f, mmu.Fault) and f.kind == "translation" and f.level == 2


def test_isolation_l0_map():
    m = _machine()
    s2 = m.vel2.s2
    assert s2.l0_backed(RAM_BASE) and s2.l0_backed(RAM_BASE + m.ram_size - 1)
    assert not s2.l0_backed(RAM_BASE + m.ram_size)
    assert s2.l0_backed(0x0900_0000)                            # the PL011 L0 emulates for L1
    assert not s2.l0_backed(0x0C00_0000)                        # QEMU's platform bus: empty, nothing there
    assert not s2.l0_backed(0x0FFF_F000)                        # the ERET net is not memory
    with pytest.raises(mmu.ExternalAbort):
        s2._ram64(0x1_0000_0000)
    # An L1 stage-2 root outside its RAM: external abort on the stage-2 walk.
    m.vel2.set("VTTBR_EL2", 0x2_0000_0000 | 1 << 48)
    s2.cur = s2.context(m.vel2.get("VTTBR_EL2"), VTCR_4K_L1)
    f = s2.translate_ipa(0x8000_0000)
    assert isinstance(f, mmu.Fault) and f.kind == "external" and f.stage == 2


def test_l2_stage1_on_top_and_s1ptw():
    """L2's stage 1 walks IPAs through the shadow: an unmapped table IPA is a stage-2
    fault with S1PTW; a final PA outside L1's RAM is reported as external."""
    m = _machine()
    s2 = m.vel2.s2
    setup_s2(m)
    # L2 stage 1 (EL1 regs in hardware): 4K, T0SZ=32, level 1 start at IPA 0x80500000
    # (PA 0x40500000 via the 1 GiB block).
    t1 = 0x4050_0000
    w64(m, t1 + 0, 0x8050_1000 | 3)                 # VA 0x00000000: table at IPA 0x80501000
    w64(m, t1 + 8, 0x0A00_0000 | 3)                 # VA 0x40000000: table at IPA 0x0a000000 (page 0)
    w64(m, t1 + 16, 0x4000_0000 | 0x701)            # VA 0x80000000: block -> IPA 0x40000000 (unmapped at S2)
    w64(m, t1 + 24, 0xC000_0000 | 0x701)            # VA 0xc0000000: block -> IPA 0xc0000000 (PA outside RAM)
    w64(m, 0x4050_1000 + 8 * 0x50, 0x0A20_0000 | 0x701)   # VA 0x0a000000: 2 MiB -> IPA 0x0a200000
    cpu = m.cpu
    cpu.cpr_write(3, 0, 2, 0, 2, 32 | (1 << 23) | (2 << 32))   # TCR_EL1: T0SZ=32, EPD1, IPS 40
    cpu.cpr_write(3, 0, 2, 0, 0, 0x8050_0000)                  # TTBR0_EL1 (an IPA)
    cpu.cpr_write(3, 0, 10, 2, 0, 0xFF)
    cpu.cpr_write(3, 0, 1, 0, 0, 0x30D0_0801)                  # SCTLR_EL1.M
    r = s2.translate_l2(0x0A00_0010)
    assert r[0] == 0x4040_0010 and r[1] and r[2]
    w64(m, 0x4030_0000, 0)                                     # the table at IPA 0x0a000000 is empty
    f = s2.translate_l2(0x4000_0000)
    assert isinstance(f, mmu.Fault) and f.stage == 1 and f.kind == "translation" and f.level == 2
    f = s2.translate_l2(0x8000_0000, write=True)
    assert isinstance(f, mmu.Fault) and f.stage == 2 and not f.s1ptw and f.ipa == 0x4000_0000
    assert f.level == 1
    assert s2.translate_l2(0xC000_0000) == ("external", 0xC000_0000, 0x1_0000_0000)
    w64(m, t1 + 0, 0x4000_0000 | 3)                            # table IPA unmapped at stage 2
    f = s2.translate_l2(0x0A00_0010)
    assert isinstance(f, mmu.Fault) and f.stage == 2 and f.s1ptw and f.ipa == 0x4000_0000 + 8 * 0x50


def test_el2_regime_descriptors():
    """L1's EL2 stage 1: AP[1] is RES1 (not EL0 access, no implicit PXN), bit 54 is XN."""
    m = _machine()
    v, s2 = m.vel2, m.vel2.s2
    root = 0x4010_0000
    w64(m, root + 8, 0x4000_0000 | 0x741)                       # AP[2:1]=01, AF, SH: RWX at EL2
    w64(m, root + 16, 0x4000_0000 | 0x741 | 1 << 54)            # XN
    v.set("TCR_EL2", 0x8082_3520)
    v.set("TTBR0_EL2", root)
    v.set("MAIR_EL2", 0xFF)
    v.set("SCTLR_EL2", 0x30C5_0831)
    t = s2.translate_el2(0x4000_1000, execute=True)
    assert isinstance(t, mmu.Translation) and t.executable and t.writable
    f = s2.translate_el2(0x8000_1000, execute=True)
    assert isinstance(f, mmu.Fault) and f.kind == "permission" and f.level == 1
    # The same descriptor read as EL1 would be EL0-writable, so not executable at EL1.
    el1 = mmu.Stage1Regime.el10(0x30D0_0801, 0x8082_3520 & 0x3F | 1 << 23 | 2 << 32, root, 0, 0xFF)
    assert not mmu.walk_stage1(s2._ram64, el1, 0x4000_1000, el=1).executable


def test_tlbi_names():
    from neve.el2.stage2 import tlbi_kind
    assert tlbi_kind("TLBI IPAS2E1ISNXS") == "IPAS2E1"
    assert tlbi_kind("TLBI VMALLS12E1OS") == "VMALLS12E1"
    assert tlbi_kind("TLBI ALLE1") == "ALLE1"
    assert tlbi_kind("TLBI VALE2IS") == "VALE2"


# --- end to end ----------------------------------------------------------------------------------
_AS = shutil.which("aarch64-linux-gnu-as")
_LD = shutil.which("aarch64-linux-gnu-ld")
toolchain = pytest.mark.skipif(not (_AS and _LD), reason="aarch64-linux-gnu binutils not installed")


def _build(name: str, tmp: Path) -> Path:
    src = HERE / f"{name}.S"
    obj, out = tmp / f"{name}.o", tmp / f"{name}.elf"
    subprocess.run([_AS, str(src), "-o", str(obj)], check=True)
    subprocess.run([_LD, "-T", str(HERE / f"{name}.ld"), str(obj), "-o", str(out)], check=True)
    return out


def _run(path, mode, max_insns=2_000_000):
    m = Machine([elf.load(str(path))], mode=mode, max_insns=max_insns, uart_out=lambda b: None)
    traps: list[ev.Trap] = []
    m.bus.subscribe(ev.Trap, traps.append)
    r = m.run()
    return m, r, traps


def q(m, pa):
    o = pa - RAM_BASE
    return int.from_bytes(m.ram[o:o + 8], "little")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not (_AS and _LD):
        pytest.skip("aarch64-linux-gnu binutils not installed")
    tmp = tmp_path_factory.mktemp("s2img")
    return {n: _build(n, tmp) for n in ("escape", "el2mmu")}


@toolchain
@pytest.mark.parametrize("mode", NESTED)
def test_escape_attempts(built, mode):
    m, r, traps = _run(built["escape"], mode)
    assert (r.reason, r.status) == ("system-off", 0), r.message
    assert bytes(m.transcript) == b"P\n"                       # passed-through PL011
    # L2's own log: synchronous external aborts at its EL1 (EC 0x25, DFSC 0x10).
    assert [q(m, 0x4031_0008 + 8 * i) for i in range(4)] == [0x9600_0010, 0xC000_0008, 0x9600_0010, 0x0800_0004]
    # L1's log: the stage-2 walk outside its RAM, forwarded with ISV (LDR X4) and HPFAR.
    assert [q(m, 0x4030_0008 + 8 * i) for i in range(3)] == [0x93C4_8017, 0x0A00_0010, 0xA0000]
    aborts = [t for t in traps if t.cls == ev.ABORT]
    assert [(t.name, t.forwarded) for t in aborts] == [
        ("external abort (outside L1's memory)", False), ("external abort (outside L1's memory)", False),
        ("stage-2 data abort", True)]
    assert sum(t.cls == ev.MMIO for t in traps) == 2


@toolchain
@pytest.mark.parametrize("mode", NESTED)
def test_el2_mmu_regime_and_eret_under_translation(built, mode):
    m, r, traps = _run(built["el2mmu"], mode)
    assert (r.reason, r.status) == ("system-off", 0), r.message
    # ESR_EL2 of the fetch from the XN block: EC 0x21, IFSC permission level 1; FAR_EL2.
    assert q(m, 0x4030_0010) == 0x8600_000D
    assert q(m, 0x4030_0018) & 0xFFFF_FF00 == 0xC000_0000
    erets = [t for t in traps if t.cls == ev.ERET]
    assert len(erets) == 2                                      # vEL2->vEL2, then to EL1 from VA != PA
    assert [t.name for t in traps if t.cls == ev.TLBI] == ["TLBI ALLE2"]
    assert m.vel2.s2.counters["tlb_flushes"] == 1


S2HYP = IMAGES / "s2hyp.elf"


@pytest.mark.skipif(not S2HYP.is_file(), reason="images/s2hyp.elf not built")
@pytest.mark.parametrize("mode", NESTED)
def test_s2hyp(mode):
    m, r, traps = _run(S2HYP, mode, max_insns=50_000_000)
    assert (r.reason, r.status) == ("system-off", 0), r.message
    out = m.transcript.decode()
    assert "guest: done, SYSTEM_OFF" in out
    assert "HPFAR_EL2=0x0000000000c02020 FAR_EL2=0x00000000c0202008" in out
    assert "now 0xc0000000: 0xb0b0b0b0b0b0b0b0" in out           # remap + TLBI seen
    aborts = [t for t in traps if t.cls == ev.ABORT]
    assert aborts and all(t.forwarded and t.name.startswith("stage-2") for t in aborts)
    c = m.vel2.s2.counters
    assert c["all_flushes"] == 0 and c["ipa_drops"] >= 1
