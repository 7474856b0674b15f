"""`neve debug`: a trap-aware debugger for the guest hypervisor and its nested VM.

Two layers:

* `Stops` is the stopping machinery shared with the GDB stub (neve/debug/gdbstub.py):
  address breakpoints (a Unicorn code hook on exactly that address that calls
  `Machine.pause`, which stops before the instruction), trap / world-switch /
  hypercall breakpoints (bus subscribers that stop the CPU once the current
  instruction is complete, see `Stops.stop_after_current`), single steps (`run(max_slice=1)`), and `resume`, which runs
  the machine in slices so a caller can poll for an interrupt between them.  It
  remembers every event that stopped the run and describes it: the trapping
  instruction with symbol+offset, the level it came from, the class, the register and
  value, and *why* it trapped (the reason the machine put on the `Trap` event).
* `Debugger` is a `cmd.Cmd` over it with injectable stdin/stdout (tests drive it with
  StringIO, `-ex CMD` and `--commands FILE` drive it from the command line).

Register views (`sysreg_value`) are the guest's own: at virtual EL2 the EL2
registers as L1 set them (from `vel2`), the EL1 registers of the context L1 runs
(from `vel2` storage while vEL2 runs, from the hardware while that context runs),
everything else from the hardware.  The GDB stub uses the same function.

Guest UART output goes to the debugger's output, a line at a time: a partial line is
completed before the debugger prints anything, so guest lines and debugger messages
never share a line.  `--uart FILE` sends it to a file instead.

A note on instruction counts: a Unicorn code hook that stops the CPU stops it *before*
the hooked instruction, but Unicorn has already counted it; `Stops` takes that one
instruction back so `icount` stays exact across breakpoint hits.
"""
from __future__ import annotations

import cmd
import os
import re
import sys
from dataclasses import dataclass
from typing import Callable

from unicorn import UC_HOOK_CODE

from neve.launch import build_machine
from neve.arch import decode, sysregs
from neve.observe import events as ev

SLICE = 100_000          # instructions per run() slice while continuing

_BRANCHY = re.compile(r"^(b|bl|b\.\w+|cbz|cbnz|tbz|tbnz|adr|adrp)$")
_IMM = re.compile(r"#(0x[0-9a-f]+)\s*$")
_LR = re.compile(r"^ICH_LR(\d+)_EL2$")


# --- the guest's view of its registers -------------------------------------------------
def guest_pstate(m) -> int:
    """PSTATE as the guest sees it: at vEL2, M reads EL2h/EL2t (hardware: EL1h/EL1t)."""
    ps = m.cpu.pstate()
    if m.vel2 is not None and m.vel2.active and (ps >> 2) & 3 == 1:
        ps += 4
    return ps


def set_guest_pstate(m, ps: int) -> None:
    if m.vel2 is not None and m.vel2.active and (ps >> 2) & 3 == 2:
        ps -= 4
    m.cpu.set_pstate(ps)


def is_el2_row(row: sysregs.SysReg) -> bool:
    return row.group == "el2"


def view_rows(m) -> list[sysregs.SysReg]:
    """The rows shown by `sysregs` and the GDB system-register feature: every row of
    the table except the _EL12/_EL02 aliases (the same storage under another name),
    and without the EL2 rows when there is no virtual EL2 (vm mode)."""
    return [r for r in sysregs.REGISTERS
            if r.group != "el12" and (m.vel2 is not None or not is_el2_row(r))]


def _nested_rows(m) -> set[str]:
    v = m.vel2
    return set() if v is None else v.context


def sysreg_value(m, row: sysregs.SysReg) -> int | None:
    """The guest's own view of `row`; None when it cannot be read."""
    v, cpu = m.vel2, m.cpu
    name = row.name
    if is_el2_row(row):
        if v is None:
            return None
        try:
            return v.read(row)
        except Exception:
            return v.get(name)
    if v is not None and v.active and name in _nested_rows(m):
        return v.get(name)              # the nested context's EL1 register, saved by L0
    if name == "CurrentEL":
        return (guest_pstate(m) >> 2 & 3) << 2
    if name == "SP_EL1":
        return cpu.sp_el(1)
    if name == "SP_EL0":
        return cpu.sp_el(0)
    t = m.timer_read(row.key)
    if t is not None:
        return t
    try:
        return cpu.cpr_read(*row.key)
    except Exception:
        return None


