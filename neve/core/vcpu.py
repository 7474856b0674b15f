"""One virtual CPU: everything a CPU owns, hanging off one object.

The board (neve/core/machine.py) owns what the CPUs share -- RAM, the devices (UART,
GIC distributor and redistributor frames), the GIC's interrupt state, the system
counter, the shadow stage-2 tables per VMID, the event bus -- and builds each vCPU in dependency order (`Machine._build_vcpu`):
its Unicorn instance with the shared RAM and devices mapped, the checks neve makes beside
Unicorn, its virtual EL2 in the nested modes, and its part of the interrupt and time
subsystem (its GIC CPU interface, timers, PMU and shadow list registers).  One vCPU
today; SMP adds more, and the run loop then switches which one runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.align import DeviceAlignment
    from neve.core.cpu import CPU
    from neve.core.eret import EretHooks
    from neve.core.fastpath import FastPath
    from neve.core.fptrap import FPTraps
    from neve.el2.vel2 import VirtualEL2
    from neve.gic.delivery import Interrupts


@dataclass(eq=False)
class VCPU:
    index: int
    cpu: CPU                                   # the Unicorn instance and its counting
    fast: FastPath | None = None               # the compiled hooks (neve/core/fastpath.py), if built
    align: DeviceAlignment | None = None       # Device-memory alignment (neve/core/align.py)
    fp: FPTraps | None = None                  # FP access traps (neve/core/fptrap.py)
    erets: EretHooks | None = None             # ERET/LDAR/STLR code hooks (neve/core/eret.py)
    vel2: VirtualEL2 | None = None             # virtual EL2, in the nested modes
    irq: Interrupts | None = None              # its GIC CPU interface, timers, PMU, shadow LRs
    # Registers neve keeps for the CPU model (neve/arch/model.py OWNED): name -> value.
    owned: dict[str, int] = field(default_factory=dict)
    # An action a hook left for after emu_start returns (Machine.defer), and an error a
    # hook raised (Machine.fail_in_hook).
    pending: Callable[[], None] | None = None
    hook_error: Exception | None = None
    # The guest context whose hypercall is open (Hypercall events), if any.
    hypercall_guest: str | None = None
    # SMP (Machine._schedule): PSCI power state ("on"/"off"); asleep in a WFI that no
    # interrupt would wake yet; the (entry, context id) of a CPU_ON not started yet;
    # instruction-cache maintenance of other vCPUs not yet applied here (PA ranges,
    # VA ranges; None in the list: everything).
    affinity: int = 0                          # MPIDR_EL1's Aff3..Aff0 (QEMU virt: Aff0 = index)
    power: str = "on"
    asleep: bool = False
    start: tuple[int, int] | None = None
    started_at: int = 0                        # the machine's instruction count at its last CPU_ON
    ic_pending: list = field(default_factory=list)
