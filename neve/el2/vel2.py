"""Virtual EL2: the guest hypervisor (L1) runs at EL1 on the hardware but sees EL2.

L0 keeps three sets of state, as a host hypervisor does under FEAT_NV:
* L1's virtual EL2 registers (HCR_EL2, VBAR_EL2, ELR_EL2, ...);
* the EL1 registers of what L1 runs at EL1/EL0 (its nested VM or its host-kernel
  part): while vEL2 runs they live here, while that EL1 code runs they live in the
  hardware;
* the shadow EL1 registers: the values the hardware EL1 needs to run vEL2 code
  (SCTLR_EL2 adapted to SCTLR_EL1, TTBR0_EL2, TCR_EL2 adapted, MAIR_EL2, SP_EL2).

In the neve and nv2 modes the registers the mode turns into memory accesses live in
the page L0 owns (the NEVE log page / the VNCR page) at the offset the register
table gives, so `page` shows exactly what hardware would have written.

Which access traps, which is redirected and which goes to the page is decided by
`sysregs.vel2_access` (the table and the control bits L0 sets for the mode); which
access of the EL1 code is forwarded to vEL2 is decided by the same table evaluated
against L1's own virtual control registers.
"""
from __future__ import annotations

import ctypes
import functools
from types import SimpleNamespace
from typing import TYPE_CHECKING


from unicorn import arm64_const as A

from neve.arch import decode, sysregs
from neve.core import eret, faults
from neve.core.cpu import OP_CP_LOAD, OP_CP_SAVE, OP_REG_LOAD, OP_REG_SAVE, OP_PSTATE, OP_SP_LOAD, OP_SP_SAVE, OP_TLB_FLUSH
from neve.observe import events as ev
from neve.errors import Unsupported
from neve.arch.modes import Access
from neve.arch.exceptions import M_EL1H, PSTATE_DAIF, PSTATE_IL, PSTATE_RESTORED, VEC_CUR_SP0, VEC_CUR_SPX, VEC_LOWER_A64
from neve.el2.stage2 import ShadowStage2
from neve.devices.pmu import EV_EXC_RETURN, EV_EXC_TAKEN
from neve.el2.sysreg import VIRTUAL_CONTROLS, Vel2Sysregs

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine



_PAGE_SLOTS = 4096 // 8              # the page's 64-bit slots come first in the storage
# The EL1 registers that hold vEL2's own regime and FP enable while vEL2 runs, the
# others a world switch into vEL2 sets, and the storage slots of no register that the
# world switches' register programs use.
_REGIME = ("SCTLR_EL1", "TTBR0_EL1", "TCR_EL1", "MAIR_EL1", "CPACR_EL1")
_SHADOW = ("VBAR_EL1", "ELR_EL1", "SPSR_EL1")
_SCRATCH = _REGIME + _SHADOW + ("pstate", "sp", "pc", "zero", "old_pstate")
_REG_SP, _REG_PC, _REG_PSTATE = A.UC_ARM64_REG_SP, A.UC_ARM64_REG_PC, A.UC_ARM64_REG_PSTATE
SCTLR_EL1_RES1 = 0x30D0_0800
# SCTLR_EL2 bits that carry over to SCTLR_EL1 when L0 runs vEL2 on EL1:
# M, A, C, SA, I, WXN, EE.
SCTLR_EL2_TO_EL1 = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 12) | (1 << 19) | (1 << 25)

_HCR = {b: sysregs.ctrl_bit("HCR_EL2", b) for b in sysregs.CTRL_BITS["HCR_EL2"]}
_MDCR_TDE = sysregs.ctrl_bit("MDCR_EL2", "TDE")

_HVC_FORWARDED = {lv: f"HVC from {lv} goes to EL2: L0 forwards it to vEL2" for lv in ("EL0", "EL1")}

# HCR_EL2 controls whose presence marks an EL1 context as a guest L1 virtualizes.
GUEST_HCR_MASK = 0
for _b in ("VM", "FMO", "IMO", "AMO", "TWI", "TWE", "TID1", "TID2", "TID3", "TSC", "TIDCP", "TACR", "TSW",
           "TPCP", "TPU", "TTLB", "TVM", "TRVM", "TDZ", "TERR", "TEA", "TLOR"):
    GUEST_HCR_MASK |= _HCR[_b]