def set_sysreg_value(m, row: sysregs.SysReg, value: int) -> bool:
    v, cpu = m.vel2, m.cpu
    name = row.name
    if is_el2_row(row):
        if v is None or row.access == "ro":
            return False
        v.write(row, value)          # as an MSR at EL2: the regime, the GIC's view follow
        return True
    if v is not None and v.active and name in _nested_rows(m):
        v.set(name, value)
        return True
    if name == "SP_EL1":
        cpu.set_sp_el(1, value)
        return True
    if name == "SP_EL0":
        cpu.set_sp_el(0, value)
        return True
    try:
        cpu.cpr_write(*row.key, value)
    except Exception:
        return False
    cpu.flush_tlb()
    m.regime_changed()               # SCTLR_EL1, TTBR*, CPACR_EL1: what neve checks follows
    return True


# --- breakpoints -------------------------------------------------------------------------
@dataclass
class Breakpoint:
    num: int
    kind: str                 # addr | trap | switch | hypercall
    spec: str = ""            # trap spec (class, register, REGISTER:r|w) or "" for any
    addr: int | None = None
    handle: int | None = None
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

    def __init__(self, machine) -> None:
        self.m = machine
        self.bps: dict[int, Breakpoint] = {}
        self._next = 1
        self.hits: list[tuple[Breakpoint | None, object]] = []   # (breakpoint, event) since the last resume
        self.extra_hooks: list[Callable] = []
        self._ignore_addr = False
        self._uncount = False
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
        uc = self.m.cpu.uc
        bp.handle = uc.hook_add(UC_HOOK_CODE, self._code_hook, bp, addr, addr)
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
            if bp.handle is not None:
                self.m.cpu.uc.hook_del(bp.handle)
                self.m.cpu.uc.ctl_remove_cache(bp.addr, bp.addr + 4)
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
        if cpu._counter.value > cpu.slice_count:
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
        Instead the slice's instruction counter is set to its limit: Unicorn's own
        count check then stops the CPU at the next instruction boundary, exactly as
        at the end of a slice.  The base count is lowered by the same amount so
        `icount()` stays exact, also for events published later in this
        instruction.  (Outside emulation, or when the slice ends here anyway,
        nothing needs doing: every run of `Stops` is a bounded slice.)"""
        cpu = self.m.cpu
        c, n = cpu._counter.value, cpu.slice_count
        if 0 < c < n:
            cpu.base_icount -= n - c
            cpu._counter.value = n

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

    def resume(self, steps: int | None = None, poll: Callable[[], bool] | None = None):
        """Run `steps` instructions (None: until a breakpoint, an exit, or poll()
        returns True between slices).  Returns (Result, why) with why one of
        "exited", "break", "step", "interrupt"."""
        self.hits = []
        if self.finished:
            return self.m.result, "exited"
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
    def insn_text(self, pc: int, insn: int | None = None) -> str:
        m = self.m
        if insn is None:
            insn = m.cpu.read_insn(pc)
        if insn is None:
            return f"{m.where(pc)}: <not readable>"
        return f"{m.where(pc)}: {disasm_sym(m, insn, pc)}"

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
                lines.append(f"  insn   {self.insn_text(e.pc, e.insn)}")
            elif e.pc is not None:
                lines.append(f"  at     {m.where(e.pc)}")
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


def disasm_sym(m, insn: int, pc: int) -> str:
    text = decode.disasm(insn, pc)
    mnem = text.split(" ", 1)[0]
    if _BRANCHY.match(mnem):
        mo = _IMM.search(text)
        if mo:
            sym = m.symbols.lookup(int(mo.group(1), 16))
            if sym:
                text += f" <{sym}>"
    return text


# --- the command interpreter -----------------------------------------------------------------
class CommandError(Exception):
    pass


class Debugger(cmd.Cmd):
    intro = None
    prompt = "(neve) "

    def __init__(self, machine, stdin=None, stdout=None, *, echo: bool = False, stops: Stops | None = None) -> None:
        super().__init__(stdin=stdin, stdout=stdout)
        if stdin is not None:
            self.use_rawinput = False
        self.m = machine
        self.stops = stops or Stops(machine)
        self.echo = echo
        self.errors = 0
        self._uart_partial = ""
        self.quitting = False

    # --- output ------------------------------------------------------------------------
    def uart(self, b: bytes) -> None:
        """The machine's uart_out: guest output, a line at a time."""
        text = self._uart_partial + b.decode("utf-8", "replace")
        lines = text.split("\n")
        self._uart_partial = lines.pop()
        for line in lines:
            self.stdout.write(line + "\n")
        if lines:
            self.stdout.flush()

    def say(self, *lines: str) -> None:
        if self._uart_partial:
            self.stdout.write(self._uart_partial + "\n")
            self._uart_partial = ""
        for line in lines:
            self.stdout.write(line + "\n")
        self.stdout.flush()

    # --- plumbing -----------------------------------------------------------------------
    def precmd(self, line: str) -> str:
        if self.echo and line.strip():
            self.say(f"{self.prompt}{line.strip()}")
        return line

    def onecmd(self, line: str) -> bool:
        try:
            return bool(super().onecmd(line))
        except CommandError as e:
            self.errors += 1
            self.say(f"error: {e}")
        except (ValueError, KeyError) as e:
            self.errors += 1
            self.say(f"error: {e}")
        return False

    def emptyline(self) -> bool:
        return False

    def default(self, line: str) -> bool:
        raise CommandError(f"unknown command {line.split()[0]!r} (try 'help')")

    def do_EOF(self, arg: str) -> bool:
        """End of input: quit."""
        self.say("")
        return True

    def run_script(self, lines) -> None:
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            line = self.precmd(line)
            if self.onecmd(line):
                self.quitting = True
                return

    # --- parsing helpers -------------------------------------------------------------------
    def addr(self, text: str) -> int:
        t = text.strip().lstrip("*")
        if not t:
            raise CommandError("address expected")
        if t in ("$pc", "pc"):
            return self.m.cpu.pc
        if t in ("$sp", "sp"):
            return self.m.cpu.sp
        mo = re.fullmatch(r"\$?x(\d+)", t)
        if mo and int(mo.group(1)) <= 30:
            return self.m.cpu.x(int(mo.group(1)))
        mo = re.fullmatch(r"([A-Za-z_.$][\w.$]*)\s*(?:\+\s*(\w+))?", t)
        if mo and mo.group(1) in self.m.symbols.by_name:
            return self.m.symbols.by_name[mo.group(1)] + (int(mo.group(2), 0) if mo.group(2) else 0)
        try:
            return int(t, 0)
        except ValueError:
            raise CommandError(f"no symbol {t!r} and not an address") from None

    # --- commands: breakpoints -----------------------------------------------------------------
    def do_break(self, arg: str) -> None:
        """break ADDR|SYMBOL[+OFF]      stop before the instruction at that address
break trap [CLASS|REGISTER[:r|:w]]   stop after a trap (any trap, a class such as eret,
                                  hvc, sysreg, tlbi, or a register/instruction name such
                                  as HCR_EL2, HCR_EL2:w, ERET)
break hypercall                  stop when a guest hypercall begins
break switch                     stop on every change of level (EL1 -> vEL2, vEL2 -> EL1, ...)
break                            list breakpoints"""
        words = arg.split(None, 1)
        if not words:
            if not self.stops.bps:
                self.say("no breakpoints")
            for bp in self.stops.bps.values():
                self.say(f"{bp.num:3}  {bp.describe(self.m)}  (hit {bp.hits} time{'s' if bp.hits != 1 else ''})")
            return
        kind = words[0].lower()
        rest = words[1] if len(words) > 1 else ""
        if kind == "trap":
            spec, warn = parse_trap_spec(rest)
            if warn:
                self.say(f"warning: {warn}")
            bp = self.stops.add_trap(spec)
        elif kind in ("hypercall", "switch") and not rest:
            bp = self.stops.add_event(kind)
        else:
            bp = self.stops.add_addr(self.addr(arg))
        self.say(f"{bp.num}: {bp.describe(self.m)}")

    do_b = do_break

    def do_delete(self, arg: str) -> None:
        """delete [N]    delete breakpoint N, or all of them"""
        if arg.strip():
            try:
                self.stops.delete(int(arg, 0))
            except KeyError:
                raise CommandError(f"no breakpoint {arg.strip()}") from None
            self.say(f"deleted breakpoint {int(arg, 0)}")
        else:
            n = self.stops.delete()
            self.say(f"deleted {n} breakpoint{'s' if n != 1 else ''}")

    # --- commands: running ---------------------------------------------------------------------
    def _report(self, r, why: str) -> None:
        self.say(*self.stops.describe_stop(r, why))

    def do_continue(self, arg: str) -> None:
        """continue     run until a breakpoint or the guest exits (Ctrl-C interrupts)"""
        if self.stops.finished:
            raise CommandError(f"the guest has exited ({self.m.result.reason})")
        interrupted = []

        def poll() -> bool:
            return bool(interrupted)

        try:
            r, why = self.stops.resume(poll=poll)
        except KeyboardInterrupt:
            r, why = self.m.result, "interrupt"
        self._report(r, why)

    do_c = do_continue
    do_cont = do_continue

    def do_stepi(self, arg: str) -> None:
        """stepi [N]    execute N instructions (default 1)"""
        n = int(arg, 0) if arg.strip() else 1
        if n <= 0:
            raise CommandError("stepi N: N must be positive")
        if self.stops.finished:
            raise CommandError(f"the guest has exited ({self.m.result.reason})")
        r, why = self.stops.resume(steps=n)
        self._report(r, why)

    do_si = do_stepi

    # --- commands: inspection --------------------------------------------------------------------
    def do_x(self, arg: str) -> None:
        """x/Ni ADDR   disassemble N instructions (default: at PC)
x/Nx ADDR   N 32-bit words in hex;  x/Ng: 64-bit words;  x/Nb: bytes
Memory is read through the current translation regime."""
        mo = re.fullmatch(r"\s*/(\d*)([ixgb])\s*(.*)", arg)
        if not mo:
            raise CommandError("usage: x/Ni ADDR | x/Nx ADDR | x/Ng ADDR | x/Nb ADDR")
        n = int(mo.group(1) or 1)
        fmt = mo.group(2)
        a = self.addr(mo.group(3)) if mo.group(3).strip() else self.m.cpu.pc
        cpu = self.m.cpu
        if fmt == "i":
            for i in range(n):
                pc = a + 4 * i
                mark = "=> " if pc == cpu.pc else "   "
                self.say(mark + self.stops.insn_text(pc))
            return
        size = {"x": 4, "g": 8, "b": 1}[fmt]
        per_line = {4: 4, 8: 2, 1: 8}[size]
        for i in range(0, n, per_line):
            base = a + i * size
            cells = []
            for j in range(min(per_line, n - i)):
                b = cpu.read_virt(base + j * size, size)
                cells.append("?" * (2 * size) if b is None else f"{int.from_bytes(b, 'little'):0{2 * size}x}")
            self.say(f"{self.m.where(base)}:  " + " ".join(f"0x{c}" for c in cells))

    def do_regs(self, arg: str) -> None:
        """regs    general registers, SP, PC and PSTATE (as the guest sees it)"""
        m, cpu = self.m, self.m.cpu
        for row in range(0, 31, 4):
            self.say("  ".join(f"x{i:<2} {cpu.x(i):016x}" for i in range(row, min(row + 4, 31))))
        ps = guest_pstate(m)
        el, spx = (ps >> 2) & 3, ps & 1
        flags = "".join(c if ps >> (31 - i) & 1 else c.lower() for i, c in enumerate("NZCV"))
        daif = "".join(c for i, c in zip((9, 8, 7, 6), "DAIF") if ps >> i & 1) or "-"
        self.say(f"sp  {cpu.sp:016x}",
                 f"pc  {cpu.pc:016x} <{m.symbols.lookup(cpu.pc) or '?'}>",
                 f"pstate {ps:#010x}  EL{el}{'h' if spx else 't'}  {flags}  masked {daif}",
                 f"level {m.level}  (hardware EL{cpu.el()}), icount {m.icount()}, mode {m.mode}")

    def do_sysregs(self, arg: str) -> None:
        """sysregs [vel2|shadow|nested|all]
  vel2    L1's virtual EL2 registers (HCR_EL2, VBAR_EL2, ESR_EL2, ... and the ICH registers)
  shadow  the hardware EL1 registers (while vEL2 runs: what L0 loaded to run it)
  nested  the EL1 registers of the context L1 runs at EL1 (its nested VM or host kernel):
          from L0's save area while vEL2 runs, from the hardware while it runs
  all     every register of the table, as the guest sees it
Without an argument: vel2 in the nested modes, the EL1 registers in vm mode.
Only nonzero values are shown, except by `all`."""
        m, v = self.m, self.m.vel2
        what = arg.strip().lower() or ("vel2" if v is not None else "nested")
        if what not in ("vel2", "shadow", "nested", "all"):
            raise CommandError("sysregs [vel2|shadow|nested|all]")
        rows: list[tuple[str, int | None, str]] = []
        if what == "vel2":
            if v is None:
                raise CommandError("no virtual EL2 in vm mode")
            self.say(f"virtual EL2 registers as L1 set them ({'vEL2 running' if v.active else 'EL1 context running'}):")
            for r in sysregs.REGISTERS:
                if is_el2_row(r):
                    val = sysreg_value(m, r)
                    if val:
                        where = f"page +{v.offsets[r.name]:#05x}" if r.name in v.offsets else ""
                        rows.append((r.name, val, where))
        elif what == "shadow":
            self.say("hardware EL1 registers" + (" (shadow state L0 loaded to run vEL2):" if v is not None and v.active
                                                 else ":"))
            twin = {r.shadow: r.name for r in sysregs.REGISTERS if r.shadow}
            for r in sysregs.REGISTERS:
                if r.group == "el1":
                    val = m.cpu.sp_el(1) if r.name == "SP_EL1" else _hw(m, r)
                    if val:
                        rows.append((r.name, val, f"carries {twin[r.name]}" if r.name in twin and v is not None
                                     and v.active else ""))
        elif what == "nested":
            if v is None:
                self.say("EL1 registers of the VM (hardware):")
            else:
                src = "L0's save area" if v.active else "hardware"
                self.say(f"EL1 registers of L1's {v.guest_id()} context (from {src}):")
            for r in sysregs.REGISTERS:
                if r.group in ("el1", "el0"):
                    val = sysreg_value(m, r)
                    if val:
                        rows.append((r.name, val, ""))
        else:
            for r in view_rows(m):
                rows.append((r.name, sysreg_value(m, r), r.group))
        if not rows:
            self.say("  (all zero)")
        for name, val, note in rows:
            sval = "<unavailable>" if val is None else f"{val:#018x}"
            self.say(f"  {name:<18} {sval}" + (f"   {note}" if note else ""))

    def do_page(self, arg: str) -> None:
        """page    the NEVE log page / VNCR page: nonzero entries with their registers"""
        v = self.m.vel2
        if v is None or v.page is None:
            raise CommandError(f"no NEVE/VNCR page in {self.m.mode} mode (only neve and nv2 have one)")
        kind = "VNCR page (FEAT_NV2)" if self.m.mode == "nv2" else "NEVE log page"
        by_off = {}
        for name, off in v.offsets.items():
            by_off.setdefault(off, []).append(name)
        shown = 0
        self.say(f"{kind}: {len(v.offsets)} register slots")
        for off in range(0, len(v.page), 8):
            val = int.from_bytes(v.page[off:off + 8], "little")
            if val:
                names = "/".join(by_off.get(off, ["?"]))
                self.say(f"  +{off:#05x}  {names:<18} {val:#018x}")
                shown += 1
        if not shown:
            self.say("  (all zero)")

    def do_gic(self, arg: str) -> None:
        """gic     L1's GIC virtual interface: ICH_HCR/VMCR and the list registers"""
        v, m = self.m.vel2, self.m
        if v is None:
            raise CommandError("no virtual EL2 in vm mode: no ICH registers")
        for name in ("ICH_HCR_EL2", "ICH_VMCR_EL2", "ICH_VTR_EL2", "ICH_ELRSR_EL2", "ICH_MISR_EL2"):
            r = sysregs.BY_NAME.get(name)
            if r is not None:
                val = sysreg_value(m, r)
                self.say(f"  {name:<14} {'<unavailable>' if val is None else f'{val:#018x}'}")
        vtr = sysregs.BY_NAME.get("ICH_VTR_EL2")
        nlr = ((sysreg_value(m, vtr) or 0) & 0x1F) + 1 if vtr is not None else 16   # ICH_VTR_EL2.ListRegs
        lrs = sorted((int(mo.group(1)), r) for r in sysregs.REGISTERS for mo in [_LR.match(r.name)]
                     if mo and int(mo.group(1)) < nlr)
        for n, r in lrs:
            val = sysreg_value(m, r) or 0
            state = ("invalid", "pending", "active", "pending+active")[(val >> 62) & 3]
            hw = (val >> 61) & 1
            self.say(f"  ICH_LR{n}_EL2{'' if n >= 10 else ' '} {val:#018x}  {state:<14} "
                     f"vINTID {val & 0xFFFFFFFF:<5} prio {(val >> 48) & 0xFF:#04x} group {(val >> 60) & 1}"
                     + (f" HW pINTID {(val >> 32) & 0x1FFF}" if hw else ""))

    def do_traps(self, arg: str) -> None:
        """traps   trap counts so far (from the run statistics)"""
        s = self.m.stats
        self.say(f"{s.total} traps, {s.page_accesses} page accesses, {len(s.per_call)} completed hypercalls"
                 + (f" ({s.hypercall_summary()['traps_per_call']['median']} traps each, median)" if s.per_call else ""))
        for c, n in sorted(s.by_class.items(), key=lambda kv: -kv[1]):
            self.say(f"  {c:<12} {n}")
        top = sorted(s.by_register.items(), key=lambda kv: (-kv[1], kv[0]))[:int(arg) if arg.strip() else 12]
        if top:
            self.say("  by register/instruction: " + ", ".join(f"{k} {n}" for k, n in top))

    def do_quit(self, arg: str) -> bool:
        """quit    leave the debugger"""
        return True

    do_q = do_quit


