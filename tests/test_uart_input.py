"""The PL011's receive side (neve/devices/pl011.py) and its input sources
(neve/devices/uart_input.py).

Small EL1 kernels echo what they receive, by polling FR and by the RX interrupt (GIC
SPI 1, INTID 33), with the FIFO on and off.  neve is fed the same bytes from
--uart-input FILE and from a pipe on stdin; QEMU 10 from a pipe on stdin
(`-serial stdio`).  QEMU's input arrives whenever its main loop reads the pipe, so
the test writes it only once the kernel has printed its prompt (a byte QEMU received
before the kernel set LCR_H.FEN would be dropped by the FIFO reset), a byte at a
time; an echo's output does not depend on that timing.  A register kernel compares the
FIFO, flag, interrupt, loopback and modem-status behaviour with QEMU's without input.
Scripted runs are reproducible (transcript, instructions, virtual time), the end of
the input leaves the guest without data, and on a terminal (a pty) neve runs in raw
mode, restores the terminal on every exit, and takes QEMU's Ctrl-A keys.
"""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time

import pytest

from conftest import EXIT_BAD_INPUT, EXIT_BUDGET, ROOT, assemble, need_qemu, one_line_error, run_neve
from guest_asm import MACROS

pytestmark = pytest.mark.toolchain

# Polls FR.RXFE, echoes each character as <c>; '.' ends the run.
POLL = MACROS + r"""
    .global _start
_start:
    ldr x28, =0x09000000
    mov w0, #LCRH
    str w0, [x28, #0x2c]
    adr x0, hello
    bl puts
1:  ldr w0, [x28, #0x18]            // FR
    tbnz w0, #4, 1b                 // RXFE: poll
    ldr w1, [x28]                   // DR
    cmp w1, #'.'
    b.eq 9f
    mov w2, #'<'
    strb w2, [x28]
    strb w1, [x28]
    mov w2, #'>'
    strb w2, [x28]
    b 1b
9:  adr x0, bye
    bl puts
    system_off_any_el
    puts_function
hello: .asciz "poll echo\n"
bye: .asciz "\nbye\n"
"""

# Waits in WFI; the RX interrupt's handler prints MIS at the first interrupt, then
# drains the FIFO echoing [c]; '.' masks RXIM and ends the run.
IRQ = MACROS + r"""
    .global _start
_start:
    ldr x28, =0x09000000
    ldr x0, =stack_top
    mov sp, x0
    ldr x1, =vectors
    mrs x0, CurrentEL
    cmp x0, #(2 << 2)
    b.ne 5f
    msr vbar_el2, x1                // at EL2: IRQs routed to EL2 (HCR_EL2.IMO), ICC_SRE_EL2
    ldr x0, =((1 << 31) | (1 << 4) | (1 << 3))
    msr hcr_el2, x0
    mov x0, #0xf
    msr S3_4_C12_C9_5, x0
    b 6f
5:  msr vbar_el1, x1
6:  isb
    mov w0, #LCRH
    str w0, [x28, #0x2c]
    gic_enable_spi 33, 0x80               // the UART: SPI 1
    mov w0, #0x10                   // IMSC: RXIM
    str w0, [x28, #0x38]
    adr x0, hello
    bl puts
    mov x27, #0                     // done
    mov x26, #0                     // interrupts taken
    msr daifclr, #2
1:  wfi
    cbz x27, 1b
    msr daifset, #2
    adr x0, bye
    bl puts
    system_off_any_el

irq_handler:
    mrs x9, S3_0_C12_C12_0          // ICC_IAR1_EL1
    cmp w9, #33
    b.ne 8f
    cbnz x26, 3f
    ldr w0, [x28, #0x40]            // MIS at the first interrupt
    mov x1, x28
    put_hex_x0 8
    mov w0, #':'
    strb w0, [x28]
3:  add x26, x26, #1
2:  ldr w0, [x28, #0x18]
    tbnz w0, #4, 8f
    ldr w1, [x28]
    cmp w1, #'.'
    b.ne 4f
    mov x27, #1
    str wzr, [x28, #0x38]           // IMSC: off
    b 8f
4:  mov w0, #'['
    strb w0, [x28]
    strb w1, [x28]
    mov w0, #']'
    strb w0, [x28]
    b 2b
8:  msr S3_0_C12_C12_1, x9          // ICC_EOIR1_EL1
    eret

    puts_function
    vectors_current_spx ., irq_handler
hello: .asciz "irq echo\n"
bye: .asciz "\nbye\n"
    .balign 16
    .space 4096
stack_top:
"""

