"""U-Boot as QEMU `virt` users run it: Debian's u-boot-qemu (qemu_arm64/u-boot.bin,
fetched by tools/guests.sh) from flash bank 0 with `--bios`, its commands typed in
through the UART (`--uart-input`), to `poweroff`.

The differential: QEMU 10 and neve boot the same u-boot.bin with neve's own device tree
(`neve run --dumpdtb`) given to both as -dtb/--dtb (each places it at the start of RAM
and opens it with the same slack), so that U-Boot sees the same board on both, and gets
the same bytes on its UART (neve's --uart-input, QEMU's stdin typed into at each
prompt).  The transcript must be equal but for the autoboot countdown's line (a timing
line): the banner, the device count, the flash, the environment (read from the second
flash bank: empty, so "bad CRC, using default environment") and the output of each
command."""
from __future__ import annotations

import subprocess

import pytest

from conftest import guest, need_qemu, run_neve

pytestmark = [pytest.mark.linux, pytest.mark.qemu]

# The first key stops the autoboot countdown and is consumed by it.
# Commands that poll the UART for Ctrl-C while they run (flinfo, for one) would eat the
# next command's characters, on QEMU as on neve: the script has none of them.
SCRIPT = b" version\nbdinfo\nprintenv bootcmd\nfdt addr $fdtcontroladdr\nfdt print /psci\npoweroff\n"


def test_uboot_prompt_and_commands_like_qemu(tmp_path):
    from neve.qemu import boot_command
    need_qemu()
    bios = guest("u-boot.bin")
    dtb, script = tmp_path / "virt.dtb", tmp_path / "input"
    script.write_bytes(SCRIPT)
    r = run_neve("run", "--bios", bios, "--dumpdtb", dtb)
    assert r.returncode == 0, r.stderr
    r = run_neve("run", "--bios", bios, "--dtb", dtb, "--uart-input", script, "--timeout", "600", timeout=700)
    assert r.returncode == 0, (r.stderr.decode()[-2000:], r.stdout.decode()[-3000:])
    out = r.stdout.decode("utf-8", "replace")
    assert "=> version" in out and "U-Boot 2023.01" in out, out
    assert "Flash: 64 MiB" in out and 'method = "hvc";' in out, out
    assert "poweroff ..." in out, out
    q_out, q_status = qemu_session(boot_command(bios=bios) + ["-dtb", str(dtb)], SCRIPT)
    assert q_status == 0, q_out[-2000:]
    # The countdown line is the one timing line: neve's key is there at U-Boot's first
    # look (" 0"), QEMU's arrives during the countdown (" 0 ").
    assert without_countdown(r.stdout) == without_countdown(q_out)


def without_countdown(out: bytes) -> list[bytes]:
    return [ln for ln in out.split(b"\n") if b"Hit any key to stop autoboot" not in ln]


def qemu_session(cmd: list[str], script: bytes, timeout: float = 300) -> tuple[bytes, int]:
    """QEMU with stdin a pipe, typed into as a user types: the first key once the
    autoboot countdown shows, then each line of `script` once U-Boot prints its next
    prompt.  (QEMU reads its stdin as soon as the UART's FIFO has room, so a script
    written at once would reach U-Boot while a command polls for Ctrl-C and be eaten,
    depending on timing; neve delivers --uart-input only when the guest finds its FIFO
    empty, which happens at the prompt.)"""
    import os
    import select
    import time
    key, lines = script[:1], script[1:].splitlines(keepends=True)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = b""
    deadline = time.monotonic() + timeout

    def until(pred) -> bool:
        nonlocal out
        while not pred() and time.monotonic() < deadline:
            if select.select([p.stdout], [], [], 1)[0]:
                data = os.read(p.stdout.fileno(), 4096)
                if not data:
                    return pred()
                out += data
        return pred()
    try:
        if until(lambda: b"Hit any key to stop autoboot" in out):
            p.stdin.write(key)
            p.stdin.flush()
            for i, line in enumerate(lines):
                if not until(lambda: out.count(b"=> ") > i):
                    break
                p.stdin.write(line)
                p.stdin.flush()
        p.stdin.close()
        until(lambda: False)            # read until QEMU closes its output (it exits), or the deadline
    except BrokenPipeError:
        pass
    finally:
        try:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))   # it closed its output: exiting
        except subprocess.TimeoutExpired:
            p.kill()
        rest = p.stdout.read()
        p.stdout.close()
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
        p.wait()
    return out + rest, p.returncode


def test_uboot_is_deterministic(tmp_path):
    """With the generated device tree: the same input gives the same transcript,
    instruction count and virtual time."""
    bios = guest("u-boot.bin")
    script = tmp_path / "input"
    script.write_bytes(b" version\npoweroff\n")
    runs = []
    for i in range(2):
        stats = tmp_path / f"s{i}.json"
        r = run_neve("run", "--bios", bios, "--uart-input", script, "--stats", stats, "--timeout", "600",
                     timeout=700)
        assert r.returncode == 0, r.stderr.decode()[-2000:]
        runs.append((r.stdout, stats.read_text()))
    assert runs[0] == runs[1]


def test_uboot_interactively_on_a_terminal():
    """As a user at a terminal: neve on a pty, a key stops the autoboot countdown, a
    command typed at the prompt runs (raw mode: Enter is CR, as on QEMU's stdio), and
    `poweroff` ends neve with status 0."""
    import os
    import pty
    import select
    import sys
    import time
    from conftest import ROOT
    bios = guest("u-boot.bin")
    pid, fd = pty.fork()
    if pid == 0:                                        # the child: neve on the pty
        os.chdir(ROOT)
        os.execvp(sys.executable, [sys.executable, "-m", "neve", "run", "--bios", str(bios), "--timeout", "300"])
    seen = bytearray()

    def until(pattern: bytes, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    return False
                if not data:
                    return False
                seen.extend(data)
                if pattern in seen:
                    return True
        return False
    try:
        assert until(b"Hit any key to stop autoboot", 300), bytes(seen)
        os.write(fd, b" ")
        assert until(b"=> ", 120), bytes(seen)
        os.write(fd, b"version\r")
        assert until(b"GNU ld", 120), bytes(seen)
        os.write(fd, b"poweroff\r")
        until(b"poweroff ...", 60)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, bytes(seen)
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    # The terminal's output processing (OPOST, kept as QEMU's stdio keeps it) makes
    # U-Boot's CR LF a CR CR LF.
    assert b"=> version\r\r\nU-Boot 2023.01" in seen, bytes(seen)
