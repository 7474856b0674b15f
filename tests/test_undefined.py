"""System-register accesses in the wrong direction, and fetches from device memory.

An MSR to a read-only register (ID registers, ICC_IAR1_EL1, ISR_EL1, ICH_VTR_EL2,
CurrentEL) or an MRS of a write-only one (ICC_EOIR1_EL1) is an unallocated encoding:
UNDEFINED at the level that executes it, with no trap to any hypervisor.  The kernel
below runs at EL1 (vm mode) or at (virtual) EL2, executes one such access, and prints
"U" and the ESR of the exception it took, or "N" if none; QEMU is the reference.

Unicorn refuses to execute from device memory; neve stops with `unsupported` naming
the device instead of an emulation error.

The guests run through the command line in this process (`neve_in_process`); one
test runs the real `python -m neve` for the exit status and stderr of the process.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EXIT_UNSUPPORTED, assemble, one_line_error, run_neve
from guest_asm import MACROS
from neve.qemu import qemu_binary, run_qemu

KERNEL = MACROS + r"""
    .global _start
_start:
    ldr     x1, =0x09000000
    adr     x0, vectors
    mrs     x2, CurrentEL
    cmp     x2, #(2 << 2)
    b.eq    1f
    msr     vbar_el1, x0
    b       2f
1:  msr     vbar_el2, x0
2:  isb
    mov     x0, #5
    ACCESS
    mov     w4, #'N'
    strb    w4, [x1]
    b       off

sync:                                   /* print "U" and ESR_ELx in hex */
    mov     w4, #'U'
    strb    w4, [x1]
    mrs     x2, CurrentEL
    cmp     x2, #(2 << 2)
    b.eq    3f
    mrs     x0, esr_el1
    b       4f
3:  mrs     x0, esr_el2
4:  put_hex_x0 32
off:
    mov     w4, #10
    strb    w4, [x1]
    system_off_any_el

    .balign 2048
vectors:
    .rept 4
    b       .
    .balign 128
    .endr
    b       sync                        /* current EL, SPx, synchronous */
    .balign 128
    .rept 11
    b       .
    .balign 128
    .endr
"""

UNDEF = b"U02000000\n"          # EC 0 (unknown reason), IL 1

ACCESSES = {
    "msr ID_AA64MMFR0_EL1": ("msr S3_0_C0_C7_0, x0", UNDEF),
    "msr ICC_IAR1_EL1": ("msr S3_0_C12_C12_0, x0", UNDEF),
    "mrs ICC_EOIR1_EL1": ("mrs x0, S3_0_C12_C12_1", UNDEF),
    "msr ISR_EL1": ("msr S3_0_C12_C1_0, x0", UNDEF),
    "msr ICH_VTR_EL2": ("msr S3_4_C12_C11_1, x0", UNDEF),
    "msr CurrentEL": ("msr S3_0_C4_C2_2, x0", UNDEF),
    "mrs ISR_EL1": ("mrs x0, S3_0_C12_C1_0", b"N\n"),      # the allowed direction
}


def run_args(img: Path, mode: str) -> list[str]:
    return ["run", "--mode", mode, "--max-insns", "100000", str(img)]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("undef")
    return {what: assemble(tmp, f"undef{i}", KERNEL.replace("ACCESS", insn), 0x40080000)
            for i, (what, (insn, _)) in enumerate(ACCESSES.items())}


@pytest.mark.toolchain
@pytest.mark.parametrize("mode", ["vm", "v8.3", "neve", "nv2"])
@pytest.mark.parametrize("what", list(ACCESSES))
def test_wrong_direction_is_undefined_as_on_qemu(neve_in_process, images, what, mode):
    img = images[what]
    r = neve_in_process(*run_args(img, mode))
    expected = ACCESSES[what][1]
    assert (r.returncode, r.stdout) == (0, expected), r.stderr
    if qemu_binary() is not None:
        assert run_qemu([img], el2=mode != "vm", semihosting=False) == (expected, 0)


@pytest.mark.toolchain
@pytest.mark.parametrize("mode", ["vm", "nv2"])
def test_cntfrq_write_is_unsupported(neve_in_process, tmp_path, mode):
    # QEMU lets the highest EL write CNTFRQ_EL0; neve's frequency is fixed, so it says so.
    img = assemble(tmp_path, "cntfrq", KERNEL.replace("ACCESS", "msr cntfrq_el0, x0"), 0x40080000)
    r = neve_in_process(*run_args(img, mode))
    line = one_line_error(r)
    assert r.returncode == EXIT_UNSUPPORTED
    assert line.startswith("neve: unsupported: MSR CNTFRQ_EL0") and "PC 0x4008" in line, line


FETCH = ".global _start\n_start:\n    ldr x30, ={target:#x}\n    ret\n"


@pytest.mark.toolchain
@pytest.mark.parametrize("target, device", [(0x0900_0000, "UART"), (0x0800_0000, "GICv3 distributor"),
                                            (0x0902_0000, "fw_cfg")])
def test_fetch_from_a_device_is_unsupported(neve_in_process, tmp_path, target, device):
    img = assemble(tmp_path, "fetch", FETCH.format(target=target), 0x40080000)
    r = neve_in_process(*run_args(img, "vm"))
    line = one_line_error(r)
    assert r.returncode == EXIT_UNSUPPORTED, line
    assert line.startswith("neve: unsupported:") and device in line and f"PC {target:#x}" in line, line


@pytest.mark.toolchain
def test_exit_status_and_streams_of_the_process(tmp_path):
    """The same stop through `python -m neve`: exit status 125, one line on stderr,
    the guest's output (none) on stdout; and an access in the wrong direction exits 0
    with the guest's transcript (the tests above run the command line in-process)."""
    img = assemble(tmp_path, "fetch", FETCH.format(target=0x0900_0000), 0x40080000)
    r = run_neve(*run_args(img, "vm"), timeout=60)
    line = one_line_error(r)
    assert (r.returncode, r.stdout) == (EXIT_UNSUPPORTED, b""), line
    assert line.startswith("neve: unsupported:") and "UART" in line and "PC 0x9000000" in line, line
    img = assemble(tmp_path, "undef", KERNEL.replace("ACCESS", ACCESSES["msr ICC_IAR1_EL1"][0]), 0x40080000)
    r = run_neve(*run_args(img, "nv2"), timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, UNDEF, b"")
