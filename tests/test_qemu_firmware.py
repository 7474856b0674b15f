"""Run every test kernel in images/ on QEMU virt and check its transcript.

This validates the firmware itself against the ground truth, so that differential
tests of neve can trust it.  The tests skip when qemu-system-aarch64 is absent,
except under CI (the CI environment variable set), where a missing QEMU fails.
"""
from __future__ import annotations

import importlib.util
import re
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, image, need_qemu, need_tool
from neve.qemu import QemuTimeout, run_qemu, run_qemu_full

pytestmark = pytest.mark.qemu


@pytest.fixture(autouse=True)
def _need_qemu():
    need_qemu()


def lines(out: bytes) -> list[str]:
    return out.decode("ascii").splitlines()


def test_hello():
    out, status = run_qemu([image("hello")])
    assert status == 0
    got = lines(out)
    assert out.endswith(b"\n")
    assert got[0] == "hello: neve test kernel running at EL1"
    m = re.fullmatch(r"hello: PSCI version (\d+)\.(\d+) \(0x([0-9a-f]{8})\)", got[1])
    assert m, got[1]
    major, minor, raw = int(m[1]), int(m[2]), int(m[3], 16)
    assert raw == (major << 16) | minor
    assert (major, minor) >= (0, 2)
    assert got[2:] == ["hello: calling PSCI SYSTEM_OFF"]


def test_hello_psci_version_qemu10():
    """QEMU 10.x implements PSCI 1.1; pinned so a change in QEMU is noticed."""
    out, _ = run_qemu([image("hello")])
    assert b"hello: PSCI version 1.1 (0x00010001)\n" in out


def test_exceptions():
    out, status = run_qemu([image("exceptions")])
    assert status == 0
    text = out.decode("ascii")
    assert "FAIL" not in text
    assert "expected" not in text
    passes = [l for l in lines(out) if l.startswith("PASS: ")]
    assert passes == [
        "PASS: svc #0x1234",
        "PASS: udf #0x5a",
        "PASS: brk #0x42",
        "PASS: ldr x2, [0x0b000000]",
        "PASS: str w2, [0x0b000010]",
        "PASS: ldrb w2, [0x48000000]",
    ]
    assert lines(out)[-1] == "exceptions: PASS: all 6 cases"
    # The architectural values QEMU reports (the differential tests rely on them).
    for esr in ("0x56001234", "0x02000000", "0xf2000042", "0x96000010", "0x96000050"):
        assert f"  ESR_EL1 = {esr} ok" in text
    assert text.count("  SPSR_EL1 = 0x00000000a00003c5 ok") == 6
    assert "  FAR_EL1 = 0x000000000b000000 ok" in text
    assert "  FAR_EL1 = 0x000000000b000010 ok" in text
    assert "  FAR_EL1 = 0x0000000048000000 ok" in text


def test_hypercall():
    out, status = run_qemu([image("hypercall")])
    assert status == 0
    assert lines(out) == [
        "hypercall: starting 32 calls of function 0x87000000",
        "hypercall: 32 calls, all returned NOT_SUPPORTED",
        "hypercall: x0 after the last call = 0xffffffffffffffff",
    ]


PRIMES_BELOW_200 = [p for p in range(2, 200) if all(p % d for d in range(2, int(p ** 0.5) + 1))]


def test_plainkernel():
    out, status = run_qemu([image("plainkernel")])
    assert status == 0
    text = out.decode("ascii")
    assert "PANIC" not in text
    got = lines(out)
    assert got[0] == "plainkernel: booting at EL1"
    assert got[1] == "plainkernel: MMU on, D-cache on, I-cache on"
    assert got[2] == "primes below 200:"
    printed = [int(w) for l in got[3:6] for w in l.split()]
    assert printed == PRIMES_BELOW_200
    assert f"count={len(PRIMES_BELOW_200)} sum={sum(PRIMES_BELOW_200)}" in got
    assert 'crc32("The quick brown fox jumps over the lazy dog") = 0x414fa339' in got
    assert "syscall: hello from svc #0" in got
    assert "syscall: getpid() = 42" in got
    assert "syscall: add3(1000, 200, 34) = 1234" in got
    assert "syscall: nr 99 = 38 (-ENOSYS)" in got
    assert any(re.fullmatch(r"  \[trap\] brk #0x0007 at 0x[0-9a-f]{8}, skipping it", l) for l in got)
    assert "brk: survived, handled 1 breakpoint(s), 4 syscall(s)" in got
    assert got[-1] == "psci: version 1.1, powering off"


def test_semihost():
    r = run_qemu_full([image("semihost")], semihosting=True)
    assert r.status == 3  # SYS_EXIT_EXTENDED(ADP_Stopped_ApplicationExit, 3)
    assert r.stdout == b"semihost: start (UART)\nsemihost: exiting with code 3 (UART)\n"
    # QEMU sends the semihosting console to its stderr, not to the UART.
    assert b"semihost: SYS_WRITE0\nsemihost: SYS_WRITEC\n" in r.stderr


def test_spin_runs_forever():
    with pytest.raises(QemuTimeout) as e:
        run_qemu([image("spin")], timeout=5)
    assert e.value.stdout == b"spin: looping forever\n"


# --- run_qemu's multi-image loading ------------------------------------------

def _build_firmware_module():
    spec = importlib.util.spec_from_file_location("build_firmware", ROOT / "tools" / "build_firmware.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PROBE_C = r"""
#include "fw.h"
int fw_main(void)
{
    uart_puts("probe: word at 0x46000000 = ");
    uart_put_hex(*(volatile uint32_t *)0x46000000, 8);
    uart_puts("\n");
    return 0;
}
"""


def _first_word_at(elf: Path, paddr: int) -> int:
    data = elf.read_bytes()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, p_paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_paddr == paddr and p_filesz >= 4:
            return struct.unpack_from("<I", data, p_offset)[0]
    raise AssertionError(f"{elf}: no PT_LOAD at {paddr:#x}")


@pytest.mark.toolchain
def test_extra_image_loaded_without_moving_pc(tmp_path):
    """-device loader places a second ELF at its own address; the CPU still starts at
    the -kernel entry."""
    bf = _build_firmware_module()
    gcc = need_tool(bf.CROSS + "gcc")
    (tmp_path / "probe.c").write_text(PROBE_C)
    common = bf.COMMON
    base_srcs = [common / "start.S", common / "psci.S", common / "uart.c"]

    def link(base: str, srcs: list[Path], out: Path) -> Path:
        subprocess.run([gcc, *bf.CFLAGS, *bf.LDFLAGS, f"-I{common}", f"-Wl,--defsym=BASE={base}",
                        "-T", str(common / "link.ld"), *map(str, srcs), "-o", str(out), "-lgcc"],
                       check=True)
        return out

    probe = link("0x44000000", [*base_srcs, tmp_path / "probe.c"], tmp_path / "probe.elf")
    other = link("0x46000000", [*base_srcs, bf.FIRMWARE / "spin" / "main.c"], tmp_path / "spin46.elf")
    out, status = run_qemu([probe, other], timeout=20)
    assert status == 0
    assert out == f"probe: word at 0x46000000 = {_first_word_at(other, 0x46000000):#010x}\n".encode()
