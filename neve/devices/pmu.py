"""The Performance Monitors Extension (PMUv3 for ARMv8.0), as QEMU 10's cortex-a72 has
it, on neve's deterministic time.

Unicorn's older model has 4 event counters and other write masks; the guest sees this
one instead (the machine serves every PMU register from it):

* 6 event counters (32-bit) and the 64-bit cycle counter; PMCR_EL0 resets to
  0x41023000 (IMP 0x41, IDCODE 0x02, N = 6), writable bits 0xF9 (E, D, X, DP, LC, LP),
  C and P reset the counters and read as 0 (P below EL2 only those under
  MDCR_EL2.HPMN).  Read below EL2 while an EL2 exists, PMCR_EL0.N is MDCR_EL2.HPMN.
* PMCNTEN/PMOVS/PMINTEN set and clear through the mask 0x8000003F; PMSELR keeps 5
  bits; PMEVTYPER<n> 0xFE00FFFF; PMCCFILTR 0xFC000000; PMUSERENR 0xF.  PMXEVTYPER/
  PMXEVCNTR reach counter SEL; SEL = 31 selects PMCCFILTR for the type and nothing
  for the count; SEL 6..30 is RAZ/WI (QEMU's choice).  PMEV*<n> for n >= 6 do not exist.
* Events (PMCEID0_EL0 = 0x20701): SW_INCR (PMSWINC_EL0), INST_RETIRED and CPU_CYCLES
  (one cycle per guest instruction: neve's virtual time, as QEMU's with -icount
  shift=0), EXC_TAKEN (an exception the guest takes, counted at the level it is taken
  from) and EXC_RETURN (an exception return the guest executes).  QEMU 10 counts
  SW_INCR and CPU_CYCLES, and INST_RETIRED only under -icount.
* Which counters count (the Arm ARM's, and QEMU's, pmu_counter_enabled): counter n
  below MDCR_EL2.HPMN (and the cycle counter) is enabled by PMCR_EL0.E, one at or
  above it by MDCR_EL2.HPME (the guest hypervisor's share); MDCR_EL2.HPMD prohibits
  the lower share at EL2 (the cycle counter too when PMCR_EL0.DP); the event type's
  filter bits leave out EL0 (U), EL1 (P) and count at EL2 only with NSH (no EL3 on
  QEMU's virt: NSK, NSU and M are kept but do not count).  PMCR_EL0.D makes the cycle
  counter count every 64th cycle (not with LC).  With no EL2 for the guest (vm mode)
  every counter is PMCR_EL0.E's.
* The level instructions ran at: `sync` counts the instructions since the last one at
  `el`, so whoever changes the guest's exception level calls `at_el` first.  Only
  while the counting differs between levels (`watch`) does that matter; the machine
  then reports every change (neve/gic/delivery.py's level watch), otherwise it need
  not.
* A counter that wraps sets its PMOVS bit; the overflow interrupt (PPI 23, INTID 23 on
  virt) is the level (E or HPME) && (PMINTEN & PMOVS), raised when the counter wraps
  (`next_overflow` ends the run loop's slice there).
"""
from __future__ import annotations

from typing import Callable

from neve.arch.model import PMU_COUNTERS as N
PMCR_RESET = 0x4102_3000
PMCR_WRITABLE = 0xF9
PMCR_E, PMCR_P, PMCR_C, PMCR_D, PMCR_DP, PMCR_LC = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 5, 1 << 6
PMCR_N_SHIFT, PMCR_N_MASK = 11, 0x1F << 11
COUNTER_MASK = (1 << 31) | ((1 << N) - 1)
EVTYPER_MASK = 0xFE00_FFFF
CCFILTR_MASK = 0xFC00_0000
FILTER_P, FILTER_U, FILTER_NSH = 1 << 31, 1 << 30, 1 << 27
EV_SW_INCR, EV_INST_RETIRED, EV_EXC_TAKEN, EV_EXC_RETURN, EV_CPU_CYCLES = 0x00, 0x08, 0x09, 0x0A, 0x11
EVENTS = (EV_SW_INCR, EV_INST_RETIRED, EV_EXC_TAKEN, EV_EXC_RETURN, EV_CPU_CYCLES)
PMCEID0 = sum(1 << e for e in EVENTS)                  # 0x20701
TIMED = (EV_INST_RETIRED, EV_CPU_CYCLES)               # counted per instruction
MDCR_HPMN, MDCR_HPME, MDCR_HPMD = 0x1F, 1 << 7, 1 << 17
C = 31                                 # the cycle counter's bit
PPI_PMU = 23


