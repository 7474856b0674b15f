"""The GDB stub: packet framing and handlers with byte-exact exchanges over a
socketpair, and one end-to-end session with the real gdb-multiarch in batch mode
(skipped only when gdb-multiarch is absent and CI is unset).

Guest: tinyhyp in v8.3 mode (firmware/tinyhyp/tinyhyp.S), a guest hypervisor not
written for neve.  el2_sync (0x400017b8) is its own SVC handler at vEL2; by then it
has written HCR_EL2 = RW|TSC = 0x80080000.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import IMAGES, ROOT, SPIN, TINYHYP, gdb_stub
from neve.core import elf
from neve.debug.gdb import GdbServer
from neve.debug.rsp import INTERRUPT, Framer
from neve.core.machine import Machine
EL2_SYNC = 0x400017B8


def pkt(payload: str) -> bytes:
    """Independent framing for the expectations: $payload#checksum."""
    return b"$" + payload.encode() + b"#" + b"%02x" % (sum(payload.encode()) % 256)


# --- framing ------------------------------------------------------------------------------
def test_checksum_escape_and_decode():
    assert Framer.frame(b"OK") == b"$OK#9a"
    assert Framer.frame(b"") == b"$#00"
    assert Framer.escape(b"a$b#c}d*") == b"a}\x04b}\x03c}]d}\x0a"
    assert Framer.decode(b"a}\x04b}\x03c}]d}\x0a") == b"a$b#c}d*"
    assert Framer.decode(b"0* ") == b"0000"            # ' ' = 32: three more
    assert Framer.decode(b'x0*"y') == b"x000000y"      # '"' = 34: five more


def test_framer_consumes_bytes_as_they_arrive():
    """rsp.Framer is bytes in, bytes out: a packet split across reads, a bad checksum
    (nak, skipped), an interrupt byte, and acks after a sent packet."""
    f = Framer()
    f.feed(b"+$qC#")
    assert f.next_packet() is None                       # checksum not here yet
    f.feed(b"b4$OK#00" + pkt("?")[:3])
    assert f.next_packet() == b"qC"
    assert f.next_packet() is None and bytes(f.out) == b"+-"
    f.feed(pkt("?")[3:] + INTERRUPT)
    assert f.next_packet() == b"?" and f.next_packet() == INTERRUPT
    f.feed(b"x\x03-")
    assert f.take_ack() is False and f.interrupts == 1 and f.take_interrupt()
    f.feed(b"$g#67")
    assert f.take_ack() is True and f.next_packet() == b"g"


class Wire:
    """The gdb end of a socketpair, with a server thread on the other end."""

    def __init__(self, machine) -> None:
        self.a, self.b = socket.socketpair()
        self.b.settimeout(20)
        self.server = GdbServer(machine, self.a)
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()
        self.buf = b""

    def send(self, raw: bytes) -> None:
        self.b.sendall(raw)

    def expect(self, raw: bytes) -> None:
        while len(self.buf) < len(raw):
            data = self.b.recv(65536)
            assert data, f"connection closed; got {self.buf!r}, wanted {raw!r}"
            self.buf += data
        got, self.buf = self.buf[:len(raw)], self.buf[len(raw):]
        assert got == raw

    def read_packet(self) -> str:
        while not re.search(rb"\$[^#]*#..", self.buf):
            data = self.b.recv(65536)
            assert data
            self.buf += data
        mo = re.search(rb"\$([^#]*)#(..)", self.buf)
        assert self.buf[:mo.start()] in (b"", b"+")
        self.buf = self.buf[mo.end():]
        return mo.group(1).decode()

    def ask(self, payload: str) -> str:
        """No-ack mode: one request, one reply payload."""
        self.send(pkt(payload))
        return self.read_packet()

    def close(self) -> None:
        self.b.close()
        self.thread.join(10)
        self.a.close()


@pytest.fixture
def tinyhyp():
    m = Machine([elf.load(TINYHYP)], mode="v8.3", uart_out=lambda b: None)
    w = Wire(m)
    yield m, w
    w.close()


def noack(w: Wire) -> None:
    w.send(pkt("QStartNoAckMode"))
    w.expect(b"+" + pkt("OK"))
    w.send(b"+")


