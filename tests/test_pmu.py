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
