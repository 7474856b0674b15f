"""The generic timer on deterministic time (neve/devices/timer.py, neve/gic/delivery.py).

Unit tests of the counter and timer arithmetic, then end to end: a vm-mode kernel,
assembled here, whose virtual timer fires three times and whose handler acknowledges
and EOIs through the GIC; it is run twice (identical transcripts, counts and virtual
time) and, when QEMU is installed, compared with QEMU's transcript.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from guest_asm import MACROS
from neve.devices.timer import (CNTFRQ, CTL_ENABLE, CTL_IMASK, CTL_ISTATUS, Counter, DictRegs, TimerBank,
                                PPI_HYP_TIMER, PPI_PHYS_TIMER, PPI_VIRT_TIMER)
from neve.qemu import qemu_binary, run_qemu

AS = "aarch64-linux-gnu-as"
LD = "aarch64-linux-gnu-ld"


class Clock:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        return self.n


def bank(hyp: bool = True, cntvoff: int = 0):
    clk = Clock()
    c = Counter(clk)
    b = TimerBank(c, DictRegs(), lambda: cntvoff, hyp=hyp)
    return clk, c, b


# --- unit tests ------------------------------------------------------------------------
def test_counter_is_icount_plus_skipped():
    clk = Clock()
    c = Counter(clk)
    clk.n = 100
    assert c.now() == 100
    assert c.skip_to(250) == 150
    assert c.now() == 250 and c.skipped == 150
    assert c.skip_to(200) == 0                     # never backwards
    clk.n = 110
    assert c.now() == 260
    assert c.to_icount(300) == 150


def test_tval_arithmetic_and_istatus():
    clk, c, b = bank()
    clk.n = 1000
    b.write("CNTV_TVAL_EL0", 500)
    assert b.read("CNTV_CVAL_EL0") == 1500
    assert b.read("CNTV_TVAL_EL0") == 500
    assert b.read("CNTV_CTL_EL0") == 0             # disabled: ISTATUS reads 0 (as QEMU)
    b.write("CNTV_CTL_EL0", CTL_ENABLE)
    assert b.read("CNTV_CTL_EL0") == CTL_ENABLE
    assert b.next_deadline() == 1500
    clk.n = 1499
    assert not b.timers["CNTV"].istatus(c.now())
    clk.n = 1500
    assert b.read("CNTV_CTL_EL0") == CTL_ENABLE | CTL_ISTATUS
    assert b.next_deadline() is None
    clk.n = 1600
    assert b.read("CNTV_TVAL_EL0") == (1500 - 1600) & 0xFFFF_FFFF   # counts down past zero
    # ISTATUS is read-only; a negative TVAL is sign-extended.
    b.write("CNTV_CTL_EL0", CTL_ENABLE | CTL_ISTATUS)
    b.write("CNTV_TVAL_EL0", 0xFFFF_FFF0)
    assert b.read("CNTV_CVAL_EL0") == 1600 - 16
    assert b.read("CNTV_CTL_EL0") & CTL_ISTATUS


def test_imask_gates_the_line_not_istatus():
    clk, c, b = bank()
    b.write("CNTP_CVAL_EL0", 10)
    b.write("CNTP_CTL_EL0", CTL_ENABLE | CTL_IMASK)
    clk.n = 20
    assert b.update() == []                        # line stays low
    assert b.read("CNTP_CTL_EL0") == CTL_ENABLE | CTL_IMASK | CTL_ISTATUS
    b.write("CNTP_CTL_EL0", CTL_ENABLE)
    (t, level), = b.update()
    assert (t.name, t.ppi, level) == ("CNTP", PPI_PHYS_TIMER, True)
    b.write("CNTP_CVAL_EL0", 100)                  # re-armed in the future: line drops
    (t, level), = b.update()
    assert level is False


def test_virtual_timer_uses_cntvoff():
    clk, c, b = bank(cntvoff=1000)
    clk.n = 1500
    b.write("CNTV_TVAL_EL0", 100)                  # virtual count is 500
    assert b.read("CNTV_CVAL_EL0") == 600
    b.write("CNTV_CTL_EL0", CTL_ENABLE)
    assert b.next_deadline() == 1600               # in physical counter ticks


def test_hyp_timer_only_with_a_virtual_el2():
    _, _, vm = bank(hyp=False)
    assert not vm.handles("CNTHP_CTL_EL2") and vm.handles("CNTV_CTL_EL0")
    clk, c, b = bank(hyp=True)
    b.write("CNTHP_TVAL_EL2", 5)
    b.write("CNTHP_CTL_EL2", CTL_ENABLE)
    clk.n = 5
    (t, level), = b.update()
    assert (t.name, t.ppi, level) == ("CNTHP", PPI_HYP_TIMER, True)
    assert PPI_VIRT_TIMER == 27


# --- end to end -------------------------------------------------------------------------
VMTIMER = MACROS + r"""
    .text
    .global _start
