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

from typing import TYPE_CHECKING


from neve.arch import decode, model, sysregs
from neve.core import eret, faults
from neve.observe import events as ev
from neve.core.cpu import EXECUTE, uc_implements
from neve.errors import Unsupported
from neve.arch.modes import Access
from neve.arch.exceptions import M_EL1H, PSTATE_DAIF, PSTATE_IL, PSTATE_RESTORED, VEC_CUR_SP0, VEC_CUR_SPX, VEC_LOWER_A64
from neve.el2.stage2 import ShadowStage2

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine



SCTLR_EL1_RES1 = 0x30D0_0800
# SCTLR_EL2 bits that carry over to SCTLR_EL1 when L0 runs vEL2 on EL1:
# M, A, C, SA, I, WXN, EE.
SCTLR_EL2_TO_EL1 = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 12) | (1 << 19) | (1 << 25)

_HCR = {b: sysregs.ctrl_bit("HCR_EL2", b) for b in sysregs.CTRL_BITS["HCR_EL2"]}
_KEY_CURRENTEL = sysregs.BY_NAME["CurrentEL"].key
_MDCR_TDE = sysregs.ctrl_bit("MDCR_EL2", "TDE")

# HCR_EL2 controls whose presence marks an EL1 context as a guest L1 virtualizes.
GUEST_HCR_MASK = 0
for _b in ("VM", "FMO", "IMO", "AMO", "TWI", "TWE", "TID1", "TID2", "TID3", "TSC", "TIDCP", "TACR", "TSW",
           "TPCP", "TPU", "TTLB", "TVM", "TRVM", "TDZ", "TERR", "TEA", "TLOR"):
    GUEST_HCR_MASK |= _HCR[_b]

VIRTUAL_CONTROLS = tuple(n for n in sysregs.CTRL_BITS if sysregs.BY_NAME[n].group == "el2")


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


