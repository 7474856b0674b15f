"""Debian's stock arm64 kernel (tools/guests.sh: linux-image-6.12 cloud, with KVM) and a
busybox initramfs, booted as a user boots them on QEMU (`--kernel --initrd --append`, no
stub, the generated device tree): at EL1 in vm mode and at virtual EL2 in the three nested
modes, to the init script and its poweroff.  The script's lines ("init: ...") must equal
QEMU 10's for the same kernel at the same EL (`-cpu cortex-a72`, `virtualization=on` for
EL2); at EL2 the kernel must bring KVM up ("Hyp nVHE mode initialized successfully").

These are the suite's longest tests (tens of seconds each on neve): marked `linux` so
that `pytest -m "not linux"` leaves them out locally; CI runs them (in parallel)."""
from __future__ import annotations

import subprocess

import pytest

from conftest import guest, need_qemu, run_neve

APPEND = "console=ttyAMA0 panic=-1"

pytestmark = [pytest.mark.linux, pytest.mark.qemu]


def init_lines(out: bytes) -> list[str]:
    return [ln for ln in out.decode("utf-8", "replace").splitlines() if ln.startswith("init: ")]


def qemu_lines(el2: bool, smp: int = 1) -> list[str]:
    from neve.qemu import boot_command
    need_qemu()
    cmd = boot_command(kernel=guest("vmlinuz"), initrd=guest("initrd.gz"), append=APPEND, el2=el2, smp=smp)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    return init_lines(p.stdout)


@pytest.mark.parametrize("mode", ["vm", "v8.3", "neve", "nv2"])
def test_debian_kernel_boots_like_qemu(mode, tmp_path):
    stats = tmp_path / "s.json"
    r = run_neve("run", "--mode", mode, "--kernel", guest("vmlinuz"), "--initrd", guest("initrd.gz"),
                 "--append", APPEND, "--stats", stats, "--timeout", "900", timeout=1000)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, (r.stderr.decode()[-2000:], out[-3000:])
    lines = init_lines(r.stdout)
    assert lines and lines[-1] == "init: done", out[-3000:]
    el2 = mode != "vm"
    if el2:
        assert "init: kvm log: Hyp nVHE mode initialized successfully" in lines, out[-3000:]
        assert "init: /dev/kvm present" in lines
    else:
        assert "init: /dev/kvm absent" in lines
    assert lines == qemu_lines(el2)


@pytest.mark.parametrize("mode", ["vm", "nv2"])
def test_debian_kernel_boots_smp_like_qemu(mode, tmp_path):
    """--smp 2: the kernel brings its second CPU up with PSCI CPU_ON (at vEL2 in the
    nested modes, where KVM then initializes its hypervisor on both CPUs), and the init
    script's lines (which include the CPU count) equal QEMU's with -smp 2."""
    r = run_neve("run", "--mode", mode, "--smp", "2", "--kernel", guest("vmlinuz"), "--initrd",
                 guest("initrd.gz"), "--append", APPEND, "--timeout", "900", timeout=1000)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, (r.stderr.decode()[-2000:], out[-3000:])
    assert "smp: Brought up 1 node, 2 CPUs" in out, out[-3000:]
    lines = init_lines(r.stdout)
    assert "init: cpus 2" in lines and lines[-1] == "init: done", out[-3000:]
    if mode != "vm":
        assert "init: kvm log: Hyp nVHE mode initialized successfully" in lines, out[-3000:]
    assert lines == qemu_lines(mode != "vm", smp=2)


def test_bench_linux_boot_row(tmp_path):
    """`neve bench --benchmarks linux-boot`: the row boots the kernel in neve and on QEMU
    in the same run and reports the guest's counts next to both host times."""
    import json
    import os
    import sys
    need_qemu()
    guest("vmlinuz"), guest("initrd.gz")
    js = tmp_path / "b.json"
    from conftest import ROOT
    p = subprocess.run([sys.executable, "-m", "neve", "bench", "--quick", "--no-progress", "--benchmarks",
                        "linux-boot", "--modes", "vm", "--json", str(js)], cwd=ROOT, capture_output=True,
                       text=True, timeout=1200, env=dict(os.environ, COLUMNS="200"))
    assert p.returncode == 0, p.stderr[-2000:]
    lb = json.loads(js.read_text())["host"]["linux_boot"]
    row = lb["modes"]["vm"]
    assert row["exit"] == "system-off"
    assert row["instructions"] > 100_000_000
    assert row["traps"] == sum(row["traps_by_class"].values()) > 0
    assert row["traps_by_class"]["mmio"] > 1000         # the console's UART writes
    assert row["qemu_seconds"] > 0 and row["ratio_to_qemu"] == row["seconds"] / row["qemu_seconds"]
    assert "linux-boot" in p.stdout and "neve/QEMU" in p.stdout


def test_bench_linux_boot_needs_the_guests(tmp_path):
    """Named explicitly without the guests: one line, exit 2 (no boot is attempted)."""
    r = run_neve("bench", "--quick", "--benchmarks", "linux-boot", "--guests", tmp_path)
    assert r.returncode == 2
    assert b"run tools/guests.sh" in r.stderr
