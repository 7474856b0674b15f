"""Exceptions (a mixin of the Machine): Unicorn discards every exception it raises,
so the machine rebuilds each one (ESR/ELR/SPSR/FAR, PSTATE, VBAR + offset) from the
instruction that caused it -- UNDEFINED, SVC, BRK, HVC/SMC (PSCI), semihosting, aborts --
and takes it at EL1, or hands it to virtual EL2 (neve/el2/vel2.py)."""
from __future__ import annotations

from typing import Callable

from unicorn import UC_MEM_FETCH_UNMAPPED

from neve.core import faults, psci, semihost
from neve.arch import decode, sysregs
from neve.observe import events as ev
from neve.core.cpu import CPU, SKIP, uc_implements
from neve.core.result import Stop
from neve.devices.pmu import EV_EXC_TAKEN
from neve.errors import GuestError, NeveError, Unsupported, Wedged
from neve.arch.platform import unmodelled_device
from neve.arch.exceptions import M_EL1H, PSTATE_DAIF, PSTATE_IL, VEC_CUR_SP0, VEC_CUR_SPX, VEC_LOWER_A64, VEC_SYNC


# Unicorn exception numbers (QEMU EXCP_*).
EXCP_UDEF, EXCP_SWI, EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT, EXCP_IRQ, EXCP_FIQ, EXCP_BKPT = 1, 2, 3, 4, 5, 6, 7
EXCP_HVC, EXCP_HYP_TRAP, EXCP_SMC = 11, 12, 13

_KEY_SP_EL0 = sysregs.BY_NAME["SP_EL0"].key


