"""The microbenchmarks of `neve bench`: what one operation is (window functions) and
the registry of benchmarks (`Benchmark`, `BENCHMARKS`, `register`).

Each row of the table is a `Benchmark` (a declarative entry in `BENCHMARKS`) run in
one mode.  A benchmark names its images for vm mode and for the nested modes (the
KVM-like guest hypervisor plus the nested VM), and a *window* function that tells
what one operation is: it subscribes to the machine's event bus and calls
`OpRecorder.begin()` / `.end()` around each operation.  `hypercall_window_of(guests)`
uses the machine's Hypercall events of those guests (from the trap of the guest's
HVC until that guest runs again, as `Stats.per_call`); `trap_window(match)` opens an
operation at a trap of the guest that `match` accepts and closes it when the guest
runs again (device I/O); `symbol_window(begin, end)` brackets the guest's code
between two symbols.  Other issues add rows with `register(Benchmark(...))`; a row
whose images are not built yet is skipped with a note.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from unicorn import UC_HOOK_CODE

from neve.bench.recorder import OpRecorder
from neve.observe import events as ev
from neve.arch.modes import MODES as ALL_MODES, NESTED_MODES

ROOT = Path(__file__).resolve().parents[2]          # the repository (this file is neve/bench/catalogue.py)
IMAGES = ROOT / "images"
MODES, NESTED = ALL_MODES, NESTED_MODES


# =============================================================================
# Operations: what one "operation" of a benchmark is
# =============================================================================
Window = Callable[[object, OpRecorder], None]


def hypercall_window_of(*guests: str) -> Window:
    """One operation = one hypercall of a benchmark guest named in `guests` (the
    machine's Hypercall events: from the trap of its HVC until that guest runs again,
    as Stats.per_call counts them).  A call the guest hypervisor answers by running
    another context (a `cancel`) is no round trip and is dropped."""
    def window(machine, rec: OpRecorder) -> None:
        def on(h: ev.Hypercall) -> None:
            if h.guest not in guests:
                return
            if h.phase == "begin":
                rec.begin()
            elif h.phase == "end":
                rec.end()
            else:
                rec.cur = None      # cancelled: not an operation
        machine.bus.subscribe(ev.Hypercall, on)
    return window


# The nested VM, or the VM kernel in vm mode.  The KVM-like guest hypervisor runs a
# nested VM, and the calls of its own host-kernel part (vEL1-host) are not the
# benchmark's.
hypercall_window = hypercall_window_of("nested-VM", "EL1")


def trap_window(match: Callable[[ev.Trap], bool]) -> Window:
    """One operation = a trap of the benchmark guest that `match` accepts (e.g. a
    stage-2 abort or an MMIO access of the nested VM), until that guest runs again.
    In vm mode L0 handles the trap inline, so the operation is that trap alone; in the
    nested modes it ends at the world switch that resumes the nested VM."""
    def window(machine, rec: OpRecorder) -> None:
        def on_trap(t: ev.Trap) -> None:
            if rec.open or t.level == "vEL2" or not match(t):
                return
            if machine.vel2 is not None and machine.vel2.active:
                return
            if machine.vel2 is not None and machine.vel2.guest_id() != "nested-VM":
                return
            rec.begin()
            rec.add_trap(t)         # the opening trap was published before begin()
            if machine.vel2 is None:
                rec.end()

        def on_switch(s: ev.Switch) -> None:
            if rec.open and s.dst != "vEL2" and machine.vel2.guest_id() == "nested-VM":
                rec.end()
        machine.bus.subscribe(ev.Trap, on_trap)
        machine.bus.subscribe(ev.Switch, on_switch)
    return window


def symbol_window(begin: str, end: str) -> Window:
    """One operation = from the guest reaching symbol `begin` until it reaches `end`
    (each time, in that order).  Symbols are looked up in the loaded images (the
    last image wins a clash, i.e. the nested VM's).  Only those two instructions are
    hooked, so counts are unaffected."""
    def window(machine, rec: OpRecorder) -> None:
        names = machine.symbols.by_name
        for sym in (begin, end):
            if sym not in names:
                raise RuntimeError(f"symbol_window: no symbol {sym!r} in the images")
        a, b = names[begin], names[end]
        for v in machine.vcpus:             # (whichever CPU runs the code)
            uc = v.cpu.uc
            uc.hook_add(UC_HOOK_CODE, lambda uc, addr, size, _: rec.begin(), None, a, a)
            uc.hook_add(UC_HOOK_CODE, lambda uc, addr, size, _: rec.end(), None, b, b)
    return window


def trap_to_symbol_window(match: Callable[[ev.Trap], bool], end: str) -> Window:
    """One operation = from a trap of the benchmark guest that `match` accepts (e.g.
    the physical interrupt of its expiring timer) until the guest reaches symbol `end`
    (e.g. the exception return of its interrupt handler)."""
    def window(machine, rec: OpRecorder) -> None:
        if end not in machine.symbols.by_name:
            raise RuntimeError(f"trap_to_symbol_window: no symbol {end!r} in the images")
        b = machine.symbols.by_name[end]

        def on_trap(t: ev.Trap) -> None:
            if rec.open or t.level == "vEL2" or not match(t):
                return
            if machine.vel2 is not None and machine.vel2.guest_id() != "nested-VM":
                return
            rec.begin()
            rec.add_trap(t)         # the opening trap was published before begin()

        def on_end(uc, addr, size, _) -> None:
            if rec.open:
                rec.end()
        machine.bus.subscribe(ev.Trap, on_trap)
        machine.cpu.uc.hook_add(UC_HOOK_CODE, on_end, None, b, b)
    return window


# =============================================================================
# The registry of microbenchmarks
# =============================================================================
@dataclass(frozen=True)
class Benchmark:
    name: str
    operation: str                         # what one operation is, for the table's note
    vm_images: tuple[str, ...]             # relative to images/ (or absolute)
    nested_images: tuple[str, ...]         # the guest hypervisor first
    window: Window | None                  # None: not defined yet, the row is skipped
    quick_vm_images: tuple[str, ...] | None = None
    quick_nested_images: tuple[str, ...] | None = None
    modes: tuple[str, ...] = MODES
    paper_cycles: dict = field(default_factory=dict)    # mode -> cycles reported by the paper
    paper_traps: dict = field(default_factory=dict)     # mode -> traps reported by the paper
    pending: str = ""                      # which issue provides the images, for the skip note
    max_insns: int = 1_000_000_000         # a guest that never stops fails its row instead of hanging
    speed: bool = False                    # the row also reports guest instructions per host second
    # Booted as `neve run --kernel K --initrd I --append A` instead of images: (K, I, A),
    # K and I in the guests directory (tools/guests.sh); nested modes only.
    boot: tuple[str, str, str] | None = None
    symbols_from: tuple[str, ...] = ()     # a booted row's nested VM image, for its symbols (not loaded)
    smp: int = 1                           # the board's CPUs (neve run --smp)

    def images(self, mode: str, quick: bool) -> tuple[str, ...]:
        if mode == "vm":
            return (self.quick_vm_images if quick and self.quick_vm_images else self.vm_images)
        return (self.quick_nested_images if quick and self.quick_nested_images else self.nested_images)


BENCHMARKS: dict[str, Benchmark] = {}


def register(b: Benchmark) -> Benchmark:
    """Add (or replace) a microbenchmark row of `neve bench`."""
    BENCHMARKS[b.name] = b
    return b


PAPER_HYPERCALL = {"vm": 2729, "v8.3": 422720, "neve": 92385}

register(Benchmark(
    name="hypercall",
    operation="one hypercall of the (nested) VM: its HVC trap until it runs again",
    vm_images=("hypercall1k.elf",),
    nested_images=("kvmlike.elf", "hypercall1k.elf"),
    quick_vm_images=("hypercall.elf",),
    quick_nested_images=("kvmlike.elf", "hypercall.elf"),
    window=hypercall_window,
    paper_cycles=PAPER_HYPERCALL,
    paper_traps={"vm": 1, "v8.3": 126, "neve": 15},
))

register(Benchmark(
    name="hypercall-minimal",
    operation="one hypercall of the EL1 guest of the minimal guest hypervisor (minhyp.elf: one ESR_EL2 read "
              "and an ERET per call, HCR_EL2 = RW, no stage 2): its HVC trap until it runs again; in vm mode "
              "the same kernel with L0 as its hypervisor",
    vm_images=("hypercall1k.elf",),
    nested_images=("minhyp.elf", "hypercall1k.elf"),
    # minhyp runs its guest as L1's host-kernel context (README, "A hypercall"):
    # nothing trapped, no VMID, so that guest's calls are vEL1-host's.
    window=hypercall_window_of("vEL1-host", "EL1"),
))

register(Benchmark(
    name="device-io",
    operation="one MMIO read of the (nested) VM from an emulated device register (mmio.elf reads UARTFR), "
              "until it runs again",
    vm_images=("mmio.elf",),
    nested_images=("kvmlike.elf", "mmio.elf"),
    # mmio.elf's only device reads are the benchmark's UARTFR loads (its UART output
    # is writes): in vm mode an MMIO trap to L0, nested a stage-2 abort forwarded to L1.
    window=trap_window(lambda t: t.rw == "r" and t.cls in (ev.MMIO, ev.ABORT)),
    pending="the stage-2 issue (firmware/mmio)",
))

register(Benchmark(
    name="virtual-eoi",
    operation="the (nested) VM handling one virtual interrupt: IRQ vector entry, ICC_IAR1_EL1 acknowledge, "
              "ICC_EOIR1_EL1 EOI, until its exception return (virteoi.elf)",
    vm_images=("virteoi.elf",),
    nested_images=("kvmlike.elf", "virteoi.elf"),
    window=symbol_window("irq_entry", "irq_return"),
))

register(Benchmark(
    name="timer-interrupt",
    operation="one virtual timer interrupt handled end to end: from the physical interrupt of the VM's expiring "
              "virtual timer (a trap to L0) until the VM's handler returns (vtimer.elf)",
    vm_images=("vtimer.elf",),
    nested_images=("kvmlike.elf", "vtimer.elf"),
    window=trap_to_symbol_window(lambda t: t.cls == ev.IRQ, "irq_return"),
))

register(Benchmark(
    name="counter-wait",
    operation="the (nested) VM busy-waiting a fixed span of virtual time on CNTVCT_EL0 (countwait.elf: 100 ms, "
              "ISB; MRS CNTVCT_EL0; compare with a deadline from CNTFRQ_EL0, as Linux's udelay), from "
              "counter_wait to counter_wait_done; --quick: 10 ms (countwait10.elf)",
    vm_images=("countwait.elf",),
    nested_images=("kvmlike.elf", "countwait.elf"),
    quick_vm_images=("countwait10.elf",),
    quick_nested_images=("kvmlike.elf", "countwait10.elf"),
    window=symbol_window("counter_wait", "counter_wait_done"),
    speed=True,
))

# Rows under Linux 6.12's KVM: Debian's kernel booted at vEL2 with guests/kvm-initrd.gz,
# whose init runs one nested VM (neve.vm=) under tools/vmm; nested modes only.
def _linux_kvm(name: str, operation: str, vm: str, window: Window, symbols: bool = False, smp: int = 1) -> Benchmark:
    return register(Benchmark(name=name, operation=operation, vm_images=(), nested_images=(), window=window,
                              modes=NESTED, boot=("vmlinuz", "kvm-initrd.gz", f"console=ttyAMA0 panic=-1 neve.vm={vm}"),
                              symbols_from=(vm,) if symbols else (), max_insns=4_000_000_000, smp=smp))


# The virtual IPI (the paper's fourth microbenchmark): ipi.elf on two CPUs, one round
# trip = CPU 0's SGI to CPU 1, CPU 1's handler answering with an SGI, until CPU 0 has
# taken the answer.  In vm mode on the board's two CPUs (L0 emulates the GIC); in the
# nested modes a two-vCPU nested VM under Linux's KVM on two vCPUs of neve
# (virtual-ipi-linux below).
register(Benchmark(
    name="virtual-ipi",
    operation="one IPI round trip between the two CPUs of the VM (ipi.elf, --smp 2): CPU 0's SGI 1 to CPU 1 "
              "(ICC_SGI1R_EL1), CPU 1's IRQ handler acknowledging it and sending SGI 2 back, until CPU 0 has "
              "taken it (ipi_send to ipi_done)",
    vm_images=("ipi.elf",),
    nested_images=(),
    window=symbol_window("ipi_send", "ipi_done"),
    modes=("vm",),
    smp=2,
))


_linux_kvm("hypercall-linux",
           "one hypercall of the nested VM under Linux 6.12's KVM (Debian's kernel booted at vEL2, its init "
           "running tools/vmm with hypercall.elf): its HVC trap until it runs again",
           "hypercall.elf", hypercall_window_of("nested-VM"))
_linux_kvm("device-io-linux",
           "one MMIO read of the nested VM that Linux 6.12's KVM hands to user space (mmio.elf reads UARTFR, "
           "which tools/vmm serves: KVM's MMIO exit to the VMM and back), until it runs again",
           "mmio.elf", trap_window(lambda t: t.rw == "r" and t.cls in (ev.MMIO, ev.ABORT)))
_linux_kvm("device-io-kernel-linux",
           "one MMIO read of the nested VM that Linux 6.12's KVM serves in the host kernel (gicdread.elf reads "
           "GICD_PIDR2 of KVM's in-kernel vGICv3: KVM's MMIO exit ends in its vGIC emulation, the VMM in user "
           "space never runs), until it runs again",
           "gicdread.elf", trap_window(lambda t: t.rw == "r" and t.cls in (ev.MMIO, ev.ABORT)))
_linux_kvm("virtual-eoi-linux",
           "the nested VM handling one virtual interrupt under Linux 6.12's KVM: IRQ vector entry, ICC_IAR1_EL1 "
           "acknowledge, ICC_EOIR1_EL1 EOI, until its exception return (virteoi.elf sends itself SGIs, which KVM's "
           "in-kernel vGICv3 injects through the list registers)",
           "virteoi.elf", symbol_window("irq_entry", "irq_return"), symbols=True)
_linux_kvm("timer-interrupt-linux",
           "one virtual timer interrupt of the nested VM under Linux 6.12's KVM (vtimer.elf, with KVM's "
           "in-kernel vGIC): from the physical interrupt of its expiring timer (a trap to L0) until its "
           "handler returns",
           "vtimer.elf", trap_to_symbol_window(lambda t: t.cls == ev.IRQ, "irq_return"), symbols=True)
_linux_kvm("virtual-ipi-linux",
           "one virtual IPI round trip of a two-vCPU nested VM under Linux 6.12's KVM on two CPUs (--smp 2; "
           "ipi.elf, its vCPUs started with PSCI CPU_ON, which KVM answers): vCPU 0's SGI 1 (a trap of "
           "ICC_SGI1R_EL1 to KVM, whose vGICv3 injects it into vCPU 1 through the list registers, kicking "
           "it with a physical IPI), vCPU 1's handler sending SGI 2 back the same way, until vCPU 0 has taken "
           "it (ipi_send to ipi_done)",
           "ipi.elf", symbol_window("ipi_send", "ipi_done"), symbols=True, smp=2)