class VirtualEL2:
    def __init__(self, m: Machine, mode: str, policy=None) -> None:
        self.m = m
        self.cpu = m.cpu
        self.mode = mode
        self.policy = policy
        self.active = True
        self.regs: dict[str, int] = {}
        uses_page = (sysregs.MODE_COLUMN[mode] is not None
                     or (policy is not None and Access.MEM in policy.overrides.values()))
        self.page = bytearray(4096) if uses_page else None
        self.offsets: dict[str, int] = {}
        self.sp_el2 = 0
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
                if act == Access.MEM and self.page is not None and r.group != "el12" and r.name not in self.offsets:
                    if r.vncr is not None:
                        self.offsets[r.name] = r.vncr
                    else:
                        self.offsets[r.name] = next_free
                        next_free += 8
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
        off = self.offsets.get(name)
        if off is not None:
            return int.from_bytes(self.page[off:off + 8], "little")
        return self.regs.get(name, 0)

    def set(self, name: str, value: int) -> None:
        value &= 0xFFFF_FFFF_FFFF_FFFF
        off = self.offsets.get(name)
        if off is not None:
            self.page[off:off + 8] = value.to_bytes(8, "little")
        else:
            self.regs[name] = value

    def vcontrols(self) -> dict[str, int]:
        return sysregs.effective_controls({n: self.get(n) for n in VIRTUAL_CONTROLS})

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
        self.active = True
        self._load_shadow()
        cpu.set_pstate(M_EL1H | PSTATE_DAIF)

    # --- shadow EL1 registers ----------------------------------------------------------
    def _shadow_sctlr(self) -> int:
        return SCTLR_EL1_RES1 | (self.get("SCTLR_EL2") & SCTLR_EL2_TO_EL1)

    def _load_shadow(self) -> None:
        """Put into the hardware EL1 registers what vEL2 code needs to run."""
        cpu = self.cpu
        for r in self.swap:
            cpu.cpr_write(*r.key, 0)
        cpu.write_sysreg("VBAR_EL1", self.get("VBAR_EL2"))  # (informative)
        cpu.write_sysreg("ELR_EL1", eret.ERET_NET)
        cpu.write_sysreg("SPSR_EL1", M_EL1H | PSTATE_DAIF)
        self._write_regime()

    def _refresh_regime(self) -> None:
        """After L1 wrote one of the registers behind vEL2's regime: takes effect now."""
        if self.active:
            self._write_regime()

    def _write_regime(self) -> None:
        """vEL2's own translation regime and FP enable, adapted into the EL1 registers."""
        cpu = self.cpu
        cpu.write_sysreg("SCTLR_EL1", self._shadow_sctlr())
        cpu.write_sysreg("TTBR0_EL1", self.get("TTBR0_EL2"))
        cpu.write_sysreg("TCR_EL1", el2_tcr_to_el1(self.get("TCR_EL2")))
        cpu.write_sysreg("MAIR_EL1", self.get("MAIR_EL2"))
        # EL2 FP/SIMD is controlled by CPTR_EL2.TFP; the EL1 equivalent is CPACR_EL1.FPEN.
        tfp = (self.get("CPTR_EL2") >> 10) & 1
        cpu.write_sysreg("CPACR_EL1", 0 if tfp else (3 << 20))
        cpu.flush_tlb()
        self.s2.sync()
        self.m.regime_changed()

    # --- world switches ------------------------------------------------------------------
    def guest_id(self) -> str:
        """The EL1 context L1 runs.  A context L1 gives a VMID or stage 2, or traps
        anything from, is its nested VM; one it runs with none of that (HCR_EL2 = RW
        only, VTTBR_EL2 = 0, as a non-VHE KVM host kernel runs) is L1's own
        host-kernel part."""
        if self.get("VTTBR_EL2") or self.get("HCR_EL2") & GUEST_HCR_MASK:
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
        self.sp_el2 = cpu.sp_el(1)
        for r in self.swap:
            cpu.cpr_write(*r.key, self.get(r.name))
        cpu.set_sp_el(1, self.get("SP_EL1"))
        cpu.set_pstate(spsr & 0xFFFF_FFFF)
        cpu.pc = elr
        self.active = False
        cpu.flush_tlb()
        self.s2.sync()              # HCR_EL2.VM: the shadow stage 2 (neve/el2/stage2.py)
        self.m.regime_changed()     # SCTLR_EL1.M, HCR_EL2.DC, CPACR_EL1, CPTR_EL2
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
        ps = cpu.pstate()
        src = "EL0" if (ps >> 2) & 3 == 0 else "EL1"
        for r in self.swap:
            self.set(r.name, cpu.cpr_read(*r.key))
        self.set("SP_EL1", cpu.sp_el(1))
        self.active = True
        self._load_shadow()
        cpu.set_pstate(M_EL1H | PSTATE_DAIF)
        cpu.sp = self.sp_el2
        if kind == 0:
            self.set("ESR_EL2", esr)
            if far is not None:
                self.set("FAR_EL2", far)
            if hpfar is not None:
                self.set("HPFAR_EL2", hpfar)
        self.set("ELR_EL2", elr)
        self.set("SPSR_EL2", (ps | spsr_or) & 0xFFFF_FFFF)
        cpu.pc = (self.get("VBAR_EL2") & ~0x7FF) + VEC_LOWER_A64 + kind
        self.m.bus.publish(ev.Switch(cpu.icount(), src, "vEL2", cpu.pc, why))

    def take_current(self, esr: int, elr: int, far: int | None = None, kind: int = 0, spsr_or: int = 0) -> None:
        """An exception taken at vEL2 to vEL2 (hardware: EL1 to EL1, no L0 involved).
        `spsr_or`: PSTATE bits the saved SPSR has that the hardware PSTATE does not
        hold (IL after an illegal exception return)."""
        cpu = self.cpu
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
        self.m.trap(ev.ERET, name, pc=pc, insn=insn, reason="HCR_EL2.NV set by L0: ERET at EL1 traps to EL2"
                    + ("" if pc is not None else " (caught by the ERET safety net: PC unknown)"))
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
        if mfield in (0x9, 0x8):           # EL2h / EL2t: stay at vEL2
            cpu.set_pstate(spsr & ~0x1F | (mfield - 4))
            cpu.pc = elr
            if il:
                faults.take_illegal_state(self.m, elr, PSTATE_IL)
            return
        self.enter_el1(spsr, elr, pc)      # EL1h / EL1t / EL0t
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
        m.trap(ev.HVC, name, value=self.cpu.x(0), pc=insn_pc, insn=insn, forwarded=True,
               reason=f"HVC from {m.level} goes to EL2: L0 forwards it to vEL2")
        self.exit_to_vel2(decode.esr(decode.EC_HVC64, imm), insn_pc + 4, why=name)
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

    def route_debug(self, esr: int, elr: int, name: str, insn: int | None) -> bool:
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
        self.exit_to_vel2(esr, elr, why=name)
        return True

    # --- system registers --------------------------------------------------------------------
    def sysreg(self, reg: int, key: tuple, write: bool, value: int) -> int | None:
        """MRS/MSR hook. Returns 1 when handled, None to fall through to the
        machine's EL1 path (native access, timer, L0's own traps)."""
        if self.active:
            return self._vel2_sysreg(reg, key, write, value)
        return self._el1_sysreg(reg, key, write, value)

    def _vel2_sysreg(self, reg: int, key: tuple, write: bool, value: int) -> int | None:
        m, cpu = self.m, self.cpu
        pc = cpu.pc
        if key == _KEY_CURRENTEL and not write:          # CurrentEL reads EL2 under NV
            cpu.uc.reg_write(reg, 2 << 2)
            return cpu.skip_hooked(pc, key, write)
        ent = self.vel2_action.get((key, write))
        if ent is None:
            if key[1] in (4, 5, 6):
                insn = cpu.read_insn(pc)
                if insn is not None and not uc_implements(insn, 2):
                    # Not a register of the CPU model at EL2: UNDEFINED.
                    acc = cpu.uc_accessible(key, write)
                    self.take_current(decode.esr(decode.EC_UNKNOWN, 0), pc)
                    return cpu.redirected(acc)
                raise Unsupported(f"{'MSR' if write else 'MRS'} {sysregs.enc_name(*key)} "
                                  f"({decode.disasm(insn, pc) if insn is not None else '?'}) at vEL2", pc)
            return None
        row, act, reasons = ent
        rw = "w" if write else "r"
        if row.group == "el12" or not model.implemented(row):
            # With HCR_EL2.E2H=0 (the only setting neve emulates) the _EL12/_EL02
            # encodings are UNDEFINED at EL2, and so is a register the CPU model lacks
            # (neve/arch/model.py).  At EL1 under NV they trap to L0 (FEAT_NV2 leaves them
            # trapping when NV1=1), which injects the UNDEF.
            why = ("UNDEFINED at EL2 with E2H=0" if row.group == "el12"
                   else f"{row.name} is not implemented by the {model.NAME} model")
            m.trap(ev.SYSREG, row.name, rw, value if write else None, pc=pc,
                   reason=f"HCR_EL2.NV set by L0; {why}: L0 injects UNDEF")
            acc = cpu.uc_accessible(key, write)
            self.take_current(decode.esr(decode.EC_UNKNOWN, 0), pc)
            return cpu.redirected(acc)
        if act == Access.NATIVE:
            return None
        if act == Access.TRAP:
            why = ", ".join(f"{t} set by L0" for t in reasons) or "trapped under this mode's policy"
            m.trap(ev.SYSREG, row.name, rw, value if write else None, pc=pc, reason=why)
            if self.is_hardware(row):
                return EXECUTE
        else:
            off = self.offsets.get(row.name, -1)
            m.bus.publish(ev.PageAccess(cpu.icount(), pc, row.name, rw, value if write else self.read(row), off, act))
        if write:
            self.write(row, value, pc)
        else:
            v = self.read(row)
            cpu.uc.reg_write(reg, v)
        return cpu.skip_hooked(pc, key, write)

    def is_hardware(self, row: sysregs.SysReg) -> bool:
        """A register outside the nested context that the CPU model implements: a
        trapped access is counted, then executed by the CPU itself, which applies
        the register's own write mask."""
        hw = self._hardware.get(row.name)
        if hw is None:
            hw = self._hardware[row.name] = (
                row.group not in ("el2", "el12") and row.name not in self.context
                and row.fn is None
                and uc_implements(decode.sysreg_word(*row.key, 0, row.access == "ro"), 1))
        return hw

    def read(self, row: sysregs.SysReg) -> int:
        name = row.name
        if row.fn is not None:                 # computed by the GIC, a timer or the PMU
            v = self.irq.vel2_read(row)
            if v is not None:
                return v
        if self.is_hardware(row):
            return self.cpu.cpr_read(*row.key)
        if row.group in ("el2", "el12") or name in self.context:
            return self.get(name)
        return self.regs.get(name, row.reset)  # a register the CPU model lacks (e.g. MDCCSR_EL0)

    def write(self, row: sysregs.SysReg, value: int, pc: int | None = None) -> None:
        name = row.name
        if row.access == "ro":
            return
        if row.fn is not None and self.irq.vel2_write(row, value):   # the GIC, a timer or the PMU acts on it
            return
        if self.is_hardware(row):
            self.cpu.cpr_write(*row.key, value)
            return
        if row.wmask != sysregs.ALL64:           # RES0, RAZ/WI bits (the table's write mask)
            old = self.get(name) if row.group in ("el2", "el12") or name in self.context \
                else self.regs.get(name, row.reset)
            value = (old & ~row.wmask) | (value & row.wmask)
        if row.group not in ("el2", "el12") and name not in self.context:
            self.regs[name] = value              # a register the CPU model lacks
            return
        self.set(name, value)
        if row.regime and row.group == "el2":   # vEL2's own regime (an EL1 row here is L2's context)
            self._refresh_regime()

    def _el1_sysreg(self, reg: int, key: tuple, write: bool, value: int) -> int | None:
        """An access made by what L1 runs at EL1/EL0: forwarded to vEL2 when one of
        L1's own trap controls says so."""
        row = sysregs.BY_KEY.get(key)
        if row is not None and not model.implemented(row):
            return None                   # UNDEFINED: before any trap to EL2
        if sysregs.impdef(key) and self.cpu.el() == 1 and sysregs.TIDCP.holds(self.vcontrols()):
            # Whether TIDCP traps EL0 accesses too is IMPLEMENTATION DEFINED; QEMU's
            # cortex-a72 does not (they UNDEF at EL1), and neither does neve.
            reasons = [sysregs.TIDCP]
        elif row is None or not row.traps or row.group in ("el2", "el12"):
            return None
        else:
            reasons = row.trap_reasons(write, self.vcontrols())
        if not reasons:
            return None
        m, cpu = self.m, self.cpu
        pc = cpu.pc
        insn = cpu.read_insn(pc)
        rt = (insn or 0) & 0x1F
        name = row.name if row else sysregs.enc_name(*key)
        m.trap(ev.SYSREG, name, "w" if write else "r", value if write else None, pc=pc, insn=insn,
               forwarded=True, reason=", ".join(f"{t} set by L1" for t in reasons) + ": forwarded to vEL2")
        iss = decode.sysreg_iss(*key, rt, not write)
        acc = cpu.uc_accessible(key, write)
        self.exit_to_vel2(decode.esr(decode.EC_SYS64, iss), pc, why=name)
        return cpu.redirected(acc)

    # --- SYS instructions (TLBI, AT, DC, IC) -------------------------------------------------
    def sys(self, reg: int, cp) -> int | None:
        m, cpu = self.m, self.cpu
        pc = cpu.pc
        insn = cpu.read_insn(pc)
        k = decode.classify(insn) if insn is not None else None
        name = (k.name if k is not None and getattr(k, "name", None) else
                f"SYS #{cp.op1}, C{cp.crn}, C{cp.crm}, #{cp.op2}")
        key = (1, cp.op1, cp.crn, cp.crm, cp.op2)
        if not self.active:
            # A cache or TLB maintenance instruction of L1's EL1/EL0 code that one of
            # L1's HCR_EL2 bits traps (sysregs.SYS_TRAPS); one the CPU model lacks
            # UNDEFs first (Unicorn raises it).
            t = sysregs.SYS_TRAPS.get(name)
            if t is None or not t.holds(self.vcontrols()) or insn is None or not uc_implements(insn, 1):
                return None
            cls = ev.TLBI if name.startswith("TLBI") else ev.SYSREG
            m.trap(cls, name, pc=pc, insn=insn, forwarded=True, reason=f"{t} set by L1")
            iss = decode.sys_iss(cp.op1, cp.crn, cp.crm, cp.op2, insn & 0x1F, False)
            acc = cpu.uc_accessible(key, True)
            self.exit_to_vel2(decode.esr(decode.EC_SYS64, iss), pc, why=name)
            return cpu.redirected(acc)
        if cp.op1 in (4, 6):
            if insn is None or not uc_implements(insn, 2):
                # Not an instruction of the CPU model at EL2 (TLBI range/OS/nXS forms,
                # EL3 maintenance): UNDEFINED.
                acc = cpu.uc_accessible(key, True)
                self.take_current(decode.esr(decode.EC_UNKNOWN, 0), pc)
                return cpu.redirected(acc)
            if name.startswith("TLBI"):
                m.trap(ev.TLBI, name, pc=pc, insn=insn,
                       reason="HCR_EL2.NV set by L0: EL2 and stage-2 TLB maintenance traps")
                self.s2.tlbi(name, cpu.x(insn & 0x1F))
                return cpu.skip_hooked(pc, key, True)
            raise Unsupported(f"{name} at vEL2", pc)
        return None
