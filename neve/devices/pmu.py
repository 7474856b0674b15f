"""The Performance Monitors Extension (PMUv3 for ARMv8.0), as QEMU 10's cortex-a72 has
it, on neve's deterministic time.

Unicorn's older model has 4 event counters and other write masks; the guest sees this
one instead (the machine serves every PMU register from it):

* 6 event counters (32-bit) and the 64-bit cycle counter; PMCR_EL0 resets to
  0x41023000 (IMP 0x41, IDCODE 0x02, N = 6), writable bits 0xF9 (E, D, X, DP, LC, LP),
  C and P reset the counters and read as 0.  Read below EL2 while an EL2 exists,
  PMCR_EL0.N is MDCR_EL2.HPMN.
* PMCNTEN/PMOVS/PMINTEN set and clear through the mask 0x8000003F; PMSELR keeps 5
  bits; PMEVTYPER<n> 0xFE00FFFF; PMCCFILTR 0xFC000000; PMUSERENR 0xF.  PMXEVTYPER/
  PMXEVCNTR reach counter SEL; SEL = 31 selects PMCCFILTR for the type and nothing
  for the count; SEL 6..30 is RAZ/WI (QEMU's choice).  PMEV*<n> for n >= 6 do not exist.
* PMCEID0_EL0 = 0x20001: SW_INCR (PMSWINC_EL0) and CPU_CYCLES are the events counted.
* Counting: one cycle per guest instruction (neve's virtual time), for PMCCNTR and
  CPU_CYCLES counters while enabled (PMCR.E, the PMCNTENSET bit).  The P/U/NSH
  filters, PMCR.D and MDCR_EL2.HPMN's split of the counters are not modelled.  A
  counter that wraps sets its PMOVS bit; the overflow interrupt (PPI 23, INTID 23 on
  virt) is the level PMCR.E && (PMINTEN & PMOVS), raised when the counter wraps
  (`next_overflow` ends the run loop's slice there).
"""
from __future__ import annotations

from typing import Callable

from neve.arch.model import PMU_COUNTERS as N
PMCR_RESET = 0x4102_3000
PMCR_WRITABLE = 0xF9
PMCR_E, PMCR_P, PMCR_C, PMCR_LC = 1 << 0, 1 << 1, 1 << 2, 1 << 6
PMCR_N_SHIFT, PMCR_N_MASK = 11, 0x1F << 11
COUNTER_MASK = (1 << 31) | ((1 << N) - 1)
EVTYPER_MASK = 0xFE00_FFFF
CCFILTR_MASK = 0xFC00_0000
PMCEID0 = 0x2_0001
EV_SW_INCR, EV_CPU_CYCLES = 0x00, 0x11
C = 31                                 # the cycle counter's bit
PPI_PMU = 23


class PMU:
    def __init__(self, clock: Callable[[], int], irq_line: Callable[[bool], None]) -> None:
        self.clock = clock               # cycles so far (the instruction count)
        self.irq_line = irq_line
        self.pmcr = PMCR_RESET
        self.cnten = self.ovs = self.inten = self.selr = self.userenr = self.ccfiltr = 0
        self.ccnt = 0
        self.evcnt = [0] * N
        self.evtyper = [0] * N
        self._since = clock()            # cycles already counted into the counters
        self._line = False

    # --- counting ---------------------------------------------------------------------
    def _counting(self, i: int) -> bool:
        if not self.pmcr & PMCR_E or not self.cnten >> i & 1:
            return False
        return i == C or self.evtyper[i] & 0xFFFF == EV_CPU_CYCLES

    def sync(self) -> None:
        """Count the cycles since the last access into every running counter."""
        if not self.pmcr & PMCR_E:      # nothing counts (`write` restarts _since at E = 1)
            return
        now = self.clock()
        d, self._since = now - self._since, now
        if d <= 0:
            return
        if self._counting(C):
            width = 64 if self.pmcr & PMCR_LC else 32
            old, self.ccnt = self.ccnt, (self.ccnt + d) & ((1 << 64) - 1)
            if (old & ((1 << width) - 1)) + d >> width:
                self.ovs |= 1 << C
        for i in range(N):
            if self._counting(i):
                v = self.evcnt[i] + d
                if v >> 32:
                    self.ovs |= 1 << i
                self.evcnt[i] = v & 0xFFFF_FFFF
        self._update_line()

    def next_overflow(self) -> int | None:
        """The clock value at which a counter whose overflow interrupt is enabled next
        wraps (the run loop ends its slice there, so the interrupt is on time)."""
        if not self.pmcr & PMCR_E or not self.inten & self.cnten:
            return None
        now = self.clock()
        run = now - self._since                   # cycles not yet counted in
        best = None
        for i in (C, *range(N)):
            if not self.inten >> i & 1 or self.ovs >> i & 1 or not self._counting(i):
                continue
            width = (64 if self.pmcr & PMCR_LC else 32) if i == C else 32
            value = (self.ccnt if i == C else self.evcnt[i]) & ((1 << width) - 1)
            at = now + max(0, (1 << width) - value - run)
            best = at if best is None or at < best else best
        return best

    def _update_line(self) -> None:
        line = bool(self.pmcr & PMCR_E and self.inten & self.ovs)
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

    def write(self, name: str, v: int) -> None:
        self.sync()
        m = v & COUNTER_MASK
        if name == "PMCR_EL0":
            if v & PMCR_C:
                self.ccnt = 0
            if v & PMCR_P:
                self.evcnt = [0] * N
            if not self.pmcr & PMCR_E and v & PMCR_E:
                self._since = self.clock()          # counting starts now
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
                if v >> i & 1 and self.pmcr & PMCR_E and self.cnten >> i & 1 \
                        and self.evtyper[i] & 0xFFFF == EV_SW_INCR:
                    if self.evcnt[i] == 0xFFFF_FFFF:
                        self.ovs |= 1 << i
                    self.evcnt[i] = (self.evcnt[i] + 1) & 0xFFFF_FFFF
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