class PMU:
    def __init__(self, clock: Callable[[], int], irq_line: Callable[[bool], None],
                 mdcr: Callable[[], int | None] = lambda: None, el: int = 1) -> None:
        self.clock = clock               # cycles so far (the instruction count)
        self.irq_line = irq_line
        self.mdcr = mdcr                 # the guest's MDCR_EL2, None without a guest EL2 (vm mode)
        self.el = el                     # the guest's exception level since `_since`
        self.pmcr = PMCR_RESET
        self.cnten = self.ovs = self.inten = self.selr = self.userenr = self.ccfiltr = 0
        self.ccnt = 0
        self._div = 0                    # cycles towards the cycle counter's next tick (PMCR.D)
        self.evcnt = [0] * N
        self.evtyper = [0] * N
        self._since: int | None = None    # cycles already counted into the counters (None: idle)
        self._line = False
        self._mdcr: int | None = mdcr()  # MDCR_EL2 as the counting since `_since` saw it
        self._events: frozenset[int] = frozenset()   # the events the enabled counters' types name

    # --- counting ---------------------------------------------------------------------
    def _e(self, i: int, mdcr: int | None) -> bool:
        """The enable of counter i's share: PMCR.E, or MDCR_EL2.HPME for the guest
        hypervisor's (i >= MDCR_EL2.HPMN)."""
        if mdcr is None or i == C or i < mdcr & MDCR_HPMN:
            return bool(self.pmcr & PMCR_E)
        return bool(mdcr & MDCR_HPME)

    def _enabled(self, i: int, mdcr: int | None) -> bool:
        """Counter i (C: the cycle counter) enabled: its share's enable and its PMCNTENSET bit."""
        return bool(self.cnten >> i & 1) and self._e(i, mdcr)

    def _counts_at(self, i: int, el: int, mdcr: int | None) -> bool:
        """Counter i counts an event that happens at `el` (enabled, not prohibited,
        not filtered)."""
        if not self._enabled(i, mdcr):
            return False
        if el == 2 and mdcr is not None and mdcr & MDCR_HPMD and (i == C or i < mdcr & MDCR_HPMN):
            if i != C or self.pmcr & PMCR_DP:
                return False
        f = self.ccfiltr if i == C else self.evtyper[i]
        if el == 0:
            return not f & FILTER_U
        if el == 1:
            return not f & FILTER_P
        return bool(f & FILTER_NSH)

    def _event(self, i: int) -> int:
        return EV_CPU_CYCLES if i == C else self.evtyper[i] & 0xFFFF

    def _add(self, i: int, d: int) -> None:
        """d events into counter i (never C), with its overflow flag."""
        v = self.evcnt[i] + d
        if v >> 32:
            self.ovs |= 1 << i
        self.evcnt[i] = v & 0xFFFF_FFFF

    def _tick_ccnt(self, d: int) -> None:
        if self.pmcr & (PMCR_D | PMCR_LC) == PMCR_D:     # every 64th cycle (not with LC)
            self._div += d
            d, self._div = self._div >> 6, self._div & 63
        if not d:
            return
        width = 64 if self.pmcr & PMCR_LC else 32
        old, self.ccnt = self.ccnt, (self.ccnt + d) & ((1 << 64) - 1)
        if (old & ((1 << width) - 1)) + d >> width:
            self.ovs |= 1 << C

    def sync(self) -> None:
        """Count the cycles since the last access, run at `el`, into every running counter.
        With no counter enabled (an idle PMU, the common case: the run loop syncs at
        every tick) there is nothing to count and nothing is read; `write` restarts the
        count when a counter is enabled."""
        if not self.cnten:
            self._since = None
            return
        now = self.clock()
        d, self._since = now - (now if self._since is None else self._since), now
        mdcr = self._mdcr
        self._mdcr = self.mdcr()
        if d <= 0:
            if self._mdcr != mdcr:          # HPME/HPMN gate the overflow interrupt too
                self._update_line()
            return
        el = self.el
        if self._counts_at(C, el, mdcr):
            self._tick_ccnt(d)
        for i in range(N):
            if self.evtyper[i] & 0xFFFF in TIMED and self._counts_at(i, el, mdcr):
                self._add(i, d)
        self._update_line()

    def mdcr_changed(self) -> None:
        """MDCR_EL2 was just written (`sync` counted up to the write under its old value)."""
        old, self._mdcr = self._mdcr, self.mdcr()
        if self._mdcr != old:               # HPME/HPMN gate the overflow interrupt too
            self._update_line()

    def at_el(self, el: int) -> None:
        """The guest's exception level changes to `el` now."""
        if el != self.el:
            self.sync()
            self.el = el

    def event(self, ev: int, el: int) -> None:
        """One event `ev` (EXC_TAKEN, EXC_RETURN, SW_INCR's own path aside) at `el`.
        (Every exception and return of the guest comes here: no counter of it, no work.)"""
        if ev not in self._events:
            return
        self.sync()
        mdcr = self._mdcr
        hit = False
        for i in range(N):
            if self.evtyper[i] & 0xFFFF == ev and self._counts_at(i, el, mdcr):
                self._add(i, 1)
                hit = True
        if hit:
            self._update_line()

    def watch(self) -> tuple[bool, bool]:
        """(the level instructions run at matters: a counter of instructions or cycles
        counts at some levels only; an EXC_RETURN at EL1 would count)."""
        if not self.cnten:
            return False, False
        mdcr = self._mdcr
        els = (0, 1) if mdcr is None else (0, 1, 2)
        levels = eret = False
        for i in (C, *range(N)):
            if not self._enabled(i, mdcr):
                continue
            ev = self._event(i)
            if ev in TIMED and len({self._counts_at(i, el, mdcr) for el in els}) > 1:
                levels = True
            if ev == EV_EXC_RETURN and self._counts_at(i, 1, mdcr):
                eret = True
        return levels, eret

    def next_overflow(self) -> int | None:
        """The clock value at which a counter whose overflow interrupt is enabled next
        wraps if the guest stays at its level (the run loop ends its slice there, so the
        interrupt is on time; a change of level re-evaluates it)."""
        if not self.inten & self.cnten:
            return None
        now = self.clock()
        run = now - self._since                   # cycles not yet counted in
        mdcr, el = self._mdcr, self.el
        best = None
        for i in (C, *range(N)):
            if not self.inten >> i & 1 or self.ovs >> i & 1 or self._event(i) not in TIMED \
                    or not self._counts_at(i, el, mdcr):
                continue
            if i == C:
                width = 64 if self.pmcr & PMCR_LC else 32
                left = (1 << width) - (self.ccnt & ((1 << width) - 1))
                if self.pmcr & (PMCR_D | PMCR_LC) == PMCR_D:
                    left = left * 64 - self._div
            else:
                left = (1 << 32) - self.evcnt[i]
            at = now + max(0, left - run)
            best = at if best is None or at < best else best
        return best

    def _update_line(self) -> None:
        pend = self.inten & self.ovs
        line = bool(pend) and any(self._e(i, self._mdcr) for i in (C, *range(N)) if pend >> i & 1)
        if line != self._line:
            self._line = line
            self.irq_line(line)

    # --- registers ----------------------------------------------------------------------
    def read(self, name: str, hpmn: int | None = None) -> int:
        """`hpmn`: MDCR_EL2.HPMN when read below an implemented EL2 (PMCR_EL0.N)."""
        self.sync()
        if name == "PMCR_EL0":
            v = self.pmcr
            return v if hpmn is None else (v & ~PMCR_N_MASK) | (hpmn & 0x1F) << PMCR_N_SHIFT
        if name in ("PMCNTENSET_EL0", "PMCNTENCLR_EL0"):
            return self.cnten
        if name in ("PMOVSSET_EL0", "PMOVSCLR_EL0"):
            return self.ovs
        if name in ("PMINTENSET_EL1", "PMINTENCLR_EL1"):
            return self.inten
        if name == "PMSELR_EL0":
            return self.selr
        if name == "PMUSERENR_EL0":
            return self.userenr
        if name == "PMCCFILTR_EL0":
            return self.ccfiltr
        if name == "PMCCNTR_EL0":
            return self.ccnt
        if name == "PMCEID0_EL0":
            return PMCEID0
        if name == "PMCEID1_EL0":
            return 0
        if name == "PMXEVTYPER_EL0":
            return self.ccfiltr if self.selr == C else (self.evtyper[self.selr] if self.selr < N else 0)
        if name == "PMXEVCNTR_EL0":
            return self.evcnt[self.selr] if self.selr < N else 0
        n = _index(name)
        if name.startswith("PMEVCNTR"):
            return self.evcnt[n]
        return self.evtyper[n]                # PMEVTYPER<n>

    def write(self, name: str, v: int, el: int | None = None) -> None:
        """`el`: the writer's exception level (PMSWINC_EL0 counts there; default `el`)."""
        self.sync()
        m = v & COUNTER_MASK
        at = self.el if el is None else el
        if name == "PMCR_EL0":
            if v & PMCR_C:
                self.ccnt = self._div = 0
            if v & PMCR_P:
                # Below EL2, P leaves the counters HPMN reserves for EL2 alone (Arm ARM;
                # QEMU 10 resets them all).
                mdcr = self._mdcr
                n = N if at == 2 or mdcr is None else min(N, mdcr & MDCR_HPMN)
                self.evcnt[:n] = [0] * n
            self.pmcr = (self.pmcr & ~PMCR_WRITABLE) | (v & PMCR_WRITABLE)
        elif name == "PMCNTENSET_EL0":
            self.cnten |= m
        elif name == "PMCNTENCLR_EL0":
            self.cnten &= ~m
        elif name == "PMOVSSET_EL0":
            self.ovs |= m
        elif name == "PMOVSCLR_EL0":
            self.ovs &= ~m
        elif name == "PMINTENSET_EL1":
            self.inten |= m
        elif name == "PMINTENCLR_EL1":
            self.inten &= ~m
        elif name == "PMSELR_EL0":
            self.selr = v & 0x1F
        elif name == "PMUSERENR_EL0":
            self.userenr = v & 0xF
        elif name == "PMCCFILTR_EL0":
            self.ccfiltr = v & CCFILTR_MASK
        elif name == "PMCCNTR_EL0":
            self.ccnt = v & ((1 << 64) - 1)
        elif name == "PMSWINC_EL0":
            for i in range(N):
                if v >> i & 1 and self.evtyper[i] & 0xFFFF == EV_SW_INCR and self._counts_at(i, at, self._mdcr):
                    self._add(i, 1)
        elif name == "PMXEVTYPER_EL0":
            if self.selr == C:
                self.ccfiltr = v & CCFILTR_MASK
            elif self.selr < N:
                self.evtyper[self.selr] = v & EVTYPER_MASK
        elif name == "PMXEVCNTR_EL0":
            if self.selr < N:
                self.evcnt[self.selr] = v & 0xFFFF_FFFF
        elif name.startswith("PMEVCNTR"):
            self.evcnt[_index(name)] = v & 0xFFFF_FFFF
        elif name.startswith("PMEVTYPER"):
            self.evtyper[_index(name)] = v & EVTYPER_MASK
        if name.startswith(("PMCNTEN", "PMEVTYPER", "PMXEVTYPER")):
            self._events = frozenset(self.evtyper[i] & 0xFFFF for i in range(N) if self.cnten >> i & 1)
        if self._since is None and self.cnten:     # counting starts now
            self._since, self._mdcr = self.clock(), self.mdcr()
        self._update_line()

    def get(self, name: str) -> int:
        """A control's value for an access check (PMUSERENR_EL0), without counting."""
        return self.userenr if name == "PMUSERENR_EL0" else self.read(name)

    def state(self) -> dict:
        self.sync()
        return {"pmcr": self.pmcr, "cnten": self.cnten, "ovs": self.ovs, "inten": self.inten, "ccnt": self.ccnt,
                "evcnt": list(self.evcnt), "evtyper": list(self.evtyper)}


def _index(name: str) -> int:
    return int(name[len("PMEVCNTR"):-4]) if name.startswith("PMEVCNTR") else int(name[len("PMEVTYPER"):-4])
