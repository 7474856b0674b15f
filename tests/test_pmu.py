"""The PMU's overflow interrupt is raised when a counter wraps (neve/devices/pmu.py)."""
from __future__ import annotations

from neve.devices.pmu import C, PMU


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def _pmu():
    clock, lines = Clock(), []
    return PMU(clock, lines.append), clock, lines


def test_cycle_counter_overflow_is_due_when_it_wraps():
    pmu, clock, lines = _pmu()
    pmu.write("PMCCNTR_EL0", 0xFFFF_FF00)
    pmu.write("PMINTENSET_EL1", 1 << C)
    assert pmu.next_overflow() is None                    # not counting yet
    pmu.write("PMCNTENSET_EL0", 1 << C)
    pmu.write("PMCR_EL0", 1)                              # E
    assert pmu.next_overflow() == 0x100
    clock.now = 0x80
    assert pmu.next_overflow() == 0x100                   # cycles not yet synced are counted
    clock.now = 0x100
    pmu.sync()
    assert lines == [True] and pmu.read("PMOVSSET_EL0") == 1 << C
    assert pmu.next_overflow() is None                    # overflowed: its line is up


def test_event_counter_of_cycles_and_disabled_interrupts():
    pmu, clock, lines = _pmu()
    pmu.write("PMEVTYPER2_EL0", 0x11)                     # CPU_CYCLES
    pmu.write("PMEVCNTR2_EL0", 0xFFFF_FFF0)
    pmu.write("PMCNTENSET_EL0", 1 << 2)
    pmu.write("PMCR_EL0", 1)
    assert pmu.next_overflow() is None                    # its interrupt is not enabled
    pmu.write("PMINTENSET_EL1", 1 << 2)
    assert pmu.next_overflow() == 0x10
    pmu.write("PMEVTYPER2_EL0", 0x00)                     # SW_INCR: time does not wrap it
    assert pmu.next_overflow() is None


def test_filters_count_by_level():
    pmu, clock, lines = _pmu()
    pmu.write("PMEVTYPER0_EL0", 0x08)                     # INST_RETIRED, every level
    pmu.write("PMEVTYPER1_EL0", 0x4000_0008)              # U: not at EL0
    pmu.write("PMEVTYPER2_EL0", 0x8000_0008)              # P: not at EL1
    pmu.write("PMCCFILTR_EL0", 0x0800_0000)               # NSH: at EL2 too
    pmu.write("PMCNTENSET_EL0", 0x8000_0007)
    pmu.write("PMCR_EL0", 1)
    assert pmu.watch() == (True, False)                   # the level matters now
    clock.now = 10                                        # 10 at EL1
    pmu.at_el(0)
    clock.now = 25                                        # 15 at EL0
    pmu.at_el(1)
    assert [pmu.read(f"PMEVCNTR{i}_EL0") for i in range(3)] == [25, 10, 15]
    assert pmu.read("PMCCNTR_EL0") == 25
    pmu.write("PMEVTYPER1_EL0", 0x08)
    pmu.write("PMEVTYPER2_EL0", 0x08)
    assert pmu.watch() == (False, False)                  # no EL2 (vm mode): NSH changes nothing


