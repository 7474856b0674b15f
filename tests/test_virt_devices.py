"""The rest of QEMU's `virt` board (neve/arch/platform.py BOARD): the PL031 RTC, the
PL061 GPIO with the gpio-keys power button, the 32 empty virtio-mmio transports,
and the devices neve does not model (an access stops with "unsupported", also the
high PCIe ECAM through the MMU).  Small kernels probe the registers and print them;
where QEMU is deterministic the output is compared with QEMU's byte for byte."""
from __future__ import annotations

import pytest

from conftest import assemble, need_qemu, one_line_error, run_kernel, run_neve
from guest_asm import MACROS

PRELUDE = MACROS + r"""
    .macro nl
    mov     w0, #10
    strb    w0, [x1]
    .endm
    .macro show32 reg                     // print w\reg, a newline
    mov     w0, \reg
    put_hex_x0 32
    nl
    .endm
"""

ADDRS = ([0x0A00_0000 + 0x200 * i + o for i in (0, 1, 31) for o in (0x000, 0x004, 0x008, 0x00C)]
         + [0x0A00_0000 + o for o in (0x010, 0x034, 0x044, 0x060, 0x070, 0x0FC, 0x100, 0x1FC)]
         + [0x0901_0000 + o for o in (0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C, 0x20, 0x800)]
         + [0x0901_0000 + o for o in range(0xFE0, 0x1000, 4)]
         + [0x0903_0000 + o for o in (0x3FC, 0x400, 0x404, 0x408, 0x40C, 0x410, 0x414, 0x418, 0x41C, 0x420,
                                      0x800, 0xFD0)]
         + [0x0903_0000 + o for o in range(0xFE0, 0x1000, 4)])

PROBE = PRELUDE + r"""
    .global _start
_start:
    ldr     x1, =0x09000000
    ldr     x7, =table
1:  ldr     x8, [x7], #8
    cbz     x8, 2f
    ldr     w0, [x8]
    put_hex_x0 32
    nl
    b       1b
2:  ldr     x8, =0x0A000000               // a 64-bit read: MagicValue and Version
    ldr     x0, [x8]
    put_hex_x0 64
    nl
    ldrb    w0, [x8]                      // narrower reads of MagicValue
    put_hex_x0 8
    nl
    ldrh    w0, [x8, #2]
    put_hex_x0 16
    nl
    ldr     w0, =0x12345678               // writes to an empty transport are ignored
    str     w0, [x8, #0x70]
    str     w0, [x8, #0x30]
    ldr     w0, [x8, #0x70]
    put_hex_x0 32
    nl
    system_off_any_el
    .ltorg
    .balign 8
table:
""" + "".join(f"    .quad {a:#x}\n" for a in ADDRS) + "    .quad 0\n"