_start:
    ldr x28, =0x09000000
    ldr x0, =stack_top
    mov sp, x0
    ldr x0, =vectors
    msr vbar_el1, x0
    isb
    gic_enable_ppi 27, 0xa0         // the virtual timer's PPI
    mov x0, #1000
    msr cntv_tval_el0, x0
    mov x0, #1
    msr cntv_ctl_el0, x0
    isb
    // Test the count with IRQs masked, then WFI: a tick that becomes pending between
    // the test and the WFI still wakes it (PSTATE.I does not matter to WFI) and is
    // taken at the ISB after unmasking.  Unmasked, the third tick could be taken just
    // before the WFI, which would then wait for ever (it did on QEMU, 1 run in 40).
2:  msr daifset, #2
    ldr x0, =count
    ldr w1, [x0]
    cmp w1, #3
    b.ge 3f
    wfi
    msr daifclr, #2
    isb
    b 2b
3:  adr x0, msg_done
    bl puts
    ldr x0, =0x84000008
    hvc #0
6:  b 6b

irq_handler:
    stp x0, x1, [sp, #-16]!
    stp x2, x30, [sp, #-16]!
    mrs x2, S3_0_C12_C12_0          // ICC_IAR1_EL1
    cmp x2, #27
    b.ne 9f
    ldr x0, =count
    ldr w1, [x0]
    add w1, w1, #1
    str w1, [x0]
    adr x0, msg_tick
    bl puts
    add w0, w1, #'0'
    strb w0, [x28]
    mov w0, #10
    strb w0, [x28]
    cmp w1, #3
    b.ge 4f
    mov x0, #1000
    msr cntv_tval_el0, x0
    b 5f
4:  msr cntv_ctl_el0, xzr
5:  isb
9:  msr S3_0_C12_C12_1, x2          // ICC_EOIR1_EL1
    ldp x2, x30, [sp], #16
    ldp x0, x1, [sp], #16
    eret

puts:
    ldrb w9, [x0], #1
    cbz w9, 1f
    strb w9, [x28]
    b puts
1:  ret

msg_tick: .asciz "vmtimer: tick "
msg_done: .asciz "vmtimer: done\n"
    .balign 2048
vectors:
    .rept 4
    b .
    .balign 128
    .endr
    b .
    .balign 128
    b irq_handler                   // current EL, SPx, IRQ
    .balign 128
    .rept 10
    b .
    .balign 128
    .endr
    .data
    .balign 8
count: .word 0
    .balign 16
    .space 4096
stack_top:
"""

EXPECTED = b"vmtimer: tick 1\nvmtimer: tick 2\nvmtimer: tick 3\nvmtimer: done\n"


def assemble(tmp: Path, name: str, source: str) -> Path:
    if shutil.which(AS) is None or shutil.which(LD) is None:
        pytest.skip("aarch64-linux-gnu binutils not installed")
    src = tmp / f"{name}.S"
    src.write_text(source)
    obj = tmp / f"{name}.o"
    elf = tmp / f"{name}.elf"
    subprocess.run([AS, "-march=armv8.4-a", str(src), "-o", str(obj)], check=True)
    subprocess.run([LD, "-Ttext=0x44000000", "-Tdata=0x44100000", str(obj), "-o", str(elf)], check=True)
    return elf


def run_neve(elf: Path, mode: str = "vm", max_insns: int = 2_000_000):
    from neve.core import elf as elfmod
    from neve.core.machine import Machine
    m = Machine([elfmod.load(str(elf))], mode=mode, max_insns=max_insns)
    traps = []
    from neve.observe import events as ev
    m.bus.subscribe(ev.Trap, traps.append)
    r = m.run()
    return m, r, traps


@pytest.fixture(scope="module")
def vmtimer(tmp_path_factory) -> Path:
    return assemble(tmp_path_factory.mktemp("vmtimer"), "vmtimer", VMTIMER)


@pytest.mark.toolchain
def test_vm_virtual_timer_fires_and_is_eoied(vmtimer):
    m, r, traps = run_neve(vmtimer)
    assert (r.reason, r.status) == ("system-off", 0), r.message
    assert bytes(m.transcript) == EXPECTED
    # Each WFI skipped time to the timer deadline instead of spinning.
    assert m.irq.counter.skipped > 0
    assert sum(1 for t in traps if t.cls == "wfx") == 3
    # The VM's ICC_IAR1/EOIR1 go to the virtual CPU interface: no trap.
    assert not [t for t in traps if t.name.startswith("ICC_")]
    assert m.irq.gic.private[0].active == 0


@pytest.mark.toolchain
def test_vm_timer_run_is_deterministic(vmtimer):
    runs = []
    for _ in range(2):
        m, r, traps = run_neve(vmtimer)
        runs.append((bytes(m.transcript), m.icount(), m.irq.counter.now(), m.irq.counter.skipped,
                     [(t.icount, t.cls, t.name) for t in traps]))
    assert runs[0] == runs[1]


@pytest.mark.toolchain
def test_counter_reads_are_deterministic(tmp_path):
    src = r"""
    .text
    .global _start
_start:
    mrs x1, cntvct_el0
    mov x2, #100
1:  subs x2, x2, #1
    b.ne 1b
    mrs x3, cntvct_el0
    sub x0, x3, x1
    ldr x4, =0x44100000
    str x0, [x4]
    mrs x0, cntfrq_el0
    str x0, [x4, #8]
    ldr x0, =0x84000008
    hvc #0
    .data
    .quad 0, 0
"""
    elf = assemble(tmp_path, "cnt", src)
    m, r, _ = run_neve(elf)
    assert r.reason == "system-off"
    data = bytes(m.ram[0x0410_0000:0x0410_0010])       # 0x44100000 - RAM_BASE
    delta = int.from_bytes(data[:8], "little")
    assert delta == 1 + 2 * 100 + 1              # mov, 100 x (subs, b.ne), mrs: one tick per instruction
    assert int.from_bytes(data[8:], "little") == CNTFRQ


@pytest.mark.qemu
@pytest.mark.toolchain
def test_vm_timer_matches_qemu(vmtimer):
    if qemu_binary() is None:
        pytest.skip("qemu-system-aarch64 not found")
    out, status = run_qemu([vmtimer], semihosting=False)
    assert status == 0
    assert out == EXPECTED


# CNTFRQ_EL0 as the guest sees it, printed in hex; PSCI SYSTEM_OFF over HVC at EL1 and
# over SMC at EL2, so the same image runs in vm mode and at (virtual) EL2.
CNTFRQ_KERNEL = MACROS + r"""
    .text
    .global _start
_start:
    ldr x1, =0x09000000
    mrs x0, cntfrq_el0
    put_hex_x0 64
    mov w4, #10
    strb w4, [x1]
    system_off_any_el
"""


@pytest.mark.toolchain
@pytest.mark.parametrize("mode", ["vm", "v8.3", "neve", "nv2"])
def test_cntfrq_is_qemus(tmp_path, mode):
    """The guest reads QEMU 10's counter frequency, at EL1 and at virtual EL2."""
    elf = assemble(tmp_path, "cntfrq", CNTFRQ_KERNEL)
    out = bytearray()
    from neve.core import elf as elfmod
    from neve.core.machine import Machine
    m = Machine([elfmod.load(str(elf))], mode=mode, max_insns=10_000, uart_out=out.extend)
    r = m.run()
    assert r.reason == "system-off"
    assert bytes(out) == b"%016x\n" % CNTFRQ
    if qemu_binary() is not None:
        q, status = run_qemu([elf], el2=mode != "vm", semihosting=False)
        assert (status, q) == (0, bytes(out))
