"""The coordinator: runs the Unicorn CPU, catches everything that would reach the
host (L0) on real hardware, and performs architectural exception entry.

Unicorn executes the guest at EL1/EL0 and discards every exception it raises, so
this module rebuilds each one (ESR/ELR/SPSR/FAR, PSTATE, VBAR + offset) from the
instruction that caused it.  Every event that would take the CPU to L0 is published
once on the event bus as an `events.Trap`; counters and traces subscribe.

In the nested modes the first image runs at *virtual EL2*: see neve/el2/vel2.py.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable

from unicorn import UcError, UC_HOOK_INTR, UC_HOOK_INSN, UC_HOOK_MEM_UNMAPPED
from unicorn import UC_ERR_FETCH_PROT, UC_MEM_FETCH_UNMAPPED
from unicorn import arm64_const as A

from neve.core import at, faults, elf, psci, semihost
from neve.arch import decode, model, sysregs
from neve.observe import events as ev
from neve.core.align import DeviceAlignment
from neve.core.eret import EretHooks
from neve.core.fptrap import FPTraps
from neve.core.cpu import CPU, EXECUTE, SKIP, alloc_ram, uc_implements
from neve.core.vcpu import VCPU
from neve.gic.delivery import Interrupts
from neve.el2.vel2 import VirtualEL2
from neve.devices.pl011 import PL011
from neve.devices.timer import CNTFRQ, Counter
from neve.gic.mmio import Distributor, Redistributors
from neve.gic.state import GICv3
from neve.errors import BadInput, GuestError, NeveError, Unsupported, Wedged
from neve.arch.platform import RAM_BASE, RAM_SIZE_DEFAULT, UART_BASE, unmodelled_device
from neve.observe.stats import Stats
from neve.arch.exceptions import M_EL1H, PSTATE_DAIF, PSTATE_IF, PSTATE_IL, VEC_CUR_SP0, VEC_CUR_SPX, VEC_LOWER_A64, VEC_SYNC
from neve.arch.modes import MODES, NESTED_MODES, Mode


# Unicorn exception numbers (QEMU EXCP_*).
EXCP_UDEF, EXCP_SWI, EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT, EXCP_IRQ, EXCP_FIQ, EXCP_BKPT = 1, 2, 3, 4, 5, 6, 7
EXCP_HVC, EXCP_HYP_TRAP, EXCP_SMC = 11, 12, 13


# (encoding, is-a-write) of the MSRs to read-only registers and MRSs of write-only ones.
_WRONG_DIRECTION = frozenset((r.key, r.access == "ro") for r in sysregs.REGISTERS if r.access != "rw")

_KEY_CSSELR = sysregs.BY_NAME["CSSELR_EL1"].key
_VIRTUAL_IDS = {"MIDR_EL1": "VPIDR_EL2", "MPIDR_EL1": "VMPIDR_EL2"}
_KEY_SP_EL0 = sysregs.BY_NAME["SP_EL0"].key
_KEY_DAIF = sysregs.BY_NAME["DAIF"].key
_KEY_CNTVCT, _KEY_CNTPCT, _KEY_CNTFRQ = sysregs.BY_NAME["CNTVCT_EL0"].key, sysregs.BY_NAME["CNTPCT_EL0"].key, sysregs.BY_NAME["CNTFRQ_EL0"].key
# CNTVCTSS_EL0 / CNTPCTSS_EL0 (FEAT_ECV's self-synchronized views): not rows of the
# table, but Unicorn's CPU model answers them, so they read the same counter.
_KEY_CNTVCTSS = (3, 3, 14, 0, 6)
_KEY_CNTPCTSS = (3, 3, 14, 0, 5)


@dataclass
class Result:
    reason: str          # system-off | system-reset | semihosting-exit | budget | timeout | unsupported | guest-error
    status: int
    message: str = ""


class _Stop(Exception):
    """Raised inside a hook to end the run (carries the result)."""

    def __init__(self, result: Result):
        self.result = result


class Machine:
    def __init__(self, images: list[elf.Image], *, mode: str = "vm", ram_size: int = RAM_SIZE_DEFAULT,
                 max_insns: int | None = None, timeout: float | None = None,
                 uart_out: Callable[[bytes], None] | None = None,
                 semihost_out: Callable[[bytes], None] | None = None, policy=None) -> None:
        if mode not in MODES:
            raise BadInput(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
        if not images:
            raise BadInput("no image given")
        self.mode = Mode(mode)
        self.policy = policy
        if policy is not None and mode != policy.base:
            raise BadInput(f"policy {policy.name} is based on mode {policy.base}, not {mode}")
        self.images = images
        self.symbols = elf.SymbolTable(images)
        self.ram_size = ram_size
        self.max_insns = max_insns
        self.timeout = timeout
        self.transcript = bytearray()
        self._uart_out = uart_out
        self._semihost_out = semihost_out or (lambda b: (sys.stderr.buffer.write(b), sys.stderr.flush()))
        self.bus = ev.Bus()
        self.stats = Stats(self.bus)
        self.result: Result | None = None
        self.clocks: list = []
        self._pause_reason: str | None = None
        self._deadline: float | None = None
        # --- the board: what the CPUs share, built in dependency order ---------------
        self.ram = alloc_ram(ram_size)
        self.devices: list = []
        self.vcpus: list[VCPU] = []
        self.add_device(PL011(UART_BASE, self._uart_write))
        self._loaded: list[tuple[int, int, str]] = []     # (start, end, image) of every segment loaded
        for im in images:
            self._load(im)
        self.counter = Counter(self.icount)               # the system counter (neve/devices/timer.py)
        self.stage2_shadows: dict = {}                    # VMID -> the nested VM's shadow stage 2 (neve/el2/stage2.py)
        self._build_vcpu(0)
        # GICv3 (neve/gic): the interrupt state and the MMIO frames are the board's;
        # each vCPU's CPU interface, timers and PMU are its own (Interrupts).
        self.gic = GICv3(len(self.vcpus), [v.cpu.read_sysreg("MPIDR_EL1") for v in self.vcpus])
        self.gic.on_change = self._gic_changed
        self.add_device(Distributor(self.gic))
        self.add_device(Redistributors(self.gic))
        for v in self.vcpus:
            v.irq = Interrupts(self, v.index, self.gic, self.counter)
            self.add_clock(v.irq)
            if v.vel2 is not None:
                v.vel2.connect(v.irq)
                v.vel2.reset()
        self._run_on(self.vcpus[0])
        self.irq = self.vcpu.irq
        self.regime_changed()

    def _build_vcpu(self, index: int) -> VCPU:
        """A vCPU with the shared RAM and devices mapped, its hooks, the checks neve
        makes beside Unicorn and, in the nested modes, its virtual EL2."""
        v = VCPU(index, CPU())
        self.vcpus.append(v)
        self._run_on(v)                  # the parts below reach the CPU they are built for
        cpu = v.cpu
        cpu.map_ram_buffer(RAM_BASE, self.ram)
        for dev in self.devices:
            self._map_device(cpu, dev)
        v.align = self.align = DeviceAlignment(self)
        v.fp = self.fp = FPTraps(self)
        v.erets = self.erets = EretHooks(self)
        uc = cpu.uc
        uc.hook_add(UC_HOOK_INTR, self._hook_intr)
        uc.hook_add(UC_HOOK_INSN, self._hook_mrs, None, 1, 0, A.UC_ARM64_INS_MRS)
        uc.hook_add(UC_HOOK_INSN, self._hook_msr, None, 1, 0, A.UC_ARM64_INS_MSR)
        uc.hook_add(UC_HOOK_INSN, self._hook_sys, None, 1, 0, A.UC_ARM64_INS_SYS)
        uc.hook_add(UC_HOOK_MEM_UNMAPPED, self._hook_unmapped)
        cpu.pc = self.images[0].entry
        # RAM outside the loaded images is zero, so only they can hold an ERET now;
        # code written later is scanned when the guest does its IC maintenance.
        for im in self.images:
            for seg in im.segments:
                v.erets.scan(seg.paddr, seg.memsz)
        if self.mode in NESTED_MODES:
            v.vel2 = self.vel2 = VirtualEL2(self, self.mode, self.policy)
        return v

    def _run_on(self, v: VCPU) -> None:
        """Make `v` the vCPU the machine's code acts on: `cpu`, `vel2`, `irq`, `align`,
        `fp` and `erets` are its parts (plain attributes, not properties: the hooks
        read them on every trap)."""
        self.vcpu = v
        self.cpu, self.vel2, self.irq = v.cpu, v.vel2, v.irq
        self.align, self.fp, self.erets = v.align, v.fp, v.erets

    def _gic_changed(self, mmio: bool = False) -> None:
        for v in self.vcpus:
            if v.irq is not None:
                v.irq.kick(mmio)

    # --- set-up --------------------------------------------------------------------
    def add_device(self, dev) -> None:
        """A device of the board: mapped into every vCPU's address space."""
        self.devices.append(dev)
        for v in self.vcpus:
            self._map_device(v.cpu, dev)

    def _map_device(self, cpu: CPU, dev) -> None:

        # Unicorn splits a 64-bit access to MMIO into two 32-bit ones.  A device whose
        # registers care (dev.wide) gets it whole: the first half makes the access,
        # the second takes the other 32 bits.
        half: list = []

        def wide(size: int) -> bool:
            if size != 4 or not dev.wide:
                return False
            insn = self.cpu.read_insn(self.cpu.pc)
            ld = decode.decode_ldst(insn) if insn is not None else None
            return ld is not None and ld.size == 8

        def rd(uc, off, size, _):
            if self.align.pending is not None:      # an alignment fault: no access
                return 0
            if half and half[0][0] == off:
                return half.pop()[1]
            if wide(size):
                v = dev.read(off, 8)
                self.trap(ev.MMIO, dev.reg_name(off), "r", v)
                half.append((off + 4, v >> 32))
                return v & 0xFFFF_FFFF
            v = dev.read(off, size)
            self.trap(ev.MMIO, dev.reg_name(off), "r", v)
            return v

        def wr(uc, off, size, value, _):
            if self.align.pending is not None:
                return
            if half and half[0][0] == off:
                lo = half.pop()[1]
                value = lo | (value & 0xFFFF_FFFF) << 32
                self.trap(ev.MMIO, dev.reg_name(off - 4), "w", value)
                dev.write(off - 4, 8, value)
                return
            if wide(size):
                half.append((off + 4, value & 0xFFFF_FFFF))
                return
            self.trap(ev.MMIO, dev.reg_name(off), "w", value)
            dev.write(off, size, value)

        cpu.uc.mmio_map(dev.base, dev.size, rd, None, wr, None)

    def _load(self, im: elf.Image) -> None:
        end_ram = RAM_BASE + self.ram_size
        for s in im.segments:
            lo, hi = s.paddr, s.paddr + s.memsz
            if not (RAM_BASE <= lo and hi <= end_ram):
                dev = self.device_at(lo)
                where = f"overlaps the {dev}" if dev else "is outside RAM"
                raise BadInput(f"{im.path}: segment {lo:#x}-{hi:#x} {where} "
                               f"(RAM is {RAM_BASE:#x}-{end_ram:#x})")
            other = next(((a, b, n) for a, b, n in self._loaded if lo < b and a < hi), None)
            if other is not None:
                raise BadInput(f"{im.path}: segment {lo:#x}-{hi:#x} overlaps {other[2]}'s {other[0]:#x}-{other[1]:#x} "
                               "(as QEMU, neve refuses overlapping images)")
            self._loaded.append((lo, hi, im.name))
            off = lo - RAM_BASE
            self.ram[off:off + len(s.data)] = s.data
            self.ram[off + len(s.data):off + s.memsz] = bytes(s.memsz - len(s.data))

    def backed(self, pa: int) -> bool:
        """Is there something at this physical address (RAM or an emulated device)?"""
        if RAM_BASE <= pa < RAM_BASE + self.ram_size:
            return True
        return any(d.base <= pa < d.base + d.size for d in self.devices)

    def device_at(self, pa: int) -> str | None:
        """The device of the QEMU virt map at a physical address, modelled or not."""
        return unmodelled_device(pa) or next((d.name for d in self.devices if d.base <= pa < d.base + d.size), None)

    def _uart_write(self, b: bytes) -> None:
        self.transcript += b
        if self._uart_out:
            self._uart_out(b)

    # --- state queries ---------------------------------------------------------------
    @property
    def level(self) -> str:
        if self.vel2 is not None and self.vel2.active:
            return "vEL2"
        return "EL0" if self.cpu.el() == 0 else "EL1"

    def icount(self) -> int:
        return self.cpu.icount()

    def where(self, pc: int) -> str:
        sym = self.symbols.lookup(pc)
        return f"{pc:#x} <{sym}>" if sym else f"{pc:#x}"

    # --- events ----------------------------------------------------------------------
    def trap(self, cls: str, name: str, rw: str = "", value: int | None = None, *, pc: int | None = None,
             insn: int | None = None, reason: str = "", forwarded: bool = False, level: str | None = None) -> None:
        cpu = self.cpu
        if pc is None:
            pc = cpu.pc
        self.bus.publish(ev.Trap(self.bus.next_seq(), cpu.icount(), pc, level or self.level, cpu.el(), cls, name,
                                 rw, value, insn, reason, forwarded))

    def hypercall_begin(self, guest: str) -> None:
        if self.vcpu.hypercall_guest is None:
            self.vcpu.hypercall_guest = guest
            self.bus.publish(ev.Hypercall("begin", self.icount(), guest))

    def guest_resumed(self, guest: str) -> None:
        """Called whenever a guest context starts running again."""
        open_ = self.vcpu.hypercall_guest
        if open_ is None:
            return
        if open_ == guest:
            self.vcpu.hypercall_guest = None
            self.bus.publish(ev.Hypercall("end", self.icount(), guest))
        elif open_ == "vEL1-host":
            # L1's host kernel called its hypervisor, which ran another context.
            self.vcpu.hypercall_guest = None
            self.bus.publish(ev.Hypercall("cancel", self.icount(), open_))

    def stop(self, reason: str, status: int, message: str = "") -> None:
        raise _Stop(Result(reason, status, message))

    # --- the run loop ----------------------------------------------------------------
    SLICE = 50_000_000

    def add_clock(self, obj) -> None:
        """Register a passive time source: `obj.next_event(icount) -> int | None` says
        at which instruction count it next needs attention, `obj.tick(icount)` is
        called once the CPU has run that far.  The machine never runs past it."""
        self.clocks.append(obj)

    def pause(self, reason: str) -> None:
        """From a hook or subscriber: stop after the current instruction and return
        from run() with Result("paused") (the debugger and the GDB stub use this)."""
        self._pause_reason = reason
        self.cpu.uc.emu_stop()

    def run(self, max_slice: int | None = None) -> Result:
        """Run until the guest stops, a budget runs out, or pause() is called.  A
        paused machine resumes with another run()."""
        cpu = self.cpu
        if self.result is not None and self.result.reason != "paused":
            return self.result
        self.result = None
        if self._deadline is None and self.timeout:
            self._deadline = time.monotonic() + self.timeout
        while self.result is None:
            budget = max_slice or self.SLICE
            now = cpu.icount()
            if self.max_insns is not None:
                left = self.max_insns - now
                if left <= 0:
                    self.result = Result("budget", 124, f"instruction budget of {self.max_insns} exhausted "
                                                        f"at PC {self.where(cpu.pc)}")
                    break
                budget = min(budget, left)
            for c in self.clocks:
                t = c.next_event(now)
                if t is not None:
                    if t <= now:
                        c.tick(now)
                        t = c.next_event(now)
                    if t is not None:
                        budget = max(1, min(budget, t - now))
            timeout_us = 0
            if self._deadline is not None:
                left_s = self._deadline - time.monotonic()
                if left_s <= 0:
                    self.result = Result("timeout", 124, f"timeout of {self.timeout}s reached at PC {self.where(cpu.pc)}")
                    break
                timeout_us = max(1, int(left_s * 1e6))
            self.vcpu.pending = None    # left by a probe outside a run: not for this one
            budget = self.fp.budget(cpu.pc, budget)
            try:
                try:
                    self.vcpu.hook_error = None
                    cpu.run(cpu.pc, budget, timeout_us)
                    if self.vcpu.hook_error is not None:
                        raise self.vcpu.hook_error
                    if self.align.pending is not None:
                        self.align.deliver()
                    self.fp.after_slice()
                except UcError as e:
                    if self.vcpu.pending is None and e.errno == UC_ERR_FETCH_PROT:
                        faults.fetch_from_device(self, cpu.pc)
                    if self.vcpu.pending is None:
                        raise GuestError(f"emulation error at PC {self.where(cpu.pc)}: {e}") from None
                    pending, self.vcpu.pending = self.vcpu.pending, None
                    self.align.pending = None       # the abort path decides (alignment first)
                    pending()
            except _Stop as s:
                self.result = s.result
            except NeveError as e:
                self.result = Result(e.reason, e.exit_code, e.message)
            if self.result is None and self._pause_reason is not None:
                self.result = Result("paused", 0, self._pause_reason)
                self._pause_reason = None
            if self.result is None and max_slice is not None:
                self.result = Result("paused", 0, "slice done")
        return self.result

    # --- exception entry (hardware EL1, the guest's own vectors) -------------------------
    def take_el1(self, esr: int, elr: int, far: int | None = None, kind: int = VEC_SYNC, spsr_or: int = 0) -> None:
        """Architectural exception entry to EL1 (the VM's, or the nested VM's, own EL1).
        `spsr_or`: PSTATE bits the saved SPSR has that the hardware PSTATE does not hold."""
        cpu = self.cpu
        ps = cpu.pstate() | spsr_or
        el = (ps >> 2) & 3
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
        if self._stepping(insn):   # after the UNDEFs L0 asked for (WFI, HLT, DAIF at EL0)
            # Unicorn raises its software-step exception as an UNDEF; neve does not
            # model self-hosted debug (the step's syndrome and PSTATE.SS).
            raise Unsupported("software step (MDSCR_EL1.SS = 1)", pc)
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
        res, action = psci.call(x, cpu.read_sysreg("MPIDR_EL1") & psci.MPIDR_AFFINITY)
        if action in ("system-off", "system-reset"):
            self.stop(action, 0, f"PSCI {action}")
        if action == "cpu-off":
            raise Wedged("PSCI CPU_OFF of the only CPU: nothing can run any more", insn_pc)
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

    # --- system registers ----------------------------------------------------------------
    def _hook_mrs(self, uc, reg, cp, _) -> int:
        return self._sysreg(reg, (cp.op0, cp.op1, cp.crn, cp.crm, cp.op2), False, 0)

    def _hook_msr(self, uc, reg, cp, _) -> int:
        return self._sysreg(reg, (cp.op0, cp.op1, cp.crn, cp.crm, cp.op2), True, cp.val)

    def _sysreg(self, reg: int, key: tuple, write: bool, value: int) -> int:
        try:
            if (key, write) in _WRONG_DIRECTION:
                return self._wrong_direction(key, write)
            if self.cpu.el() == 0:
                r = self._el0_access(key, write)
                if r is not None:
                    return r
            if self.vel2 is not None:
                r = self.vel2.sysreg(reg, key, write, value)
                if r is not None:
                    return r
            return self._sysreg_el1(reg, key, write, value)
        except (_Stop, NeveError) as e:
            return self.fail_in_hook(e)
        except Exception as e:  # never let a hook die silently inside Unicorn
            return self.fail_in_hook(GuestError(f"internal error emulating a system register access at PC {self.cpu.pc:#x}: {e!r}"))

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

    def _stepping(self, insn: int | None) -> bool:
        """Is this UNDEF Unicorn's software-step exception?  MDSCR_EL1.SS is set and the
        instruction at PC is one the CPU executes (Unicorn takes the step later than
        the Arm ARM's rules say, so PSTATE.D and KDE do not tell)."""
        if not self._control("MDSCR_EL1") & 1 or insn is None:
            return False
        return uc_implements(insn, 1, fp=True)

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
                cpu.uc.reg_write(reg, v)
                return cpu.skip_hooked(cpu.pc, key, write)
        elif key == _KEY_DAIF and self.irq.masked and cpu.pstate() & ~value & PSTATE_IF:
            # MSR DAIF unmasking an interrupt pending while masked: made here, and the
            # interrupt taken right after it (as MSR DAIFClr, neve/gic/delivery.py).
            acc = cpu.uc_accessible(key, write)
            cpu.set_pstate(cpu.pstate() & ~PSTATE_DAIF | value & PSTATE_DAIF)
            cpu.pc += 4
            self.irq.unmasked()
            return cpu.redirected(acc)
        r = self.irq.sysreg(reg, key, write, value)    # timers, ICC_*/ICV_*, ISR_EL1
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
                cpu.uc.reg_write(reg, self.vcpu.owned.get(row.name, reset))
            return cpu.skip_hooked(cpu.pc, row.key, write)
        if not cpu.uc_accessible(row.key, write):
            return EXECUTE                                    # UNDEFINED here: Unicorn raises it
        if not write:
            below = self.vel2 is not None and not self.vel2.active      # what L1 runs at EL1/EL0
            if below and row.name in _VIRTUAL_IDS:
                # EL1 reads of MIDR_EL1/MPIDR_EL1 return VPIDR_EL2/VMPIDR_EL2 (L1's).
                cpu.uc.reg_write(reg, self.vel2.get(_VIRTUAL_IDS[row.name]))
                return cpu.skip_hooked(cpu.pc, row.key, write)
            if row.name not in model.ID_VALUES:
                return EXECUTE
            hcr = self.vel2.get("HCR_EL2") if below else 0
            csselr = cpu.cpr_read(*_KEY_CSSELR) if row.name == "CCSIDR_EL1" else 0
            v = model.id_value(row.name, self.vel2 is not None, csselr, hcr)
            if v is None:
                return EXECUTE
            cpu.uc.reg_write(reg, v)
            return cpu.skip_hooked(cpu.pc, row.key, write)
        if row.wmask == sysregs.ALL64 and not row.regime:
            return EXECUTE
        # Bits the model does not implement (RES0, RAZ/WI) are written as the model
        # would; a register behind the regime neve keeps track of is written here.
        cpu.cpr_write(*row.key, (cpu.cpr_read(*row.key) & ~row.wmask) | (value & row.wmask))
        cpu.flush_tlb()
        self.regime_changed()
        return cpu.skip_hooked(cpu.pc, row.key, write)

    def regime_changed(self) -> None:
        """SCTLR_EL1, CPACR_EL1, a world switch, vEL2's own regime: what neve checks
        beside Unicorn (Device alignment, FP access traps) follows."""
        self.align.sync()
        self.fp.sync()

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

    def _code_changed(self, cp) -> None:
        """The guest did instruction-cache maintenance: code may have changed."""
        self.fp.code_changed()
        self.align.code_changed()
        if cp.op1 == 3:                                 # IC IVAU: by VA (the code runs identity-mapped
            va = self.cpu.x(self.cpu.read_insn(self.cpu.pc) & 0x1F) & ~63   # or MMU-off here)
            if RAM_BASE <= va < RAM_BASE + self.ram_size:
                self.erets.scan(va, 64)
        else:
            self.erets.scan(RAM_BASE, self.ram_size)

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

    def fail_in_hook(self, e: Exception) -> int:
        """From an MRS/MSR/SYS hook, which must return an int to Unicorn (raising
        through it makes ctypes print a traceback): stop the CPU and let run()
        raise `e` once emu_start has returned."""
        self.vcpu.hook_error = e
        self.cpu.uc.emu_stop()
        return SKIP

    def _hook_sys(self, uc, reg, cp, _) -> int:
        try:
            if cp.op1 == 3 and cp.crn == 7 and cp.crm == 5 or cp.op1 == 0 and cp.crn == 7 and cp.crm in (1, 5):
                self._code_changed(cp)                  # IC IVAU / IALLU / IALLUIS
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
        except (_Stop, NeveError) as e:
            return self.fail_in_hook(e)
        except Exception as e:
            return self.fail_in_hook(GuestError(f"internal error emulating a SYS instruction at PC {self.cpu.pc:#x}: {e!r}"))


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