# Register behaviour that does not depend on time: the RTC's load and match
# registers, interrupt mask, always-on control register; the GPIO's masked data
# writes, direction, level interrupts that persist after a clear.
SEQUENCES = PRELUDE + r"""
    .global _start
_start:
    ldr     x1, =0x09000000
    ldr     x8, =0x09010000
    ldr     w9, =0x12345678
    str     w9, [x8, #8]                  // RTCLR
    ldr     w0, [x8, #8]
    show32  w0
    ldr     w0, [x8]                      // RTCDR: the value loaded (or 1 s later)
    sub     w0, w0, w9
    cmp     w0, #1
    cset    w0, ls
    show32  w0
    ldr     w0, =0xabcdef01
    str     w0, [x8, #4]                  // RTCMR
    ldr     w0, [x8, #4]
    show32  w0
    mov     w0, #0xff
    str     w0, [x8, #0x10]               // RTCIMSC: one bit
    ldr     w0, [x8, #0x10]
    show32  w0
    str     wzr, [x8, #0xc]               // RTCCR: always 1
    ldr     w0, [x8, #0xc]
    show32  w0
    ldr     w0, [x8, #0x14]               // RTCRIS, RTCMIS: no match yet
    show32  w0
    ldr     w0, [x8, #0x18]
    show32  w0
    str     wzr, [x8, #0x10]
    ldr     x8, =0x09030000
    mov     w0, #0xff
    str     w0, [x8, #0x400]              // GPIODIR: all outputs
    str     w0, [x8, #0x408]              // GPIOIBE: both edges, every pin
    mov     w0, #0xa5
    str     w0, [x8, #0x3fc]
    ldr     w0, [x8, #0x3fc]
    show32  w0
    ldr     w0, [x8, #0x414]              // GPIORIS: an output's edge raises nothing
    show32  w0
    str     wzr, [x8, #0x408]
    mov     w0, #0xff
    str     w0, [x8, #0x0c]               // masked write: bits 1, 0 only
    ldr     w0, [x8, #0x3fc]
    show32  w0
    ldr     w0, [x8, #0x20]               // masked read: bit 3
    show32  w0
    mov     w0, #0xf0
    str     w0, [x8, #0x400]              // bits 3..0 inputs
    mov     w0, #0
    str     w0, [x8, #0x3fc]              // reaches the outputs only
    ldr     w0, [x8, #0x3fc]
    show32  w0
    mov     w0, #0x1ff
    str     w0, [x8, #0x404]              // GPIOIS: level (8 bits)
    ldr     w0, [x8, #0x404]
    show32  w0
    ldr     w0, [x8, #0x414]              // GPIORIS: low levels with IEV = 0
    show32  w0
    mov     w0, #0xff
    str     w0, [x8, #0x41c]              // GPIOIC: level interrupts persist
    ldr     w0, [x8, #0x414]
    show32  w0
    mov     w0, #0x0f
    str     w0, [x8, #0x40c]              // GPIOIEV: high levels for 3..0
    str     w0, [x8, #0x41c]
    ldr     w0, [x8, #0x414]
    show32  w0
    mov     w0, #0x3c
    str     w0, [x8, #0x410]              // GPIOIE
    ldr     w0, [x8, #0x418]              // GPIOMIS
    show32  w0
    mov     w0, #0x55
    str     w0, [x8, #0x420]              // GPIOAFSEL
    ldr     w0, [x8, #0x420]
    show32  w0
    system_off_any_el
"""

# The RTC's match interrupt through the GIC: load 1000, match 1001, wait in WFI.
ALARM = PRELUDE + r"""
    .global _start
_start:
    ldr     x0, =stack_top
    mov     sp, x0
    ldr     x0, =vectors
    msr     vbar_el1, x0
    isb
    gic_enable_spi 34, 0xa0
    ldr     x1, =0x09000000
    ldr     x8, =0x09010000
    mov     w0, #1000
    str     w0, [x8, #8]                  // RTCLR
    mov     w0, #1001
    str     w0, [x8, #4]                  // RTCMR
    mov     w0, #1
    str     w0, [x8, #0x10]               // RTCIMSC
    mov     x20, #0
    msr     daifclr, #2
1:  wfi
    cbz     x20, 1b
    show32  w21                           // INTID
    show32  w22                           // RTCMIS
    show32  w23                           // RTCDR - 1001 <= 1
    show32  w24                           // RTCRIS after RTCICR
    system_off_any_el

sync_handler:
    b       .
irq_handler:
    mrs     x21, S3_0_C12_C12_0           // ICC_IAR1_EL1
    ldr     w22, [x8, #0x18]
    ldr     w23, [x8]
    sub     w23, w23, #1001
    cmp     w23, #1
    cset    w23, ls
    mov     w0, #1
    str     w0, [x8, #0x1c]               // RTCICR
    ldr     w24, [x8, #0x14]
    msr     S3_0_C12_C12_1, x21           // ICC_EOIR1_EL1
    mov     x20, #1
    eret
    vectors_current_spx sync_handler, irq_handler
    .ltorg
    .balign 16
    .space 4096
stack_top:
"""


@pytest.mark.toolchain
def test_device_registers_match_qemu(tmp_path):
    """Every virtio-mmio transport's MagicValue/Version/DeviceID/VendorID and the rest
    reading 0; the PL031's and PL061's registers after reset and their PrimeCell IDs;
    byte, halfword and 64-bit reads: equal to QEMU's."""
    r, q = run_kernel(tmp_path, "probe", PROBE)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[:4] == ["74726976", "00000001", "00000000", "554d4551"]
    need_qemu()
    assert q is not None and q[1] == 0
    assert r.stdout == q[0]


@pytest.mark.toolchain
def test_rtc_and_gpio_registers_match_qemu(tmp_path):
    r, q = run_kernel(tmp_path, "seq", SEQUENCES)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines()[:2] == ["12345678", "00000001"]
    need_qemu()
    assert q is not None and q[1] == 0
    assert r.stdout == q[0]


