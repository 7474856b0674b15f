"""`neve gdb`: a GDB remote-serial-protocol server for the guest (loopback only).

    neve gdb --mode v8.3 --port 1234 images/tinyhyp.elf
    gdb-multiarch -ex 'target remote :1234' images/tinyhyp.elf

Two parts, as in the protocol itself:

* framing: neve/debug/rsp.py's `Framer` (bytes in, bytes out: `$payload#cs`,
  checksums and acks, `}` escapes, run-length decoding of received packets, no-ack
  mode, and the 0x03 interrupt byte), over a socket here (`Link`).
* `GdbServer`: one method per packet, found through a dict.  Stops (breakpoints,
  single steps, resumption in slices) are neve/debug/stops.py's `Stops`, shared with
  `neve debug`; watchpoints are Unicorn memory hooks on the watched range.

The target description has org.gnu.gdb.aarch64.core (x0-x30, sp, pc, cpsr) and a
system-register feature, org.neve.aarch64.sysregs, generated from the register table
(neve/arch/sysregs.py): the guest's own view (see `regview.sysreg_value`): at vEL2 the
EL2 registers as L1 set them (HCR_EL2, VBAR_EL2, ESR_EL2, ..., the ICH registers),
the EL1 registers of the context L1 runs (from L0's save area while vEL2 runs, from
the hardware while it runs); in vm mode the EL1 registers from the hardware.  cpsr is
also the guest's view: EL2h while the guest hypervisor runs at vEL2.  `g` carries the
core registers; gdb reads system registers with `p`.

Memory goes through the current translation regime (the guest's VA); only RAM is
accessible (a device register is never read on gdb's behalf).  Continue runs the
machine in slices of 100000 instructions and polls the socket for Ctrl-C between them.
Watchpoints stop after the accessing instruction (gdb then reports the old and new value).  `monitor` (qRcmd) runs the
debugger's inspection and trap-breakpoint commands: `monitor traps`,
`monitor break trap HCR_EL2`, `monitor sysregs vel2`, `monitor page`, `monitor gic`;
when a trap breakpoint stops the guest the stub prints why, before the stop reply.

The guest's UART output goes to stdout, as with `neve run`; messages go to stderr.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import ctypes
import io
import select
import socket
import sys
from html import escape as xml_escape

from unicorn import UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE
from unicorn.unicorn_py3.unicorn import uclib as _uclib

from neve.arch.platform import RAM_BASE
from neve.debug.regview import guest_pstate, set_guest_pstate, set_sysreg_value, sysreg_value, view_rows
from neve.debug.rsp import INTERRUPT, Framer
from neve.debug.shell import Debugger
from neve.debug.stops import Stops
from neve.errors import BadInput
from neve.launch import add_run_options, build_machine, stdout_uart
from neve.observe.timeline import Timeline

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine

_uclib.uc_vmem_translate.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                                     ctypes.POINTER(ctypes.c_uint64)]
_uclib.uc_vmem_translate.restype = ctypes.c_int

SIGINT, SIGTRAP = 2, 5
CORE = [f"x{i}" for i in range(31)] + ["sp", "pc", "cpsr"]
REG_SP, REG_PC, REG_CPSR = 31, 32, 33
MONITOR_COMMANDS = ("traps", "break", "b", "delete", "sysregs", "page", "gic", "regs", "x", "help")


class Disconnected(Exception):
    pass


class Link:
    """A `Framer` over a connected socket: blocking reads for packets and acks, and a
    non-blocking look for Ctrl-C while the guest runs."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.framer = Framer()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise Disconnected()
        self.framer.feed(data)

    def _send_acks(self) -> None:
        f = self.framer
        if f.out:
            self.sock.sendall(bytes(f.out))
            f.out.clear()

    def send(self, payload: bytes | str) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        pkt = Framer.frame(payload)
        f = self.framer
        while True:
            self.sock.sendall(pkt)
            if not f.ack:
                return
            acked = f.take_ack()
            while acked is None:
                self._fill()
                acked = f.take_ack()
            if acked:
                return

    def recv(self) -> bytes:
        """The next packet's payload, or INTERRUPT for a 0x03 byte."""
        while True:
            pkt = self.framer.next_packet()
            self._send_acks()
            if pkt is not None:
                return pkt
            self._fill()

    def interrupt_pending(self) -> bool:
        """Non-blocking: has gdb sent a 0x03 (Ctrl-C)?"""
        if not self.framer.interrupts:
            while True:
                r, _, _ = select.select([self.sock], [], [], 0)
                if not r:
                    break
                data = self.sock.recv(65536)
                if not data:
                    raise Disconnected()
                self.framer.feed(data)
        return self.framer.take_interrupt()


