"""Run images on QEMU's `virt` board, the ground truth for the differential tests
and for `neve fuzz`.

    from neve.qemu import qemu_binary, run_qemu
    out, status = run_qemu([Path("images/hello.elf")])

The first image is given to `-kernel` (QEMU loads its ELF segments and starts the CPU
at its entry, at EL1, or at EL2 with ``el2=True``).  Further images are loaded with
``-device loader,file=PATH``: QEMU places their ELF segments at their addresses and
does not touch the CPU's start PC (it would only with ``cpu-num=``, which we never
pass).

QEMU's stdin is always /dev/null, so this works without a terminal (CI).  Semihosting
console output (SYS_WRITE0, SYS_WRITEC) goes to QEMU's stderr, not to the UART; use
``run_qemu_full`` to see it.  The exit status is QEMU's: 0 after PSCI SYSTEM_OFF (and,
because of ``-no-reboot``, after SYSTEM_RESET), or the code given to semihosting
SYS_EXIT / SYS_EXIT_EXTENDED.

The CPU is QEMU's `max` unless ``cpu=`` names another model (the fuzzer compares
with ``cortex-a72``, the model whose ID registers neve reports).

The QEMU binary is $NEVE_QEMU if set, else qemu-system-aarch64 on PATH.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["QemuResult", "QemuTimeout", "boot_command", "qemu_binary", "qemu_command", "run_qemu",
           "run_qemu_full"]


class QemuTimeout(Exception):
    """QEMU ran past its time limit and was killed; ``stdout``/``stderr`` hold what it
    printed until then (e.g. the UART line of the ``spin`` image)."""

    def __init__(self, timeout: float, stdout: bytes, stderr: bytes):
        super().__init__(f"QEMU did not finish within {timeout} s")
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr


@dataclass(frozen=True)
class QemuResult:
    stdout: bytes       # the UART (PL011 at 0x09000000), byte for byte
    stderr: bytes       # semihosting console output and QEMU's own messages
    status: int         # QEMU's exit status


def qemu_binary() -> str | None:
    """Path of qemu-system-aarch64 ($NEVE_QEMU overrides PATH), or None if absent."""
    env = os.environ.get("NEVE_QEMU")
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    return shutil.which("qemu-system-aarch64")


def qemu_command(images: list[Path], *, el2: bool = False, semihosting: bool = True,
                 binary: str | None = None, cpu: str = "max", icount: bool = False, smp: int = 1) -> list[str]:
    """The QEMU command line run_qemu uses (handy for reproducing a run by hand).
    `icount`: one virtual nanosecond per instruction (-icount shift=0): QEMU's PMU then
    counts INST_RETIRED, and CPU_CYCLES at one per instruction, as neve's does."""
    if not images:
        raise ValueError("run_qemu: no images")
    qemu = binary or qemu_binary()
    if qemu is None:
        raise FileNotFoundError("qemu-system-aarch64 not found (set NEVE_QEMU or install qemu-system-arm)")
    # neve's board has a GICv3 in every mode, so QEMU gets one too.
    machine = "virt,virtualization=on,gic-version=3" if el2 else "virt,gic-version=3"
    cmd = [qemu, "-M", machine, "-cpu", cpu, "-m", "128M",
           "-nographic", "-monitor", "none", "-serial", "stdio", "-no-reboot"]
    if semihosting:
        cmd.append("-semihosting")
    if icount:
        cmd += ["-icount", "shift=0"]
    if smp != 1:
        cmd += ["-smp", str(smp)]
    first, *rest = (Path(p) for p in images)
    cmd += ["-kernel", str(first)]
    for extra in rest:
        # No cpu-num: load the segments only, leave the start PC at the -kernel entry.
        if "," in str(extra):
            raise ValueError(f"run_qemu: a comma in {extra} would break -device option parsing")
        cmd += ["-device", f"loader,file={extra}"]
    return cmd


def boot_command(*, kernel: Path | None = None, initrd: Path | None = None, append: str | None = None,
                 bios: Path | None = None, el2: bool = False, cpu: str = "cortex-a72", ram: str = "128M",
                 binary: str | None = None, smp: int = 1) -> list[str]:
    """QEMU booting third-party software as `neve run --kernel/--initrd/--append/--bios`
    does: the `virt` board with neve's GICv3 and CPU model (cortex-a72), no network
    card (QEMU's default virtio-net is a device neve does not model), no reboot."""
    qemu = binary or qemu_binary()
    if qemu is None:
        raise FileNotFoundError("qemu-system-aarch64 not found (set NEVE_QEMU or install qemu-system-arm)")
    machine = "virt,virtualization=on,gic-version=3" if el2 else "virt,gic-version=3"
    cmd = [qemu, "-M", machine, "-cpu", cpu, "-m", ram, "-nographic", "-monitor", "none",
           "-serial", "stdio", "-no-reboot", "-nic", "none"]
    if smp != 1:
        cmd += ["-smp", str(smp)]
    for opt, val in (("-kernel", kernel), ("-initrd", initrd), ("-append", append), ("-bios", bios)):
        if val is not None:
            cmd += [opt, str(val)]
    return cmd


def run_qemu_full(images: list[Path], *, el2: bool = False, semihosting: bool = True,
                  timeout: float = 60, cpu: str = "max", icount: bool = False, smp: int = 1) -> QemuResult:
    """Run QEMU and return UART output, stderr and exit status.

    Raises QemuTimeout (carrying the partial output) if QEMU is still running after
    ``timeout`` seconds."""
    for p in images:
        if not Path(p).is_file():
            raise FileNotFoundError(p)
    cmd = qemu_command(list(images), el2=el2, semihosting=semihosting, cpu=cpu, icount=icount, smp=smp)
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise QemuTimeout(timeout, e.stdout or b"", e.stderr or b"") from None
    return QemuResult(proc.stdout, proc.stderr, proc.returncode)


def run_qemu(images: list[Path], *, el2: bool = False, semihosting: bool = True,
             timeout: float = 60) -> tuple[bytes, int]:
    """Run ``images`` on QEMU virt; return (UART stdout bytes exactly, exit status)."""
    r = run_qemu_full(images, el2=el2, semihosting=semihosting, timeout=timeout)
    return r.stdout, r.status