# Polls; prints each DR value (data and error bits) and RSR in hex; 'q' ends the run.
HEX = MACROS + r"""
    .global _start
_start:
    ldr x28, =0x09000000
    mov w0, #0x70                   // LCR_H: 8 bits, FIFO on
    str w0, [x28, #0x2c]
    adr x0, hello
    bl puts
1:  ldr w0, [x28, #0x18]
    tbnz w0, #4, 1b
    ldr w7, [x28]                   // DR
    ldr w8, [x28, #4]               // RSR
    cmp w7, #'q'
    b.eq 9f
    mov x0, x7
    mov x1, x28
    put_hex_x0 12
    mov w0, #'/'
    strb w0, [x28]
    mov x0, x8
    put_hex_x0 4
    mov w0, #' '
    strb w0, [x28]
    b 1b
9:  adr x0, bye
    bl puts
    ldr x0, =0x84000008
    hvc #0
    puts_function
hello: .asciz "hex\n"
bye: .asciz "\nbye\n"
"""

QEMU_CMD = ["qemu-system-aarch64", "-M", "virt,gic-version=3", "-cpu", "max", "-m", "128M", "-nographic",
            "-monitor", "none", "-serial", "stdio", "-no-reboot", "-kernel"]

INPUT = b"hello, world 0123456789 abcdefghijklmnopqrstuvwxyz."
TYPED = INPUT[:-1]


def echo_of(kind: str, data: bytes) -> bytes:
    if kind == "poll":
        return b"poll echo\n" + b"".join(b"<%c>" % c for c in data) + b"\nbye\n"
    return b"irq echo\n10:" + b"".join(b"[%c]" % c for c in data) + b"\nbye\n"


def neve_argv(*args) -> tuple[list[str], dict]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return [sys.executable, "-m", "neve", *map(str, args)], env