def _hex_le(value: int, size: int) -> str:
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little").hex()


class GdbServer:
    def __init__(self, machine: Machine, sock: socket.socket, *, log=None) -> None:
        self.m = machine
        self.io = Link(sock)
        self.log = log
        self.stops = Stops(machine)
        self.monitor_out = io.StringIO()
        self.monitor = Debugger(machine, stdin=io.StringIO(), stdout=self.monitor_out, stops=self.stops)
        self.sysrows = view_rows(machine)
        self.xml = self.target_xml()
        self.watch: dict[tuple[int, int, int], list] = {}   # (type, addr, len) -> (Unicorn, hook) per CPU
        self.watch_hit: tuple[str, int] | None = None
        self.done = False
        self.detached = False
        self.handlers = {
            "?": self.h_stop_reason, "g": self.h_read_regs, "G": self.h_write_regs,
            "p": self.h_read_reg, "P": self.h_write_reg, "m": self.h_read_mem, "M": self.h_write_mem,
            "Z": self.h_insert, "z": self.h_remove, "s": self.h_step, "c": self.h_continue,
            "D": self.h_detach, "k": self.h_kill, "H": self.h_set_thread, "T": self.h_thread_alive,
        }
        self.named = {
            "qSupported": self.q_supported, "qXfer": self.q_xfer, "qC": self.q_current_thread,
            "qfThreadInfo": self.q_first_thread, "qsThreadInfo": self.q_next_thread, "qAttached": self.q_attached,
            "qThreadExtraInfo": self.q_thread_extra,
            "qRcmd": self.q_rcmd, "qSymbol": self.h_ok, "QStartNoAckMode": self.q_start_noack,
            "vCont?": self.v_cont_query, "vCont": self.v_cont, "vKill": self.h_kill,
        }
        self._after_send = None

    # --- threads: one per CPU (thread id = CPU number + 1) ------------------------------------
    def _vcpu(self, tid: int):
        return self.m.vcpus[tid - 1] if 1 <= tid <= len(self.m.vcpus) else None

    def h_set_thread(self, text: str) -> str:
        """Hg<id>: the CPU whose registers and memory view g/p/m use (0 or -1: the one
        that ran last); Hc: all CPUs run on continue, whatever it names."""
        op, arg = text[1:2], text[2:]
        tid = -1 if arg in ("-1", "") else int(arg, 16)
        if op == "g":
            v = self.stops.ran if tid in (0, -1) else self._vcpu(tid)
            if v is None:
                return "E22"
            self.stops.view(v)
        return "OK"

    def h_thread_alive(self, text: str) -> str:
        return "OK" if self._vcpu(int(text[1:], 16)) is not None else "E22"

    def q_thread_extra(self, text: str) -> str:
        v = self._vcpu(int(text.split(",", 1)[1], 16))
        if v is None:
            return "E22"
        state = "off" if v.power != "on" else "asleep in WFI" if v.asleep else "on"
        return f"CPU {v.index} (MPIDR affinity {v.affinity:#x}), {state}".encode().hex()

    # --- target description -------------------------------------------------------------
    def target_xml(self) -> str:
        lines = ['<?xml version="1.0"?>', '<!DOCTYPE target SYSTEM "gdb-target.dtd">', '<target version="1.0">',
                 "  <architecture>aarch64</architecture>", '  <feature name="org.gnu.gdb.aarch64.core">']
        for i, name in enumerate(CORE):
            typ = {"sp": "data_ptr", "pc": "code_ptr"}.get(name, "int")
            lines.append(f'    <reg name="{name}" bitsize="{32 if name == "cpsr" else 64}" type="{typ}" regnum="{i}"/>')
        lines.append("  </feature>")
        lines.append('  <feature name="org.neve.aarch64.sysregs">')
        for j, r in enumerate(self.sysrows):
            lines.append(f'    <reg name="{xml_escape(r.name)}" bitsize="64" type="uint64" group="system" '
                         f'regnum="{len(CORE) + j}"/>')
        lines += ["  </feature>", "</target>"]
        return "\n".join(lines) + "\n"

    # --- dispatch ----------------------------------------------------------------------------
    def dispatch(self, pkt: bytes) -> bytes | str | None:
        text = pkt.decode("latin-1")
        if not text:
            return ""
        if text[0] in "qQv":
            name = text
            for sep in ":,;":
                name = name.split(sep, 1)[0]
            h = self.named.get(name)
            return h(text) if h is not None else ""
        h = self.handlers.get(text[0])
        return h(text) if h is not None else ""

    def serve(self) -> None:
        """Answer packets until gdb detaches, kills or disconnects."""
        try:
            while not self.done:
                pkt = self.io.recv()
                if pkt == INTERRUPT:
                    self.io.send(self.stop_reply(SIGINT))
                    continue
                if self.log:
                    self.log(f"<- {pkt[:200]!r}")
                reply = self.dispatch(pkt)
                if reply is not None:
                    if self.log:
                        self.log(f"-> {str(reply)[:200]!r}")
                    self.io.send(reply)
                if self._after_send:
                    self._after_send()
                    self._after_send = None
        except (Disconnected, ConnectionError):
            self.done = True

    # --- registers ------------------------------------------------------------------------------
    def reg_bytes(self, n: int) -> str:
        m, cpu = self.m, self.m.cpu
        if n < 31:
            return _hex_le(cpu.x(n), 8)
        if n == REG_SP:
            return _hex_le(cpu.sp, 8)
        if n == REG_PC:
            return _hex_le(cpu.pc, 8)
        if n == REG_CPSR:
            return _hex_le(guest_pstate(m), 4)
        j = n - len(CORE)
        if 0 <= j < len(self.sysrows):
            v = sysreg_value(m, self.sysrows[j])
            return "xx" * 8 if v is None else _hex_le(v, 8)
        return ""

    def set_reg(self, n: int, raw: bytes) -> bool:
        m, cpu = self.m, self.m.cpu
        v = int.from_bytes(raw, "little")
        if n < 31:
            cpu.set_x(n, v)
        elif n == REG_SP:
            cpu.sp = v
        elif n == REG_PC:
            cpu.pc = v
        elif n == REG_CPSR:
            set_guest_pstate(m, v)
        elif 0 <= n - len(CORE) < len(self.sysrows):
            return set_sysreg_value(m, self.sysrows[n - len(CORE)], v)
        else:
            return False
        return True

    def h_read_regs(self, text: str) -> str:
        return "".join(self.reg_bytes(n) for n in range(len(CORE)))

    def h_write_regs(self, text: str) -> str:
        data = bytes.fromhex(text[1:])
        off = 0
        for n in range(len(CORE)):
            size = 4 if n == REG_CPSR else 8
            if off + size > len(data):
                break
            self.set_reg(n, data[off:off + size])
            off += size
        return "OK"

    def h_read_reg(self, text: str) -> str:
        r = self.reg_bytes(int(text[1:], 16))
        return r or "E45"

    def h_write_reg(self, text: str) -> str:
        n, val = text[1:].split("=", 1)
        return "OK" if self.set_reg(int(n, 16), bytes.fromhex(val)) else "E45"

    # --- memory ----------------------------------------------------------------------------------
    def translate(self, va: int, write: bool = False) -> int | None:
        pa = ctypes.c_uint64(0)
        err = _uclib.uc_vmem_translate(self.m.cpu.engine_handle, ctypes.c_uint64(va), ctypes.c_int(2 if write else 1),
                                       ctypes.byref(pa))
        if err:
            return None
        p = pa.value
        return p if RAM_BASE <= p < RAM_BASE + self.m.ram_size else None

    def _ram_chunks(self, va: int, length: int, write: bool = False):
        """(va, pa, n) pieces up to the first untranslatable page."""
        while length > 0:
            n = min(length, 0x1000 - (va & 0xFFF))
            pa = self.translate(va, write)
            if pa is None or pa + n > RAM_BASE + self.m.ram_size:
                return
            yield va, pa, n
            va += n
            length -= n

    def h_read_mem(self, text: str) -> str:
        a, n = (int(x, 16) for x in text[1:].split(","))
        out = bytearray()
        for _va, pa, k in self._ram_chunks(a, n):
            off = pa - RAM_BASE
            out += self.m.ram[off:off + k]
        return out.hex() if out else "E14"

    def h_write_mem(self, text: str) -> str:
        head, data = text[1:].split(":", 1)
        a, n = (int(x, 16) for x in head.split(","))
        raw = bytes.fromhex(data)[:n]
        pieces = list(self._ram_chunks(a, len(raw), write=True))
        if sum(k for _, _, k in pieces) < len(raw):
            return "E14"
        uc, done = self.m.cpu.uc, 0
        for va, pa, k in pieces:
            uc.mem_write(pa, raw[done:done + k])
            uc.ctl_remove_cache(va, va + k)
            self.m.erets.scan(pa & ~3, k + 4)
            done += k
        return "OK"

    # --- breakpoints and watchpoints ----------------------------------------------------------
    def h_insert(self, text: str) -> str:
        typ, addr, kind = text[1:].split(",")[:3]
        typ, addr, length = int(typ), int(addr, 16), int(kind.split(";")[0], 16)
        if typ in (0, 1):
            self.stops.add_addr(addr)
            return "OK"
        if typ in (2, 3, 4):
            key = (typ, addr, length)
            if key not in self.watch:
                mask = {2: UC_HOOK_MEM_WRITE, 3: UC_HOOK_MEM_READ, 4: UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE}[typ]
                self.watch[key] = [(v.cpu.uc, v.cpu.uc.hook_add(mask, self._watch_hook, typ, addr,
                                                                addr + max(length, 1) - 1)) for v in self.m.vcpus]
            return "OK"
        return ""

    def h_remove(self, text: str) -> str:
        typ, addr, kind = text[1:].split(",")[:3]
        typ, addr, length = int(typ), int(addr, 16), int(kind.split(";")[0], 16)
        if typ in (0, 1):
            self.stops.remove_addr(addr)
            return "OK"
        if typ in (2, 3, 4):
            for uc, h in self.watch.pop((typ, addr, length), None) or ():
                uc.hook_del(h)
            return "OK"
        return ""

    def _watch_hook(self, uc, access, address, size, value, typ) -> None:
        if self.watch_hit is None:
            kind = {2: "watch", 3: "rwatch", 4: "awatch"}[typ]
            self.watch_hit = (kind, address)
            self.stops.note(("watchpoint", kind, address))

    # --- running ---------------------------------------------------------------------------------
    def stop_reply(self, sig: int = SIGTRAP) -> str:
        cpu = self.stops.ran.cpu
        extra = ""
        if self.watch_hit is not None:
            extra = f"{self.watch_hit[0]}:{self.watch_hit[1]:x};"
        return (f"T{sig:02x}{REG_SP:02x}:{_hex_le(cpu.sp, 8)};{REG_PC:02x}:{_hex_le(cpu.pc, 8)};"
                f"{extra}thread:{self.stops.ran.index + 1:x};")

    def _resume(self, step: bool) -> str:
        self.watch_hit = None
        if self.stops.finished:
            return self.exit_reply()
        r, why = self.stops.resume(steps=1 if step else None, poll=None if step else self.io.interrupt_pending)
        if why == "exited":
            return self.exit_reply()
        explained = [dbg_line for bp, e in self.stops.hits if e is not None and not isinstance(e, tuple)
                     for dbg_line in self.stops.describe_event(bp, e)]
        if explained:
            self.console("neve: " + "\n".join(explained) + "\n")
        return self.stop_reply(SIGINT if why == "interrupt" else SIGTRAP)

    def exit_reply(self) -> str:
        r = self.m.result
        if self.log:
            self.log(f"guest exited: {r.reason} (status {r.status}) {r.message}")
        return f"W{r.status & 0xFF:02x}"

    def console(self, text: str) -> None:
        """Output for gdb's console ('O' packets, valid while the target runs)."""
        data = text.encode()
        for i in range(0, len(data), 512):
            self.io.send("O" + data[i:i + 512].hex())

    def h_step(self, text: str) -> str:
        if len(text) > 1:
            self.stops.ran.cpu.pc = int(text[1:], 16)
        return self._resume(True)

    def h_continue(self, text: str) -> str:
        if len(text) > 1:
            self.stops.ran.cpu.pc = int(text[1:], 16)
        return self._resume(False)

    def v_cont_query(self, text: str) -> str:
        return "vCont;c;C;s;S"

    def v_cont(self, text: str) -> str:
        actions = [a.split(":")[0] for a in text.split(";")[1:]]
        if not actions:
            return "E01"
        return self._resume(actions[0][0] in "sS")

    def h_stop_reason(self, text: str) -> str:
        if self.stops.finished:
            return self.exit_reply()
        return self.stop_reply(SIGTRAP)

    def h_detach(self, text: str) -> str:
        self.detached = True
        self.done = True
        return "OK"

    def h_kill(self, text: str) -> str | None:
        self.done = True
        return None if text == "k" else "OK"

    # --- queries ------------------------------------------------------------------------------------
    def h_ok(self, text: str) -> str:
        return "OK"

    def q_supported(self, text: str) -> str:
        return "PacketSize=4000;qXfer:features:read+;QStartNoAckMode+;vContSupported+"

    def q_start_noack(self, text: str) -> str:
        def off():
            self.io.framer.ack = False
        self._after_send = off
        return "OK"

    def q_xfer(self, text: str) -> str:
        parts = text.split(":")
        if len(parts) < 5 or parts[1] != "features" or parts[2] != "read":
            return ""
        if parts[3] != "target.xml":
            return "E00"
        off, length = (int(x, 16) for x in parts[4].split(","))
        data = self.xml.encode()
        chunk = data[off:off + length]
        return ("l" if off + length >= len(data) else "m") + chunk.decode()

    def q_current_thread(self, text: str) -> str:
        return f"QC{self.stops.ran.index + 1:x}"

    def q_first_thread(self, text: str) -> str:
        return "m" + ",".join(f"{v.index + 1:x}" for v in self.m.vcpus)

    def q_next_thread(self, text: str) -> str:
        return "l"

    def q_attached(self, text: str) -> str:
        return "1"

    def q_rcmd(self, text: str) -> str:
        line = bytes.fromhex(text.split(",", 1)[1]).decode("utf-8", "replace").strip()
        word = line.split()[0] if line else ""
        self.monitor_out.seek(0)
        self.monitor_out.truncate()
        if word in MONITOR_COMMANDS:
            self.monitor.onecmd(line)
        else:
            self.monitor_out.write("neve monitor commands: traps, break trap [CLASS|REGISTER], break hypercall, "
                                   "break switch, break (list), delete [N], sysregs [vel2|shadow|nested|all], "
                                   "page, gic, regs, x/Ni ADDR\n")
        out = self.monitor_out.getvalue()
        if out:
            data = out.encode()
            for i in range(0, len(data), 512):
                self.io.send("O" + data[i:i + 512].hex())
        return "OK"