def el2_tcr_to_el1(tcr2: int) -> int:
    """TCR_EL2 (non-VHE) -> TCR_EL1 for the single-range EL2 regime."""
    t0sz = tcr2 & 0x3F
    irgn0 = (tcr2 >> 8) & 3
    orgn0 = (tcr2 >> 10) & 3
    sh0 = (tcr2 >> 12) & 3
    tg0 = (tcr2 >> 14) & 3
    ps = (tcr2 >> 16) & 7
    tbi = (tcr2 >> 20) & 1
    return (t0sz | irgn0 << 8 | orgn0 << 10 | sh0 << 12 | tg0 << 14
            | 1 << 23                 # EPD1: no TTBR1 range at EL2
            | ps << 32 | tbi << 37)


class VirtualEL2(Vel2Sysregs):
    def __init__(self, m: Machine, mode: str, policy=None) -> None:
        self.m = m
        self.cpu = m.cpu
        self.mode = mode
        self.policy = policy
        self.active = True
        self.fast = m.vcpu.fast             # the compiled hooks (neve/core/fastpath.py), if any
        uses_page = (sysregs.MODE_COLUMN[mode] is not None
                     or (policy is not None and Access.MEM in policy.overrides.values()))
        self.offsets: dict[str, int] = {}
        self.sp_el2 = 0
        # Accesses turned into page accesses / redirects (no trap): [mem, redirect]
        # (shared with the compiled hooks, which make most of them).
        self.page_counts = self.fast.state.page_counts if self.fast is not None else (ctypes.c_uint64 * 2)()
        self.controls = sysregs.l0_controls(mode)
        # Per-mode decision for every (encoding, write) at vEL2.
        self.vel2_action: dict[tuple, tuple[sysregs.SysReg, Access, list]] = {}
        next_free = 0x800
        for r in sysregs.REGISTERS:
            for write in (False, True):
                if write and r.access == "ro" or not write and r.access == "wo":
                    continue
                act = policy.access(r, write) if policy is not None else sysregs.vel2_access(r, write, mode)
                reasons = r.trap_reasons(write, self.controls) if act == Access.TRAP else []
                self.vel2_action[(r.key, write)] = (r, act, reasons)
                if act == Access.MEM and uses_page and r.group != "el12" and r.name not in self.offsets:
                    if r.vncr is not None:
                        self.offsets[r.name] = r.vncr
                    else:
                        self.offsets[r.name] = next_free
                        next_free += 8
        # Storage: one 64-bit slot per register.  The page's registers live at their
        # offset in the first 4 KiB (the page itself), every other register after it;
        # a register outside vEL2's own and the nested context (one the CPU model
        # lacks) starts from its reset value.  The compiled hooks read and write the
        # slots directly, with each slot's write mask.
        self.slot: dict[str, int] = {n: off // 8 for n, off in self.offsets.items()}
        for r in sysregs.REGISTERS:
            if r.name not in self.slot:
                self.slot[r.name] = _PAGE_SLOTS + len(self.slot) - len(self.offsets)
        self.slot["SP_EL1"] = _PAGE_SLOTS + len(self.slot) - len(self.offsets)
        # Slots of no register: what a world switch's register program (below) writes
        # into the CPU or reads from it besides the registers' own slots.
        scratch = max(self.slot.values()) + 1
        self.store = (ctypes.c_uint64 * (scratch + len(_SCRATCH)))()
        # The slots a world switch uses, as attributes (self._t.pc, self._t.ESR_EL2...):
        # the scratch ones and a few registers'.
        self._t = SimpleNamespace(**{n: scratch + i for i, n in enumerate(_SCRATCH)},
                                  **{n: self.slot[n] for n in ("VBAR_EL2", "ESR_EL2", "ELR_EL2", "SPSR_EL2",
                                                                "VTTBR_EL2", "HCR_EL2")})
        self.wmask = (ctypes.c_uint64 * len(self.store))(*([sysregs.ALL64] * len(self.store)))
        for r in sysregs.REGISTERS:
            self.wmask[self.slot[r.name]] = r.wmask
        self.page = memoryview(self.store).cast("B")[:4096] if uses_page else None
        # EL1 registers that the hardware swaps on a world switch: those whose
        # access at vEL2 does not reach the hardware register in this mode.
        self.swap = [r for r in sysregs.REGISTERS
                     if r.group in ("el1", "debug") and r.access == "rw" and r.name != "SP_EL1"
                     and any(self.vel2_action.get((r.key, w), (None, Access.NATIVE))[1] != Access.NATIVE for w in (False, True))]
        # The registers L0 keeps for the nested context while vEL2 runs: those it swaps,
        # SP_EL1, and those this mode backs with the page (the timers' under NV2).  A
        # trapped access to any other non-EL2 register (the PMU, debug status...) is
        # made on the one register the hardware has.
        self.context = {r.name for r in self.swap} | {"SP_EL1"} | set(self.offsets)
        # Of those, the ones vEL2 reads natively: the hardware must not show it what L1's
        # EL1 context left there (the others it cannot read, so they stay as they are).
        self._zero = [r for r in self.swap
                      if self.vel2_action.get((r.key, False), (None, Access.NATIVE))[1] == Access.NATIVE]
        self._programs()
        self._control_slots = [self.slot[n] for n in VIRTUAL_CONTROLS]     # (forward_key)
        self._controls: tuple = (None, {})      # vcontrols(): (forward_key, the controls)
        self._trap_why: dict[tuple, str] = {}      # a trapped access's reason, by (encoding, write)
        # The EL2 registers the shadow EL1 registers are computed from, and their values
        # when they last were (_shadow_values).
        self._shadow_src = [self.slot[n] for n in ("VBAR_EL2", "SCTLR_EL2", "TTBR0_EL2", "TCR_EL2",
                                                     "MAIR_EL2", "CPTR_EL2")]
        self._shadow_of: list[int] | None = None
        # SCTLR_EL1 and CPACR_EL1 slots when an entry to EL1 loads them from there.
        swapped = {r.name for r in self.swap}
        self._known_el1 = ((self.slot["SCTLR_EL1"], self.slot["CPACR_EL1"])
                           if {"SCTLR_EL1", "CPACR_EL1"} <= swapped else None)
        for r in sysregs.REGISTERS:
            if r.group not in ("el2", "el12") and r.name not in self.context:
                self.store[self.slot[r.name]] = r.reset
        self._hardware: dict[str, bool] = {}
        self.irq = None             # the interrupt subsystem: connect(), once it is built
        # Shadow stage 2 for the nested VM and L1's own EL2 stage 1 (neve/el2/stage2.py).
        self.s2 = ShadowStage2(m, self)

    def connect(self, irq) -> None:
        """The machine's interrupt and time subsystem (neve/gic/delivery.py), built after
        vEL2 because L1's hyp timer and list registers live in vEL2's registers."""
        self.irq = irq

    # --- storage ---------------------------------------------------------------------
    def get(self, name: str) -> int:
        return self.store[self.slot[name]]

    def set(self, name: str, value: int) -> None:
        self.store[self.slot[name]] = value & 0xFFFF_FFFF_FFFF_FFFF

    def set_active(self, active: bool) -> None:
        """vEL2 runs (True) or what L1 runs at EL1/EL0 does: the compiled hooks'
        table follows, and below vEL2 the tables for L1's trap controls now."""
        self.active = active
        if self.fast is not None:
            self.fast.set_vel2_active(active)
            if not active:
                self.fast.refresh_el()

    def vcontrols(self) -> dict[str, int]:
        fkey = self.forward_key()
        if fkey != self._controls[0]:
            self._controls = (fkey, self.controls_of(fkey))
        return self._controls[1]

    def cntvoff(self) -> int:
        return self.get("CNTVOFF_EL2")

    # --- reset -----------------------------------------------------------------------
    def reset(self) -> None:
        cpu = self.cpu
        for r in sysregs.REGISTERS:
            if r.group in ("el2",):
                self.set(r.name, r.reset)
        self.set("VPIDR_EL2", cpu.read_sysreg("MIDR_EL1"))
        self.set("VMPIDR_EL2", cpu.read_sysreg("MPIDR_EL1"))
        # The EL1 context L1 will run starts from the hardware's reset values.
        for r in self.swap:
            self.set(r.name, cpu.cpr_read(*r.key))
        self.set("SP_EL1", 0)
        self.sp_el2 = 0
        self.set_active(True)
        self._load_shadow()
        cpu.set_pstate(M_EL1H | PSTATE_DAIF)

    # --- world switches' register programs ---------------------------------------------
    def _programs(self) -> None:
        """The register moves of a world switch as data (neve/core/cpu.py OP_*), run
        by the compiled fast path in one call, or by CPU.reg_ops."""
        t, key = self._t, sysregs.BY_NAME
        regime = [(OP_CP_LOAD, key[n].key, getattr(t, n)) for n in _REGIME] + [(OP_TLB_FLUSH, None, 0)]
        shadow = ([(OP_CP_LOAD, r.key, t.zero) for r in self._zero]
                  + [(OP_CP_LOAD, key[n].key, getattr(t, n)) for n in _SHADOW])
        # Into vEL2: L1's EL1 context saved, the shadow EL1 registers vEL2 code runs
        # with (its own regime adapted), then PSTATE, SP_EL2 and the vector.
        self._prog_exit = ([(OP_REG_SAVE, _REG_PSTATE, t.old_pstate)]
                           + [(OP_CP_SAVE, r.key, self.slot[r.name]) for r in self.swap]
                           + [(OP_SP_SAVE, 1, self.slot["SP_EL1"])] + shadow
                           + [(OP_PSTATE, None, t.pstate), (OP_REG_LOAD, _REG_SP, t.sp),
                              (OP_REG_LOAD, _REG_PC, t.pc)] + regime)
        # Out of vEL2: SP_EL2 kept, L1's EL1 context loaded, PSTATE and PC from the ERET.
        self._prog_enter = ([(OP_SP_SAVE, 1, t.sp)]
                            + [(OP_CP_LOAD, r.key, self.slot[r.name]) for r in self.swap]
                            + [(OP_SP_LOAD, 1, self.slot["SP_EL1"]), (OP_PSTATE, None, t.pstate),
                               (OP_REG_LOAD, _REG_PC, t.pc), (OP_TLB_FLUSH, None, 0)])
        self._prog_regime = regime
        self._prog_shadow = shadow          # (at reset, by CPU.reg_ops)
        if self.fast is not None:
            self.fast.state.store = ctypes.addressof(self.store)     # (FastPath.build sets it too)
        # Each as a callable: 0 (None on the Python path, which raises itself) when done.
        self._run_exit, self._run_enter, self._run_regime = (
            self.fast.reg_program(p) if self.fast is not None else functools.partial(self.cpu.reg_ops, p, self.store)
            for p in (self._prog_exit, self._prog_enter, self._prog_regime))

    @staticmethod
    def _program_failed(err: int) -> None:
        raise RuntimeError(f"op {err - 1} of a world switch's register program failed")

    # --- shadow EL1 registers ----------------------------------------------------------
    def _shadow_sctlr(self) -> int:
        return SCTLR_EL1_RES1 | (self.get("SCTLR_EL2") & SCTLR_EL2_TO_EL1)

    def _shadow_values(self) -> None:
        """What the hardware EL1 registers hold while vEL2 code runs, into the
        program's slots (computed again only when the EL2 registers they come from
        changed since the last time)."""
        st = self.store
        src = [st[i] for i in self._shadow_src]
        if src == self._shadow_of:
            return
        self._shadow_of = src
        t = self._t
        st[t.VBAR_EL1] = self.get("VBAR_EL2")  # (informative)
        st[t.ELR_EL1] = eret.ERET_NET
        st[t.SPSR_EL1] = M_EL1H | PSTATE_DAIF
        self._regime_values()

    def _regime_values(self) -> None:
        """vEL2's own translation regime and FP enable, adapted into the EL1 registers."""
        st, t, get = self.store, self._t, self.get
        st[t.SCTLR_EL1] = self._shadow_sctlr()
        st[t.TTBR0_EL1] = get("TTBR0_EL2")
        st[t.TCR_EL1] = el2_tcr_to_el1(get("TCR_EL2"))
        st[t.MAIR_EL1] = get("MAIR_EL2")
        # EL2 FP/SIMD is controlled by CPTR_EL2.TFP; the EL1 equivalent is CPACR_EL1.FPEN.
        st[t.CPACR_EL1] = 0 if (get("CPTR_EL2") >> 10) & 1 else (3 << 20)

    def _load_shadow(self) -> None:
        """Put into the hardware EL1 registers what vEL2 code needs to run (the
        registers of L1's EL1 context are in vEL2's storage by now)."""
        self._shadow_values()
        self.cpu.reg_ops(self._prog_shadow, self.store)
        self._write_regime()

    def _refresh_regime(self) -> None:
        """After L1 wrote one of the registers behind vEL2's regime: takes effect now."""
        if self.active:
            self._write_regime()

    def _write_regime(self) -> None:
        self._regime_values()
        err = self._run_regime()
        if err:
            self._program_failed(err)
        self._regime_synced()

    def _regime_synced(self) -> None:
        """After the EL1 registers and the TLB changed: what follows the regime (with
        SCTLR_EL1 and CPACR_EL1 as an entry to EL1 has just loaded them, when it does)."""
        self.s2.sync()
        if self.active or self._known_el1 is None:
            self.m.regime_changed()
        else:
            st = self.store
            self.m.regime_changed(st[self._known_el1[0]], st[self._known_el1[1]])

    # --- world switches ------------------------------------------------------------------
    def guest_id(self) -> str:
        """The EL1 context L1 runs.  A context L1 gives a VMID or stage 2, or traps
        anything from, is its nested VM; one it runs with none of that (HCR_EL2 = RW
        only, VTTBR_EL2 = 0, as a non-VHE KVM host kernel runs) is L1's own
        host-kernel part."""
        st, t = self.store, self._t
        if st[t.VTTBR_EL2] or st[t.HCR_EL2] & GUEST_HCR_MASK:
            return "nested-VM"
        return "vEL1-host"

    def enter_el1(self, spsr: int, elr: int, pc_of_eret: int | None) -> None:
        cpu = self.cpu
        hcr = self.get("HCR_EL2")
        if hcr & _HCR["E2H"]:
            raise Unsupported("ERET to EL1/EL0 with HCR_EL2.E2H=1 (VHE guest hypervisors)", pc_of_eret)
        if hcr & _HCR["TGE"]:             # to EL1 it is an illegal return (eret() above)
            raise Unsupported("ERET to EL0 with HCR_EL2.TGE=1 (a host's EL0 under a non-VHE EL2)", pc_of_eret)
        if hcr & (_HCR["NV"] | _HCR["NV2"]):
            raise Unsupported("ERET to EL1 with HCR_EL2.NV set (recursive nesting)", pc_of_eret)
        st, t = self.store, self._t
        st[t.pstate] = spsr & 0xFFFF_FFFF
        st[t.pc] = elr
        err = self._run_enter()
        if err:
            self._program_failed(err)
        self.irq.debug.entered_el1()    # (software step of the guest under TDE)
        self.sp_el2 = st[t.sp]
        self.set_active(False)
        self._regime_synced()       # HCR_EL2.VM: the shadow stage 2 (neve/el2/stage2.py);
        #                             SCTLR_EL1.M, HCR_EL2.DC, CPACR_EL1, CPTR_EL2
        self.irq.on_enter_el1()     # L1's ICH_* state -> the shadow list registers (neve/gic/delivery.py)
        gid = self.guest_id()
        self.m.bus.publish(ev.Switch(cpu.icount(), "vEL2", "EL0" if (spsr >> 2) & 3 == 0 else "EL1", elr,
                                     "ERET", gid))
        self.m.guest_resumed(gid)

    def exit_to_vel2(self, esr: int, elr: int, far: int | None = None, kind: int = 0,
                     hpfar: int | None = None, why: str = "", spsr_or: int = 0) -> None:
        """A virtual exception from L1's EL1/EL0 into vEL2 (lower-EL AArch64 vector).
        `spsr_or`: PSTATE bits the saved SPSR has that the hardware PSTATE does not
        hold (IL after an illegal exception return)."""
        cpu = self.cpu
        self.irq.on_exit_to_vel2()  # the shadow list registers -> L1's ICH_* view (neve/gic/delivery.py)
        st, t = self.store, self._t
        self._shadow_values()
        st[t.pstate] = M_EL1H | PSTATE_DAIF
        st[t.sp] = self.sp_el2
        pc = st[t.pc] = (st[t.VBAR_EL2] & ~0x7FF) + VEC_LOWER_A64 + kind
        err = self._run_exit()
        if err:
            self._program_failed(err)
        self.irq.debug.exited_el1()
        ps = st[t.old_pstate]                       # (the program's first read)
        src = "EL0" if (ps >> 2) & 3 == 0 else "EL1"
        self.irq.pmu.event(EV_EXC_TAKEN, (ps >> 2) & 3)
        self.set_active(True)
        self._regime_synced()
        if kind == 0:
            st[t.ESR_EL2] = esr
            if far is not None:
                self.set("FAR_EL2", far)
            if hpfar is not None:
                self.set("HPFAR_EL2", hpfar)
        st[t.ELR_EL2] = elr & 0xFFFF_FFFF_FFFF_FFFF
        st[t.SPSR_EL2] = (ps | spsr_or) & 0xFFFF_FFFF
        self.m.bus.publish(ev.Switch(cpu.icount(), src, "vEL2", pc, why))

    def take_current(self, esr: int, elr: int, far: int | None = None, kind: int = 0, spsr_or: int = 0) -> None:
        """An exception taken at vEL2 to vEL2 (hardware: EL1 to EL1, no L0 involved).
        `spsr_or`: PSTATE bits the saved SPSR has that the hardware PSTATE does not
        hold (IL after an illegal exception return)."""
        cpu = self.cpu
        self.irq.pmu.event(EV_EXC_TAKEN, 2)
        ps = cpu.pstate() | spsr_or
        off = VEC_CUR_SPX if ps & 1 else VEC_CUR_SP0
        if kind == 0:
            self.set("ESR_EL2", esr)
            if far is not None:
                self.set("FAR_EL2", far)
        self.set("ELR_EL2", elr)
        # L1 must see EL2 in SPSR_EL2.M (EL1h/EL1t on the hardware -> EL2h/EL2t).
        self.set("SPSR_EL2", (ps & 0xFFFF_FFFF) + 4 if (ps >> 2) & 3 == 1 else ps & 0xFFFF_FFFF)
        cpu.set_pstate(M_EL1H | PSTATE_DAIF)
        cpu.pc = (self.get("VBAR_EL2") & ~0x7FF) + off + kind

    def deliver_sync(self, esr: int, elr: int, far: int | None, spsr_or: int = 0) -> None:
        if self.active:
            self.take_current(esr, elr, far, spsr_or=spsr_or)
        else:
            self.m.take_el1(esr, elr, far, spsr_or=spsr_or)

    # --- ERET ----------------------------------------------------------------------------
    def eret(self, pc: int | None, insn: int | None) -> None:
        name = eret.ERET_WORDS.get(insn, "ERET") if insn is not None else "ERET"
        self.irq.pmu.event(EV_EXC_RETURN, 2)
        self.m.trap(ev.ERET, name, pc=pc, insn=insn, reason="HCR_EL2.NV set by L0: ERET at EL1 traps to EL2"
                    + ("" if pc is not None else " (caught by the ERET safety net: PC unknown)"), pc_known=pc is not None)
        spsr = self.get("SPSR_EL2")
        elr = self.get("ELR_EL2")
        cpu = self.cpu
        mfield = spsr & 0x1F
        why = eret.illegal_return(spsr, 2, self.get("HCR_EL2"))
        if why == "aarch32":
            raise Unsupported(f"{name} to AArch32 state (SPSR_EL2.M={mfield:#x})", pc)
        if why:
            # Illegal exception return: PSTATE.EL, SP and nRW stay, IL is set, PC is
            # ELR, and the next instruction takes an Illegal Execution state exception.
            cpu.set_pstate((spsr & PSTATE_RESTORED & ~0x1F) | (cpu.pstate() & 0x1F))
            faults.take_illegal_state(self.m, elr, PSTATE_IL)
            return
        il = spsr & PSTATE_IL
        spsr &= PSTATE_RESTORED & ~PSTATE_IL
        debug = self.irq.debug                  # software step (neve/devices/debug.py)
        debug.check_guest_step(spsr, pc)
        debug.exception_return(elr)
        if mfield in (0x9, 0x8):           # EL2h / EL2t: stay at vEL2
            cpu.set_pstate(spsr & ~0x1F | (mfield - 4))
            cpu.pc = elr
            if il:
                faults.take_illegal_state(self.m, elr, PSTATE_IL)
            return
        # As an HVC's exit (on_hvc): the interrupt subsystem settles right here rather
        # than ending the slice (Interrupts.held).
        self.irq.held(self.enter_el1, spsr, elr, pc)      # EL1h / EL1t / EL0t
        if il:
            faults.take_illegal_state(self.m, elr, PSTATE_IL)

    def is_eret_net(self, addr: int) -> bool:
        return self.active and addr == eret.ERET_NET

    # --- HVC / SMC / WFx -----------------------------------------------------------------
    def on_hvc(self, imm: int, insn_pc: int, insn: int | None) -> bool:
        m = self.m
        name = f"HVC #{imm:#x}"
        if self.get("HCR_EL2") & _HCR["HCD"]:
            # HVC is UNDEFINED at EL2 and EL1 (no EL3): with the real HCR_EL2.HCD set
            # too, the hardware takes the UNDEF at EL1 without L0.
            m.deliver_sync(decode.esr(decode.EC_UNKNOWN, 0), insn_pc)
            return True
        if self.active:
            # An HVC at EL1 always goes to EL2: L0 emulates it as taken at vEL2.
            m.trap(ev.HVC, name, value=self.cpu.x(0), pc=insn_pc, insn=insn,
                   reason="HVC at vEL2 (hardware EL1) traps to L0, which takes it to vEL2's own vector")
            self.take_current(decode.esr(decode.EC_HVC64, imm), insn_pc + 4)
            return True
        m.hypercall_begin(self.guest_id())
        level = m.level
        m.trap(ev.HVC, name, value=self.cpu.x(0), pc=insn_pc, insn=insn, forwarded=True, level=level,
               reason=_HVC_FORWARDED[level])
        # From the HVC's exception hook, Unicorn goes on at the vector without a stop:
        # the interrupt subsystem settles here (Interrupts.held) instead of ending the slice.
        self.irq.held(lambda: self.exit_to_vel2(decode.esr(decode.EC_HVC64, imm), insn_pc + 4, why=name))
        return True

    def on_smc(self, imm: int, insn_pc: int, insn: int | None) -> bool:
        if self.active:
            return False   # to the firmware: L0's PSCI
        if self.get("HCR_EL2") & _HCR["TSC"]:
            self.m.trap(ev.SMC, f"SMC #{imm:#x}", value=self.cpu.x(0), pc=insn_pc, insn=insn, forwarded=True,
                        reason="HCR_EL2.TSC set by L1: forwarded to vEL2")
            # A trapped SMC's preferred return address is the SMC itself.
            self.exit_to_vel2(decode.esr(decode.EC_SMC64, imm), insn_pc, why="SMC")
            return True
        return False

    def route_wfx(self, pc: int, insn: int) -> bool:
        if self.active:
            return False
        if self.get("HCR_EL2") & _HCR["TWI"]:
            self.m.trap(ev.WFX, "WFI", pc=pc, insn=insn, forwarded=True, reason="HCR_EL2.TWI set by L1")
            self.exit_to_vel2(decode.esr(decode.EC_WFX, decode.wfx_iss("wfi")), pc, why="WFI")
            return True
        return False

    def route_debug(self, esr: int, elr: int, name: str, insn: int | None, far: int | None = None) -> bool:
        """A debug exception (BRK) of L1's EL1/EL0: taken to vEL2 when L1's MDCR_EL2.TDE
        or HCR_EL2.TGE routes debug exceptions to EL2 (Arm ARM, AArch64.SoftwareBreakpoint)."""
        if self.active:
            return False
        if self.get("MDCR_EL2") & _MDCR_TDE:
            why = "MDCR_EL2.TDE"
        elif self.get("HCR_EL2") & _HCR["TGE"]:
            why = "HCR_EL2.TGE"
        else:
            return False
        self.m.trap(ev.DEBUG, name, pc=elr, insn=insn, forwarded=True,
                    reason=f"{why} set by L1: debug exceptions from EL1/EL0 go to EL2")
        self.exit_to_vel2(esr, elr, far, why=name)
        return True