def drive(cmd: list[str], prompt: bytes, data: bytes, *, env=None, delay: float = 0.005,
          timeout: float = 60) -> tuple[bytes, int, bytes]:
    """Run `cmd` with stdin a pipe; once its stdout shows `prompt`, write `data` a
    byte at a time.  (stdout, status, stderr)."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, cwd=ROOT)
    out = b""
    deadline = time.monotonic() + timeout
    while prompt not in out and time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 1)
        if r:
            b = os.read(p.stdout.fileno(), 4096)
            if not b:
                break
            out += b
    try:
        for c in data:
            p.stdin.write(bytes((c,)))
            p.stdin.flush()
            time.sleep(delay)
    except BrokenPipeError:
        pass
    try:
        rest, err = p.communicate(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        rest, err = p.communicate()
    return out + rest, p.returncode, err


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    d = tmp_path_factory.mktemp("uart")
    k = {}
    for fen, lcrh in (("fifo", 0x70), ("nofifo", 0x60)):
        k["poll", fen] = assemble(d, f"poll_{fen}", f".equ LCRH, {lcrh}\n" + POLL, 0x4000_0000)
        k["irq", fen] = assemble(d, f"irq_{fen}", f".equ LCRH, {lcrh}\n" + IRQ, 0x4000_0000)
    k["hex"] = assemble(d, "hex", HEX, 0x4000_0000)
    (d / "input.txt").write_bytes(INPUT)
    k["input"] = d / "input.txt"
    return k


# --- echo, compared with QEMU ------------------------------------------------------------------

@pytest.mark.parametrize("fen", ["fifo", "nofifo"])
@pytest.mark.parametrize("kind", ["poll", "irq"])
def test_echo_from_a_file(kernels, kind, fen):
    r = run_neve("run", "--uart-input", kernels["input"], kernels[kind, fen])
    assert (r.returncode, r.stdout) == (0, echo_of(kind, TYPED)), r.stderr


@pytest.mark.parametrize("kind", ["poll", "irq"])
def test_echo_from_a_pipe(kernels, kind):
    cmd, env = neve_argv("run", kernels[kind, "fifo"])
    out, status, err = drive(cmd, b"echo\n", INPUT, env=env, delay=0)
    assert (status, out) == (0, echo_of(kind, TYPED)), err


@pytest.mark.qemu
@pytest.mark.parametrize("fen", ["fifo", "nofifo"])
@pytest.mark.parametrize("kind", ["poll", "irq"])
def test_echo_matches_qemu(kernels, kind, fen):
    need_qemu()
    from neve.qemu import qemu_binary
    out, status, err = drive([qemu_binary(), *QEMU_CMD[1:], str(kernels[kind, fen])], b"echo\n", INPUT)
    assert (status, out) == (0, echo_of(kind, TYPED)), err
    r = run_neve("run", "--uart-input", kernels["input"], kernels[kind, fen])
    assert (r.returncode, r.stdout) == (status, out)


@pytest.mark.qemu
@pytest.mark.parametrize("kind", ["poll", "irq"])
def test_echo_at_virtual_el2_matches_qemu_at_el2(kernels, kind):
    """The same kernels as a guest hypervisor: the UART's SPI reaches L1's GIC and is
    taken at vEL2 (HCR_EL2.IMO), in each nested mode."""
    need_qemu()
    from neve.qemu import qemu_binary
    cmd = [qemu_binary(), *QEMU_CMD[1:], str(kernels[kind, "fifo"])]
    cmd[cmd.index("virt,gic-version=3")] = "virt,virtualization=on,gic-version=3"
    out, status, err = drive(cmd, b"echo\n", INPUT)
    assert (status, out) == (0, echo_of(kind, TYPED)), err
    for mode in ("v8.3", "neve", "nv2"):
        r = run_neve("run", "--mode", mode, "--uart-input", kernels["input"], kernels[kind, "fifo"])
        assert (r.returncode, r.stdout) == (status, out), (mode, r.stderr)


# --- the registers, compared with QEMU ---------------------------------------------------------

def _register_kernel() -> str:
    """FIFO, flags, RSR, interrupts, loopback and modem status, without input: each
    value is stored, and printed once loopback is off again."""
    ops, labels = [], []

    def cap(label, off):
        labels.append(label)
        ops.append(f"    ldr w0, [x28, #{off}]\n    str w0, [x27], #4\n")

    def wr(off, val):
        ops.append(f"    ldr w0, ={val}\n    str w0, [x28, #{off}]\n")

    cap("RIS0", 0x3C)
    wr(0x44, 0x7FF); cap("RIS_icr_nowrite", 0x3C)
    wr(0, 0x78); cap("RIS_afterwrite", 0x3C); wr(0x44, 0x20); cap("RIS_icr_tx", 0x3C)
    wr(0x2C, 0x10); cap("RIS_fen", 0x3C); wr(0, 0x79); cap("RIS_fen_w", 0x3C); cap("FR_fen_w", 0x18)
    wr(0x44, 0x20); cap("RIS_fen_icr", 0x3C)
    wr(0x2C, 0x0)
    wr(0x30, 0x381); cap("FRlb", 0x18); cap("RISlb", 0x3C)
    wr(0, 0x41); cap("FRa", 0x18); cap("RISa", 0x3C); cap("DRa", 0); cap("FRa2", 0x18); cap("RISa2", 0x3C)
    cap("DRe", 0); cap("RSRe", 4)
    wr(0, 0x42); cap("FRb", 0x18); wr(0, 0x43); cap("FRbc", 0x18); cap("RISbc", 0x3C); cap("DRbc", 0)
    cap("FRbc2", 0x18); cap("DRbc2", 0); cap("FRbc3", 0x18); cap("DRbc3", 0); cap("FRbc4", 0x18); cap("RISbc4", 0x3C)
    wr(0x2C, 0x10); cap("FRfen", 0x18); cap("RISfen", 0x3C)
    for i in range(15):
        wr(0, 0x61 + i)
    cap("FR15", 0x18); wr(0, 0x70); cap("FR16", 0x18); wr(0, 0x71); cap("FR17", 0x18); cap("RIS17", 0x3C)
    cap("RSR17", 4)
    for i in range(17):
        cap(f"D{i}", 0)
    cap("FRend", 0x18); cap("RISend", 0x3C)
    wr(0x2C, 0x11); cap("FRbrk", 0x18); cap("RISbrk", 0x3C); cap("BRKdr", 0); cap("BRKrsr", 4); wr(4, 0)
    cap("RSRclr", 4); wr(0x2C, 0x10)
    wr(0x44, 0x7FF); cap("RISicr", 0x3C)
    wr(0, 0x41); wr(0x2C, 0x00); cap("FR_fenoff", 0x18); cap("DR_fenoff", 0); cap("RIS_fenoff", 0x3C)
    wr(0x30, 0x3F81); cap("FRmdm", 0x18); cap("RISmdm", 0x3C)
    wr(0x30, 0x381); cap("FRmdm0", 0x18); cap("RISmdm0", 0x3C)
    wr(0x30, 0x3F81); wr(0x30, 0x301); cap("FRoff", 0x18); cap("RISoff", 0x3C)
    wr(0x34, 0x7); cap("IFLS", 0x34); wr(0x38, 0x7FF); cap("IMSC", 0x38); cap("MIS", 0x40); wr(0x38, 0)
    wr(0x24, 0x12345); cap("IBRD", 0x24); wr(0x28, 0xFF); cap("FBRD", 0x28)
    wr(0x2C, 0xFFFFFFEF); cap("LCRH", 0x2C); wr(0x2C, 0)
    wr(0x48, 0xFF); cap("DMACR", 0x48); wr(0x20, 0x1FF); cap("ILPR", 0x20)
    wr(0x30, 0xFFFFFFFF); cap("CR", 0x30); wr(0x30, 0x301)
    dump = "".join(f"""
    adr x0, L{i}
    bl puts
    ldr w0, [x26], #4
    mov x1, x28
    put_hex_x0 32
    mov w0, #10
    strb w0, [x28]