def test_handshake_bytes(tinyhyp):
    m, w = tinyhyp
    w.send(b"+" + pkt("qSupported:multiprocess+;swbreak+;xmlRegisters=i386"))
    w.expect(b"+" + pkt("PacketSize=4000;qXfer:features:read+;QStartNoAckMode+;vContSupported+"))
    w.send(b"+" + pkt("vMustReplyEmpty"))
    w.expect(b"+" + b"$#00")
    w.send(b"+" + b"$qC#b4")
    w.expect(b"+" + b"$QC1#c5")
    w.send(b"+$OK#00")                                   # bad checksum: nak, no reply
    w.expect(b"-")
    w.send(b"+" + pkt("?"))
    w.expect(b"+" + pkt("T051f:0000000000000000;20:0000004000000000;thread:1;"))
    noack(w)
    w.send(b"$qfThreadInfo#bb")
    w.expect(b"$m1#9e")
    w.send(b"$qsThreadInfo#c8")
    w.expect(b"$l#6c")
    w.send(b"$qAttached#8f")
    w.expect(b"$1#31")
    w.send(b"$vCont?#49")
    w.expect(pkt("vCont;c;C;s;S"))
    w.send(b"$Hg0#df")
    w.expect(b"$OK#9a")


def test_target_description(tinyhyp):
    m, w = tinyhyp
    noack(w)
    xml, off = "", 0
    while True:
        r = w.ask(f"qXfer:features:read:target.xml:{off:x},400")
        xml += r[1:]
        off += len(r) - 1
        if r[0] == "l":
            break
        assert r[0] == "m"
    root = ET.fromstring(xml)
    assert root.find("architecture").text == "aarch64"
    core, sysf = root.findall("feature")
    assert core.get("name") == "org.gnu.gdb.aarch64.core"
    assert [r.get("name") for r in core] == [f"x{i}" for i in range(31)] + ["sp", "pc", "cpsr"]
    names = {r.get("name"): int(r.get("regnum")) for r in sysf}
    assert sysf.get("name") == "org.neve.aarch64.sysregs"
    for want in ("HCR_EL2", "VBAR_EL2", "ESR_EL2", "ICH_HCR_EL2", "ICH_LR0_EL2", "SCTLR_EL1", "VTTBR_EL2"):
        assert want in names
    assert not any(n.endswith("_EL12") for n in names)
    assert min(names.values()) == 34
    assert w.ask("qXfer:features:read:other.xml:0,10") == "E00"


def regnum(server: GdbServer, name: str) -> str:
    return f"{34 + [r.name for r in server.sysrows].index(name):x}"


def test_registers_memory_breakpoint_step_and_monitor(tinyhyp):
    m, w = tinyhyp
    noack(w)
    assert w.ask("p21") == "c9030000"                    # cpsr: EL2h as the guest hypervisor sees it
    assert w.ask("m40000000,8") == "df4f03d57c090058"    # msr daifset, #0xf; ldr x28, =UART
    assert w.ask("m1000,4") == "E14"                     # not RAM
    g = w.ask("g")
    assert len(g) == 2 * (33 * 8 + 4) and g[-8:] == "c9030000"
    assert w.ask(f"Z0,{EL2_SYNC:x},4") == "OK"
    assert w.ask("c") == f"T051f:c02d004000000000;20:{EL2_SYNC.to_bytes(8, 'little').hex()};thread:1;"
    assert w.ask(f"p{regnum(w.server, 'HCR_EL2')}") == "0000088000000000"     # 0x80080000, set by tinyhyp
    assert w.ask(f"p{regnum(w.server, 'ESR_EL2')}") == "2a00005600000000"     # its SVC #0x2a
    assert w.ask("s") == "T051f:c02d004000000000;20:bc17004000000000;thread:1;"
    assert w.ask(f"z0,{EL2_SYNC:x},4") == "OK"
    assert w.ask("P5=3412000000000000") == "OK" and w.ask("p5") == "3412000000000000"
    # monitor traps: console output (O packets, hex), then OK.
    w.send(pkt("qRcmd," + b"traps".hex()))
    out = ""
    while True:
        r = w.read_packet()
        if r == "OK":
            break
        assert r[0] == "O"
        out += bytes.fromhex(r[1:]).decode()
    assert re.search(r"^\d+ traps", out) and "HCR_EL2:w 1" in out


def test_trap_breakpoint_from_monitor_explains_the_stop(tinyhyp):
    m, w = tinyhyp
    noack(w)
    w.send(pkt("qRcmd," + b"break trap eret".hex()))
    assert bytes.fromhex(w.read_packet()[1:]).decode() == "1: trap breakpoint on eret\n"
    assert w.read_packet() == "OK"
    w.send(pkt("vCont;c"))
    console = w.read_packet()
    assert console[0] == "O"
    text = bytes.fromhex(console[1:]).decode()
    assert "class eret" in text and "<el2_sync+0x60>: eret" in text and "HCR_EL2.NV set by L0" in text
    assert w.read_packet() == "T051f:c02d004000000000;20:7400004000000000;thread:1;"


