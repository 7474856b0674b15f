"""Interrupts and time as L0 provides them: the guest's GICv3 and generic timers,
interrupt delivery, WFI, and the shadow list registers of a nested VM.

Who owns what
-------------
L0 emulates one GICv3 (neve/gic/) and one timer bank per CPU
(neve/devices/timer.py) for the guest it runs directly: the VM kernel in vm mode, the
guest hypervisor L1 in the nested modes.  In the nested modes these are *L1's*
"physical" GIC and timers: L1's EL1 physical and virtual timers (PPIs 30, 27), its EL2
hyp timer (PPI 26, CNTHP_*, always trapped and emulated by L0), the UART..., and the
maintenance interrupt (PPI 25) of L1's virtual CPU interface.  Interrupts reach L1
through L0's own virtual interface for L1: L1's ICC_*_EL1 accesses (at vEL2, or from
its host-kernel part at EL1) read the `CpuInterface` of that GIC, without trapping, as
a VM's ICC_* accesses reach the ICV_* registers on hardware (L0 runs its VM with
HCR_EL2.IMO/FMO set).  Only ICC_SGI*R trap (HCR_EL2.IMO/FMO: the register table's
condition), as on KVM; in vm mode the same holds for the VM kernel (VM_CONTROLS).

Shadow list registers
---------------------
L1 programs ICH_HCR_EL2/ICH_VMCR_EL2/ICH_LR<n>_EL2/ICH_AP<m>R<n>_EL2 for its nested VM
(L2): trapped and stored by L0 in v8.3, written to the VNCR/NEVE page in nv2/neve (the
`VirtualEL2` storage either way).  When L1 enters L2 (emulated ERET), L0 loads them
into the list registers it runs L2 with (`shadow`, a `VirtualInterface`), so L2's
ICC_IAR1/EOIR1/... with L1's HCR_EL2.IMO set are ICV_* accesses against those LRs and
cost no trap.  When L2 exits to vEL2, L0 writes the resulting state (LR pending ->
active -> invalid, EOIcount, VMCR, APRs) back to L1's view; ICH_MISR/EISR/ELRSR_EL2
reads (always trapped) are computed from that view.  L1's maintenance interrupt is
asserted while ICH_HCR_EL2.En and ICH_MISR_EL2 != 0, computed from the shadow while L2
runs and from L1's view while vEL2 runs.  An LR with HW = 1 deactivates its pINTID in
L1's GIC when L2 deactivates the virtual interrupt.

Delivery
--------
After any change (an MMIO/ICC/timer access, a world switch, a timer deadline) the
machine's run loop calls `tick`, which updates the timer lines and the maintenance
line and takes an interrupt if one can be taken:
* vm mode, or vEL2: the GIC's IRQ/FIQ signal, when PSTATE.I/F allow, at the current
  vector (`take_el1`, or `take_current` at vEL2) with offset 0x80/0x100;
* L2 (or L1's host kernel) running: a signal of L1's GIC is taken to vEL2 (IRQ exit,
  lower-EL vector + 0x80) when L1's HCR_EL2.IMO/FMO (or TGE) is set, whatever L2's
  PSTATE.I; otherwise at L2's own EL1 when its PSTATE allows.  Then a virtual
  interrupt from the shadow LRs (or HCR_EL2.VI/VF) is taken at L2's EL1 vector when
  L1's HCR_EL2.IMO/FMO is set and L2's PSTATE.I/F allow.
Unicorn does not report `msr daifclr` (op0 = 0), but ends a translation block after
it: while an interrupt is signalled but masked, a block hook watches PSTATE.I/F
(`Interrupts.masked`) and the interrupt is taken right after the unmasking
instruction.

Traps
-----
A timer or maintenance line rising while a guest runs is a physical interrupt taken
to L0: one `irq` trap event (while L0 already runs -- in WFI, or during an ERET it
emulates -- it costs nothing extra).  L0 then injects it; its forwarding to vEL2
appears as a world switch, not as a second trap.  ICV accesses by L2, timer accesses
the hardware serves (CNTV_*), and interrupt entries cost no trap.

WFI: when L0 traps a WFI (HCR_EL2.TWI) and no interrupt would wake the CPU, the counter
skips to the next timer deadline (neve/devices/timer.py), and on until one would; when
nothing at all can ever wake it, the run stops with "guest wedged" (exit 126), where
QEMU would wait for ever.  UART input is a wake-up source too: while the PL011's RX
interrupt is enabled and its FIFO empty, a WFI first takes the next characters of
a file input at once (no time skipped), or waits for a live one (stdin) in host time
until the next timer deadline, for ever without one (neve/devices/pl011.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from unicorn.unicorn_py3.unicorn import HOOK_CODE_CFUNC

from neve.arch import decode, model, sysregs
from neve.observe import events as ev
from neve.errors import GuestError, Wedged
from neve.gic.regs import ICH_HCR_EN, ICH_HCR_WRITABLE, PPI_MAINTENANCE
from neve.gic.state import GICv3
from neve.gic.vif import VirtualInterface, mask_lr, mask_vmcr
from neve.devices.debug import Debug
from neve.devices.pmu import PMU, PPI_PMU
from neve.devices.timer import Counter, DictRegs, TimerBank
from neve.arch.exceptions import PSTATE_F, PSTATE_I, PSTATE_IF, VEC_FIQ, VEC_IRQ

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine
    from neve.core.vcpu import VCPU


_HCR = {b: sysregs.ctrl_bit("HCR_EL2", b) for b in ("IMO", "FMO", "TGE", "VI", "VF")}

# ICC_* registers by their name without prefix/suffix, and which HCR_EL2 routing bit
# turns an EL1 access into an ICV_* access (GICv3 spec 8.2; QEMU icv_access()).
_GROUP0 = {"IAR0", "EOIR0", "HPPIR0", "BPR0", "IGRPEN0", "AP0R0", "AP0R1", "AP0R2", "AP0R3"}
_COMMON = {"CTLR", "DIR", "PMR", "RPR"}


def _icv_flag(short: str) -> int:
    if short in _GROUP0:
        return _HCR["FMO"]
    if short in _COMMON:
        return _HCR["IMO"] | _HCR["FMO"]
    return _HCR["IMO"]


# Encodings the dispatcher emulates at EL1/EL0: the rows the register table gives to
# the GIC (ICC_*_EL1, ISR_EL1), the timers (CNTP_*/CNTV_*_EL0) and the PMU (`fn`), when
# the CPU model implements them (else they are UNDEFINED).
_KEYS: dict[tuple, sysregs.SysReg] = {r.key: r for r in sysregs.REGISTERS
                                      if r.fn is not None and r.group != "el2" and model.implemented(r)}


class Interrupts:
    """The machine's interrupt and time subsystem (a clock of the run loop)."""

    def __init__(self, m: Machine, vcpu: VCPU, gic: GICv3, counter: Counter) -> None:
        self.m = m                                # the board: images, RAM, trap events
        self.vcpu = vcpu                          # whose interrupts these are
        self.cpu = vcpu.cpu
        index = self.index = vcpu.index           # its GIC CPU interface and PPIs
        self.vm_controls = sysregs.VM_CONTROLS    # L0's controls while a VM (or L1's EL1) runs
        self.counter = counter                    # the board's system counter
        nested = vcpu.vel2 is not None
        self.gic = gic                            # the board's GIC state
        self.timers = TimerBank(self.counter, vcpu.vel2 if nested else DictRegs(), self._cntvoff, hyp=nested)
        self.pmu = PMU(vcpu.cpu.own_icount, self._pmu_line, self._pmu_mdcr, el=2 if nested else 1)
        self._el_keep = None                      # the PMU's level watch (its ctypes callback), once installed
        self._el_watch = 0                        # ... what it reports (bit 0 levels, bit 1 EL1 code pages)
        self._el_last = self.pmu.el               # ... the level it last reported (the Python path)
        self.debug = Debug(m, vcpu, lambda bps: vcpu.erets.set_breakpoints(bps))
        self.shadow = VirtualInterface()          # the LRs L0 runs the nested VM with
        self._view = VirtualInterface()           # L1's own ICH_* registers (_l1_view)
        self._view_raw: list[int] | None = None   # ... the values it was loaded from
        self._view_maint: bool | None = None      # ... its maintenance level, once computed
        self._ich_slots: list[int] | None = None  # ... their vEL2 storage slots
        self._stored: list[int] | None = None     # the shadow's values written back at the last exit
        self.shadow.deactivate_physical = lambda pintid: self.gic.deactivate(index, pintid)
        self.maintenance_line = False
        self._fast = vcpu.fast                    # the compiled unmask watch, if built
        self._masked = False
        self._watch = 0                           # PSTATE.I/F bits masking a pending signal
        self._watch_hook = None
        self._keep = None                         # the Python watch's ctypes callback
        self._dirty = True
        self._in_tick = False
        self._hold = False                        # a register access is being made (`held`)
        self._held = False                        # ... and it kicked
        self._settle_in_l0 = False                # ... and the lines changed while L0 ran (ERET)
        self._el1_read = {"gic": self._gic_read, "timer": self._timer_read, "pmu": self._pmu_read,
                          "debug": lambda row: self.debug.read(row.name)}
        self._el1_write = {"gic": self._gic_write, "timer": self._timer_write, "pmu": self._pmu_write,
                           "debug": lambda row, value: self.debug.write(row.name, value)}

    # --- unmasking: Unicorn does not report `msr daifclr` (op0 = 0) ---------------------
    @property
    def masked(self) -> bool:
        """A signal is pending but PSTATE masks it."""
        return self._masked

    @masked.setter
    def masked(self, v: bool) -> None:
        """While a signal waits for PSTATE.I/F, a block hook watches the mask bits set
        now: Unicorn ends a translation block after `msr daifclr` (so that pending
        interrupts are looked at), so the block after the one that unmasked stops
        before its first instruction and the run loop takes the interrupt there, right
        after the instruction that unmasked it, as on hardware.  (MSR DAIF and ERET,
        which neve sees, call `unmasked` themselves.)  The hook is installed the first
        time and kept (see neve/core/fptrap.py for why); the compiled one calls Python
        only once a watched bit is clear."""
        if not v and not self._masked and not self._watch:
            return                                  # (nothing pending, nothing watched: as it was)
        self._masked = v
        if self._fast is not None:
            self._fast.state.irq_masked = v         # (MSR DAIF then reaches Python)
        bits = self.cpu.pstate() & PSTATE_IF if v else 0
        self._watch = bits
        if self._fast is not None:
            self._fast.state.irq_watch = bits
        if bits and self._keep is None:
            self._keep = HOOK_CODE_CFUNC(self._unmask_block)
            self.cpu.between_slices(self._install_watch)

    def _install_watch(self) -> None:
        if self._fast is not None:
            self._watch_hook = self._fast.hook_irq_block(self._keep)
        else:
            self._watch_hook = self.cpu.add_block_hook_raw(self._keep)
        self.cpu.uc.ctl_flush_tb()

    def _unmask_block(self, _uch, addr: int, size: int, _data) -> None:
        """Before each block (a bare ctypes callback): a watched mask bit was cleared?"""
        bits = self._watch
        if not bits:
            return
        try:
            if self.cpu.pstate() & bits != bits:
                self._watch = 0
                if self._fast is not None:
                    self._fast.state.irq_watch = 0
                self._dirty = True                      # the run loop's tick delivers it
                self.cpu.stop_before_current()
        except Exception as e:                          # never let the hook die inside Unicorn
            self.m.fail_in_hook(GuestError(f"internal error in the unmask block hook at {addr:#x}: {e!r}"))

    def unmasked(self) -> None:
        """PSTATE.I/F were just cleared by an instruction neve executed itself (MSR
        DAIF, an ERET at EL1): take an interrupt pending while masked, now."""
        self._in_tick = True
        try:
            self.deliver()
        finally:
            self._in_tick = False

    def _cntvoff(self) -> int:
        return self.vcpu.vel2.cntvoff() if self.vcpu.vel2 is not None else 0

    # --- the run loop's clock protocol -------------------------------------------------
    def kick(self, mmio: bool = False) -> None:
        """Something changed: end the slice so the run loop re-evaluates (`tick`).

        From a hook that has already moved PC past the instruction (MRS/MSR, WFI,
        ERET), emu_stop() ends the slice there.  Inside an MMIO write callback,
        emu_stop() alone would abandon the store and re-execute it; for a single-register
        store without writeback L0 completes it by stepping PC past it first, and for
        other forms (pairs, writeback) re-evaluation waits for the slice to end."""
        if self._in_tick:
            return
        self._dirty = True
        if self._hold and not mmio:
            self._held = True
            return
        cpu = self.cpu
        if mmio:
            pc = cpu.pc
            insn = cpu.read_insn(pc)
            d = decode.decode_ldst(insn) if insn is not None else None
            if d is None or not d.write or d.read or d.writeback or d.nregs != 1 or d.exclusive:
                return
            cpu.pc = pc + 4
        cpu.uc.emu_stop()

    def touch(self) -> None:
        """A device's interrupt line changed inside an access the caller ends the
        slice after (Machine._uart_line): re-evaluate at the next tick."""
        self._dirty = True

    def held(self, fn: Callable, *args):
        """`fn(*args)`: an MRS/MSR hook's access to one of this subsystem's registers,
        completed by the hook (PC not moved elsewhere).  A kick it makes waits for its
        end and then settles (`_settle`) instead of stopping the slice."""
        self._hold, self._held = True, False
        try:
            r = fn(*args)
        except BaseException:
            self._hold = self._settle_in_l0 = False
            if self._held:                          # as a plain kick
                self._held = False
                self.cpu.uc.emu_stop()
            raise
        self._hold = False
        if self._held:
            self._held = False
            self._settle()
        return r

    def _settle(self) -> None:
        """From the hook, what the run loop's `tick` would do right after this
        instruction (at the same instruction count, so with the same result), unless
        it takes an exception or a clock's next event falls inside the running slice:
        then the slice stops there and the run loop does it, as a kick does.  Saves a
        slice (an emu_start) per timer, GIC or PMU register write."""
        cpu = self.cpu
        self._in_tick = True
        in_l0, self._settle_in_l0 = self._settle_in_l0, False
        try:
            self.pmu.sync()
            self.update(in_l0=in_l0)
            take, masked = self._decision()
        finally:
            self._in_tick = False
        if take is not None:
            cpu.uc.emu_stop()                       # still dirty: the run loop delivers it
            return
        self._dirty, self.masked = False, masked
        now = cpu.icount()
        end = cpu.slice_end()
        timers = self.timers.deadline_at_update     # as update() found it just now
        for c in self.m.clocks_now:
            # This subsystem was just updated (not dirty, not stale): its deadlines.
            t = self._deadline(timers) if c is self else c.next_event(now)
            if t is not None and t < end:
                cpu.uc.emu_stop()
                return

    def next_event(self, icount: int) -> int | None:
        if self._dirty or self.timers.stale():
            return icount
        return self._deadline()

    def _deadline(self, timers: int | bool | None = False) -> int | None:
        """The instruction count of the next timer deadline or PMU overflow (`timers`:
        the timers' next deadline, when the caller has it)."""
        t = self.timers.next_deadline() if timers is False else timers
        best = self.counter.to_icount(t) if t is not None else None
        p = self.pmu.next_overflow()                # the PMU counts this CPU's instructions
        if p is not None:
            p += self.cpu.skew                      # ... on the machine's clock
        if p is not None and (best is None or p < best):
            best = p
        return best

    def tick(self, icount: int) -> None:
        self._in_tick = True
        try:
            self.pmu.sync()                         # a counter that wrapped raises its line
            self.update()
            self.deliver()
        finally:
            self._in_tick = False
            self._dirty = False

    # --- lines -------------------------------------------------------------------------
    def _maintenance_now(self) -> bool | None:
        """The maintenance interrupt's level from the list registers in force now:
        L1's own ICH_* view while vEL2 runs, the shadow ones below it; None without
        a virtual EL2."""
        vel2 = self.vcpu.vel2
        if vel2 is None:
            return None
        if not vel2.active:
            return self.shadow.maintenance()
        if not vel2.get("ICH_HCR_EL2") & ICH_HCR_EN:       # no need to build the view
            return False
        view = self._l1_view()
        if self._view_maint is None:
            self._view_maint = view.maintenance()
        return self._view_maint

    def _l1_view(self) -> VirtualInterface:
        """L1's own ICH_* registers (vEL2's storage) as a VirtualInterface (loaded
        again only when they changed)."""
        vel2 = self.vcpu.vel2
        if self._ich_slots is None:
            self._ich_slots = [vel2.slot[n] for n in VirtualInterface.NAMES]
        st = vel2.store
        raw = [st[i] for i in self._ich_slots]
        if raw != self._view_raw:
            self._view.load_values(raw)
            self._view_raw, self._view_maint = raw, None
        return self._view

    def update(self, in_l0: bool = False) -> None:
        """Recompute timer and maintenance lines; a rising line while a guest runs is
        a physical interrupt taken to L0 (an `irq` trap)."""
        for t, level in self.timers.update():
            self.gic.set_ppi(self.index, t.ppi, level)
            if level and not in_l0:
                self._irq_trap(f"{t.name} timer", t.ppi)
        level = self._maintenance_now()
        if level is not None:
            if level != self.maintenance_line:
                self.maintenance_line = level
                self.gic.set_ppi(self.index, PPI_MAINTENANCE, level)
                if level and not in_l0 and not self.vcpu.vel2.active:
                    self._irq_trap("GIC maintenance", PPI_MAINTENANCE)

    def _irq_trap(self, what: str, intid: int) -> None:
        self.m.trap(ev.IRQ, f"IRQ {intid}",
                    reason=f"{what} interrupt (INTID {intid}) while the guest runs: a physical interrupt, "
                           f"routed to EL2 by HCR_EL2.IMO set by L0, which injects it into the guest's GIC")

    # --- delivery ----------------------------------------------------------------------
    def deliver(self) -> None:
        take, self.masked = self._decision()
        if take is not None:
            take()

    def _decision(self) -> tuple[Callable[[], None] | None, bool]:
        """What delivery does now: the exception entry to make (or None), and whether
        a signal is pending but masked by PSTATE."""
        m, cpu, vel2 = self.m, self.cpu, self.vcpu.vel2
        ps = cpu.pstate()
        sig = self.gic.cpu[self.index].signal()
        masked = False
        if vel2 is None or vel2.active:
            if sig is None:
                return None, False
            kind, mask = (VEC_IRQ, PSTATE_I) if sig == "irq" else (VEC_FIQ, PSTATE_F)
            if ps & mask:
                return None, True
            if vel2 is None:
                return (lambda: m.take_el1(0, cpu.pc, None, kind)), False
            return (lambda: vel2.take_current(0, cpu.pc, None, kind)), False
        hcr = vel2.get("HCR_EL2")
        if sig is not None:
            kind, mask, route = ((VEC_IRQ, PSTATE_I, _HCR["IMO"]) if sig == "irq"
                                 else (VEC_FIQ, PSTATE_F, _HCR["FMO"]))
            if hcr & (route | _HCR["TGE"]):
                why = "IRQ" if sig == "irq" else "FIQ"
                return (lambda: vel2.exit_to_vel2(0, cpu.pc, kind=kind, why=why)), False
            if not ps & mask:
                return (lambda: m.take_el1(0, cpu.pc, None, kind)), False
            masked = True
        vsig = self.shadow.signal()
        for s, kind, mask, route, force in (("irq", VEC_IRQ, PSTATE_I, _HCR["IMO"], _HCR["VI"]),
                                            ("fiq", VEC_FIQ, PSTATE_F, _HCR["FMO"], _HCR["VF"])):
            if hcr & route and (vsig == s or hcr & force):
                if ps & mask:
                    masked = True
                    continue
                return (lambda: m.take_el1(0, cpu.pc, None, kind)), masked
        return None, masked

    def wake_event(self) -> bool:
        """Would an interrupt wake a WFI now (PSTATE masks do not matter)?"""
        if self.gic.cpu[self.index].signal() is not None:
            return True
        vel2 = self.vcpu.vel2
        if vel2 is not None and not vel2.active:
            hcr = vel2.get("HCR_EL2")
            vsig = self.shadow.signal()
            if hcr & _HCR["IMO"] and (vsig == "irq" or hcr & _HCR["VI"]):
                return True
            if hcr & _HCR["FMO"] and (vsig == "fiq" or hcr & _HCR["VF"]):
                return True
        return False

    def wfi(self, pc: int) -> int:
        """L0 handles a trapped WFI: the counter skips from deadline to deadline (the
        timers', and the board devices': the RTC alarm, the power button) until an
        interrupt would wake the CPU, taking UART input as a wake-up source (a file's
        next characters at once; a live source waited for in host time, bounded by
        --timeout); returns the ticks skipped.
        When no interrupt can ever wake it (no timer left to fire, nothing pending),
        the guest is wedged: QEMU would wait for ever, neve stops (exit 126).  (The
        PMU counts instructions, so it does not advance while the CPU waits.)"""
        self.pmu.sync()
        self.update(in_l0=True)
        if len(self.m.vcpus) > 1:
            # SMP: the CPU sleeps and the others run on (Machine._schedule wakes it,
            # or skips time when every CPU sleeps).
            if not self.wake_event():
                self.vcpu.asleep = True
            self.kick()
            return 0
        skipped = 0
        board = getattr(self.m, "device_clock", None)      # the devices' deadlines (RTC alarm...)
        while not self.wake_event():
            d = self.timers.next_deadline()
            b = board.next_deadline() if board is not None else None
            if b is not None and (d is None or b < d):
                d = b
            if self.m.input_at_wfi(d, pc):
                continue
            if d is None:
                raise Wedged("WFI with no interrupt that can ever wake the CPU", pc)
            skipped += self.counter.skip_to(d)
            if b is not None:
                board.tick()
            self.update(in_l0=True)
        self.kick()
        return skipped

    # --- world switches (called by VirtualEL2) ----------------------------------------------
    def on_enter_el1(self) -> None:
        """L1 enters its EL1 context: load its ICH_* state into the shadow LRs."""
        if self._ich_slots is None:
            self._l1_view()
        st = self.vcpu.vel2.store
        raw = [st[i] for i in self._ich_slots]
        if raw != self._stored:         # else: what the shadow holds since the last exit
            self.shadow.load_values(raw)
        if self._hold and not self._in_tick:
            self._settle_in_l0 = True           # the settle that follows updates, as L0
        else:
            self.update(in_l0=True)
        self.kick()

    def on_exit_to_vel2(self) -> None:
        """Back to vEL2: write the shadow LR state back to L1's view."""
        if self._ich_slots is None:
            self._l1_view()
        st = self.vcpu.vel2.store
        slots = self._ich_slots
        self._stored = self.shadow.values()
        if self._stored != [st[i] for i in slots]:      # else: the storage holds them already
            for i, v in zip(slots, self._stored):
                st[i] = v
        self.kick()

    # --- system registers reaching L0 from (hardware) EL1/EL0 ----------------------------
    # The rows whose `fn` (neve/arch/sysregs.py) names this subsystem: "gic", "timer" or
    # "pmu" picks the read/write handler below (as QEMU's readfn/writefn).
    @staticmethod
    def handles(key: tuple) -> bool:
        """Is this encoding one `sysreg` answers (the GIC's, the timers', the PMU's)?"""
        return key in _KEYS

    def sysreg(self, reg: int, key: tuple, write: bool, value: int) -> int | None:
        row = _KEYS.get(key)
        if row is None:
            return None
        m, cpu, vel2 = self.m, self.cpu, self.vcpu.vel2
        pc = cpu.pc
        if row.traps:
            ctrls = vel2.controls if vel2 is not None and vel2.active else self.vm_controls
            reasons = row.trap_reasons(write, ctrls)
            if reasons:
                m.trap(ev.SYSREG, row.name, "w" if write else "r", value if write else None, pc=pc,
                       reason=", ".join(f"{t} set by L0" for t in reasons))
        if write:
            self._el1_write[row.fn](row, value)
        else:
            cpu.set_reg(reg, self._el1_read[row.fn](row))
        return cpu.skip_hooked(pc, key, write)

    def _gic_read(self, row: sysregs.SysReg) -> int:
        if row.name == "ISR_EL1":
            return self._isr()
        short = row.name[4:-4]                 # ICC_<short>_EL1
        v = self._icc_target(short).read(short)
        if short.startswith("IAR"):
            self.kick()
        return v

    def _gic_write(self, row: sysregs.SysReg, value: int) -> None:
        short = row.name[4:-4]
        self._icc_target(short).write(short, value)
        self.kick()

    def _timer_read(self, row: sysregs.SysReg) -> int:
        return self.timers.read(row.name)

    def _timer_write(self, row: sysregs.SysReg, value: int) -> None:
        self.timers.write(row.name, value)
        self.kick()

    def _pmu_read(self, row: sysregs.SysReg) -> int:
        return self.pmu.read(row.name, self._hpmn())

    def _pmu_write(self, row: sysregs.SysReg, value: int) -> None:
        self.pmu.write(row.name, value, self.guest_el())
        self._pmu_rewatch()

    def _pmu_rewatch(self) -> None:
        """After a change of the PMU's controls (a PMU register, MDCR_EL2): the watch of
        levels (`_pmu_watch`), and the run loop's slice ends where a counter overflows
        now (the access is `held`: the kick settles right after it)."""
        self._pmu_watch()
        if self.pmu.next_overflow() is not None:
            self.kick()

    def _pmu_mdcr(self) -> int | None:
        vel2 = self.vcpu.vel2
        return vel2.get("MDCR_EL2") if vel2 is not None else None

    # --- the PMU and the guest's exception level -----------------------------------------
    def guest_el(self) -> int:
        """The exception level the guest believes it runs at (vEL2 is 2)."""
        vel2 = self.vcpu.vel2
        if vel2 is not None and vel2.active:
            return 2
        return self.cpu.el()

    def _pmu_watch(self) -> None:
        """After a change of the PMU's controls: does the
        level instructions run at matter now (a filter, HPMD), and must every ERET at
        EL1 be seen (EXC_RETURN)?  Then a block hook reports each change of level
        (neve_fast_blocks' el_block, or `_el_block` in Python), from the next
        instruction on; and, for EXC_RETURN, the ERETs of the EL1 code it finds are
        hooked where they run (EretHooks.note_code; the nested VM's by the shadow stage
        2's fills).  Off again, it costs nothing."""
        levels, eret = self.pmu.watch()
        want = (1 if levels or eret else 0) | (2 if eret else 0)
        if want == self._el_watch:
            return
        self.pmu.el = self._el_last = self.guest_el()        # (the PMU has just counted up to now)
        erets = self.vcpu.erets
        if want & 2 and not self._el_watch & 2:
            erets.code_watch = True
            self.cpu.between_slices(self.cpu.flush_tlb)      # fills to come alias the nested VM's code
        elif not want & 2:
            erets.code_watch = False
        self._el_watch = want
        fast = self._fast
        if fast is not None:
            fast.state.el_watch = want
            fast.state.el_last = self._el_last
        if want and self._el_keep is None:
            self._el_keep = HOOK_CODE_CFUNC(self._el_block)
            self.cpu.between_slices(self._install_el_watch)
            self.cpu.end_slice_after_current()

    def _install_el_watch(self) -> None:
        if self._fast is not None:
            self._fast.hook_el_block(self._el_keep)
        else:
            self.cpu.add_block_hook_raw(self._el_keep)
        self.cpu.uc.ctl_flush_tb()                  # (block hooks are part of a translation)

    def _el_block(self, _uch, addr: int, size: int, _data) -> None:
        """Before each block while the level watch is on (a bare ctypes callback; the
        compiled watch calls it only on a change of level or a new EL1 code page)."""
        watch = self._el_watch
        if not watch:
            return
        try:
            el = self.guest_el()
            if el != self._el_last:
                self._el_last = el
                pmu = self.pmu
                pmu.at_el(el)
                if pmu.inten & pmu.cnten:           # an overflow's time may have changed
                    self._dirty = True
                    self.cpu.stop_before_current()
                    return
            if watch & 2 and el == 1:
                erets = self.vcpu.erets
                if not self.cpu.tlb_virtual:        # (else the TLB fills alias the code they map)
                    erets.note_code(addr, size)
                if erets.pending:                   # not in force yet: first between slices
                    self.cpu.stop_before_current()
        except Exception as e:                      # never let the hook die inside Unicorn
            self.m.fail_in_hook(GuestError(f"internal error in the PMU's level watch at {addr:#x}: {e!r}"))

    def _hpmn(self) -> int | None:
        """MDCR_EL2.HPMN for a PMCR_EL0.N read below L1's EL2; None at (v)EL2 or with no
        EL2 (vm mode)."""
        vel2 = self.vcpu.vel2
        if vel2 is None or vel2.active:
            return None
        return vel2.get("MDCR_EL2") & 0x1F

    def _pmu_line(self, level: bool) -> None:
        self.gic.set_ppi(self.index, PPI_PMU, level)
        self.kick()

    def _icc_target(self, short: str):
        vel2 = self.vcpu.vel2
        if vel2 is not None and not vel2.active and vel2.get("HCR_EL2") & _icv_flag(short):
            return self.shadow
        return self.gic.cpu[self.index]

    def _isr(self) -> int:
        vel2 = self.vcpu.vel2
        sig = self.gic.cpu[self.index].signal()
        i, f = sig == "irq", sig == "fiq"
        if vel2 is not None and not vel2.active:
            hcr = vel2.get("HCR_EL2")
            vsig = self.shadow.signal()
            if hcr & _HCR["IMO"]:
                i = vsig == "irq" or bool(hcr & _HCR["VI"])
            if hcr & _HCR["FMO"]:
                f = vsig == "fiq" or bool(hcr & _HCR["VF"])
        return (PSTATE_I if i else 0) | (PSTATE_F if f else 0)

    # --- L1's EL2 registers the emulation computes (VirtualEL2.read/write, by the row's fn) ---
    def vel2_read(self, row: sysregs.SysReg) -> int | None:
        """The value of a register read at vEL2 when this subsystem computes it; None:
        it is plain vEL2 storage."""
        name = row.name
        if row.fn == "pmu":
            return self.pmu.read(name)            # at (v)EL2: PMCR_EL0.N is the full N
        if row.fn == "debug":
            return self.debug.read(name)
        if name.startswith("CNTHP_"):
            return self.timers.read(name)
        if name in ("ICH_MISR_EL2", "ICH_EISR_EL2", "ICH_ELRSR_EL2"):
            vif = self._l1_view()
            return {"ICH_MISR_EL2": vif.misr, "ICH_EISR_EL2": vif.eisr, "ICH_ELRSR_EL2": vif.elrsr}[name]()
        return None

    def vel2_write(self, row: sysregs.SysReg, value: int) -> bool:
        """A write made at vEL2 this subsystem acts on (False: plain vEL2 storage)."""
        name = row.name
        vel2 = self.vcpu.vel2
        if row.fn == "pmu":
            self.pmu.write(name, value, 2)
            self._pmu_rewatch()
            return True
        if row.fn == "pmuctl":                   # MDCR_EL2: counted up to now under its old value
            self.pmu.sync()
            vel2.set(name, value)
            self.pmu.mdcr_changed()
            self._pmu_rewatch()
            return True
        if row.fn == "debug":
            self.debug.write(name, value)
            return True
        if name.startswith("CNTHP_"):
            self.timers.write(name, value)
        elif name.startswith("ICC_SGI") or name == "ICC_ASGI1R_EL1":
            self.gic.send_sgi(self.index, value, 0 if name == "ICC_SGI0R_EL1" else 1)
        elif name.startswith("ICH_LR"):
            vel2.set(name, mask_lr(value))
        elif name == "ICH_VMCR_EL2":
            vel2.set(name, mask_vmcr(value))
        elif name == "ICH_HCR_EL2":
            vel2.set(name, value & ICH_HCR_WRITABLE)
        elif name.startswith("ICH_AP"):
            vel2.set(name, value & 0xFFFF_FFFF)
        elif name == "CNTVOFF_EL2":
            vel2.set(name, value)
        else:
            return False
        self.kick()
        return True

    def state(self) -> dict:
        return {"counter": self.counter.now(), "skipped": self.counter.skipped,
                "timers": {n: {"ctl": t.regs.get(t.ctl_name), "cval": t.regs.get(t.cval_name), "line": t.line}
                           for n, t in self.timers.timers.items()},
                "gic": self.gic.state(), "maintenance": self.maintenance_line}