@pytest.mark.toolchain
def test_rtc_alarm_interrupt_matches_qemu(tmp_path):
    """RTCMR one second ahead: the match raises SPI 2 (INTID 34) through the GIC; neve
    skips the second in WFI (virtual time), QEMU waits it."""
    r, q = run_kernel(tmp_path, "alarm", ALARM)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"00000022\n00000001\n00000001\n00000000\n"
    need_qemu()
    assert q is not None and q[1] == 0
    assert r.stdout == q[0]


# RTCDR after waiting for a virtual-timer deadline 2.5 s ahead, with the system counter.
RTC_TIME = PRELUDE + r"""
    .global _start
_start:
    ldr     x1, =0x09000000
    ldr     x8, =0x09010000
    ldr     w0, [x8]
    show32  w0
    ldr     x0, =2500000000
    mrs     x2, cntvct_el0
    add     x0, x0, x2
    msr     cntv_cval_el0, x0
    mov     x0, #1                        // enabled: its PPI wakes the WFI
    msr     cntv_ctl_el0, x0
    gic_enable_ppi 27, 0xa0
    ldr     x1, =0x09000000
1:  wfi
    mrs     x0, cntv_ctl_el0
    tbz     x0, #2, 1b
    ldr     w0, [x8]
    show32  w0
    mrs     x0, cntvct_el0
    put_hex_x0 64
    nl
    system_off_any_el
"""


