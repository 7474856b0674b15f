"""The generic timer on neve's deterministic time base.

Time.  The system counter (CNTPCT) is the number of guest instructions retired plus
the ticks skipped while the CPU slept in WFI: ``Counter.now() = icount + skipped``.
Both terms are functions of the guest's execution only, so the same image gives the
same counter values, timer interrupts and transcript on every run.  Nothing reads
the host clock: every counter and timer register access is intercepted (Unicorn's own
timer registers are never used).  CNTFRQ_EL0 reports CNTFRQ, 1 GHz, what QEMU 10
reports for `-cpu max` on the `virt` board: one tick per instruction approximates a
CPU retiring one instruction per nanosecond.

WFI.  When the CPU waits for an interrupt and none is pending, L0 skips time: the
counter jumps to the next timer deadline (``Counter.skip_to``), i.e. the skipped ticks
are added to ``skipped`` while the instruction count itself stays exact.

Timers.  Each CPU has a `TimerBank`: the EL1 physical timer (CNTP_*, PPI 30), the EL1
virtual timer (CNTV_*, PPI 27) and, when a guest hypervisor runs at virtual EL2, its
EL2 physical ("hyp") timer (CNTHP_*, PPI 26).  The timers are the *guest's* timers
(the VM's in vm mode, L1's in the nested modes): their registers live in a storage
object with ``get(name)``/``set(name, value)`` -- a plain dict-backed store in vm mode,
the `VirtualEL2` register storage in the nested modes, so that in nv2/neve CNTV_* and
CNTP_CTL/CVAL are exactly the VNCR page slots L1 writes.  The virtual timer compares
against the virtual count ``CNTPCT - CNTVOFF``, with the guest hypervisor's own
CNTVOFF_EL2 (non-VHE: the offset applies at every EL).

Architected behaviour (Arm ARM D11.2.4, "Timers"): CTL.ENABLE (bit 0), CTL.IMASK
(bit 1), CTL.ISTATUS (bit 2, read-only) = ENABLE and (count - CVAL) >= 0; the output
line is ISTATUS and not IMASK; TVAL reads (CVAL - count) truncated to 32 bits and a
TVAL write sets CVAL = count + SignExtend(TVAL<31:0>).  As in QEMU, ISTATUS reads 0
while the timer is disabled.  Lines are level-sensitive PPIs of the GIC.
"""
from __future__ import annotations

import ctypes
from typing import Callable

CNTFRQ = 1_000_000_000              # Hz, as QEMU 10's virt with -cpu max

CTL_ENABLE = 1 << 0
CTL_IMASK = 1 << 1
CTL_ISTATUS = 1 << 2

PPI_HYP_TIMER = 26
PPI_VIRT_TIMER = 27
PPI_PHYS_TIMER = 30

MASK64 = (1 << 64) - 1


class Counter:
    """The system counter: instructions retired plus ticks skipped in WFI."""

    def __init__(self, icount: Callable[[], int]) -> None:
        self._icount = icount
        self._skipped = ctypes.c_uint64(0)     # a C word: the compiled fast path reads it

    @property
    def skipped(self) -> int:
        """Ticks skipped in WFI."""
        return self._skipped.value

    @skipped.setter
    def skipped(self, v: int) -> None:
        self._skipped.value = v

    def skipped_address(self) -> int:
        return ctypes.addressof(self._skipped)

    def now(self) -> int:
        return self._icount() + self._skipped.value

    def to_icount(self, t: int) -> int:
        """The instruction count at which the counter reaches `t` (if nothing sleeps)."""
        return t - self.skipped

    def skip_to(self, t: int) -> int:
        """WFI: advance the counter to `t` without executing; returns the ticks skipped."""
        d = t - self.now()
        if d > 0:
            self.skipped += d
            return d
        return 0


class DictRegs:
    """Register storage for a VM's timers when no virtual EL2 exists (vm mode)."""

    def __init__(self) -> None:
        self.regs: dict[str, int] = {}

    def get(self, name: str) -> int:
        return self.regs.get(name, 0)

    def set(self, name: str, value: int) -> None:
        self.regs[name] = value & MASK64


