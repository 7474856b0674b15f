"""MRS, MSR and SYS instructions of virtual EL2, and of what L1 runs at EL1/EL0 (a
mixin of VirtualEL2).

At vEL2 each access does what the mode (or a --policy) decided for its row at start-up
(`vel2_action`: native, trap to L0, the VNCR/NEVE page, or a redirect to the EL1 twin);
a register whose row names an `fn` is computed by the interrupt and time subsystem
(neve/gic/delivery.py); a write to a row with the regime flag refreshes vEL2's own
translation regime.  From L1's EL1/EL0, an access one of L1's trap controls catches is
forwarded to vEL2 as an exception (EC 0x18).
"""
from __future__ import annotations


from neve.arch import decode, model, sysregs
from neve.observe import events as ev
from neve.core.cpu import EXECUTE, uc_implements
from neve.errors import Unsupported
from neve.arch.modes import Access

_KEY_CURRENTEL = sysregs.BY_NAME["CurrentEL"].key
# L1's control registers: what decides which access of its EL1/EL0 code is forwarded.
VIRTUAL_CONTROLS = tuple(n for n in sysregs.CTRL_BITS if sysregs.BY_NAME[n].group == "el2")


_SYS_NAMES: dict[tuple, str] = {}


def _sys_name(key: tuple, insn: int | None) -> str:
    """The name of the SYS instruction with encoding `key` (the same for every Xt)."""
    name = _SYS_NAMES.get(key)
    if name is None:
        k = decode.classify(insn) if insn is not None else None
        name = (k.name if k is not None and getattr(k, "name", None) else
                f"SYS #{key[1]}, C{key[2]}, C{key[3]}, #{key[4]}")
        if insn is not None:
            _SYS_NAMES[key] = name
    return name


def _call(fn, *args):
    return fn(*args)


class Vel2Sysregs:
    """VirtualEL2's system-register emulation (a mixin: `self` is the VirtualEL2)."""

    # --- system registers --------------------------------------------------------------------
    def sysreg(self, reg: int, key: tuple, write: bool, value: int) -> int | None:
        """MRS/MSR hook: SKIP or EXECUTE when handled (neve/core/cpu.py), None to fall
        through to the machine's EL1 path (native access, timer, L0's own traps)."""
        if self.active:
            return self._vel2_sysreg(reg, key, write, value)
        return self._el1_sysreg(reg, key, write, value)

    def _vel2_sysreg(self, reg: int, key: tuple, write: bool, value: int) -> int | None:
        m, cpu = self.m, self.cpu
        pc = cpu.pc
        if key == _KEY_CURRENTEL and not write:          # CurrentEL reads EL2 under NV
            cpu.set_reg(reg, 2 << 2)
            return cpu.skip_hooked(pc, key, write, 1)     # vEL2 runs at hardware EL1
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
            why = self._trap_why.get((key, write))
            if why is None:
                why = self._trap_why[(key, write)] = (", ".join(f"{t} set by L0" for t in reasons)
                                                      or "trapped under this mode's policy")
            m.trap(ev.SYSREG, row.name, rw, value if write else None, pc=pc, reason=why)
            if self.is_hardware(row):
                return EXECUTE
        else:
            self.page_counts[act == Access.REDIRECT] += 1
            if m.bus.wants(ev.PageAccess):
                off = self.offsets.get(row.name, -1)
                m.bus.publish(ev.PageAccess(cpu.icount(), pc, row.name, rw, value if write else self.read(row), off, act))
        held = self.irq.held if row.fn is not None else _call     # the GIC's, a timer's, the PMU's
        if write:
            held(self.write, row, value, pc)
        else:
            cpu.set_reg(reg, held(self.read, row))
        return cpu.skip_hooked(pc, key, write, 1)     # vEL2 runs at hardware EL1

    def vel2_fast(self, key: tuple, write: bool):
        """What `_vel2_sysreg` does with this access, for the compiled hooks
        (neve/core/fastpath.py): None when it goes on to the machine's EL1 path, False
        when only Python can make it, or (Access.MEM or Access.REDIRECT, slot) when it
        is a plain read or write of the slot (through the row's write mask)."""
        if key == _KEY_CURRENTEL:
            return False
        ent = self.vel2_action.get((key, write))
        if ent is None:
            return False if key[1] in (4, 5, 6) else None
        row, act, _ = ent
        if row.group == "el12" or not model.implemented(row) or act == Access.TRAP:
            return False
        if act == Access.NATIVE:
            return None
        if (self.m.bus.wants(ev.PageAccess) or row.fn is not None or self.is_hardware(row)
                or write and (row.access == "ro" or row.regime and row.group == "el2")):
            return False
        return act, self.slot[row.name]

    def forward_key(self) -> tuple:
        """The values L1's trap controls have now (what `forwards` depends on)."""
        st = self.store
        return tuple([st[i] for i in self._control_slots])

    @staticmethod
    def controls_of(fkey: tuple) -> dict[str, int]:
        """The effective controls (as `vcontrols`) of the values `fkey` (forward_key)."""
        return sysregs.effective_controls(dict(zip(VIRTUAL_CONTROLS, fkey)))

    @staticmethod
    def forwards(key: tuple, write: bool, el: int, controls: dict[str, int]) -> bool:
        """Would `_el1_sysreg` forward this access of L1's EL1 (el 1) or EL0 code to
        vEL2 under `controls` (controls_of)?"""
        row = sysregs.BY_KEY.get(key)
        if row is not None and not model.implemented(row):
            return False
        if sysregs.impdef(key) and el == 1 and sysregs.TIDCP.holds(controls):
            return True
        if row is None or not row.traps or row.group in ("el2", "el12"):
            return False
        return bool(row.trap_reasons(write, controls))

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
        # vEL2's own, the nested context's, or one the CPU model lacks (e.g.
        # MDCCSR_EL0), which starts from its reset value.
        return self.get(name)

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
            value = (self.get(name) & ~row.wmask) | (value & row.wmask)
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
        key = (1, cp.op1, cp.crn, cp.crm, cp.op2)
        name = _sys_name(key, insn)
        if not self.active:
            # A cache or TLB maintenance instruction of L1's EL1/EL0 code that one of
            # L1's HCR_EL2 bits traps (sysregs.SYS_TRAPS); one the CPU model lacks
            # UNDEFs first (Unicorn raises it).
            t = sysregs.SYS_TRAPS.get(name)
            if t is None or insn is None or not t.holds(self.vcontrols()) or not uc_implements(insn, 1):
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
