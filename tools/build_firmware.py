#!/usr/bin/env python3
"""Build the test kernels in firmware/ into ELF images.

Every directory firmware/<name>/ (except common/) holds one image: its *.S and *.c
files are compiled and linked with firmware/<name>/link.ld if present, else with
firmware/common/link.ld at the address given by a `BASE` file in the directory
(default 0x44000000).  The result is <out>/<name>.elf.

An optional `USES` file in the directory lists shared sources from firmware/common/
(one file name per line, `#` starts a comment) that are compiled into the image
before its own sources.

The build is reproducible: no build id, no absolute paths, no timestamps, so a
rebuild from the same sources with the same Debian toolchain is byte-identical to
the committed images (tests/test_firmware_build.py checks this).

Usage: tools/build_firmware.py [--out DIR] [NAME ...]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
COMMON = FIRMWARE / "common"
CROSS = os.environ.get("CROSS_COMPILE", "aarch64-linux-gnu-")

CFLAGS = [
    "-march=armv8.4-a",
    "-mgeneral-regs-only",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-pic",
    "-fno-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-fno-common",
    "-mstrict-align",
    "-O2",
    "-Wall",
    "-Werror",
    "-g0",
    "-nostdlib",
    "-nostartfiles",
    "-static",
]
LDFLAGS = ["-Wl,--build-id=none", "-Wl,-n", "-Wl,--no-warn-rwx-segments"]


def images() -> list[str]:
    return sorted(
        p.name for p in FIRMWARE.iterdir() if p.is_dir() and p.name != "common" and not p.name.startswith(".")
    )


def uses(src: Path) -> list[Path]:
    """The shared sources firmware/<name>/USES asks for, in the order listed."""
    f = src / "USES"
    if not f.exists():
        return []
    out = []
    for line in f.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        p = COMMON / line
        if p.suffix not in (".S", ".c") or not p.is_file():
            raise SystemExit(f"build_firmware: {src.name}/USES: no source firmware/common/{line}")
        out.append(p)
    return out


def build(name: str, out: Path) -> Path:
    src = FIRMWARE / name
    sources = uses(src) + sorted(src.glob("*.S")) + sorted(src.glob("*.c"))
    if not sources:
        raise SystemExit(f"build_firmware: {name}: no sources")
    base_file = src / "BASE"
    base = base_file.read_text().strip() if base_file.exists() else "0x44000000"
    link = src / "link.ld" if (src / "link.ld").exists() else COMMON / "link.ld"
    target = out / f"{name}.elf"
    with tempfile.TemporaryDirectory() as tmp:
        # Compile from the repository root with relative paths so nothing
        # machine-specific ends up in the image.
        objs = []
        for i, s in enumerate(sources):
            # Numbered so that a shared file and a local one with the same stem
            # cannot collide.
            obj = Path(tmp) / f"{i:02d}_{s.parent.name}_{s.stem}{s.suffix.replace('.', '_')}.o"
            cmd = [CROSS + "gcc", *CFLAGS, f"-I{COMMON.relative_to(ROOT)}", f"-I{src.relative_to(ROOT)}",
                   "-c", str(s.relative_to(ROOT)), "-o", str(obj)]
            subprocess.run(cmd, cwd=ROOT, check=True)
            objs.append(str(obj))
        cmd = [CROSS + "gcc", *CFLAGS, *LDFLAGS, f"-Wl,--defsym=BASE={base}",
               "-T", str(link.relative_to(ROOT)), *objs, "-o", str(target), "-lgcc"]
        subprocess.run(cmd, cwd=ROOT, check=True)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "images", help="output directory (default images/)")
    ap.add_argument("names", nargs="*", help="images to build (default: all)")
    args = ap.parse_args(argv)
    if shutil.which(CROSS + "gcc") is None:
        print(f"build_firmware: {CROSS}gcc not found (apt-get install gcc-aarch64-linux-gnu)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or images():
        if not (FIRMWARE / name).is_dir():
            print(f"build_firmware: no firmware/{name}", file=sys.stderr)
            return 2
        print(build(name, args.out.resolve()).relative_to(args.out.resolve().parent) if args.out.resolve().parent else name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
