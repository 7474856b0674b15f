"""Self-hosted debug: the breakpoint and watchpoint registers, and breakpoints firing.

The Cortex-A72 has 6 breakpoints and 4 watchpoints (ID_AA64DFR0_EL1.BRPs = 5,
WRPs = 3).  Unicorn keeps the registers but its breakpoints see only the hardware EL
(vEL2 runs at EL1), ignore the OS lock and cannot be reached by L1's MDCR_EL2.TDE, and
its watchpoints never fire; so neve keeps DBGB{V,C}R<n>_EL1 and DBGW{V,C}R<n>_EL1
itself (the register table's `fn = "debug"` rows; one set for the CPU, which vEL2
and the contexts it runs share, as the hardware's) and Unicorn never arms anything.

* Writes as QEMU 10 makes them: DBGBCR's BAS[3] and BAS[1] copy BAS[2] and BAS[0];
  DBGWVR's bits [1:0] are RES0.
* A breakpoint (DBGBCR.E = 1, BT = 0b0000: unlinked address match, BAS != 0) is a
  code hook at DBGBVR's address (+2 for BAS = 0b1100, never an A64 instruction's),
  checked before the instruction there runs, with QEMU's rules (bp_wp_matches and
  check_breakpoints, the Arm ARM's AArch64.BreakpointMatch): MDSCR_EL1.MDE set, the
  OS lock and OS double lock clear, debug exceptions enabled from the current level
  (the debug target EL is EL2 when L1's HCR_EL2.TGE or MDCR_EL2.TDE is set, else EL1;
  at the target EL itself only with MDSCR_EL1.KDE and PSTATE.D clear), and the
  level allowed by PMC/HMC/SSC (no Secure state here).  It is taken as a Breakpoint
  exception: EC 0x30 from a lower EL, 0x31 from the same, IFSC 0x22, ELR the
  instruction's address (FAR UNKNOWN: left alone), to EL1 or to vEL2.
* A watchpoint (DBGWCR.E = 1, LSC != 0, not linked) watches the bytes QEMU's
  hw_watchpoint_update gives it: 2^MASK bytes from DBGWVR aligned down (MASK = 1, 2
  reserved: none), else the run of bytes from BAS's lowest set bit to the first clear
  one after it (BAS[7:4] ignored for a DBGWVR with bit 2 set).  An access that
  overlaps them (neve/core/align.py's memory hook, armed while a watchpoint is) and
  matches LSC (load, store), PAC/HMC/SSC and the same enable rules as a breakpoint
  is undone and taken as a Watchpoint exception before it happens: EC 0x34/0x35,
  WnR, DFSC 0x22, FAR the first watched byte the access touches.
* Software step: Unicorn runs the state machine at EL1/EL0 itself (PSTATE.SS from
  SPSR.SS at an exception return, one instruction, then an exception it reports as an
  UNDEF with PSTATE.SS clear), with L0's view of the debug target (EL1).  neve makes
  it the architected Software Step exception: EC 0x32/0x33, IFSC 0x22, ISV = 1 and EX
  (the stepped instruction was a load-exclusive) when one instruction ran since the
  exception return (active-not-pending), ISV = 0 when none did (active-pending, SPSR.SS
  was 0), routed to vEL2 under L1's TDE/TGE.  It knows which by the instruction count
  at the exception return, which it sees when it emulates it (vEL2's ERET) or hooks it
  (an ERET at EL1 that runs at its PA); for EL0 code, whose exception return was
  EL1's and which cannot write SPSR_EL1 or ELR_EL1, also by SPSR_EL1.SS (a Linux
  kernel's ptrace step, from an ERET neve does not hook), and for EL1 code after such a
  return (a kernel stepping itself, as kgdb does) too, SPSR_EL1 and ELR_EL1 being that
  return's unless the stepped instruction wrote them.  A step of an MSR to SPSR_EL1 or
  ELR_EL1 after a return neve did not see, a step of vEL2 itself, and a step of L1's
  EL1 that L1 routes to EL2 while SPSR.D is set (Unicorn would not step it) stop the
  run with `unsupported`; with the guest's MDSCR_EL1.KDE clear, which Unicorn needs,
  the hardware's has it set while the guest runs.
* Linked and context-matching breakpoints (BT != 0) and linked watchpoints (WT = 1)
  are not modelled: enabling one stops the run with `unsupported`, never a silent miss.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from neve.arch import decode, sysregs
from neve.core.cpu import uc_implements
from neve.errors import Unsupported

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine

BRPS, WRPS = 6, 4
EC_BKPT_LOW, EC_BKPT_CUR = 0x30, 0x31
EC_WPT_LOW, EC_WPT_CUR = 0x34, 0x35
EC_STEP_LOW, EC_STEP_CUR = 0x32, 0x33
MDSCR_SS = 1 << 0
PSTATE_SS = 1 << 21
ISS_STEP_ISV, ISS_STEP_EX = 1 << 24, 1 << 6
FSC_DEBUG = 0x22
MDSCR_KDE, MDSCR_MDE = 1 << 13, 1 << 15
PSTATE_D = 1 << 9
_MDCR_TDE = sysregs.ctrl_bit("MDCR_EL2", "TDE")
_HCR_TGE = 1 << 27


def bcr_write_value(value: int) -> int:
    """DBGBCR<n>_EL1 as written: BAS[3] copies BAS[2], BAS[1] copies BAS[0] (QEMU 10)."""
    value = value & ~(1 << 6) | ((value >> 5) & 1) << 6
    return value & ~(1 << 8) | ((value >> 7) & 1) << 8


def breakpoint_address(bvr: int, bcr: int) -> int | None:
    """The instruction address an enabled unlinked address-match breakpoint fires at,
    or None (disabled, or BAS = 0)."""
    if not bcr & 1:
        return None
    bas = (bcr >> 5) & 0xF
    if bas == 0:
        return None
    addr = bvr & ~3 & (1 << 64) - 1
    return addr + 2 if bas == 0xC else addr


def watch_range(wvr: int, wcr: int) -> tuple[int, int] | None:
    """The bytes [lo, hi) an enabled watchpoint watches (QEMU's hw_watchpoint_update),
    or None."""
    if not wcr & 1 or not (wcr >> 3) & 3:
        return None
    mask = (wcr >> 24) & 0x1F
    if mask in (1, 2):
        return None                             # reserved: as if disabled (QEMU's choice)
    if mask:
        lo = wvr & ~((1 << mask) - 1) & (1 << 64) - 1
        return lo, lo + (1 << mask)
    bas = (wcr >> 5) & 0xFF
    if wvr & 4:
        bas &= 0xF                              # a 4-aligned address: BAS[3:0] only
    if not bas:
        return None
    start = (bas & -bas).bit_length() - 1
    run = 0
    while bas >> (start + run) & 1:
        run += 1
    return wvr + start, wvr + start + run


def level_matches(bcr: int, el: int) -> bool:
    """DBGBCR/DBGWCR's PMC/HMC/SSC for an access at EL `el`, Non-secure (QEMU's
    bp_wp_matches): SSC = 0b10 is Secure only; EL2 needs HMC; EL1 PMC[0]; EL0 PMC[1]."""
    if (bcr >> 14) & 3 == 2:
        return False
    if el == 2:
        return bool(bcr >> 13 & 1)
    return bool(bcr >> (1 + (el == 0)) & 1)


class Debug:
    """The breakpoint and watchpoint registers of one CPU, and its breakpoints."""

    def __init__(self, m: Machine, vcpu, set_breakpoints: Callable[[dict[int, Callable[[int], bool]]], None]):
        self.m = m
        self.vcpu = vcpu
        self.bvr = [0] * BRPS
        self.bcr = [0] * BRPS
        self.wvr = [0] * WRPS
        self.wcr = [0] * WRPS
        self._set_breakpoints = set_breakpoints    # EretHooks.set_breakpoints (after construction)
        self._armed: dict[int, Callable[[int], bool]] = {}
        self._watching: list[tuple[int, int]] = []
        self._returned: tuple[int, int] | None = None   # (icount, ELR) of the last exception return seen
        self._force_kde = False         # the hardware MDSCR_EL1.KDE is set for L1's stepped EL1 (check_guest_step)

    # --- the registers ----------------------------------------------------------------
    def read(self, name: str) -> int:
        kind, n = name[3:6], int(name[6:-4])
        return {"BVR": self.bvr, "BCR": self.bcr, "WVR": self.wvr, "WCR": self.wcr}[kind][n]

    def write(self, name: str, value: int) -> None:
        kind, n = name[3:6], int(name[6:-4])
        if kind == "BVR":
            self.bvr[n] = value
        elif kind == "BCR":
            value = bcr_write_value(value)
            bt = (value >> 20) & 0xF
            if value & 1 and bt != 0:
                raise Unsupported(f"a linked or context-matching breakpoint (MSR {name}, BT = {bt:#06b}, E = 1)",
                                  self.m.cpu.pc)
            self.bcr[n] = value
        elif kind == "WVR":
            self.wvr[n] = value & ~3
        else:
            if value & 1 and value >> 20 & 1:
                raise Unsupported(f"a linked watchpoint (MSR {name}, WT = 1, E = 1)", self.m.cpu.pc)
            self.wcr[n] = value
        if kind in ("BVR", "BCR"):
            self._rearm()
        else:
            self._rearm_watch()

    def _rearm_watch(self) -> None:
        ranges = [r for n in range(WRPS) if (r := watch_range(self.wvr[n], self.wcr[n])) is not None]
        if ranges != self._watching:
            self._watching = ranges
            self.vcpu.align.set_watch(ranges, self.watch_hit)

    def _rearm(self) -> None:
        armed = {}
        for n in range(BRPS):
            a = breakpoint_address(self.bvr[n], self.bcr[n])
            if a is not None:
                armed[a] = self.hit
        if armed.keys() != self._armed.keys():
            self._armed = armed
            self._set_breakpoints(armed)

    # --- firing -----------------------------------------------------------------------
    def _target_el(self) -> int:
        v = self.vcpu.vel2
        if v is None:
            return 1                    # vm mode: L0 never routes debug exceptions to itself
        return 2 if v.get("MDCR_EL2") & _MDCR_TDE or v.get("HCR_EL2") & _HCR_TGE else 1

    def _mdscr(self) -> int:
        v = self.vcpu.vel2
        if v is not None and v.active:
            return v.read(sysregs.BY_NAME["MDSCR_EL1"])     # as L1 reads it at vEL2
        return self.m.cpu.read_sysreg("MDSCR_EL1")

    def _os_locked(self) -> bool:
        cpu = self.m.cpu
        return bool(cpu.read_sysreg("OSLSR_EL1") & 2 or self.vcpu.owned.get("OSDLR_EL1", 0) & 1)

    def _enabled(self) -> tuple[int, int] | None:
        """(the running EL, the debug target EL) when breakpoints and watchpoints may
        fire now (AArch64.GenerateDebugExceptions and MDSCR_EL1.MDE), else None."""
        el = {"vEL2": 2, "EL1": 1, "EL0": 0}[self.m.level]
        mdscr = self._mdscr()
        if not mdscr & MDSCR_MDE or self._os_locked():
            return None
        target = self._target_el()
        if el > target:
            return None
        if el == target and (not mdscr & MDSCR_KDE or self.m.cpu.pstate() & PSTATE_D):
            return None
        return el, target

    def _take(self, now: tuple[int, int], ec_low: int, iss: int, elr: int, far: int | None, name: str) -> None:
        """The debug exception, from EL `now[0]` to the debug target EL `now[1]`."""
        el, target = now
        esr = decode.esr(ec_low + (el == target), iss)
        v = self.vcpu.vel2
        m = self.m
        if target == 2 and v is not None and not v.active:
            v.route_debug(esr, elr, name, m.cpu.read_insn(elr), far)
        else:
            m.deliver_sync(esr, elr, far)

    def hit(self, pc: int) -> bool:
        """Before the instruction at `pc` runs: take a Breakpoint exception if an
        enabled breakpoint matches it now (True: taken, the instruction does not run)."""
        now = self._enabled()
        if now is None:
            return False
        if not any(breakpoint_address(self.bvr[n], self.bcr[n]) == pc and level_matches(self.bcr[n], now[0])
                   for n in range(BRPS)):
            return False
        self._take(now, EC_BKPT_LOW, FSC_DEBUG, pc, None, "breakpoint")
        return True

    def watch_hit(self, va: int, size: int, write: bool):
        """An access of `size` bytes at `va` about to be made: (FAR, taker) if a
        watchpoint matches it (the taker then takes the exception, once the access is
        undone), else None."""
        now = self._enabled()
        if now is None:
            return None
        for n in range(WRPS):
            r = watch_range(self.wvr[n], self.wcr[n])
            if r is None or not (va < r[1] and va + size > r[0]):
                continue
            if not (self.wcr[n] >> (4 if write else 3)) & 1 or not level_matches(self.wcr[n], now[0]):
                continue
            far = max(va, r[0])

            def take(pc: int, far: int, now=now) -> None:
                self._take(now, EC_WPT_LOW, (1 << 6 if write else 0) | FSC_DEBUG, pc, far, "watchpoint")
            return far, take
        return None

    # --- software step ------------------------------------------------------------------
    def exception_return(self, elr: int) -> None:
        """An exception return neve sees (emulated at vEL2, or hooked at EL1), about to
        go to `elr`; the ERET itself is already counted."""
        self._returned = (self.m.icount(), elr)

    def check_guest_step(self, spsr: int, pc: int) -> None:
        """vEL2 returns to its EL1 with the guest's MDSCR_EL1.SS set under its TDE/TGE:
        the architecture steps that EL1 code whatever its KDE and PSTATE.D (the debug
        target, EL2, is higher); Unicorn, which sees EL1 as the debug target, only with KDE set and D
        clear.  With the guest's KDE clear, the hardware MDSCR_EL1 gets KDE while the
        guest runs (`entered_el1`/`exited_el1`; under TDE the guest's own MDSCR_EL1
        accesses trap to L1, so it never sees it); with SPSR.D set, which the guest
        would see in PSTATE, neve says it cannot."""
        self._force_kde = False
        mdscr = self.vcpu.vel2.get("MDSCR_EL1")
        if mdscr & MDSCR_SS and (spsr >> 2) & 3 == 1 and self._target_el() == 2:
            # Stepping is on for the guest's EL1 (active-not-pending with SPSR.SS set,
            # active-pending without).
            if spsr & PSTATE_D:
                raise Unsupported("software step of L1's EL1 routed to EL2 (MDCR_EL2.TDE or HCR_EL2.TGE) "
                                  "with SPSR.D set", pc)
            self._force_kde = not mdscr & MDSCR_KDE

    def entered_el1(self) -> None:
        """vEL2's EL1 context is in the hardware now (VirtualEL2.enter_el1)."""
        if self._force_kde:
            cpu = self.m.cpu
            cpu.write_sysreg("MDSCR_EL1", cpu.read_sysreg("MDSCR_EL1") | MDSCR_KDE)    # (rebuilds the step state)

    def exited_el1(self) -> None:
        """vEL2's EL1 context is back in storage (VirtualEL2.exit_to_vel2)."""
        if self._force_kde:
            self._force_kde = False
            v = self.vcpu.vel2
            v.set("MDSCR_EL1", v.get("MDSCR_EL1") & ~MDSCR_KDE)

    def step_enabled(self) -> bool:
        """MDSCR_EL1.SS set and debug exceptions enabled at the hardware EL as Unicorn
        sees it (EL0; EL1 with KDE and PSTATE.D clear): Unicorn's step is active."""
        cpu = self.m.cpu
        ps = cpu.pstate()
        mdscr = cpu.read_sysreg("MDSCR_EL1")
        return bool(mdscr & MDSCR_SS) and ((ps >> 2) & 3 == 0 or bool(mdscr & MDSCR_KDE) and not ps & PSTATE_D)

    def step_stale(self, insn: int | None) -> bool:
        """An UNDEF of an instruction the CPU implements while MDSCR_EL1.SS is set that
        `stepping` does not explain: Unicorn decided to step from cached state it
        did not re-derive (QEMU 5 does not after MSR DAIFClr, for one)."""
        return bool(self.m.cpu.read_sysreg("MDSCR_EL1") & MDSCR_SS) and insn is not None \
            and uc_implements(insn, 1, fp=True)

    def stepping(self) -> bool:
        """Is an UNDEF that Unicorn reports now its software-step exception?  MDSCR_EL1.SS
        set, PSTATE.SS clear, and debug exceptions enabled at hardware EL1/EL0 as
        Unicorn sees them (a real UNDEF while stepping keeps PSTATE.SS set)."""
        return not self.m.cpu.pstate() & PSTATE_SS and self.step_enabled()

    def step(self, pc: int) -> None:
        """Take the Software Step exception Unicorn reported before the instruction at
        `pc` (see the module's docstring)."""
        m = self.m
        if m.level == "vEL2":
            raise Unsupported("software step of virtual EL2 itself", pc)
        ret, self._returned = self._returned, None
        done = None if ret is None else m.icount() - ret[0]
        if done not in (0, 1):
            # The exception return was an EL1 ERET neve did not see (at a VA other than
            # its PA).  SPSR_EL1 and ELR_EL1 are still that return's: every exception
            # since is neve's, and in between at most the stepped instruction ran, which
            # EL0 cannot make write them, nor EL1 unless it is an MSR to one of them.
            # SPSR.SS set: active-not-pending, one instruction (at ELR) ran; clear:
            # active-pending, none did.
            cpu = m.cpu
            done = 1 if cpu.read_sysreg("SPSR_EL1") & PSTATE_SS else 0
            ret = (None, cpu.read_sysreg("ELR_EL1"))
            if m.level != "EL0" and done and _writes_return_state(cpu.read_insn(ret[1])):
                raise Unsupported("software step of an MSR to SPSR_EL1 or ELR_EL1 after an exception return "
                                  "neve did not see (an ERET at a VA other than its PA)", pc)
        iss = FSC_DEBUG
        if done == 1:                                   # active-not-pending: one instruction stepped
            ld = decode.decode_ldst(m.cpu.read_insn(ret[1]) or 0)
            iss |= ISS_STEP_ISV | (ISS_STEP_EX if ld is not None and ld.exclusive and ld.read else 0)
        el = 0 if m.level == "EL0" else 1
        self._take((el, self._target_el()), EC_STEP_LOW, iss, pc, None, "software step")


def _writes_return_state(insn: int | None) -> bool:
    """Is `insn` an MSR to SPSR_EL1 or ELR_EL1 (or unreadable)?"""
    if insn is None:
        return True
    return insn & 0xFFFF_FFE0 in (0xD518_4000, 0xD518_4020)      # msr spsr_el1 / elr_el1, xT