class Timer:
    """One architected timer: CTL/CVAL in `regs`, compared against `count()`."""

    def __init__(self, name: str, ppi: int, ctl: str, cval: str, regs, offset: Callable[[], int]) -> None:
        self.name = name          # "CNTV", "CNTP", "CNTHP"
        self.ppi = ppi
        self.ctl_name = ctl
        self.cval_name = cval
        self.regs = regs
        self.offset = offset      # counter offset: CNTVOFF for the virtual timer, else 0
        self.line = False         # the output (ISTATUS and not IMASK) last seen

    # --- architected state ---------------------------------------------------------
    def count(self, now: int) -> int:
        return (now - self.offset()) & MASK64

    def istatus(self, now: int) -> bool:
        ctl = self.regs.get(self.ctl_name)
        if not ctl & CTL_ENABLE:
            return False
        return self.count(now) >= self.regs.get(self.cval_name)   # unsigned, as QEMU compares

    def level(self, now: int) -> bool:
        return self.istatus(now) and not self.regs.get(self.ctl_name) & CTL_IMASK

    def deadline(self, now: int) -> int | None:
        """Counter value at which ISTATUS next becomes 1, or None (disabled / already met)."""
        ctl = self.regs.get(self.ctl_name)
        if not ctl & CTL_ENABLE:
            return None
        cval = self.regs.get(self.cval_name)
        if self.count(now) >= cval:
            return None
        t = cval + self.offset()
        return t if t <= MASK64 else None

    def refresh(self, now: int) -> None:
        """Keep the stored CTL.ISTATUS current (an NV2 page read sees the stored value)."""
        ctl = self.regs.get(self.ctl_name)
        want = (ctl & ~CTL_ISTATUS) | (CTL_ISTATUS if self.istatus(now) else 0)
        if want != ctl:
            self.regs.set(self.ctl_name, want)

    # --- register views ------------------------------------------------------------
    def read_ctl(self, now: int) -> int:
        ctl = self.regs.get(self.ctl_name) & (CTL_ENABLE | CTL_IMASK)
        return ctl | (CTL_ISTATUS if self.istatus(now) else 0)

    def write_ctl(self, now: int, value: int) -> None:
        self.regs.set(self.ctl_name, value & (CTL_ENABLE | CTL_IMASK))
        self.refresh(now)

    def read_cval(self, now: int) -> int:
        return self.regs.get(self.cval_name)

    def write_cval(self, now: int, value: int) -> None:
        self.regs.set(self.cval_name, value & MASK64)
        self.refresh(now)

    def read_tval(self, now: int) -> int:
        return (self.regs.get(self.cval_name) - self.count(now)) & 0xFFFF_FFFF

    def write_tval(self, now: int, value: int) -> None:
        v = value & 0xFFFF_FFFF
        if v & 0x8000_0000:
            v -= 1 << 32
        self.regs.set(self.cval_name, (self.count(now) + v) & MASK64)
        self.refresh(now)


# Register name -> (timer, field) for every timer register the bank emulates.
_FIELDS = {
    "CNTP_CTL_EL0": ("CNTP", "ctl"), "CNTP_CVAL_EL0": ("CNTP", "cval"), "CNTP_TVAL_EL0": ("CNTP", "tval"),
    "CNTV_CTL_EL0": ("CNTV", "ctl"), "CNTV_CVAL_EL0": ("CNTV", "cval"), "CNTV_TVAL_EL0": ("CNTV", "tval"),
    "CNTHP_CTL_EL2": ("CNTHP", "ctl"), "CNTHP_CVAL_EL2": ("CNTHP", "cval"), "CNTHP_TVAL_EL2": ("CNTHP", "tval"),
}
TIMER_REGISTERS = frozenset(_FIELDS)


class TimerBank:
    """The timers of one CPU as the guest (VM or guest hypervisor) sees them."""

    def __init__(self, counter: Counter, regs, cntvoff: Callable[[], int], *, hyp: bool) -> None:
        self.counter = counter
        self.regs = regs
        self.timers = {
            "CNTP": Timer("CNTP", PPI_PHYS_TIMER, "CNTP_CTL_EL0", "CNTP_CVAL_EL0", regs, lambda: 0),
            "CNTV": Timer("CNTV", PPI_VIRT_TIMER, "CNTV_CTL_EL0", "CNTV_CVAL_EL0", regs, cntvoff),
        }
        if hyp:
            self.timers["CNTHP"] = Timer("CNTHP", PPI_HYP_TIMER, "CNTHP_CTL_EL2", "CNTHP_CVAL_EL2", regs, lambda: 0)
        self.deadline_at_update: int | None = None      # next_deadline() as the last `update` found it

    def handles(self, name: str) -> bool:
        f = _FIELDS.get(name)
        return f is not None and f[0] in self.timers

    def read(self, name: str) -> int:
        t, field = _FIELDS[name]
        return getattr(self.timers[t], f"read_{field}")(self.counter.now())

    def write(self, name: str, value: int) -> None:
        t, field = _FIELDS[name]
        getattr(self.timers[t], f"write_{field}")(self.counter.now(), value)

    def next_deadline(self) -> int | None:
        """The earliest counter value at which some timer's ISTATUS becomes 1."""
        now = self.counter.now()
        best = None
        for t in self.timers.values():
            d = t.deadline(now)
            if d is not None and (best is None or d < best):
                best = d
        return best

    def stale(self) -> bool:
        """Has some timer's ISTATUS or output changed since the last update()?"""
        now = self.counter.now()
        for t in self.timers.values():
            ist = t.istatus(now)
            if t.level(now) != t.line or bool(t.regs.get(t.ctl_name) & CTL_ISTATUS) != ist:
                return True
        return False

    def update(self) -> list[tuple[Timer, bool]]:
        """Recompute every timer's output; returns [(timer, new level)] for the lines
        that changed since the last update."""
        now = self.counter.now()
        changed = []
        best = None
        for t in self.timers.values():
            # t.refresh(now), t.level(now) and t.deadline(now) in one pass
            regs, name = t.regs, t.ctl_name
            ctl = regs.get(name)
            ist = False
            if ctl & CTL_ENABLE:
                off = t.offset()
                cval = regs.get(t.cval_name)
                ist = (now - off) & MASK64 >= cval
                d = cval + off
                if not ist and d <= MASK64 and (best is None or d < best):
                    best = d
            want = (ctl & ~CTL_ISTATUS) | (CTL_ISTATUS if ist else 0)
            if want != ctl:
                regs.set(name, want)
            lv = ist and not ctl & CTL_IMASK
            if lv != t.line:
                t.line = lv
                changed.append((t, lv))
        self.deadline_at_update = best
        return changed