@pytest.mark.toolchain
def test_rtc_counts_virtual_seconds_from_the_epoch(tmp_path):
    """RTCDR = --rtc-epoch + whole seconds of the system counter: the same on every run."""
    img = assemble(tmp_path, "rtctime", RTC_TIME, 0x4000_0000)
    runs = [run_neve("run", "--rtc-epoch", "1700000000", img, timeout=60) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    first, later, count = runs[0].stdout.decode().split()
    assert int(first, 16) == 1700000000
    assert int(later, 16) == 1700000000 + int(count, 16) // 1_000_000_000 == 1700000002
    r = run_neve("run", img, timeout=60)
    assert r.stdout.decode().split()[:2] == ["00000000", "00000002"]


# The power button: GPIO 3 an input, interrupts on both edges, SPI 7 (INTID 39).
BUTTON = PRELUDE + r"""
    .global _start
_start:
    ldr     x0, =stack_top
    mov     sp, x0
    ldr     x0, =vectors
    msr     vbar_el1, x0
    isb
    gic_enable_spi 39, 0xa0
    ldr     x1, =0x09000000
    ldr     x8, =0x09030000
    mov     w0, #8
    str     w0, [x8, #0x408]              // GPIOIBE: both edges of GPIO 3
    str     w0, [x8, #0x410]              // GPIOIE
    mov     x20, #0
    msr     daifclr, #2
1:  wfi
    cmp     x20, #2
    b.ne    1b
    system_off_any_el

sync_handler:
    b       .
irq_handler:
    mrs     x21, S3_0_C12_C12_0           // ICC_IAR1_EL1
    mov     w0, w21
    put_hex_x0 8
    mov     w0, #' '
    strb    w0, [x1]
    ldr     w0, [x8, #0x418]              // GPIOMIS
    put_hex_x0 8
    mov     w0, #' '
    strb    w0, [x1]
    ldr     w0, [x8, #0x20]               // GPIODATA, bit 3
    put_hex_x0 8
    mov     w0, #' '
    strb    w0, [x1]
    mrs     x0, cntvct_el0                // when, in ms of virtual time
    ldr     x2, =1000000
    udiv    x0, x0, x2
    put_hex_x0 16
    nl
    mov     w0, #8
    str     w0, [x8, #0x41c]              // GPIOIC
    msr     S3_0_C12_C12_1, x21           // ICC_EOIR1_EL1
    add     x20, x20, #1
    eret
    vectors_current_spx sync_handler, irq_handler
    .ltorg
    .balign 16
    .space 4096
stack_top:
"""


@pytest.mark.toolchain
def test_power_button_press_reaches_the_gpio_interrupt(tmp_path):
    """--power-button-at 5 ms: GPIO 3 rises then, and falls 100 ms later (QEMU's
    gpio-key pulse): two interrupts on SPI 7, at the same virtual times on every run."""
    img = assemble(tmp_path, "button", BUTTON, 0x4000_0000)
    runs = [run_neve("run", "--power-button-at", "5000000", img, timeout=60) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout == runs[1].stdout == b"27 08 08 0005\n27 08 00 0069\n"
    # Without a press nothing can wake the WFI: neve says so.
    r = run_neve("run", img, timeout=60)
    assert r.returncode == 126 and b"WFI with no interrupt" in r.stderr


UNMODELLED = PRELUDE + r"""
    .global _start
_start:
    ldr     x8, =ADDR
    ldr     w0, [x8]
    system_off_any_el
"""


@pytest.mark.toolchain
@pytest.mark.parametrize("pa, name", [(0x0808_0000, "GICv3 ITS"), (0x0902_0000, "fw_cfg"),
                                      (0x3EFF_0000, "PCIe PIO window"), (0x40_1000_0000, "PCIe ECAM")])
def test_unmodelled_devices_stop_the_run(tmp_path, neve_in_process, pa, name):
    img = assemble(tmp_path, "unmod", UNMODELLED.replace("ADDR", hex(pa)), 0x4000_0000)
    r = neve_in_process("run", img)
    assert r.returncode == 125
    assert one_line_error(r) == f"neve: unsupported: access to the QEMU virt {name} at PA {pa:#x} at PC 0x40000004"


# The high PCIe ECAM through the MMU: a 48-bit VA in TTBR1 mapped by a level-1 block
# onto PA 0x40_0000_0000, as Linux maps it (ioremap).
ECAM_MMU = PRELUDE + r"""
    .global _start
_start:
    ldr     x0, =l0
    ldr     x2, =l1
    orr     x2, x2, #3
    str     x2, [x0]
    ldr     x0, =l1
    ldr     x2, =0x0000000000000401           // device block at PA 0 (attr 0)
    str     x2, [x0]
    ldr     x2, =0x40000000 | 0x401 | (1 << 2)    // RAM (attr 1)
    str     x2, [x0, #8]
    ldr     x2, =0x4000000000 | 0x401         // VA +0x8000_0000 -> PA 0x40_0000_0000, device
    str     x2, [x0, #16]
    ldr     x0, =0xff00
    msr     mair_el1, x0
    ldr     x0, =(16 | (1 << 8) | (1 << 10) | (3 << 12) | (16 << 16) | (1 << 24) | (1 << 26) | (3 << 28) | (2 << 30) | (4 << 32))
    msr     tcr_el1, x0
    ldr     x0, =l0
    msr     ttbr0_el1, x0
    msr     ttbr1_el1, x0
    isb
    mrs     x0, sctlr_el1
    orr     x0, x0, #1
    msr     sctlr_el1, x0
    isb
    ldr     x8, =0xffff000090000000
    ldr     w0, [x8]
    system_off_any_el
    .ltorg
    .balign 4096
l0: .space 4096
l1: .space 4096
"""


@pytest.mark.toolchain
def test_high_ecam_through_the_mmu_is_unsupported(tmp_path, neve_in_process):
    img = assemble(tmp_path, "ecam", ECAM_MMU, 0x4000_0000)
    r = neve_in_process("run", img)
    assert r.returncode == 125
    line = one_line_error(r)
    assert line.startswith("neve: unsupported: access to the QEMU virt PCIe ECAM at PA 0x4010000000 at PC 0x4000")


def _at_el2(src: str) -> str:
    """The same mapping made by a guest hypervisor in its own EL2 regime (TTBR0_EL2)."""
    for a, b in (("msr     mair_el1, x0", "msr     mair_el2, x0"),
                 ("(16 | (1 << 8) | (1 << 10) | (3 << 12) | (16 << 16) | (1 << 24) | (1 << 26) | (3 << 28) | (2 << 30) "
                  "| (4 << 32))", "(16 | (1 << 8) | (1 << 10) | (3 << 12) | (4 << 16) | (1 << 31) | (1 << 23))"),
                 ("msr     tcr_el1, x0", "msr     tcr_el2, x0"),
                 ("msr     ttbr0_el1, x0\n    msr     ttbr1_el1, x0", "msr     ttbr0_el2, x0"),
                 ("sctlr_el1", "sctlr_el2"),
                 ("ldr     x8, =0xffff000090000000", "ldr     x8, =0x90000000")):
        assert a in src, a
        src = src.replace(a, b)
    return src


@pytest.mark.toolchain
@pytest.mark.parametrize("mode", ["v8.3", "nv2"])
def test_high_ecam_through_the_el2_mmu_is_unsupported(tmp_path, neve_in_process, mode):
    """At virtual EL2 with L1's EL2 MMU on (neve translates with its own walker)."""
    img = assemble(tmp_path, "ecam2", _at_el2(ECAM_MMU), 0x4000_0000)
    r = neve_in_process("run", "--mode", mode, img)
    assert r.returncode == 125
    assert one_line_error(r).startswith("neve: unsupported: access to the QEMU virt PCIe ECAM at PA 0x4010000000 at PC ")


def _qemu_dtb(tmp_path) -> bytes:
    import subprocess
    from neve.qemu import qemu_binary
    need_qemu()
    out = tmp_path / "qemu.dtb"
    subprocess.run([qemu_binary(), "-M", f"virt,gic-version=3,dumpdtb={out}", "-cpu", "max", "-m", "128M",
                    "-nographic", "-monitor", "none"], check=True, capture_output=True, timeout=60)
    return out.read_bytes()


def _nodes(fdt, parent: int = 0) -> dict:
    """{path: [(property, value)...]} of the subtree under `parent`, properties in blob order."""
    import libfdt
    out = {}

    def walk(node: int, path: str) -> None:
        props = []
        off = fdt.first_property_offset(node, libfdt.QUIET_NOTFOUND)
        while off >= 0:
            p = fdt.get_property_by_offset(off)
            props.append((p.name, bytes(p)))
            off = fdt.next_property_offset(off, libfdt.QUIET_NOTFOUND)
        out[path] = props
        sub = fdt.first_subnode(node, libfdt.QUIET_NOTFOUND)
        while sub >= 0:
            walk(sub, f"{path}/{fdt.get_name(sub)}")
            sub = fdt.next_subnode(sub, libfdt.QUIET_NOTFOUND)
    sub = fdt.first_subnode(parent, libfdt.QUIET_NOTFOUND)
    while sub >= 0:
        walk(sub, "/" + fdt.get_name(sub))
        sub = fdt.next_subnode(sub, libfdt.QUIET_NOTFOUND)
    return out


def test_device_tree_nodes_match_qemu(tmp_path):
    """Each new device's `describe` writes its node(s) as QEMU's virt DTB has them: name,
    properties in QEMU's order, values (phandles as QEMU numbers them: apb-pclk 0x8000,
    gic 0x8002, the PL061 0x8004)."""
    import libfdt
    from neve.arch.platform import BOARD
    from neve.core.machine import Machine  # noqa: F401  (the device modules, as the machine loads them)
    devices = []
    for row in BOARD:
        if row.model and row.name not in ("UART", "GICv3 distributor", "GICv3 redistributor"):
            cls = row.cls()
            devices.append(cls(row.base) if row.name == "flash" else
                           cls(row.base, row.intid) if row.name == "virtio-mmio" else
                           cls(row.base, row.intid, None, None))
    sw = libfdt.FdtSw()
    sw.finish_reservemap()
    phandles = {"apb-pclk": 0x8000, "gic": 0x8002, "its": 0x8003}
    with sw.add_node(""):
        for d in devices:
            d.describe(sw, phandles)
    assert phandles["pl061"] == 0x8004
    ours = _nodes(sw.as_fdt())
    qemu = _nodes(libfdt.Fdt(_qemu_dtb(tmp_path)))
    assert len(ours) == 1 + 32 + 1 + 2 + 1        # flash, virtio, pl031, gpio-keys (+ poweroff), pl061
    for path, props in ours.items():
        assert path in qemu, path
        assert props == qemu[path], path


@pytest.mark.toolchain
def test_power_button_matches_qemu_system_powerdown(tmp_path):
    """QEMU presses its gpio-keys button on the monitor's `system_powerdown`: the same two
    GPIO interrupts (press, release 100 ms later) reach the guest's handler as with
    neve's --power-button-at (the times differ: QEMU's are host time)."""
    import socket
    import subprocess
    import time
    from neve.qemu import qemu_command
    need_qemu()
    img = assemble(tmp_path, "button", BUTTON, 0x4000_0000)
    ours = run_neve("run", "--power-button-at", "5000000", img, timeout=60)
    sock = tmp_path / "mon.sock"
    cmd = qemu_command([img], semihosting=False)
    cmd[cmd.index("-monitor") + 1] = f"unix:{sock},server=on,wait=off"
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.1)
        time.sleep(1.0)                            # the guest waits in WFI by now
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock))
            s.sendall(b"system_powerdown\n")
            out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    fields = [line.split()[:3] for line in out.decode().splitlines()]
    assert fields == [["27", "08", "08"], ["27", "08", "00"]], out
    assert fields == [line.split()[:3] for line in ours.stdout.decode().splitlines()]