# --- `neve gdb` -------------------------------------------------------------------------------------
def listen(port: int, host: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(1)
    return s


def add_parser(sub) -> None:
    p = sub.add_parser("gdb", help="GDB remote stub (gdb-multiarch: target remote :PORT)",
                       description="Serve the guest to gdb over the GDB remote serial protocol on 127.0.0.1. "
                                   "The guest's UART output goes to stdout.")
    add_run_options(p)
    p.add_argument("--port", type=int, default=1234, metavar="N",
                   help="TCP port on 127.0.0.1 (default 1234; 0 picks a free one, printed on stderr)")
    p.add_argument("--debug-packets", action="store_true", help="log the packet exchange on stderr")
    p.set_defaults(func=cmd_gdb)


def cmd_gdb(args) -> int:
    m = build_machine(args, stdout_uart())
    if not 0 <= args.port <= 65535:
        raise BadInput(f"--port {args.port}: not a TCP port")
    try:
        srv = listen(args.port)
    except OSError as e:
        raise BadInput(f"--port {args.port}: {e.strerror}") from None
    timeline = None
    if getattr(args, "timeline", None):
        timeline = Timeline(m)
    port = srv.getsockname()[1]
    print(f"neve: gdb: listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    try:
        conn, _ = srv.accept()
    finally:
        srv.close()
    log = (lambda s: print(f"neve: gdb: {s}", file=sys.stderr, flush=True)) if args.debug_packets else None
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server = GdbServer(m, conn, log=log)
        server.serve()
    status = 0
    if server.detached and not server.stops.finished:
        # gdb detached: the guest runs on to its end, without breakpoints.
        server.stops.delete()
        for hooks in server.watch.values():
            for uc, h in hooks:
                uc.hook_del(h)
        server.stops.view(server.stops.ran)        # (the CPU that ran goes on, not one gdb showed)
        r = m.run()
        sys.stdout.buffer.flush()
        if r.reason not in ("system-off", "system-reset", "semihosting-exit"):
            print(f"neve: {r.message}", file=sys.stderr)
        status = r.status
    elif server.stops.finished:
        status = m.result.status
    sys.stdout.buffer.flush()
    if timeline is not None:
        timeline.write(args.timeline)
    return status
