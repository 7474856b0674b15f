"""What the test files share: the repository's paths, the neve command line (in a
subprocess as a user runs it, or in this process), the cross assembler, and the rule
for a missing tool (QEMU included): skip locally, fail in CI.

pytest puts tests/ on sys.path (the default "prepend" import mode, tests/ being no
package), so test files import the plain helpers as `from conftest import ...`; the
fixtures (`neve_in_process`) need no import.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
TINYHYP = str(IMAGES / "tinyhyp.elf")
HYPERCALL = str(IMAGES / "hypercall.elf")
SPIN = str(IMAGES / "spin.elf")

CROSS = os.environ.get("CROSS_COMPILE", "aarch64-linux-gnu-")

# The command line's exit statuses (neve/cli.py), written out here so that a change
# there is noticed.
EXIT_BAD_INPUT = 2
EXIT_BUDGET = 124
EXIT_UNSUPPORTED = 125


def image(name: str) -> Path:
    """images/NAME.elf, which must have been built."""
    p = IMAGES / f"{name}.elf"
    assert p.is_file(), f"{p} missing: run tools/build_firmware.py"
    return p


# --- the command line ---------------------------------------------------------------------------

def run_neve(*args, timeout: float = 120, text: bool = False) -> subprocess.CompletedProcess:
    """Run `python -m neve ARGS...` in a subprocess from the repository root, as a user
    would: stdin closed, stdout and stderr captured (bytes, or str with text=True), a
    non-zero exit returned, not raised."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-m", "neve", *map(str, args)], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=text, timeout=timeout, check=False)


@contextmanager
def gdb_stub(*args) -> Iterator[int]:
    """`python -m neve gdb --port 0 ARGS...` in a subprocess: the port it listens on
    (from its first stderr line).  On leaving, it is waited for (gdb's `kill` ends
    it), killed after 30 s."""
    stub = subprocess.Popen([sys.executable, "-m", "neve", "gdb", "--port", "0", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        line = stub.stderr.readline().decode()
        mo = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert mo, line
        yield int(mo.group(1))
    finally:
        try:
            stub.wait(30)
        except subprocess.TimeoutExpired:
            stub.kill()
            stub.wait()
        stub.stderr.close()


@pytest.fixture
def neve_in_process(capfdbinary):
    """`run_neve` without the subprocess: neve.cli.main(ARGS) in this process, its
    return value (what `python -m neve` exits with) and the bytes it wrote to stdout
    and stderr returned as a CompletedProcess.  For the tests that are about what a
    guest does, not about the process boundary."""
    from neve import cli

    def run(*args) -> subprocess.CompletedProcess:
        argv = [str(a) for a in args]
        capfdbinary.readouterr()                    # nothing from before this run
        try:
            status = cli.main(argv)
        except SystemExit as e:                     # argparse: usage errors, --help
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capfdbinary.readouterr()
        return subprocess.CompletedProcess(["neve", *argv], status, out, err)

    return run


def one_line_error(r: subprocess.CompletedProcess) -> str:
    """Check that stderr is exactly one line starting with 'neve: ', no traceback."""
    err = r.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    assert err.endswith("\n"), repr(err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("neve: "), err
    return lines[0]


# --- tools the tests need -----------------------------------------------------------------------

def missing(what: str, in_ci: str = "") -> NoReturn:
    """WHAT is not installed: skip the test, or fail it when the CI environment
    variable is set (CI installs everything); IN_CI is added to that failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} not found, and CI is set{in_ci}")
    pytest.skip(f"{what} not found")


def need_tool(name: str) -> str:
    """The path of the program NAME, or `missing`."""
    path = shutil.which(name)
    if path is None:
        missing(name)
    return path


def need_qemu() -> None:
    """qemu-system-aarch64 is installed, or `missing`."""
    from neve.qemu import qemu_binary
    if qemu_binary() is None:
        missing("qemu-system-aarch64", ": QEMU is required in CI")


def quick_bench(tmp: Path, benchmark: str) -> tuple[dict, Path, str]:
    """`neve bench --quick --benchmarks BENCHMARK` with --json and --csv into `tmp`:
    (the JSON document, the CSV's path, the console output, whole table)."""
    js, cs = tmp / "b.json", tmp / "b.csv"
    env = dict(os.environ, COLUMNS="300")       # the whole table, not cut to 80 columns
    p = subprocess.run([sys.executable, "-m", "neve", "bench", "--quick", "--no-progress",
                        "--benchmarks", benchmark, "--json", str(js), "--csv", str(cs)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(js.read_text()), cs, p.stdout


def run_kernel(tmp_path: Path, name: str, source: str, base: int = 0x4000_0000):
    """Assemble a small EL1 kernel and run it in neve (vm mode) and, where QEMU is
    installed, on QEMU: (neve's CompletedProcess, QEMU's (stdout, status) or None)."""
    from neve.qemu import qemu_binary, run_qemu
    img = assemble(tmp_path, name, source, base)
    r = run_neve("run", img, timeout=60)
    return r, (run_qemu([img]) if qemu_binary() is not None else None)


def assemble(tmp_path: Path, name: str, source: str, base: int) -> Path:
    """Assemble and link a tiny image (one segment at `base`, entry _start)."""
    as_, ld = need_tool(CROSS + "as"), need_tool(CROSS + "ld")
    src, obj, out = tmp_path / f"{name}.S", tmp_path / f"{name}.o", tmp_path / f"{name}.elf"
    src.write_text(source)
    subprocess.run([as_, str(src), "-o", str(obj)], check=True)
    subprocess.run([ld, "-n", "--build-id=none", f"-Ttext={base:#x}", "-e", "_start", str(obj), "-o", str(out)],
                   check=True)
    return out


# --- third-party guests (tools/guests.sh) -----------------------------------------------------

GUESTS = Path(os.environ.get("NEVE_GUESTS", ROOT / "guests"))


def guest(name: str) -> Path:
    """GUESTS/NAME (vmlinuz, initrd.gz, u-boot.bin), fetched by tools/guests.sh
    (tools/test.sh runs it), or `missing`."""
    p = GUESTS / name
    if not p.is_file():
        missing(f"{p} (run tools/guests.sh)")
    return p