def test_watchpoint_and_memory_write(tinyhyp):
    m, w = tinyhyp
    noack(w)
    tally = m.symbols.by_name["tally"]
    assert w.ask(f"Z2,{tally:x},8") == "OK"
    r = w.ask("c")
    assert f"watch:{tally:x};" in r
    assert m.symbols.lookup(m.cpu.pc) == "on_hvc+0xc"    # stopped after the store at on_hvc+0x8
    assert w.ask(f"m{tally:x},8") == "0100000000000000"
    assert w.ask(f"z2,{tally:x},8") == "OK"
    assert w.ask(f"M{tally:x},2:0700") == "OK" and w.ask(f"m{tally:x},2") == "0700"


def test_continue_to_exit_and_detach(tinyhyp):
    m, w = tinyhyp
    noack(w)
    assert w.ask("c") == "W00"
    assert w.ask("?") == "W00"
    assert w.ask("D") == "OK"
    w.thread.join(10)
    assert not w.thread.is_alive() and w.server.detached


def test_ctrl_c_interrupts_a_running_guest():
    m = Machine([elf.load(SPIN)], mode="vm", uart_out=lambda b: None)
    w = Wire(m)
    try:
        noack(w)
        w.send(pkt("c"))
        deadline = time.monotonic() + 20          # a loaded CI machine may start late
        while m.icount() <= 1000 and time.monotonic() < deadline:
            time.sleep(0.05)
        w.send(INTERRUPT)
        r = w.read_packet()
        assert r.startswith("T02") and r.endswith("thread:1;")
        assert m.icount() > 1000
        assert w.ask("s").startswith("T05")
    finally:
        w.close()


# --- end to end with gdb-multiarch ---------------------------------------------------------------
GDB = shutil.which("gdb-multiarch")


@pytest.mark.skipif(GDB is None and not os.environ.get("CI"), reason="gdb-multiarch not installed")
def gdb_batch(port: int, image, *commands: str):
    """gdb-multiarch in batch mode against the stub on `port`: (the process, its output)."""
    args = [GDB, "-batch", "-nx", "-ex", "set confirm off", "-ex", f"target remote :{port}"]
    for c in commands:
        args += ["-ex", c]
    gdb = subprocess.run(args + [str(image)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    return gdb, gdb.stdout + gdb.stderr


def test_gdb_multiarch_session(tmp_path):
    assert GDB is not None, "CI must install gdb-multiarch"
    with gdb_stub("--mode", "v8.3", TINYHYP) as port:         # gdb's kill ends the stub
        gdb, out = gdb_batch(port, TINYHYP, "break *el2_sync", "continue", "info registers HCR_EL2",
                             "p/x $VBAR_EL2", "p/x $ESR_EL2", "p/x $pc", "stepi", "p/x $pc", "x/1i $pc",
                             "monitor traps", "kill")
    assert gdb.returncode == 0, out
    assert "Breakpoint 1, 0x00000000400017b8 in el2_sync ()" in out
    assert re.search(r"HCR_EL2\s+0x80080000", out), out
    assert "= 0x40001000" in out                       # VBAR_EL2 as tinyhyp set it
    assert "= 0x5600002a" in out                       # ESR_EL2: its SVC #0x2a
    assert "= 0x400017b8" in out and "= 0x400017bc" in out      # stepi advanced the PC
    assert "mrs\tx22, elr_el2" in out
    assert "HCR_EL2:w 1" in out


def test_gdb_sees_one_thread_per_cpu(tmp_path):
    """--smp 2: each CPU is a gdb thread (`info threads`, `thread N`); a breakpoint in
    the code only CPU 1 runs stops with CPU 1's thread current, and CPU 0's registers
    are its own."""
    assert GDB is not None, "CI must install gdb-multiarch"
    ipi = IMAGES / "ipi.elf"
    with gdb_stub("--smp", "2", ipi) as port:
        gdb, out = gdb_batch(port, ipi, "break secondary_main", "continue", "info threads", "p/x $x0",
                             "thread 1", "p $pc == secondary_main", "thread 2", "p $pc == secondary_main", "kill")
    assert gdb.returncode == 0, out
    assert "Breakpoint 1, " in out and "secondary_main" in out, out
    assert re.search(r"\* 2\s+Thread 2 \(CPU 1 \(MPIDR affinity 0x1\), on\)", out), out
    assert re.search(r"  1\s+Thread 1 \(CPU 0 \(MPIDR affinity 0x0\), on\)", out), out
    assert "$1 = 0x1" in out                    # x0: CPU_ON's context id, CPU 1's number
    assert "$2 = 0" in out and "$3 = 1" in out  # CPU 0 is elsewhere, CPU 1 at the breakpoint
