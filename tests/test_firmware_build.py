"""A rebuild of every firmware directory is byte-identical to the committed image.

Each image is rebuilt on its own into this test's tmp_path with
`tools/build_firmware.py --out DIR NAME`, so the tests run in parallel and never
touch images/.  The list of images is whatever firmware/ holds at collection time.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import CROSS, IMAGES, ROOT, need_tool

FIRMWARE = ROOT / "firmware"
BUILD = ROOT / "tools" / "build_firmware.py"

pytestmark = pytest.mark.toolchain


def firmware_names() -> list[str]:
    return sorted(p.name for p in FIRMWARE.iterdir()
                  if p.is_dir() and p.name != "common" and not p.name.startswith(".")
                  and (any(p.glob("*.S")) or any(p.glob("*.c"))))


@pytest.fixture(autouse=True)
def _need_toolchain():
    need_tool(CROSS + "gcc")


@pytest.mark.parametrize("name", firmware_names())
def test_rebuild_is_byte_identical(tmp_path, name):
    committed = IMAGES / f"{name}.elf"
    assert committed.is_file(), f"images/{name}.elf missing: run tools/build_firmware.py {name}"
    r = subprocess.run([sys.executable, str(BUILD), "--out", str(tmp_path), name], cwd=tmp_path,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    built = tmp_path / f"{name}.elf"
    assert built.is_file(), r.stdout + r.stderr
    a, b = built.read_bytes(), committed.read_bytes()
    if a != b:
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        pytest.fail(f"images/{name}.elf differs from a rebuild ({len(b)} vs {len(a)} bytes, first difference at "
                    f"offset {first:#x}): rebuild it with `python3 tools/build_firmware.py {name}` and commit")


def test_every_image_has_sources():
    """Nothing in images/ without a firmware/ directory that builds it."""
    names = set(firmware_names())
    orphans = sorted(p.stem for p in IMAGES.glob("*.elf") if p.stem not in names)
    assert not orphans, f"images without sources in firmware/: {orphans}"


def test_build_script_rejects_unknown_name(tmp_path):
    r = subprocess.run([sys.executable, str(BUILD), "--out", str(tmp_path), "no-such-firmware"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2
    assert "no-such-firmware" in r.stderr
    assert not any(tmp_path.iterdir())
