"""MRS, MSR and SYS instructions as they reach L0 from hardware EL1/EL0 (a mixin of
the Machine): the wrong-direction and EL0 rules, vEL2's share (neve/el2/), the timers
and the GIC's (neve/gic/delivery.py), L0's own trap controls for a VM, and the CPU
model's differences from Unicorn (neve/arch/model.py)."""
from __future__ import annotations



from neve.core import at
from neve.arch import decode, model, sysregs
from neve.observe import events as ev
from neve.core.cpu import EXECUTE, X_REGS, uc_implements
from neve.core.result import Stop
from neve.devices.timer import CNTFRQ
from neve.errors import GuestError, NeveError, Unsupported
from neve.arch.platform import RAM_BASE
from neve.arch.exceptions import PSTATE_DAIF, PSTATE_IF


# (encoding, is-a-write) of the MSRs to read-only registers and MRSs of write-only ones.
_WRONG_DIRECTION = frozenset((r.key, r.access == "ro") for r in sysregs.REGISTERS if r.access != "rw")

_KEY_CSSELR = sysregs.BY_NAME["CSSELR_EL1"].key
_VIRTUAL_IDS = {"MIDR_EL1": "VPIDR_EL2", "MPIDR_EL1": "VMPIDR_EL2"}
_KEY_DAIF = sysregs.BY_NAME["DAIF"].key
_KEY_CNTVCT, _KEY_CNTPCT, _KEY_CNTFRQ = sysregs.BY_NAME["CNTVCT_EL0"].key, sysregs.BY_NAME["CNTPCT_EL0"].key, sysregs.BY_NAME["CNTFRQ_EL0"].key
# CNTVCTSS_EL0 / CNTPCTSS_EL0 (FEAT_ECV's self-synchronized views): not rows of the
# table, but Unicorn's CPU model answers them, so they read the same counter.
_KEY_CNTVCTSS = (3, 3, 14, 0, 6)
_KEY_CNTPCTSS = (3, 3, 14, 0, 5)
_COUNTER_KEYS = frozenset((_KEY_CNTVCT, _KEY_CNTPCT, _KEY_CNTFRQ, _KEY_CNTVCTSS, _KEY_CNTPCTSS))
_COUNTER_VIEWS = {_KEY_CNTVCT: "v", _KEY_CNTVCTSS: "v", _KEY_CNTPCT: "p", _KEY_CNTPCTSS: "p"}


_X_IDS = frozenset(X_REGS)

# The longest distance, in instructions, between two IVAUs of one maintenance loop
# (Linux's: ic ivau; add; cmp; b.lo).
_IC_LOOP = 8


