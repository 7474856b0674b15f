"""Stopping the guest, shared by `neve debug` (neve/debug/shell.py) and the GDB stub
(neve/debug/gdb.py).

`Stops` keeps address breakpoints (a Unicorn code hook on exactly that address that
calls `Machine.pause`, which stops before the instruction), trap / world-switch /
hypercall breakpoints (bus subscribers that stop the CPU once the current instruction
is complete, see `Stops.stop_after_current`), single steps (`run(max_slice=1)`), and
`resume`, which runs the machine in slices so a caller can poll for an interrupt
between them.  It remembers every event that stopped the run and describes it: the
trapping instruction with symbol+offset, the level it came from, the class, the
register and value, and *why* it trapped (the reason the machine put on the `Trap`
event).

A note on instruction counts: a Unicorn code hook that stops the CPU stops it *before*
the hooked instruction, but Unicorn has already counted it; `Stops` takes that one
instruction back so `icount` stays exact across breakpoint hits.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, TYPE_CHECKING

from unicorn import UC_HOOK_CODE

from neve.arch import decode, sysregs
from neve.observe import events as ev

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine

SLICE = 100_000          # instructions per run() slice while continuing

_BRANCHY = re.compile(r"^(b|bl|b\.\w+|cbz|cbnz|tbz|tbnz|adr|adrp)$")
_IMM = re.compile(r"#(0x[0-9a-f]+)\s*$")


@dataclass
class Breakpoint:
    num: int
    kind: str                 # addr | trap | switch | hypercall
    spec: str = ""            # trap spec (class, register, REGISTER:r|w) or "" for any
    addr: int | None = None
    handle: list | None = None          # (Unicorn, hook) per CPU of an address breakpoint
    hits: int = 0

    def describe(self, m) -> str:
        if self.kind == "addr":
            return f"breakpoint at {m.where(self.addr)}"
        if self.kind == "trap":
            return f"trap breakpoint on {self.spec or 'any trap'}"
        if self.kind == "switch":
            return "breakpoint on every change of level"
        return "breakpoint on every hypercall of the guest"


def trap_matches(spec: str, t: ev.Trap) -> bool:
    """`spec`: "" (any trap), a trap class (eret, hvc, sysreg, ...), or a register or
    instruction name (HCR_EL2, ERET, "HVC #0x0", "TLBI VMALLS12E1IS"), optionally with
    :r or :w for register reads or writes."""
    if not spec:
        return True
    s = spec.strip()
    if s.lower() in ev.TRAP_CLASSES:
        return t.cls == s.lower()
    rw = ""
    if s[-2:].lower() in (":r", ":w"):
        s, rw = s[:-2], s[-1].lower()
    name = t.name.upper()
    s = s.upper()
    if name != s and not name.startswith(s + " "):
        return False
    return not rw or t.rw == rw


def parse_trap_spec(spec: str) -> tuple[str, str | None]:
    """Normalize a trap spec; returns (spec, warning or None)."""
    s = spec.strip()
    if not s or s.lower() in ("any", "all"):
        return "", None
    if s.lower() in ev.TRAP_CLASSES:
        return s.lower(), None
    base = s[:-2] if s[-2:].lower() in (":r", ":w") else s
    upper = base.upper()
    if upper in {n.upper() for n in sysregs.BY_NAME} or upper.split()[0] in (
            "ERET", "ERETAA", "ERETAB", "HVC", "SMC", "WFI", "WFE", "TLBI", "AT", "DC", "UART.DR"):
        return s, None
    return s, f"{base!r} is neither a trap class ({', '.join(ev.TRAP_CLASSES)}) nor a register in the table; " \
              f"it will match trap names exactly"


class Stops:
    """Breakpoints, single steps and resumption over one Machine (see module doc)."""

    def __init__(self, machine: Machine) -> None:
        self.m = machine
        self.bps: dict[int, Breakpoint] = {}
        self._next = 1
        self.hits: list[tuple[Breakpoint | None, object]] = []   # (breakpoint, event) since the last resume
        self.extra_hooks: list[Callable] = []
        self._ignore_addr = False
        self._uncount = False
        self._ran = None            # the CPU that ran last, while another CPU's view is shown
        bus = machine.bus
        bus.subscribe(ev.Trap, self._on_trap)
        bus.subscribe(ev.Switch, self._on_switch)
        bus.subscribe(ev.Hypercall, self._on_hypercall)

    # --- breakpoint management -------------------------------------------------------
    def _add(self, bp: Breakpoint) -> Breakpoint:
        self.bps[bp.num] = bp
        self._next += 1
        return bp

    def add_addr(self, addr: int) -> Breakpoint:
        for bp in self.bps.values():
            if bp.kind == "addr" and bp.addr == addr:
                return bp
        bp = Breakpoint(self._next, "addr", addr=addr)
        bp.handle = []
        for v in self.m.vcpus:              # on every CPU (whichever runs the code)
            uc = v.cpu.uc
            bp.handle.append((uc, uc.hook_add(UC_HOOK_CODE, self._code_hook, bp, addr, addr)))
            # Unicorn only applies a new hook to code translated after it.
            uc.ctl_remove_cache(addr, addr + 4)
        return self._add(bp)

    def add_trap(self, spec: str) -> Breakpoint:
        return self._add(Breakpoint(self._next, "trap", spec=spec))

    def add_event(self, kind: str) -> Breakpoint:
        return self._add(Breakpoint(self._next, kind))

    def delete(self, num: int | None = None) -> int:
        nums = list(self.bps) if num is None else [num]
        for n in nums:
            bp = self.bps.pop(n, None)
            if bp is None:
                raise KeyError(n)
            for uc, h in bp.handle or ():
                uc.hook_del(h)
                uc.ctl_remove_cache(bp.addr, bp.addr + 4)
        return len(nums)

    def remove_addr(self, addr: int) -> bool:
        for bp in list(self.bps.values()):
            if bp.kind == "addr" and bp.addr == addr:
                self.delete(bp.num)
                return True
        return False

    def addr_at(self, pc: int) -> bool:
        return any(bp.kind == "addr" and bp.addr == pc for bp in self.bps.values())

    # --- hooks and subscribers -------------------------------------------------------
    def _code_hook(self, uc, addr: int, size: int, bp: Breakpoint) -> None:
        cpu = self.m.cpu
        if self._ignore_addr or self.m.cpu.pc != addr:
            return
        if cpu.executed_in_slice() > cpu.slice_count:
            return          # the slice ends here anyway; the next one starts on this hook
        bp.hits += 1
        self.hits.append((bp, None))
        self._uncount = True
        self.m.pause(f"breakpoint {bp.num}")

    def _on_trap(self, t: ev.Trap) -> None:
        for bp in self.bps.values():
            if bp.kind == "trap" and trap_matches(bp.spec, t):
                bp.hits += 1
                self.hits.append((bp, t))
                self.stop_after_current()
                return

    def _on_switch(self, s: ev.Switch) -> None:
        for bp in self.bps.values():
            if bp.kind == "switch":
                bp.hits += 1
                self.hits.append((bp, s))
                self.stop_after_current()
                return

    def _on_hypercall(self, h: ev.Hypercall) -> None:
        if h.phase != "begin":
            return
        for bp in self.bps.values():
            if bp.kind == "hypercall":
                bp.hits += 1
                self.hits.append((bp, h))
                self.stop_after_current()
                return

    def note(self, event) -> None:
        """Record a stop cause found by someone else (the GDB stub's watchpoints) and
        stop after the current instruction."""
        self.hits.append((None, event))
        self.stop_after_current()

    def stop_after_current(self) -> None:
        """From any hook or subscriber: end the running slice once the current
        instruction is complete.

        `Machine.pause` (emu_stop) is not used here: called from a memory-access
        callback (an MMIO register, a watched word) it makes Unicorn unwind to the
        start of the accessing instruction after the access has happened, so the
        access would run twice (a UART byte printed twice, a FIFO popped twice).
        Instead the slice's instruction counter is set to its limit
        (`CPU.end_slice_after_current`): Unicorn's own
        count check then stops the CPU at the next instruction boundary, exactly as
        at the end of a slice.  The base count is lowered by the same amount so
        `icount()` stays exact, also for events published later in this
        instruction.  (Outside emulation, or when the slice ends here anyway,
        nothing needs doing: every run of `Stops` is a bounded slice.)"""
        self.m.cpu.end_slice_after_current()

    # --- running ---------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        r = self.m.result
        return r is not None and r.reason != "paused"

    def _run(self, n: int | None):
        r = self.m.run(max_slice=n)
        if self._uncount:
            # The code hook stopped the CPU before the hooked instruction, which Unicorn
            # had already counted.
            self._uncount = False
            self.m.cpu.base_icount -= 1
        return r

    def step(self):
        """Execute exactly one instruction (address breakpoints do not fire on it)."""
        self._ignore_addr = True
        try:
            return self._run(1)
        finally:
            self._ignore_addr = False

    # --- CPUs ---------------------------------------------------------------------------
    @property
    def ran(self):
        """The CPU that ran last (where the guest stopped)."""
        return self._ran or self.m.vcpu

    def view(self, v) -> None:
        """Show CPU `v` (its registers, memory through its translation regime) while
        stopped; resuming goes on with the CPU that ran, as the scheduler left it."""
        ran = self.ran
        self.m.catch_up(v)                  # (its clock reads the machine's time)
        self.m.run_on(v)
        self._ran = None if v is ran else ran

    def resume(self, steps: int | None = None, poll: Callable[[], bool] | None = None):
        """Run `steps` instructions (None: until a breakpoint, an exit, or poll()
        returns True between slices).  Returns (Result, why) with why one of
        "exited", "break", "step", "interrupt"."""
        self.hits = []
        if self.finished:
            return self.m.result, "exited"
        self.view(self.ran)
        if steps is not None:
            r = None
            for _ in range(steps):
                r = self.step()
                if self.finished:
                    return r, "exited"
                if self.hits:
                    return r, "break"
            return r, "step"
        # Step off an address breakpoint we are sitting on, then run.
        if self.addr_at(self.m.cpu.pc):
            r = self.step()
            if self.finished:
                return r, "exited"
            if self.hits:
                return r, "break"
        while True:
            r = self._run(SLICE)
            if self.finished:
                return r, "exited"
            if self.hits:
                return r, "break"
            if poll is not None and poll():
                return r, "interrupt"

    # --- descriptions ----------------------------------------------------------------
    def insn_text(self, pc: int, insn: int | None = None, sym: str | None = None) -> str:
        m = self.m
        if insn is None:
            insn = m.cpu.read_insn(pc)
        if insn is None:
            return f"{m.where(pc, sym)}: <not readable>"
        return f"{m.where(pc, sym)}: {disasm_sym(m, insn, pc)}"

    def describe_event(self, bp: Breakpoint | None, e) -> list[str]:
        m = self.m
        tag = f"[{bp.num}] " if bp is not None else ""
        if e is None and bp is not None and bp.kind == "addr":
            return [f"{tag}breakpoint {bp.num} at {m.where(bp.addr)}"]
        if isinstance(e, ev.Trap):
            what = e.name
            if e.rw:
                what += f" {'write' if e.rw == 'w' else 'read'}"
            if e.value is not None:
                what += f" {e.value:#x}"
            lines = [f"{tag}trap #{e.seq} class {e.cls}: {what}"]
            if e.pc is not None and e.cls != ev.MMIO:
                lines.append(f"  insn   {self.insn_text(e.pc, e.insn, e.symbol)}")
            elif e.pc is not None:
                lines.append(f"  at     {m.where(e.pc, e.symbol)}")
            hw = "EL0" if e.real_el == 0 else "EL1"
            lines.append(f"  from   {e.level} (hardware {hw}), icount {e.icount}")
            lines.append(f"  class  {e.cls}   register/insn {e.name}"
                         + (f"   {'write' if e.rw == 'w' else 'read'}" if e.rw else "")
                         + (f"   value {e.value:#x}" if e.value is not None else ""))
            lines.append(f"  why    {e.reason or '(no reason recorded)'}")
            if e.forwarded:
                lines.append("  L0 forwarded it to virtual EL2 as a virtual exception")
            return lines
        if isinstance(e, ev.Switch):
            return [f"{tag}switch {e.src} -> {e.dst} ({e.why}) at icount {e.icount}, to {m.where(e.pc)}"]
        if isinstance(e, ev.Hypercall):
            return [f"{tag}hypercall {e.phase} by {e.guest} at icount {e.icount}"]
        return [f"{tag}{e}"]

    def describe_stop(self, r, why: str) -> list[str]:
        m = self.m
        out: list[str] = []
        if why == "exited":
            out.append(f"guest exited: {r.reason} (status {r.status})" + (f": {r.message}" if r.message else ""))
            return out
        for bp, e in self.hits:
            out += self.describe_event(bp, e)
        if why == "interrupt":
            out.append("interrupted")
        out.append(f"=> {self.insn_text(m.cpu.pc)}   [{m.level}, icount {m.icount()}]")
        return out


def disasm_sym(m: Machine, insn: int, pc: int) -> str:
    text = decode.disasm(insn, pc)
    mnem = text.split(" ", 1)[0]
    if _BRANCHY.match(mnem):
        mo = _IMM.search(text)
        if mo:
            sym = m.symbols.lookup(int(mo.group(1), 16))
            if sym:
                text += f" <{sym}>"
    return text