def _hw(m, r) -> int | None:
    try:
        return m.cpu.cpr_read(*r.key)
    except Exception:
        return None


# --- `neve debug` -----------------------------------------------------------------------------
def add_parser(sub, add_run_options) -> None:
    import argparse

    class Script(argparse.Action):
        def __call__(self, parser, ns, value, option_string=None):
            items = list(getattr(ns, "script", None) or [])
            items.append(("file" if option_string == "--commands" else "cmd", value))
            ns.script = items

    p = sub.add_parser("debug", help="interactive trap-aware debugger",
                       description="Debug the guest hypervisor and its nested VM. Guest UART output is "
                                   "printed line by line between debugger messages (or to --uart FILE).")
    add_run_options(p)
    p.add_argument("--commands", metavar="FILE", action=Script, dest="script",
                   help="run the debugger commands in FILE, then exit (repeatable, in order with -ex)")
    p.add_argument("-ex", metavar="CMD", action=Script, dest="script",
                   help="run one debugger command, then exit when the script ends (repeatable)")
    p.add_argument("--uart", metavar="FILE", help="write the guest's UART output to FILE instead of stdout")
    p.set_defaults(func=cmd_debug, script=None)


def cmd_debug(args) -> int:
    from neve.errors import BadInput

    uart_file = None
    if args.uart:
        try:
            uart_file = open(args.uart, "wb")
        except OSError as e:
            raise BadInput(f"--uart {args.uart}: {e.strerror}") from None
    holder: list[Debugger] = []

    def uart(b: bytes) -> None:
        if uart_file is not None:
            uart_file.write(b)
        else:
            holder[0].uart(b)

    m = build_machine(args, uart)
    scripted = bool(args.script)
    dbg = Debugger(m, stdout=sys.stdout, echo=scripted)
    holder.append(dbg)
    timeline = None
    if getattr(args, "timeline", None):
        from neve.observe.timeline import Timeline
        timeline = Timeline(m)
    try:
        if scripted:
            for kind, val in args.script:
                if kind == "file":
                    try:
                        with open(val) as f:
                            lines = f.read().splitlines()
                    except OSError as e:
                        raise BadInput(f"--commands {val}: {e.strerror}") from None
                else:
                    lines = [val]
                dbg.run_script(lines)
                if dbg.quitting:
                    break
        else:
            _interactive(dbg)
    finally:
        dbg.say()  # complete a partial UART line
        if uart_file is not None:
            uart_file.close()
        if timeline is not None:
            timeline.write(args.timeline)
    return 1 if dbg.errors and scripted else 0


def _interactive(dbg: Debugger) -> None:
    hist = os.path.join(os.path.expanduser("~"), ".neve_debug_history")
    rl = None
    try:
        import readline as rl
        try:
            rl.read_history_file(hist)
        except OSError:
            pass
    except ImportError:
        pass
    m = dbg.m
    dbg.say(f"neve debug: {m.mode} mode, {', '.join(im.name for im in m.images)}; 'help' lists commands",
            f"=> {dbg.stops.insn_text(m.cpu.pc)}")
    try:
        while True:
            try:
                dbg.cmdloop()
                break
            except KeyboardInterrupt:
                dbg.say("^C")
    finally:
        if rl is not None:
            try:
                rl.set_history_length(1000)
                rl.write_history_file(hist)
            except OSError:
                pass
