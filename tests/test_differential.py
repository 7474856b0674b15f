"""Differential tests: every image set runs on QEMU (the ground truth) and on neve,
and the UART transcripts must be byte-identical and the exit statuses equal.

QEMU runs each configuration once per test session (per xdist worker), through the
session-scoped `qemu_results` cache; neve runs `python -m neve run` in a subprocess,
exactly as a user would.

Adding an image set
-------------------
Append an `ImageSet` row to IMAGE_SETS below:

    ImageSet("myhyp", ("myhyp.elf", "hypercall.elf"), el2=True)

- `images`: file names in images/; the first is QEMU's `-kernel` and neve's first
  image (the CPU starts at its entry), the others are loaded like QEMU's
  `-device loader,file=...` (segments only).
- `el2=False`: the image starts at EL1 and runs in neve's `vm` mode, on QEMU's plain
  `virt`.  `el2=True`: the image starts at EL2 (a guest hypervisor) and runs in each
  of the nested modes v8.3, neve and nv2, on `virt,virtualization=on,gic-version=3`.
- `modes`: restrict (or extend) the neve modes, e.g. `modes=("nv2",)`.
- `semihosting_stderr=True`: the image prints through semihosting, which both QEMU
  and neve send to stderr; the stderr bytes are compared too.
- `xfail`: {mode: "reason"} for a known, tracked difference (strict: it must fail).
- `timeout`: seconds for each run (QEMU and neve).
- `max_insns`: neve's instruction budget (--max-insns), so that a guest that hangs
  fails fast with status 124 instead of running into `timeout`.
- `smp`: the board's CPUs (neve's --smp, QEMU's -smp).

Every image in images/ must appear in some row or in NOT_DIFFERENTIAL (with the
reason), so that a new image cannot silently miss its differential test.

QEMU missing: the tests skip locally and fail when the CI environment variable is
set (conftest.need_qemu, as in tests/test_qemu_firmware.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import IMAGES, need_qemu, run_neve
from neve.qemu import QemuResult, QemuTimeout, run_qemu_full
NESTED_MODES = ("v8.3", "neve", "nv2")


@dataclass(frozen=True)
class ImageSet:
    name: str
    images: tuple[str, ...]
    el2: bool = False
    modes: tuple[str, ...] | None = None
    semihosting_stderr: bool = False
    xfail: dict[str, str] = field(default_factory=dict)
    timeout: float = 120
    max_insns: int = 100_000_000
    smp: int = 1

    def run_modes(self) -> tuple[str, ...]:
        if self.modes is not None:
            return self.modes
        return NESTED_MODES if self.el2 else ("vm",)

    def paths(self) -> list[Path]:
        return [IMAGES / n for n in self.images]


IMAGE_SETS: list[ImageSet] = [
    # EL1 kernels, run by neve as a VM (vm mode) and by QEMU at EL1.
    ImageSet("hello", ("hello.elf",)),
    ImageSet("exceptions", ("exceptions.elf",)),
    ImageSet("hypercall", ("hypercall.elf",)),
    ImageSet("plainkernel", ("plainkernel.elf",)),
    ImageSet("semihost", ("semihost.elf",), semihosting_stderr=True),
    ImageSet("el0", ("el0.elf",)),
    ImageSet("mmio", ("mmio.elf",)),
    # Reads the GIC distributor's GICD_PIDR2 (under Linux KVM: its in-kernel vGIC's).
    ImageSet("gicdread", ("gicdread.elf",)),
    ImageSet("timer", ("timer.elf",)),
    ImageSet("virteoi", ("virteoi.elf",)),
    ImageSet("vtimer", ("vtimer.elf",)),
    # The virtual-ipi benchmark: two CPUs sending each other SGIs; with one CPU its
    # CPU_ON is INVALID_PARAMETERS and it stops.
    ImageSet("ipi", ("ipi.elf",), smp=2),
    ImageSet("ipi-1cpu", ("ipi.elf",)),
    ImageSet("compute", ("compute.elf",)),
    ImageSet("compute2", ("compute2.elf",), smp=2, max_insns=200_000_000),
    ImageSet("compute2-1cpu", ("compute2.elf",)),
    ImageSet("hypercall1k", ("hypercall1k.elf",)),
    # The counter-wait benchmark: 100 ms (10^8 instructions in neve) and 10 ms of
    # CNTVCT_EL0 busy-waiting; QEMU waits host time, neve counts instructions.
    ImageSet("countwait", ("countwait.elf",), max_insns=200_000_000),
    ImageSet("countwait10", ("countwait10.elf",)),
    # The fuzz harness with no case in it (tests/test_fuzz.py runs cases).
    ImageSet("fuzz", ("fuzz.elf",)),
    ImageSet("fuzz-el2", ("fuzz.elf",), el2=True),
    # Guest hypervisors, started at (virtual) EL2.
    ImageSet("kvmlike+hypercall", ("kvmlike.elf", "hypercall.elf"), el2=True),
    ImageSet("kvmlike+mmio", ("kvmlike.elf", "mmio.elf"), el2=True),
    ImageSet("kvmlike+virteoi", ("kvmlike.elf", "virteoi.elf"), el2=True),
    ImageSet("kvmlike+vtimer", ("kvmlike.elf", "vtimer.elf"), el2=True),
    ImageSet("kvmlike+countwait10", ("kvmlike.elf", "countwait10.elf"), el2=True),
    ImageSet("tinyhyp", ("tinyhyp.elf",), el2=True),
    ImageSet("nv2probe", ("nv2probe.elf",), el2=True),
    ImageSet("s2hyp", ("s2hyp.elf",), el2=True),
    # The hypercall-minimal benchmark: each nested hypercall served with one ESR_EL2
    # read and an ERET; started at EL1 it says it needs EL2 and powers off.
    ImageSet("minhyp+hypercall1k", ("minhyp.elf", "hypercall1k.elf"), el2=True),
    ImageSet("minhyp+hypercall", ("minhyp.elf", "hypercall.elf"), el2=True),
    ImageSet("minhyp-at-el1", ("minhyp.elf",)),
]

# Images that are not (or not only) a first image of a row above, and why.
NOT_DIFFERENTIAL: dict[str, str] = {
    "spin.elf": "never stops by design; test_spin_budget below compares its output under a budget",
}


class QemuCache:
    """QEMU results per (images, el2), computed at most once per session."""

    def __init__(self) -> None:
        self._done: dict[tuple, QemuResult] = {}

    def get(self, s: ImageSet) -> QemuResult:
        key = (s.images, s.el2, s.smp)
        if key not in self._done:
            need_qemu()
            self._done[key] = run_qemu_full(s.paths(), el2=s.el2, semihosting=True, timeout=s.timeout, smp=s.smp)
        return self._done[key]


@pytest.fixture(scope="session")
def qemu_results() -> QemuCache:
    return QemuCache()


def _cases():
    for s in IMAGE_SETS:
        for mode in s.run_modes():
            marks = [pytest.mark.qemu]
            if mode in s.xfail:
                marks.append(pytest.mark.xfail(reason=s.xfail[mode], strict=True))
            yield pytest.param(s, mode, id=f"{s.name}-{mode}", marks=marks)


@pytest.mark.parametrize("s, mode", list(_cases()))
def test_transcript_matches_qemu(qemu_results, s: ImageSet, mode: str):
    for p in s.paths():
        assert p.is_file(), f"{p} missing: run tools/build_firmware.py"
    q = qemu_results.get(s)
    r = run_neve("run", "--mode", mode, "--max-insns", s.max_insns, "--smp", s.smp, *s.paths(), timeout=s.timeout)
    assert b"Traceback" not in r.stderr, r.stderr.decode(errors="replace")
    assert q.stdout, f"QEMU printed nothing for {s.name} (status {q.status})"
    if r.stdout != q.stdout:
        # Show where they part, in lines, for a readable failure.
        ql, nl = q.stdout.splitlines(keepends=True), r.stdout.splitlines(keepends=True)
        i = next((i for i, (a, b) in enumerate(zip(ql, nl)) if a != b), min(len(ql), len(nl)))
        pytest.fail(f"{s.name} in {mode} mode: transcripts differ at line {i + 1}:\n"
                    f"  qemu: {ql[i] if i < len(ql) else '<end>'!r}\n"
                    f"  neve: {nl[i] if i < len(nl) else '<end>'!r}\n"
                    f"neve stderr: {r.stderr.decode(errors='replace')[-500:]}")
    assert r.returncode == q.status, (f"exit status: neve {r.returncode}, QEMU {q.status}; "
                                      f"neve stderr: {r.stderr.decode(errors='replace')[-500:]}")
    if s.semihosting_stderr:
        assert q.stderr, "QEMU printed no semihosting output"
        assert r.stderr == q.stderr
    elif r.returncode == 0:
        assert r.stderr == b"", r.stderr


def test_every_image_is_covered():
    """A new image in images/ needs a row in IMAGE_SETS (or a reason in NOT_DIFFERENTIAL)."""
    covered = {s.images[0] for s in IMAGE_SETS} | set(NOT_DIFFERENTIAL)
    loaders = {n for s in IMAGE_SETS for n in s.images[1:]}
    present = {p.name for p in IMAGES.glob("*.elf")}
    missing = sorted(present - covered - loaders)
    assert not missing, (f"images without a differential test: {missing}; add ImageSet rows to "
                         f"tests/test_differential.py (see its docstring)")
    for s in IMAGE_SETS:
        for n in s.images:
            assert (IMAGES / n).is_file(), f"IMAGE_SETS row {s.name}: images/{n} does not exist"


def test_image_set_names_unique():
    names = [s.name for s in IMAGE_SETS]
    assert len(names) == len(set(names))
    for s in IMAGE_SETS:
        assert set(s.run_modes()) <= {"vm", *NESTED_MODES}, s
        assert set(s.xfail) <= set(s.run_modes()), s


@pytest.mark.qemu
def test_spin_budget():
    """spin never stops: QEMU is killed after a few seconds, neve by --max-insns; the
    UART output before that point is the same."""
    need_qemu()
    spin = IMAGES / "spin.elf"
    with pytest.raises(QemuTimeout) as e:
        run_qemu_full([spin], timeout=3)
    r = run_neve("run", "--mode", "vm", "--max-insns", "1000000", spin)
    assert r.returncode == 124
    assert r.stdout == e.value.stdout == b"spin: looping forever\n"