""" for i in range(len(labels)))
    return MACROS + """
    .global _start
_start:
    ldr x28, =0x09000000
    ldr x27, =results
    mov x26, x27
""" + "".join(ops) + dump + """
    ldr x0, =0x84000008
    hvc #0
    puts_function
""" + "".join(f'L{i}: .asciz "{lab}="\n' for i, lab in enumerate(labels)) + """
    .balign 16
results: .space 1024
"""


# What QEMU 10.0 prints for it (measured), so that the test also says something where
# QEMU is not installed.
REGISTERS_EXPECTED = (
    "xyABCabcdefghijklmnopqA"
    "RIS0=00000000 RIS_icr_nowrite=00000000 RIS_afterwrite=00000020 RIS_icr_tx=00000000 RIS_fen=00000000 "
    "RIS_fen_w=00000020 FR_fen_w=00000090 RIS_fen_icr=00000000 FRlb=00000090 RISlb=00000000 FRa=000000c0 "
    "RISa=00000030 DRa=00000041 FRa2=00000090 RISa2=00000020 DRe=00000041 RSRe=00000000 FRb=000000c0 "
    "FRbc=000000c0 RISbc=00000030 DRbc=00000043 FRbc2=00000080 DRbc2=00000043 FRbc3=00000090 DRbc3=00000043 "
    "FRbc4=00000090 RISbc4=00000020 FRfen=00000090 RISfen=00000020 FR15=00000080 FR16=000000c0 FR17=000000c0 "
    "RIS17=00000030 RSR17=00000000 D0=00000071 D1=00000062 D2=00000063 D3=00000064 D4=00000065 D5=00000066 "
    "D6=00000067 D7=00000068 D8=00000069 D9=0000006a D10=0000006b D11=0000006c D12=0000006d D13=0000006e "
    "D14=0000006f D15=00000070 D16=00000071 FRend=00000090 RISend=00000020 FRbrk=00000080 RISbrk=00000030 "
    "BRKdr=00000400 BRKrsr=00000004 RSRclr=00000000 RISicr=00000000 FR_fenoff=00000090 DR_fenoff=00000071 "
    "RIS_fenoff=00000020 FRmdm=00000197 RISmdm=0000002f FRmdm0=00000090 RISmdm0=00000020 FRoff=00000197 "
    "RISoff=0000002f IFLS=00000007 IMSC=000007ff MIS=0000002f IBRD=00002345 FBRD=0000003f LCRH=ffffffef "
    "DMACR=000000ff ILPR=000001ff CR=ffffffff ").replace(" ", "\n").encode()


def test_registers_match_qemu(tmp_path):
    img = assemble(tmp_path, "regs", _register_kernel(), 0x4000_0000)
    r = run_neve("run", img)
    assert (r.returncode, r.stdout) == (0, REGISTERS_EXPECTED), r.stderr
    from neve.qemu import qemu_binary, run_qemu
    if qemu_binary() is not None:
        assert run_qemu([img]) == (REGISTERS_EXPECTED, 0)


# --- reproducible, and the end of the input ----------------------------------------------------

@pytest.mark.parametrize("kind", ["poll", "irq"])
def test_scripted_runs_are_reproducible(kernels, kind, tmp_path):
    runs = []
    for i in range(2):
        stats = tmp_path / f"s{i}.json"
        r = run_neve("run", "--uart-input", kernels["input"], "--stats", stats, kernels[kind, "fifo"])
        assert r.returncode == 0, r.stderr
        doc = json.loads(stats.read_text())
        runs.append((r.stdout, doc["instructions"], doc["virtual_time"], doc.get("traps")))
    assert runs[0] == runs[1]
    assert runs[0][0] == echo_of(kind, TYPED)


def test_end_of_input_polling_sees_no_more_data(kernels, tmp_path):
    f = tmp_path / "short.txt"
    f.write_bytes(b"abc")
    r = run_neve("run", "--uart-input", f, "--max-insns", "2000000", kernels["poll", "fifo"])
    assert (r.returncode, r.stdout) == (EXIT_BUDGET, b"poll echo\n<a><b><c>"), r.stderr


def test_end_of_input_in_wfi_wedges(kernels, tmp_path):
    f = tmp_path / "short.txt"
    f.write_bytes(b"abc")
    r = run_neve("run", "--uart-input", f, kernels["irq", "fifo"])
    assert (r.returncode, r.stdout) == (126, b"irq echo\n10:[a][b][c]"), r.stderr
    assert "guest wedged: WFI with no interrupt that can ever wake the CPU" in one_line_error(r)


def test_no_input_from_dev_null_or_a_regular_file(kernels):
    # run_neve's stdin is /dev/null
    r = run_neve("run", "--max-insns", "1000000", kernels["poll", "fifo"])
    assert (r.returncode, r.stdout) == (EXIT_BUDGET, b"poll echo\n")
    cmd, env = neve_argv("run", "--max-insns", "1000000", kernels["poll", "fifo"])
    with open(kernels["input"], "rb") as f:
        p = subprocess.run(cmd, stdin=f, capture_output=True, env=env, cwd=ROOT, timeout=60)
    assert (p.returncode, p.stdout) == (EXIT_BUDGET, b"poll echo\n")


def test_bad_uart_input(kernels, tmp_path):
    for path, why in ((tmp_path / "absent", "No such file or directory"), (tmp_path, "is a directory")):
        r = run_neve("run", "--uart-input", path, kernels["poll", "fifo"])
        assert r.returncode == EXIT_BAD_INPUT
        assert one_line_error(r) == f"neve: --uart-input {path}: {why}"


def test_a_named_pipe_is_read_as_it_arrives(kernels, tmp_path):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    cmd, env = neve_argv("run", "--uart-input", fifo, kernels["irq", "fifo"])
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, cwd=ROOT)
    with open(fifo, "wb") as w:
        w.write(INPUT)
    out, err = p.communicate(timeout=60)
    assert (p.returncode, out) == (0, echo_of("irq", TYPED)), err


# --- a terminal --------------------------------------------------------------------------------

class Pty:
    """neve run with stdin a pty (stdout and stderr pipes)."""

    def __init__(self, *args):
        self.master, self.slave = pty.openpty()
        self.before = termios.tcgetattr(self.slave)
        cmd, env = neve_argv("run", *args)
        self.p = subprocess.Popen(cmd, stdin=self.slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env, cwd=ROOT)
        self.out = b""

    def expect(self, what: bytes, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while what not in self.out and time.monotonic() < deadline:
            r, _, _ = select.select([self.p.stdout], [], [], 1)
            if r:
                b = os.read(self.p.stdout.fileno(), 4096)
                if not b:
                    break
                self.out += b
        assert what in self.out, self.out

    def raw(self) -> bool:
        a = termios.tcgetattr(self.slave)
        return not a[3] & (termios.ICANON | termios.ECHO) and not a[0] & termios.ICRNL

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def finish(self, timeout: float = 60) -> tuple[int, bytes, bytes]:
        out, err = self.p.communicate(timeout=timeout)
        after = termios.tcgetattr(self.slave)
        os.close(self.master)
        os.close(self.slave)
        assert after == self.before, "terminal settings not restored"
        return self.p.returncode, self.out + out, err


def test_terminal_raw_mode_and_ctrl_a_keys(kernels):
    t = Pty(kernels["hex"])
    t.expect(b"hex\n")
    assert t.raw()
    # CR is not turned into NL (ICRNL off); Ctrl-A Ctrl-A sends one Ctrl-A; Ctrl-A b a break.
    t.type(b"a\r\x01\x01\x01bq")
    code, out, err = t.finish()
    assert (code, out) == (0, b"hex\n061/0 00d/0 001/0 400/4 \nbye\n"), err


def test_terminal_ctrl_a_h_and_x(kernels):
    t = Pty(kernels["poll", "fifo"])
    t.expect(b"poll echo\n")
    t.type(b"a\x01h")
    t.expect(b"<a>")
    t.type(b"\x01x")
    code, out, err = t.finish()
    assert (code, out) == (0, b"poll echo\n<a>")
    assert err.endswith(b"neve: terminated by Ctrl-A x\n"), err
    assert b"C-a x    exit neve" in err


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)])
def test_terminal_restored_on_a_signal(kernels, sig, status):
    t = Pty(kernels["poll", "fifo"])
    t.expect(b"poll echo\n")
    assert t.raw()
    t.p.send_signal(sig)
    code, _, err = t.finish()
    assert code == status, err


def test_terminal_restored_when_the_guest_stops(kernels):
    t = Pty(kernels["poll", "fifo"])
    t.expect(b"poll echo\n")
    t.type(b"xy.")
    code, out, err = t.finish()
    assert (code, out) == (0, b"poll echo\n<x><y>\nbye\n"), err


def test_terminal_restored_on_an_error(tmp_path):
    # A WFI that nothing can wake: neve stops with "guest wedged" (exit 126).
    img = assemble(tmp_path, "wedge", "    .global _start\n_start:\n    wfi\n    b _start\n", 0x4000_0000)
    t = Pty(img)
    code, out, err = t.finish()
    assert code == 126 and b"guest wedged" in err, err


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_terminal_restored_while_stopped(kernels):
    """Ctrl-Z (SIGTSTP): the terminal is the shell's while neve is stopped, raw again
    after SIGCONT."""
    t = Pty(kernels["poll", "fifo"])
    t.expect(b"poll echo\n")
    t.p.send_signal(signal.SIGTSTP)
    deadline = time.monotonic() + 30
    while _state(t.p.pid) != "T" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _state(t.p.pid) == "T"
    assert termios.tcgetattr(t.slave) == t.before
    t.p.send_signal(signal.SIGCONT)
    t.type(b"z")
    t.expect(b"<z>")
    assert t.raw()
    t.type(b".")
    code, out, err = t.finish()
    assert (code, out) == (0, b"poll echo\n<z>\nbye\n"), err


def test_timeout_ends_a_wait_for_input(kernels):
    """--timeout also bounds host time spent in WFI waiting for a live source that
    never sends: the run ends with exit 124 (the timeout's message), not a hang."""
    cmd, env = neve_argv("run", "--timeout", "2", kernels["irq", "fifo"])
    r, w = os.pipe()                                    # stdin: a pipe kept open, never written
    try:
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdin=r, capture_output=True, env=env, cwd=ROOT, timeout=60)
        took = time.monotonic() - t0
    finally:
        os.close(r)
        os.close(w)
    assert p.returncode == EXIT_BUDGET, p.stderr
    assert b"timeout of 2.0s reached" in p.stderr
    assert took < 30