def test_hpmn_split_hpmd_and_the_reset_below_el2():
    clock, lines = Clock(), []
    mdcr = [0x2 | 0x80]                                   # HPMN 2, HPME
    pmu = PMU(clock, lines.append, lambda: mdcr[0], el=2)
    for i in range(4):
        pmu.write(f"PMEVTYPER{i}_EL0", 0x0800_0008)       # INST_RETIRED with NSH
    pmu.write("PMCNTENSET_EL0", 0xF)
    clock.now = 10
    assert [pmu.read(f"PMEVCNTR{i}_EL0") for i in range(4)] == [0, 0, 10, 10]   # PMCR.E clear: EL2's share only
    pmu.write("PMCR_EL0", 1)
    mdcr[0] |= 1 << 17                                    # HPMD: not the guest's share at EL2
    pmu.sync()
    clock.now = 20
    assert [pmu.read(f"PMEVCNTR{i}_EL0") for i in range(4)] == [0, 0, 20, 20]
    pmu.at_el(1)
    clock.now = 25
    assert [pmu.read(f"PMEVCNTR{i}_EL0") for i in range(4)] == [5, 5, 25, 25]
    pmu.write("PMCR_EL0", 1 | 2, el=1)                    # P at EL1: HPMN's counters only
    assert [pmu.read(f"PMEVCNTR{i}_EL0") for i in range(4)] == [0, 0, 25, 25]
    pmu.write("PMCR_EL0", 1 | 2, el=2)                    # ... at EL2 all of them
    assert [pmu.read(f"PMEVCNTR{i}_EL0") for i in range(4)] == [0, 0, 0, 0]


def test_exception_events_and_their_overflow():
    pmu, clock, lines = _pmu()
    pmu.write("PMEVTYPER0_EL0", 0x09)                     # EXC_TAKEN
    pmu.write("PMEVTYPER1_EL0", 0x8000_000A)              # EXC_RETURN, not at EL1
    pmu.write("PMEVCNTR0_EL0", 0xFFFF_FFFF)
    pmu.write("PMINTENSET_EL1", 1)
    pmu.write("PMCNTENSET_EL0", 3)
    pmu.write("PMCR_EL0", 1)
    assert pmu.watch() == (False, False)                  # EXC_RETURN never counts at EL1
    assert pmu.next_overflow() is None                    # events, not time
    pmu.event(0x09, 0)
    pmu.event(0x0A, 1)
    assert pmu.read("PMEVCNTR0_EL0") == 0 and pmu.read("PMOVSSET_EL0") == 1 and lines == [True]
    assert pmu.read("PMEVCNTR1_EL0") == 0
    pmu.write("PMEVTYPER1_EL0", 0x0A)
    assert pmu.watch() == (False, True)                   # now every ERET at EL1 must be seen


def test_the_divider_counts_every_64th_cycle_without_lc():
    pmu, clock, lines = _pmu()
    pmu.write("PMCNTENSET_EL0", 1 << C)
    pmu.write("PMCR_EL0", 1 | 8)                          # E, D
    clock.now = 130
    assert pmu.read("PMCCNTR_EL0") == 2
    pmu.write("PMCCNTR_EL0", 0xFFFF_FFFF)
    pmu.write("PMINTENSET_EL1", 1 << C)
    assert pmu.next_overflow() == 130 + 64 - 2            # 2 cycles of the next 64 already run
    pmu.write("PMCR_EL0", 1 | 8 | 64)                     # LC: every cycle
    clock.now = 131
    assert pmu.read("PMCCNTR_EL0") == 0x1_0000_0000 and not lines    # no 32-bit overflow with LC


def test_a_write_of_mdcr_el2_moves_the_overflow_interrupt_line():
    """HPME gates the overflow interrupt of the counters at or above HPMN: enabling it
    raises a line whose overflow is already recorded, at the write (no cycle between)."""
    clock, lines = Clock(), []
    mdcr = [2]                                            # HPMN 2, HPME clear
    pmu = PMU(clock, lines.append, lambda: mdcr[0], el=2)
    pmu.write("PMINTENSET_EL1", 1 << 5)
    pmu.write("PMOVSSET_EL0", 1 << 5)
    assert lines == []                                    # counter 5 is EL2's: HPME clear
    pmu.sync()
    mdcr[0] |= 0x80                                       # what the MDCR_EL2 write does: sync, set, tell
    pmu.mdcr_changed()
    assert lines == [True]
    pmu.sync()
    mdcr[0] = 6                                           # HPMN 6: counter 5 is PMCR.E's (clear)
    pmu.mdcr_changed()
    assert lines == [True, False]
