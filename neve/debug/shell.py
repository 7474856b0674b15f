"""`neve debug`: a trap-aware debugger for the guest hypervisor and its nested VM.

`Debugger` is a `cmd.Cmd` over `Stops` (neve/debug/stops.py: breakpoints, single
steps, resumption, and the description of each stop) and the guest's register view
(neve/debug/regview.py), with injectable stdin/stdout (tests drive it with StringIO,
`-ex CMD` and `--commands FILE` drive it from the command line).  The GDB stub
(neve/debug/gdb.py) runs its inspection commands for `monitor`.

Guest UART output goes to the debugger's output, a line at a time: a partial line is
completed before the debugger prints anything, so guest lines and debugger messages
never share a line.  `--uart FILE` sends it to a file instead.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import argparse
import cmd
import os
import re
import sys

from neve.arch import sysregs
from neve.debug.regview import guest_pstate, hardware_value, is_el2_row, sysreg_value, view_rows
from neve.debug.stops import Stops, parse_trap_spec
from neve.errors import BadInput
from neve.launch import add_run_options, build_machine
from neve.observe.timeline import Timeline

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine

_LR = re.compile(r"^ICH_LR(\d+)_EL2$")


# --- the command interpreter -----------------------------------------------------------------
class CommandError(Exception):
    pass


class Debugger(cmd.Cmd):
    intro = None
    prompt = "(neve) "

    def __init__(self, machine: Machine, stdin=None, stdout=None, *, echo: bool = False, stops: Stops | None = None) -> None:
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

    def do_cpus(self, arg: str) -> None:
        """cpus    the CPUs (--smp): number, MPIDR affinity, power state, level, PC; `>`
marks the one the other commands show, `*` the one that ran last"""
        m, shown = self.m, self.m.vcpu
        for v in m.vcpus:
            state = "off" if v.power != "on" else "asleep in WFI" if v.asleep else "on"
            self.stops.view(v)
            mark = (">" if v is shown else " ") + ("*" if v is self.stops.ran else " ")
            where = f"{m.level:<4} {m.where(v.cpu.pc)}" if v.power == "on" else ""
            self.say(f"{mark} cpu {v.index}  affinity {v.affinity:#x}  {state:<13} {where}".rstrip())
        self.stops.view(shown)

    def do_cpu(self, arg: str) -> None:
        """cpu N   show CPU N in regs, sysregs, x, page and gic (continue and stepi go on
with the CPU that ran last)"""
        try:
            n = int(arg, 0)
        except ValueError:
            raise CommandError("usage: cpu N") from None
        if not 0 <= n < len(self.m.vcpus):
            raise CommandError(f"no cpu {n} (the board has {len(self.m.vcpus)})")
        self.stops.view(self.m.vcpus[n])
        self.say(f"cpu {n}: {self.m.level} at {self.m.where(self.m.cpu.pc)}")

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
                 f"level {m.level}  (hardware EL{cpu.el()}), icount {self.stops.ran.cpu.icount()}, mode {m.mode}"
                 + (f", cpu {m.vcpu.index}" if len(m.vcpus) > 1 else ""))

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
                    val = m.cpu.sp_el(1) if r.name == "SP_EL1" else hardware_value(m, r)
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


# --- `neve debug` -----------------------------------------------------------------------------
class _Script(argparse.Action):
    """--commands FILE and -ex CMD, collected in the order given."""

    def __call__(self, parser, ns, value, option_string=None):
        items = list(getattr(ns, "script", None) or [])
        items.append(("file" if option_string == "--commands" else "cmd", value))
        ns.script = items


def add_parser(sub) -> None:
    p = sub.add_parser("debug", help="interactive trap-aware debugger",
                       description="Debug the guest hypervisor and its nested VM. Guest UART output is "
                                   "printed line by line between debugger messages (or to --uart FILE).")
    add_run_options(p)
    p.add_argument("--commands", metavar="FILE", action=_Script, dest="script",
                   help="run the debugger commands in FILE, then exit (repeatable, in order with -ex)")
    p.add_argument("-ex", metavar="CMD", action=_Script, dest="script",
                   help="run one debugger command, then exit when the script ends (repeatable)")
    p.add_argument("--uart", metavar="FILE", help="write the guest's UART output to FILE instead of stdout")
    p.set_defaults(func=cmd_debug, script=None)


def cmd_debug(args) -> int:
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
        # Lazy on purpose: only an interactive session wants line editing, and
        # importing readline changes how the terminal and input() behave.
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
