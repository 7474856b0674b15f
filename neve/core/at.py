"""AT (address translation) instructions, emulated at every level with neve's walker.

Unicorn's own AT walks with the hardware's EL1 registers and no stage 2 of L1's, so in
the nested VM it read stage-1 tables straight from the physical page behind an IPA
that L1's stage 2 does not map (an isolation leak: issue 16, defect 4), and at
virtual EL2 it translated with vEL2's own regime.  Here every AT is a walk of the
right regime, whose descriptor reads reach only RAM the guest owns:

* the VM (vm mode), and the nested VM: AT S1E1R/W, S1E0R/W of its EL1&0 regime.  In the
  nested VM the stage-1 table walk goes through L1's stage 2; a stage-2 fault there
  is an exception to vEL2 (EC 0x24, CM and S1PTW set, HPFAR_EL2 the descriptor's IPA),
  as on QEMU; a descriptor outside L1's memory is an external abort on the walk.
* vEL2: AT S1E2R/W (the EL2 regime), S1E1*/S1E0* of the nested context (walks
  through L1's stage 2 when HCR_EL2.VM, faults reported in PAR_EL1), S12E1*/S12E0*
  (both stages).  They trap to L0 (FEAT_NV: HCR_EL2.NV, and HCR_EL2.AT for S1E1*).

PAR_EL1 is written as QEMU 10 writes it: bit 11 set; on success the PA, NS (bit 9),
ATTR (the MAIR encoding, stage 1 combined with stage 2 for S12) and SH (0b10 for
Device and Normal Non-cacheable); on a fault F, FST, PTW and S.  The CPU model
(ARMv8.0) has no AT S1E1RP/WP or S1E3*: those are UNDEFINED below EL3.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from neve.arch import decode, mmu, model, sysregs
from neve.observe import events as ev
from neve.errors import Unsupported
from neve.arch.platform import RAM_BASE

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine

# (op1, CRm, op2) -> (name, EL of the permissions, write, stages: "s1" | "s12" | "el2")
OPS = {
    (0, 8, 0): ("S1E1R", 1, False, "s1"), (0, 8, 1): ("S1E1W", 1, True, "s1"),
    (0, 8, 2): ("S1E0R", 0, False, "s1"), (0, 8, 3): ("S1E0W", 0, True, "s1"),
    (4, 8, 0): ("S1E2R", 2, False, "el2"), (4, 8, 1): ("S1E2W", 2, True, "el2"),
    (4, 8, 4): ("S12E1R", 1, False, "s12"), (4, 8, 5): ("S12E1W", 1, True, "s12"),
    (4, 8, 6): ("S12E0R", 0, False, "s12"), (4, 8, 7): ("S12E0W", 0, True, "s12"),
}

_KEY_PAR = sysregs.BY_NAME["PAR_EL1"].key
HCR_VM, HCR_DC, HCR_RW, HCR_CD = 1 << 0, 1 << 12, 1 << 31, 1 << 32
PAR_F, PAR_PTW, PAR_S, PAR_NS, PAR_RES1 = 1, 1 << 8, 1 << 9, 1 << 9, 1 << 11


def par_success(pa: int, attrs: int, sh: int) -> int:
    if attrs & 0xF0 == 0 or attrs in (0x44, 0x40):
        sh = 2                        # Device and Normal Non-cacheable: Outer Shareable
    return PAR_RES1 | (pa & 0xFFFF_FFFF_F000) | PAR_NS | attrs << 56 | sh << 7


def par_fault(f: mmu.Fault) -> int:
    return PAR_RES1 | PAR_F | f.fsc << 1 | (PAR_PTW if f.s1ptw else 0) | (PAR_S if f.stage == 2 else 0)


def _s2_attrs(hcr: int, s2: int) -> int:
    """Stage 2 MemAttr[3:0] as a MAIR byte (with RW-allocate hints for cacheable)."""
    hi, lo = (s2 >> 2) & 3, s2 & 3
    hih = loh = 0
    if hi:
        if hcr & HCR_CD:
            hi = lo = 1
        else:
            hih = 3 if hi != 1 else 0
            loh = 3 if lo != 1 else 0
    return hi << 6 | hih << 4 | lo << 2 | loh


def _nibble(s1: int, s2: int) -> int:
    if s1 == 4 or s2 == 4:
        return 4                                  # Non-cacheable has precedence
    if (s1 >> 2) in (0, 2):
        return s1                                 # stage 1 write-through
    if (s2 >> 2) == 2:
        return 2 << 2 | (s1 & 3)                  # stage 2 write-through, stage 1 hints
    return s1


def combine(hcr: int, s1attrs: int, s1sh: int, s2memattr: int, s2sh: int) -> tuple[int, int]:
    """Stage 1 and stage 2 attributes combined (HCR_EL2.FWB = 0): (MAIR byte, SH)."""
    s2a = _s2_attrs(hcr, s2memattr)
    if s1attrs & 0xF0 == 0 or s2a & 0xF0 == 0:   # Device has precedence
        lo = min(s1attrs & 0xC if s1attrs & 0xF0 == 0 else 0xC, s2a & 0xC if s2a & 0xF0 == 0 else 0xC)
        attrs = lo
    else:
        attrs = _nibble(s1attrs >> 4, s2a >> 4) << 4 | _nibble(s1attrs & 0xF, s2a & 0xF)
    sh = 2 if 2 in (s1sh, s2sh) else 3 if 3 in (s1sh, s2sh) else 0
    return attrs, sh


class _WalkFault(Exception):
    """A stage-2 fault of a stage-1 descriptor read."""

    def __init__(self, fault: mmu.Fault):
        self.fault = fault


def _through(read, s2):
    """A descriptor reader for a stage-1 walk whose table addresses are IPAs."""
    def rd(ipa: int) -> int:
        r = s2(ipa)
        if isinstance(r, mmu.Fault):
            raise _WalkFault(mmu.Fault(r.kind, r.level, 2, True, ipa))
        return read(r.pa)
    return rd


def _ram_reader(m: Machine):
    end = RAM_BASE + m.ram_size

    def rd(pa: int) -> int:
        if not (RAM_BASE <= pa and pa + 8 <= end):
            raise mmu.ExternalAbort(pa)
        o = pa - RAM_BASE
        return int.from_bytes(m.ram[o:o + 8], "little")
    return rd


_EL1_KEYS = {n: sysregs.BY_NAME[n].key for n in ("SCTLR_EL1", "TCR_EL1", "TTBR0_EL1", "TTBR1_EL1", "MAIR_EL1")}


def translate(m: Machine, op: tuple, va: int) -> tuple[str, object]:
    """("par", PAR_EL1) or ("abort", mmu.Fault): a fault the architecture takes as an
    exception rather than reporting in PAR_EL1 (a stage-2 fault of the stage-1 walk
    of an AT S1E1*/S1E0* executed at EL1; an external abort on a table walk)."""
    name, el, write, kind = OPS[op]
    v = m.vel2
    at_vel2 = v is not None and v.active
    read = _ram_reader(m)                     # the guest's (L1's) physical memory: RAM only
    if kind == "el2":
        regime = mmu.Stage1Regime.el2(v.get("SCTLR_EL2"), v.get("TCR_EL2"), v.get("TTBR0_EL2"), v.get("MAIR_EL2"),
                                      pamax=model.PA_BITS)
        t = mmu.walk_stage1(read, regime, va, write=write, el=2)
        return _result(t, t, at_vel2)
    cpu = m.cpu
    g = v.get if at_vel2 else (lambda n: cpu.cpr_read(*_EL1_KEYS[n]))
    hcr = v.get("HCR_EL2") if v is not None else 0
    if at_vel2 and not hcr & HCR_RW:
        # L1 made EL1 AArch32: the EL1&0 regime is the AArch32 one, which neve lacks.
        raise Unsupported(f"AT {name} of an AArch32 EL1&0 regime (HCR_EL2.RW = 0)", cpu.pc)
    # HCR_EL2.DC: stage 1 behaves as disabled (Normal Write-Back), and VM as 1.
    regime = mmu.Stage1Regime.el10(g("SCTLR_EL1") & ~(1 if hcr & HCR_DC else 0), g("TCR_EL1"), g("TTBR0_EL1"),
                                   g("TTBR1_EL1"), g("MAIR_EL1"), pamax=model.PA_BITS)
    s2 = (mmu.stage2_translator(read, v.get("VTCR_EL2"), v.get("VTTBR_EL2"), pamax=model.PA_BITS)
          if hcr & (HCR_VM | HCR_DC) else None)
    try:
        t = mmu.walk_stage1(_through(read, s2) if s2 is not None else read, regime, va, write=write, el=el)
    except _WalkFault as e:
        f = e.fault
        t = mmu.Fault(f.kind, f.level, 2, True, f.ipa, va, write, False)
    if isinstance(t, mmu.Fault):
        return _result(t, None, at_vel2)
    attrs, sh = t.attrs, t.sh if regime.mmu_enabled else 0
    if not regime.mmu_enabled and hcr & HCR_DC:
        attrs = 0xFF                              # HCR_EL2.DC: Normal Write-Back
    if kind == "s12" and s2 is not None:
        r = s2(t.pa, write=write)
        if isinstance(r, mmu.Fault):
            return _result(mmu.Fault(r.kind, r.level, 2, False, t.pa, va, write, False), None, at_vel2)
        attrs, sh = combine(hcr, attrs, sh, r.attrs, r.sh)
        return "par", par_success(r.pa, attrs, sh)
    return "par", par_success(t.pa, attrs, sh)


def _result(t, ok, at_vel2: bool) -> tuple[str, object]:
    if isinstance(t, mmu.Fault):
        if t.kind == "external" or (t.s1ptw and not at_vel2):
            return "abort", t
        return "par", par_fault(t)
    return "par", par_success(ok.pa, ok.attrs, ok.sh)


def execute(m: Machine, op: tuple, va: int, pc: int, insn: int) -> bool:
    """Run the AT at `pc`.  Returns False when PAR_EL1 was written (the caller moves PC
    on), True when an exception was taken instead."""
    kind, res = translate(m, op, va)
    if kind == "par":
        m.cpu.cpr_write(*_KEY_PAR, res)
        return False
    f = res
    # Reported as a data abort on a walk for a cache maintenance / AT instruction:
    # CM = 1, WnR = 1 (syn_data_abort_no_iss in QEMU).
    iss = decode.ISS_CM | decode.ISS_WNR | (decode.ISS_S1PTW if f.s1ptw else 0) | f.fsc
    v = m.vel2
    if f.stage == 2 and v is not None and not v.active:
        m.trap(ev.ABORT, "stage-2 data abort", "r", f.ipa, pc=pc, insn=insn, forwarded=True,
               reason=f"{mmu.describe(f)} in L1's stage 2 during the stage-1 walk of an AT: forwarded to vEL2")
        v.exit_to_vel2(decode.esr(decode.EC_DABT_LOW, iss), pc, far=va, hpfar=f.hpfar, why="stage-2 abort (AT)")
        return True
    ec = decode.EC_DABT_CUR if m.cpu.el() != 0 else decode.EC_DABT_LOW
    m.deliver_sync(decode.esr(ec, iss), pc, va)
    return True