class SysregHooks:
    """The Machine's MRS/MSR/SYS handling (a mixin: `self` is the Machine)."""

    _ic_run: tuple | None = None        # the IC IVAU run being made (_drop_translations)

    # --- system registers ----------------------------------------------------------------
    def _hook_mrs(self, reg, cp) -> int:
        return self._sysreg(reg, (cp.op0, cp.op1, cp.crn, cp.crm, cp.op2), False, 0)

    def _hook_msr(self, reg, cp) -> int:
        return self._sysreg(reg, (cp.op0, cp.op1, cp.crn, cp.crm, cp.op2), True, cp.val)

    def _sysreg(self, reg: int, key: tuple, write: bool, value: int) -> int:
        try:
            if (key, write) in _WRONG_DIRECTION:
                return self._wrong_direction(key, write)
            at_vel2 = self.vel2 is not None and self.vel2.active      # hardware EL1, known
            if not at_vel2 and self.cpu.el() == 0:
                r = self._el0_access(key, write)
                if r is not None:
                    return r
            if self.vel2 is not None:
                r = self.vel2.sysreg(reg, key, write, value)
                if r is not None:
                    return r
            return self._sysreg_el1(reg, key, write, value)
        except (Stop, NeveError) as e:
            return self.fail_in_hook(e)
        except Exception as e:  # never let a hook die silently inside Unicorn
            return self.fail_in_hook(GuestError(f"internal error emulating a system register access at PC {self.cpu.pc:#x}: {e!r}"))

    # --- for the compiled hooks (neve/core/fastpath.py) ---------------------------------
    def el1_native(self, key: tuple, write: bool, el: int, hcr: int | None = None) -> bool:
        """Does `_sysreg` let the CPU execute this access at hardware `el` (0, or 1
        for the VM, what L1 runs at EL1 and vEL2's native accesses) with nothing else
        to do, whatever the state?  The parts that depend on L1's controls are
        vEL2's (Vel2Sysregs.forwards); anything that depends on other state (an EL1
        control of an EL0 access, a pending interrupt, FP traps) is left to Python.
        `hcr`: the HCR_EL2 in force for the reading code (L1's below vEL2, else 0)
        when the caller's table is for it: an ID register the model answers only
        under some HCR_EL2 (DCZID_EL0: DZP under TDZ) is then native where it
        does not (a kernel's clear_page reads DCZID_EL0 for every page)."""
        if (key, write) in _WRONG_DIRECTION or not write and key in _COUNTER_KEYS:
            return False
        row = sysregs.BY_KEY.get(key)
        if row is None:
            return True
        if el == 0 and (not row.el0_accessible or not model.implemented(row) or row.el0
                        or write and row.name in sysregs.EL0_READ_ONLY):
            return False
        if (write and key == _KEY_DAIF or self.irq.handles(key) or row.name in ("FPCR", "FPSR")
                or row.traps and row.trap_reasons(write, sysregs.VM_CONTROLS) or row.name in model.OWNED):
            return False
        if not self.cpu.uc_accessible(key, write, el):
            return True                                   # UNDEFINED: Unicorn raises it
        if not write:
            if row.name in _VIRTUAL_IDS:
                return False
            if row.name in model.ID_VALUES:
                return (hcr is not None and row.name != "CCSIDR_EL1"
                        and model.id_value(row.name, self.vel2 is not None, 0, hcr) is None)
            return True
        return row.wmask == sysregs.ALL64 and not row.regime

    @staticmethod
    def daif_native_unless_masked(key: tuple) -> bool:
        """Does `_sysreg_el1` let the CPU execute this MSR at hardware EL1 unless an
        interrupt is pending but masked (Interrupts.masked)?  MSR DAIF: then it may
        unmask it, and neve takes the interrupt right after it."""
        return key == _KEY_DAIF

    @staticmethod
    def sys_native(op1: int, crn: int, crm: int, op2: int, at_vel2: bool) -> bool:
        """Does `_hook_sys` let the CPU execute this SYS instruction at hardware EL1,
        with nothing else to do: in vm mode, or at vEL2 (below vEL2 L1's trap controls
        decide: Python's)?  Not IC (neve rescans code), not AT (emulated), not the EL2
        forms at vEL2 (TLBI and UNDEF checks)."""
        if op1 == 3 and crn == 7 and crm == 5 or op1 == 0 and crn == 7 and crm in (1, 5):
            return False
        if crn == 7 and (op1, crm, op2) in at.OPS:
            return False
        return not (at_vel2 and op1 in (4, 5, 6))

    @staticmethod
    def counter_read(key: tuple, el: int) -> str | None:
        """Does `_sysreg_el1` answer this MRS at hardware `el` by `timer_read` with
        the system counter ("p") or its virtual view ("v"), before anything else?  (At
        EL0 a row's access depends on CNTKCTL_EL1 first: Python's.)"""
        if el == 0 and key in sysregs.BY_KEY:
            return None
        return _COUNTER_VIEWS.get(key)

    @staticmethod
    def unlisted_counters() -> tuple:
        """Encodings outside the register table that `timer_read` answers (FEAT_ECV's
        self-synchronized views), with the counter each reads."""
        return (_KEY_CNTVCTSS, "v"), (_KEY_CNTPCTSS, "p")

    def _el0_access(self, key: tuple, write: bool) -> int | None:
        """An access at EL0 to a register of the table: UNDEFINED if EL0 has no access
        to it at all, trapped to EL1 (EC 0x18) by its EL1 control (the `el0` column,
        e.g. CNTKCTL_EL1.EL0PTEN), before any trap to EL2.  None: go on."""
        row = sysregs.BY_KEY.get(key)
        if row is None:
            return None
        cpu = self.cpu
        pc = cpu.pc
        if not row.el0_accessible or not model.implemented(row) or write and row.name in sysregs.EL0_READ_ONLY:
            esr = decode.esr(decode.EC_UNKNOWN, 0)
        elif row.el0:
            ctrl = {t.ctrl: self._control(t.ctrl) for t in row.el0}
            if not any(t.applies(write) and t.holds(ctrl) for t in row.el0):
                return None
            insn = cpu.read_insn(pc)
            esr = decode.esr(decode.EC_SYS64, decode.sysreg_iss(*key, (insn or 0) & 0x1F, not write))
        else:
            return None
        acc = cpu.uc_accessible(key, write)
        self.take_el1(esr, pc)
        return cpu.redirected(acc)

    def _control(self, name: str) -> int:
        """The value of an EL1/EL0 control register (PMUSERENR_EL0 is the PMU's)."""
        if sysregs.BY_NAME[name].fn == "pmu":
            return self.irq.pmu.get(name)
        return self.cpu.read_sysreg(name)

    def _wrong_direction(self, key: tuple, write: bool) -> int:
        """MSR to a read-only register or MRS of a write-only one: an unallocated
        encoding, UNDEFINED at every level (no trap applies), as on QEMU."""
        cpu = self.cpu
        pc = cpu.pc
        if key == _KEY_CNTFRQ:
            # Writable at the highest implemented EL (QEMU lets its EL1 or EL2 guest
            # write it); neve's counter frequency is fixed.
            raise Unsupported("MSR CNTFRQ_EL0 (the counter frequency is fixed at 1 GHz)", pc)
        acc = cpu.uc_accessible(key, write)
        self.deliver_sync(decode.esr(decode.EC_UNKNOWN, 0), pc)
        return cpu.redirected(acc)

    def timer_read(self, key: tuple) -> int | None:
        """Deterministic generic-timer reads: the counter is the instruction count plus
        the ticks skipped in WFI (neve/devices/timer.py)."""
        if key in (_KEY_CNTVCT, _KEY_CNTVCTSS):
            return self.irq.timers.timers["CNTV"].count(self.irq.counter.now())   # CNTPCT - CNTVOFF
        if key in (_KEY_CNTPCT, _KEY_CNTPCTSS):
            return self.irq.counter.now()
        if key == _KEY_CNTFRQ:
            return CNTFRQ
        return None

    def _sysreg_el1(self, reg: int, key: tuple, write: bool, value: int) -> int:
        """An access the CPU serves at (hardware) EL1/EL0: by the VM, the nested VM, or
        vEL2's own native ones.  L0's trap controls for a VM (sysregs.VM_CONTROLS) count a trap
        where they apply; then the access is made as the CPU model (neve/arch/model.py) makes
        it: by Unicorn, or by neve where the model says Unicorn differs."""
        cpu = self.cpu
        if not write:
            v = self.timer_read(key)
            if v is not None:
                cpu.set_reg(reg, v)
                return cpu.skip_hooked(cpu.pc, key, write)
        elif key == _KEY_DAIF and self.irq.masked and cpu.pstate() & ~value & PSTATE_IF:
            # MSR DAIF unmasking an interrupt pending while masked: made here, and the
            # interrupt taken right after it (as MSR DAIFClr, neve/gic/delivery.py).
            acc = cpu.uc_accessible(key, write)
            cpu.set_pstate(cpu.pstate() & ~PSTATE_DAIF | value & PSTATE_DAIF)
            cpu.pc += 4
            self.irq.unmasked()
            return cpu.redirected(acc)
        elif key == _KEY_DAIF:
            return EXECUTE                  # the CPU writes PSTATE.DAIF (nothing else changes)
        r = self.irq.held(self.irq.sysreg, reg, key, write, value)    # timers, ICC_*/ICV_*, ISR_EL1
        if r is not None:
            return r
        row = sysregs.BY_KEY.get(key)
        if row is None:
            return EXECUTE
        if row.name in ("FPCR", "FPSR"):               # FP access traps (neve/core/fptrap.py)
            acc = cpu.uc_accessible(key, write)
            if self.fp.take(cpu.pc):
                return cpu.redirected(acc)
        reasons = row.trap_reasons(write, sysregs.VM_CONTROLS) if row.traps and not self.level == "vEL2" else None
        if reasons:
            # Trapped by L0 (e.g. ACTLR_EL1 with HCR_EL2.TACR): L0 emulates it as KVM
            # does, against the hardware register.
            self.trap(ev.SYSREG, row.name, "w" if write else "r", value if write else None, pc=cpu.pc,
                      reason=", ".join(f"{t} set by L0" for t in reasons))
        return self._model_access(reg, row, write, value)

    def _model_access(self, reg: int, row: sysregs.SysReg, write: bool, value: int) -> int:
        """Make the access as the CPU model does; 0 lets Unicorn execute it."""
        cpu = self.cpu
        owned = model.OWNED.get(row.name)
        if owned is not None:                           # a register neve keeps for the CPU
            reset, wmask = owned
            if write:
                old = self.vcpu.owned.get(row.name, reset)
                self.vcpu.owned[row.name] = (old & ~wmask) | (value & wmask)
            else:
                cpu.set_reg(reg, self.vcpu.owned.get(row.name, reset))
            return cpu.skip_hooked(cpu.pc, row.key, write)
        if not cpu.uc_accessible(row.key, write):
            return EXECUTE                                    # UNDEFINED here: Unicorn raises it
        if not write:
            below = self.vel2 is not None and not self.vel2.active      # what L1 runs at EL1/EL0
            if below and row.name in _VIRTUAL_IDS:
                # EL1 reads of MIDR_EL1/MPIDR_EL1 return VPIDR_EL2/VMPIDR_EL2 (L1's).
                cpu.set_reg(reg, self.vel2.get(_VIRTUAL_IDS[row.name]))
                return cpu.skip_hooked(cpu.pc, row.key, write)
            if row.name not in model.ID_VALUES:
                return EXECUTE
            hcr = self.vel2.get("HCR_EL2") if below else 0
            csselr = cpu.cpr_read(*_KEY_CSSELR) if row.name == "CCSIDR_EL1" else 0
            v = model.id_value(row.name, self.vel2 is not None, csselr, hcr)
            if v is None:
                return EXECUTE
            cpu.set_reg(reg, v)
            return cpu.skip_hooked(cpu.pc, row.key, write)
        if row.wmask == sysregs.ALL64 and not row.regime:
            return EXECUTE
        # Bits the model does not implement (RES0, RAZ/WI) are written as the model
        # would; a register behind the regime neve keeps track of is written here.
        cpu.cpr_write(*row.key, (cpu.cpr_read(*row.key) & ~row.wmask) | (value & row.wmask))
        cpu.flush_tlb()
        self.regime_changed()
        return cpu.skip_hooked(cpu.pc, row.key, write)

    def _sys_el0(self, cp) -> int | None:
        """A SYS instruction at EL0: UNDEFINED unless EL0 may execute it, trapped to EL1
        (EC 0x18) by its SCTLR_EL1 control (sysregs.SYS_EL0).  None: go on."""
        cpu = self.cpu
        pc = cpu.pc
        insn = cpu.read_insn(pc)
        name = decode.sys_name(cp.op1, cp.crn, cp.crm, cp.op2)
        t = sysregs.SYS_EL0.get(name)
        key = (1, cp.op1, cp.crn, cp.crm, cp.op2)
        if t is None:
            esr = decode.esr(decode.EC_UNKNOWN, 0)
        elif t.holds({"SCTLR_EL1": self._control("SCTLR_EL1")}):
            esr = decode.esr(decode.EC_SYS64, decode.sys_iss(cp.op1, cp.crn, cp.crm, cp.op2, (insn or 0) & 0x1F))
        else:
            return None
        acc = cpu.uc_accessible(key, True)
        self.take_el1(esr, pc)
        return cpu.redirected(acc)

    def _code_changed(self, cp, reg: int | None = None) -> None:
        """The guest did instruction-cache maintenance: code may have changed (IC
        IVAU: the 64-byte line at a VA; IC IALLU/IALLUIS: anywhere).  `reg`: the
        hook's Unicorn id of Xt, when it is one of X0-X30 (else the instruction is
        read to find it)."""
        va = 0
        if cp.op1 == 3:                                 # IC IVAU: by VA
            if reg in _X_IDS:
                va = self.cpu.reg(reg) & ~63
            else:
                va = self.cpu.x(self.cpu.read_insn(self.cpu.pc) & 0x1F) & ~63
            self.fp.code_changed(va, va + 64)
            self.align.code_changed(va, va + 64)
            if self.vcpu.fast is not None:
                self.vcpu.fast.code_changed(va, va + 64)
            if RAM_BASE <= va < RAM_BASE + self.ram_size:   # (the code runs identity-mapped or MMU-off here)
                self.erets.scan(va, 64)
        else:
            self.fp.code_changed()
            self.align.code_changed()
            if self.vcpu.fast is not None:
                self.vcpu.fast.code_changed()
            self.erets.scan(RAM_BASE, self.ram_size)
        self._drop_translations(cp, va if cp.op1 == 3 else None)
        if len(self.vcpus) > 1:
            # (not under the nested modes' TLB-fill hook, whose fill could take a fault)
            pa = self.cpu.translate(va) if cp.op1 == 3 and not self.cpu.tlb_virtual else None
            if pa is not None and RAM_BASE <= pa < RAM_BASE + self.ram_size:
                self.ic_broadcast(pa & ~63, va, 64)
            else:
                self.ic_broadcast(None, None, 0)

    def _drop_translations(self, cp, va: int | None) -> None:
        """Unicorn's translations of the code the IC instruction makes stale, dropped
        between slices (never under the running block).  Unicorn sees a store to code
        only through a TLB entry it has not yet marked dirty (neve/core/machine.py's
        unmapped hooks leave RAM out so that the others are fast), so code written
        through another mapping (Linux writes through its linear map) becomes visible
        here, where the architecture requires it to: IC IALLU(IS) drops everything;
        IC IVAU drops the blocks from its line to the end of its page: by the VA when
        it is executable, else (the writer's alias: Linux makes a user page's code
        coherent through its linear map) by the physical address it reads
        (CPU.drop_code_phys); everything when neither works (a VA that does not
        translate, or not to RAM, or the nested modes' TLB-fill hook translating).
        One maintenance loop drops once per page: an IVAU of the next line (at most
        64 bytes on, in the same page), at most _IC_LOOP instructions after the
        previous one, adds nothing (the code was written before the loop began, and
        nothing in the loop runs it)."""
        cpu = self.cpu
        if va is None:
            self._ic_run = None
            cpu.between_slices(cpu.uc.ctl_flush_tb)
            return
        now = cpu.icount()
        run = self._ic_run
        if run is not None and 0 < va - run[0] <= 64 and now - run[2] <= _IC_LOOP and run[1] == va >> 12:
            self._ic_run = (va, run[1], now)            # the same maintenance loop
            return
        # From this line to the end of its page: the rest of a maintenance loop stays
        # in the page (the blocks that overlap the range go, also one that starts
        # before the line).
        self._ic_run = (va, va >> 12, now)
        end = (va & ~0xFFF) + 0x1000
        if self.code_pa(va) is not None:
            if self._away_from_running_block(va):
                cpu.drop_code(va, end)                  # now: no slice ends for it
            else:
                cpu.between_slices(lambda: cpu.drop_code(va, end))
            return
        pa = None if cpu.tlb_virtual else cpu.translate(va)
        if pa is not None and RAM_BASE <= pa < RAM_BASE + self.ram_size:
            pend = pa + (end - va)

            def drop() -> None:
                if not cpu.drop_code_phys(pa, pend):
                    cpu.uc.ctl_flush_tb()
            cpu.between_slices(drop)
        else:
            cpu.between_slices(cpu.uc.ctl_flush_tb)

    def _away_from_running_block(self, va: int) -> bool:
        """Can the translations of `va`'s page be dropped from inside this hook: is
        its physical page none of those the running block may span (a block covers
        at most two pages, the IC instruction's and the one before or after)?
        Dropping the running block itself would pull it from under Unicorn."""
        cpu = self.cpu
        if not cpu.in_emulation() or cpu.tlb_virtual:   # (the TLB-fill hook would translate)
            return False
        here = cpu.translate(cpu.pc, 4)
        there = cpu.translate(va, 4)
        return here is not None and there is not None and abs((there >> 12) - (here >> 12)) > 1

    def _at(self, op: tuple, cp) -> int:
        """AT: emulated by neve at every level (neve/core/at.py)."""
        cpu = self.cpu
        pc = cpu.pc
        key = (1, cp.op1, cp.crn, cp.crm, cp.op2)
        vel2 = self.vel2 is not None and self.vel2.active
        insn = cpu.read_insn(pc)
        if insn is None:
            return EXECUTE
        if not vel2 and (cpu.el() == 0 or cp.op1 != 0):
            return EXECUTE                                    # UNDEFINED at EL0, and EL2 forms at EL1
        acc = cpu.uc_accessible(key, True)
        if vel2:
            if not uc_implements(insn, 2):
                self.vel2.take_current(decode.esr(decode.EC_UNKNOWN, 0), pc)
                return cpu.redirected(acc)
            name = at.OPS[op][0]
            self.trap(ev.AT, f"AT {name}", pc=pc, insn=insn,
                      reason="HCR_EL2.NV set by L0: AT S1E2*/S12E* trap" if cp.op1 == 4 else
                      "HCR_EL2.AT set by L0: AT S1E1*/S1E0* of the nested context trap")
        if at.execute(self, op, cpu.x(insn & 0x1F), pc, insn):
            return cpu.redirected(acc)
        return cpu.skip_hooked(pc, key, True)

    def _hook_sys(self, reg, cp) -> int:
        try:
            if cp.op1 == 3 and cp.crn == 7 and cp.crm == 5 or cp.op1 == 0 and cp.crn == 7 and cp.crm in (1, 5):
                self._code_changed(cp, reg)             # IC IVAU / IALLU / IALLUIS
            if self.cpu.el() == 0:
                r = self._sys_el0(cp)
                if r is not None:
                    return r
            op = (cp.op1, cp.crm, cp.op2)
            if cp.crn == 7 and op in at.OPS:
                return self._at(op, cp)
            if self.vel2 is not None:
                r = self.vel2.sys(reg, cp)
                if r is not None:
                    return r
            return EXECUTE
        except (Stop, NeveError) as e:
            return self.fail_in_hook(e)
        except Exception as e:
            return self.fail_in_hook(GuestError(f"internal error emulating a SYS instruction at PC {self.cpu.pc:#x}: {e!r}"))
