"""The instruction count is exact: a free run counts exactly as many instructions as
single-stepping the same image executes (every emulated MRS/MSR/SYS, exception entry
and ERET included), and the transcript does not depend on how the run is sliced."""
import pytest

from conftest import IMAGES
from neve.core import elf
from neve.core.cpu import uc_translator_skips
from neve.core.machine import Machine


def machine(mode, names):
    return Machine([elf.load(IMAGES / n) for n in names], mode=mode, uart_out=lambda b: None)


@pytest.mark.parametrize("mode, names", [
    ("vm", ["exceptions.elf"]),
    ("vm", ["el0.elf"]),
    ("v8.3", ["tinyhyp.elf"]),
    ("nv2", ["tinyhyp.elf"]),
    ("neve", ["nv2probe.elf"]),
])
def test_free_run_counts_what_stepping_executes(mode, names):
    free = machine(mode, names)
    r = free.run()
    assert r.reason == "system-off", r.message
    stepped = machine(mode, names)
    steps = 0
    while True:
        r2 = stepped.run(max_slice=1)
        steps += 1
        if r2.reason != "paused":
            break
    assert r2.reason == "system-off"
    assert stepped.icount() == steps == free.icount()
    assert stepped.transcript == free.transcript
    assert stepped.stats.by_register == free.stats.by_register


@pytest.mark.parametrize("key, write, el, skips", [
    ((3, 0, 4, 2, 2), False, 1, True),    # CurrentEL: Unicorn can read it at EL1
    ((3, 4, 1, 1, 0), False, 1, False),   # HCR_EL2: not accessible at EL1
    ((3, 0, 1, 0, 0), True, 1, True),     # SCTLR_EL1 write at EL1
    ((3, 0, 1, 0, 0), False, 0, False),   # SCTLR_EL1 at EL0
    ((3, 0, 12, 12, 0), False, 1, False),  # ICC_IAR1_EL1: no GIC CPU interface in Unicorn
    ((1, 4, 8, 7, 0), True, 1, False),    # TLBI ALLE2 at EL1
])
def test_translator_probe(key, write, el, skips):
    assert uc_translator_skips(key, write, el) is skips