class ExceptionEntry:
    """The Machine's exception handling (a mixin: `self` is the Machine)."""

    # --- exception entry (hardware EL1, the guest's own vectors) -------------------------
    def take_el1(self, esr: int, elr: int, far: int | None = None, kind: int = VEC_SYNC, spsr_or: int = 0) -> None:
        """Architectural exception entry to EL1 (the VM's, or the nested VM's, own EL1).
        `spsr_or`: PSTATE bits the saved SPSR has that the hardware PSTATE does not hold."""
        cpu = self.cpu
        ps = cpu.pstate() | spsr_or
        el = (ps >> 2) & 3
        self.irq.pmu.event(EV_EXC_TAKEN, el)
        off = VEC_LOWER_A64 if el == 0 else (VEC_CUR_SPX if ps & 1 else VEC_CUR_SP0)
        if kind == VEC_SYNC:
            cpu.write_sysreg("ESR_EL1", esr)
            if far is not None:
                cpu.write_sysreg("FAR_EL1", far)
        cpu.write_sysreg("ELR_EL1", elr)
        cpu.write_sysreg("SPSR_EL1", ps & 0xFFFF_FFFF)    # SPSR = PSTATE (AArch64)
        vbar = cpu.read_sysreg("VBAR_EL1")
        cpu.set_pstate(M_EL1H | PSTATE_DAIF | new_pan(cpu, ps))
        cpu.pc = (vbar & ~0x7FF) + off + kind

    def deliver_sync(self, esr: int, elr: int, far: int | None = None, spsr_or: int = 0) -> None:
        """A synchronous exception of the running code that the hardware would take
        without involving L0: to EL1 (vm mode, nested VM) or to vEL2."""
        if self.vel2 is not None:
            self.vel2.deliver_sync(esr, elr, far, spsr_or)
        else:
            self.take_el1(esr, elr, far, spsr_or=spsr_or)

    # --- hooks -----------------------------------------------------------------------
    def _intr_raw(self, _uch, intno: int, _data) -> None:
        """Unicorn's exception hook (a bare ctypes callback: nothing may raise through it)."""
        try:
            self._hook_intr(None, intno, None)
        except (NeveError, Stop) as e:
            self.fail_in_hook(e)
        except Exception as e:
            self.fail_in_hook(GuestError(f"internal error in the exception hook at PC {self.cpu.pc:#x}: {e!r}"))
        except BaseException as e:              # KeyboardInterrupt: raised once emu_start returns
            self.fail_in_hook(e)

    def _hook_intr(self, uc, intno: int, _) -> None:
        cpu = self.cpu
        pc = cpu.pc
        if intno in (EXCP_SWI, EXCP_HVC, EXCP_SMC):
            insn_pc = pc - 4
            insn = cpu.read_insn(insn_pc)
            imm = ((insn or 0) >> 5) & 0xFFFF
            if intno == EXCP_SWI:
                self.deliver_sync(decode.esr(decode.EC_SVC64, imm), pc)
            elif intno == EXCP_HVC:
                self._on_hvc(imm, insn_pc, insn)
            else:
                self._on_smc(imm, insn_pc, insn)
            return
        if intno == EXCP_UDEF:
            insn = cpu.read_insn(pc)
            self._on_udef(pc, insn)
            return
        if intno == EXCP_BKPT:
            insn = cpu.read_insn(pc)
            k = decode.classify(insn) if insn is not None else None
            if k is None or k.kind != "brk":
                raise Unsupported("breakpoint exception without a BRK instruction", pc)
            esr = decode.esr(decode.EC_BRK64, k.imm)
            if self.vel2 is None or not self.vel2.route_debug(esr, pc, f"BRK #{k.imm:#x}", insn):
                self.deliver_sync(esr, pc)
            return
        if intno in (EXCP_DATA_ABORT, EXCP_PREFETCH_ABORT):
            self._on_mmu_abort(intno == EXCP_PREFETCH_ABORT, pc)
            return
        raise Unsupported(f"exception {intno} raised by the CPU", pc)

    def _on_udef(self, pc: int, insn: int | None) -> None:
        debug = self.irq.debug
        if debug.stepping():
            # Unicorn's software-step exception (neve/devices/debug.py): before the
            # instruction at PC, ahead of its own exceptions (Arm ARM priority).
            debug.step(pc)
            return
        if debug.step_stale(insn):
            raise Unsupported("software step that Unicorn took from out-of-date state (MDSCR_EL1.SS set, "
                              "no step enabled now)", pc)
        if self.cpu.pstate() & PSTATE_IL:
            # After an illegal exception return (Unicorn's own ERET at EL1), the next
            # instruction takes an Illegal Execution state exception, unless fetching
            # it faults: an Instruction Abort has the higher priority (Arm ARM), and
            # Unicorn raises the exception without fetching.
            faults.take_illegal_state(self, pc)
            return
        k = decode.classify(insn) if insn is not None else None
        kind = k.kind if k else None
        if kind == "hlt" and k.imm == semihost.HLT_SEMIHOSTING:
            self._semihosting(pc, insn)
            return
        if kind == "wfi":
            # A WFI traps only when it would wait (QEMU's cpu_has_work): first to EL1 at
            # EL0 (SCTLR_EL1.nTWI), then to vEL2 (L1's HCR_EL2.TWI).
            waits = not self.irq.wake_event()
            if waits and self.cpu.el() == 0 and sysregs.WFI_EL0.holds({"SCTLR_EL1": self._control("SCTLR_EL1")}):
                self.take_el1(decode.esr(decode.EC_WFX, decode.wfx_iss("wfi")), pc)
                return
            if waits and self.vel2 is not None and self.vel2.route_wfx(pc, insn):
                return
            # L0 traps WFI (HCR_EL2.TWI).  With nothing pending, L0 skips time to the
            # next timer deadline (neve/gic/delivery.py); WFI then completes, and the
            # interrupt, if unmasked, is taken with ELR pointing after the WFI.
            self.trap(ev.WFX, "WFI", pc=pc, insn=insn, reason="HCR_EL2.TWI set by L0")
            self.cpu.pc = pc + 4
            self.irq.wfi(pc)
            return
        if kind == "msr_imm" and k.name in ("DAIFSet", "DAIFClr") and self.cpu.el() == 0 \
                and sysregs.DAIF_EL0.holds({"SCTLR_EL1": self._control("SCTLR_EL1")}):
            # The Arm ARM's syndrome (QEMU 10 swaps Op1 and Op2 in it).
            self.take_el1(decode.esr(decode.EC_SYS64, decode.sysreg_iss(0, k.op1, 4, k.crm, k.op2, 31, False)), pc)
            return
        if kind in ("eret", "eretaa", "eretab") and self.vel2 is not None and self.vel2.active:
            self.vel2.eret(pc, insn)
            return
        if kind in ("mrs", "msr", "sys", "sysl") and self.vel2 is not None and self.vel2.active \
                and uc_implements(insn, 2) and not (k.op0, k.op1, k.crn, k.crm, k.op2) == _KEY_SP_EL0:
            # UNDEFINED at EL1, where vEL2 runs, but the CPU model has it at EL2.
            raise Unsupported(f"{decode.disasm(insn, pc)} at vEL2", pc)
        self.deliver_sync(decode.esr(decode.EC_UNKNOWN, 0), pc)

    def _semihosting(self, pc: int, insn: int) -> None:
        cpu = self.cpu
        op = cpu.x(0) & 0xFFFFFFFF
        arg = cpu.x(1)
        name = semihost.NAMES.get(op, f"semihosting op {op:#x}")
        self.trap(ev.SEMIHOSTING, name, pc=pc, insn=insn, reason="hlt #0xf000 (Arm semihosting) handled by L0")
        if op == semihost.SYS_WRITEC:
            self._semihost_out(self._read_guest(arg, 1))
        elif op == semihost.SYS_WRITE0:
            out = bytearray()
            while len(out) < 1 << 20:
                b = self._read_guest(arg + len(out), 1)
                if b == b"\0":
                    break
                out += b
            self._semihost_out(bytes(out))
        elif op in (semihost.SYS_EXIT, semihost.SYS_EXIT_EXTENDED):
            block = self._read_guest(arg, 16)
            reason = int.from_bytes(block[:8], "little")
            code = int.from_bytes(block[8:], "little")
            status = (code & 0xFF) if reason == semihost.ADP_STOPPED_APPLICATION_EXIT else 1
            self.stop("semihosting-exit", status, f"semihosting exit (reason {reason:#x}, code {code})")
        else:
            raise Unsupported(f"semihosting operation {op:#x}", pc)
        cpu.pc = pc + 4

    def _read_guest(self, va: int, size: int) -> bytes:
        b = self.cpu.read_virt(va, size)
        if b is None:
            raise GuestError(f"semihosting argument at {va:#x} is not readable")
        return b

    def _on_hvc(self, imm: int, insn_pc: int, insn: int | None) -> None:
        if self.vel2 is not None and self.vel2.on_hvc(imm, insn_pc, insn):
            return
        # vm mode: the guest's HVC is a hypercall to L0 (PSCI / SMCCC).
        self.hypercall_begin("EL1")
        self._psci_call(ev.HVC, f"HVC #{imm:#x}", insn_pc, insn, "HVC from EL1 always traps to EL2")
        self.guest_resumed("EL1")

    def _on_smc(self, imm: int, insn_pc: int, insn: int | None) -> None:
        if self.vel2 is not None and self.vel2.on_smc(imm, insn_pc, insn):
            return
        if self.vel2 is None:
            # vm mode: the VM's firmware conduit is HVC and nothing answers an SMC
            # (QEMU's virt board without EL2/EL3 makes it UNDEFINED; KVM traps it with
            # HCR_EL2.TSC and injects an UNDEF).
            self.trap(ev.SMC, f"SMC #{imm:#x}", value=self.cpu.x(0), pc=insn_pc, insn=insn,
                      reason="HCR_EL2.TSC set by L0, which injects UNDEF: the VM's PSCI conduit is HVC")
            self.take_el1(decode.esr(decode.EC_UNKNOWN, 0), insn_pc)
            return
        self._psci_call(ev.SMC, f"SMC #{imm:#x}", insn_pc, insn, "SMC to the firmware (EL3), emulated by L0")

    def _psci_call(self, cls: str, name: str, insn_pc: int, insn: int | None, reason: str) -> None:
        cpu = self.cpu
        x = [cpu.x(i) for i in range(4)]
        self.trap(cls, name, value=x[0], pc=insn_pc, insn=insn,
                  reason=f"{reason}; {psci.NAMES.get(x[0], 'SMCCC call')} x0={x[0]:#x}")
        power = {v.affinity: v.power for v in self.vcpus}
        res, action = psci.call(x, self.vcpu.affinity, power)
        if action in ("system-off", "system-reset"):
            self.stop(action, 0, f"PSCI {action}")
        if action == "cpu-off":
            if not any(v.power == "on" for v in self.vcpus if v is not self.vcpu):
                raise Wedged("PSCI CPU_OFF of the last CPU that is on: nothing can run any more", insn_pc)
            self.vcpu.power = "off"             # (Machine._schedule runs the others)
            cpu.uc.emu_stop()
            return
        if action == "cpu-on":
            # The target starts at its next turn (Machine._power_on), with the entry
            # point and context id as the caller's registers hold them (QEMU passes all
            # 64 bits whatever the function ID's width).
            target = next(v for v in self.vcpus if v.affinity == x[1])
            target.power, target.asleep = "on", False
            target.start = (x[2], x[3])
            cpu.end_slice_after_current()       # the scheduler shares the time from here on
        cpu.set_x(0, res)
        cpu.pc = insn_pc + 4
        if action == "suspend":          # CPU_SUSPEND: a WFI, as QEMU's PSCI does it
            self.irq.wfi(insn_pc)

    def _on_mmu_abort(self, prefetch: bool, pc: int) -> None:
        faults.mmu_abort(self, prefetch, pc)

    def _hook_unmapped(self, uc, access: int, addr: int, size: int, value: int, _) -> bool:
        pc = self.cpu.pc
        if self.vel2 is not None and access == UC_MEM_FETCH_UNMAPPED and self.vel2.is_eret_net(addr):
            self.defer(lambda: self.vel2.eret(None, None))
            return False
        dev = unmodelled_device(addr)
        if dev is not None:
            self.defer(_raiser(Unsupported(f"access to the QEMU virt {dev} at PA {addr:#x}", pc)))
            return False
        level = self.level
        self.defer(lambda: faults.external_abort(self, access, addr, pc, level))
        return False

    def defer(self, action: Callable[[], None]) -> None:
        """From a hook that refuses an access (Unicorn then stops with an error): run
        `action` (take the fault, emulate the ERET...) once Unicorn has returned."""
        self.vcpu.pending = action

    def fail_in_hook(self, e: Exception) -> int:
        """From an MRS/MSR/SYS hook, which must return an int to Unicorn (raising
        through it makes ctypes print a traceback): stop the CPU and let run()
        raise `e` once emu_start has returned."""
        self.vcpu.hook_error = e
        self.cpu.uc.emu_stop()
        return SKIP


def new_pan(cpu: CPU, ps: int) -> int:
    """PSTATE.PAN on entry to EL1: set when SCTLR_EL1.SPAN is 0, else preserved."""
    sctlr = cpu.read_sysreg("SCTLR_EL1")
    if not (sctlr >> 23) & 1:
        return 1 << 22
    return ps & (1 << 22)


def _raiser(e: Exception) -> Callable[[], None]:
    def go() -> None:
        raise e
    return go
