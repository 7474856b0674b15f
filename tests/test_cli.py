"""The `neve run` command line: bad input, budgets, the stats JSON, the trace JSONL,
determinism and unsupported guest actions.

Every test runs `python -m neve run` in a subprocess, exactly as a user would, and
writes only under its own tmp_path (the suite runs in parallel with pytest-xdist).
"""
from __future__ import annotations

import json
import os
import re
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import (CROSS, EXIT_BAD_INPUT, EXIT_BUDGET, EXIT_UNSUPPORTED, assemble, image, need_tool, one_line_error,
                      run_neve)


def assert_bad_input(r: subprocess.CompletedProcess, *words: str) -> str:
    line = one_line_error(r)
    assert r.returncode == EXIT_BAD_INPUT, (r.returncode, line)
    assert r.stdout == b"", r.stdout
    for w in words:
        assert w.lower() in line.lower(), (w, line)
    return line


def patched_copy(tmp_path: Path, src: Path, name: str, patches: list[tuple[int, str, int]]) -> Path:
    data = bytearray(src.read_bytes())
    for off, fmt, value in patches:
        struct.pack_into(fmt, data, off, value)
    out = tmp_path / name
    out.write_bytes(bytes(data))
    return out


def first_load_phdr(data: bytes) -> int:
    """File offset of the first PT_LOAD program header of an ELF64 LE image."""
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        if struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 1:
            return phoff + i * phentsize
    raise AssertionError("no PT_LOAD")


# --- bad input: one line, exit 2, no traceback --------------------------------------------

def test_missing_file(tmp_path):
    assert_bad_input(run_neve("run", tmp_path / "nope.elf"), "nope.elf")


def test_directory(tmp_path):
    assert_bad_input(run_neve("run", tmp_path), "directory")


def test_not_an_elf(tmp_path):
    p = tmp_path / "readme.txt"
    p.write_text("this is not an ELF image\n")
    assert_bad_input(run_neve("run", p), "not an ELF")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.elf"
    p.write_bytes(b"")
    assert_bad_input(run_neve("run", p), "not an ELF")


def _x86_64_header() -> bytes:
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    return ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, 64, 0, 0, 64, 56, 1, 64, 0, 0) + \
        struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, 0x1000, 0x1000, 0x1000) + bytes(0x1000)


def test_x86_64_elf_crafted(tmp_path):
    p = tmp_path / "x86.elf"
    p.write_bytes(_x86_64_header())
    assert_bad_input(run_neve("run", p), "x86-64", "not AArch64")


def test_x86_64_elf_from_host_cc(tmp_path):
    cc = need_tool("cc")
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    out = tmp_path / "hostprog"
    subprocess.run([cc, str(tmp_path / "main.c"), "-o", str(out)], check=True)
    if out.read_bytes()[18] != 62:
        pytest.skip("the host compiler does not produce x86-64")
    assert_bad_input(run_neve("run", out), "x86-64")


def test_32bit_elf(tmp_path):
    # A well-formed ELF32 ARM executable header with one PT_LOAD.
    ident = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    ehdr = ident + struct.pack("<HHIIIIIHHHHHH", 2, 40, 1, 0x40000000, 52, 0, 0x05000000, 52, 32, 1, 40, 0, 0)
    phdr = struct.pack("<IIIIIIII", 1, 0x1000, 0x40000000, 0x40000000, 4, 4, 5, 0x1000)
    data = ehdr + phdr
    data += bytes(0x1000 - len(data)) + b"\xfe\xff\xff\xea"   # b .
    p = tmp_path / "arm32.elf"
    p.write_bytes(data)
    assert_bad_input(run_neve("run", p), "32-bit")


def test_big_endian_elf_patched(tmp_path):
    p = patched_copy(tmp_path, image("hello"), "be.elf", [(5, "B", 2)])  # EI_DATA = ELFDATA2MSB
    assert_bad_input(run_neve("run", p), "big-endian")


@pytest.mark.toolchain
def test_big_endian_elf_built(tmp_path):
    as_, ld = need_tool(CROSS + "as"), need_tool(CROSS + "ld")
    (tmp_path / "be.S").write_text(".globl _start\n_start: b .\n")
    r = subprocess.run([as_, "-EB", str(tmp_path / "be.S"), "-o", str(tmp_path / "be.o")], capture_output=True)
    if r.returncode != 0:
        pytest.skip("assembler cannot produce big-endian objects")
    subprocess.run([ld, "-EB", "-n", "-Ttext=0x40000000", str(tmp_path / "be.o"), "-o", str(tmp_path / "be.elf")],
                   check=True)
    assert (tmp_path / "be.elf").read_bytes()[5] == 2
    assert_bad_input(run_neve("run", tmp_path / "be.elf"), "big-endian")


@pytest.mark.parametrize("cut", ["ident", "header", "phdrs", "segment", "tail"])
def test_truncated(tmp_path, cut):
    data = image("hello").read_bytes()
    ph = first_load_phdr(data)
    seg_off, seg_filesz = struct.unpack_from("<Q", data, ph + 8)[0], struct.unpack_from("<Q", data, ph + 32)[0]
    n = {"ident": 10, "header": 40, "phdrs": ph + 20, "segment": seg_off + seg_filesz // 2,
         "tail": len(data) - 6}[cut]
    p = tmp_path / "cut.elf"
    p.write_bytes(data[:n])
    line = assert_bad_input(run_neve("run", p))
    assert "truncated" in line or "not an ELF" in line, line


def test_segment_outside_ram(tmp_path):
    data = image("hello").read_bytes()
    ph = first_load_phdr(data)
    # vaddr/paddr and entry moved to 0x50000000, past the end of the 128 MiB of RAM.
    p = patched_copy(tmp_path, image("hello"), "high.elf",
                     [(ph + 16, "<Q", 0x50000000), (ph + 24, "<Q", 0x50000000), (24, "<Q", 0x50000000)])
    assert_bad_input(run_neve("run", p), "outside RAM", "0x50000000")


def test_segment_past_smaller_ram(tmp_path):
    """hello sits at 0x44000000, beyond 32 MiB of RAM."""
    assert_bad_input(run_neve("run", "--ram", "32M", image("hello")), "outside RAM")


@pytest.mark.toolchain
def test_segment_below_ram(tmp_path):
    p = assemble(tmp_path, "low", ".globl _start\n_start: b .\n", 0x30000000)
    assert_bad_input(run_neve("run", p), "0x30000000")


@pytest.mark.toolchain
def test_segment_overlapping_uart(tmp_path):
    p = assemble(tmp_path, "atuart", ".globl _start\n_start: b .\n", 0x09000000)
    assert_bad_input(run_neve("run", p), "0x9000000", "overlaps")


@pytest.mark.toolchain
def test_segment_overlapping_gic(tmp_path):
    p = assemble(tmp_path, "atgic", ".globl _start\n_start: b .\n", 0x08000000)
    assert_bad_input(run_neve("run", p), "overlaps")


def test_entry_outside_segments(tmp_path):
    p = patched_copy(tmp_path, image("hello"), "entry.elf", [(24, "<Q", 0x47000000)])
    assert_bad_input(run_neve("run", p), "entry", "0x47000000")


def test_second_image_bad(tmp_path):
    """Extra images (loaders) are checked like the first."""
    assert_bad_input(run_neve("run", image("hello"), tmp_path / "missing.elf"), "missing.elf")


# --- hostile files (issue 16, defect 10) ----------------------------------------------------

def with_program_headers(tmp_path: Path, name: str, extra: list[bytes], keep: bool = True) -> Path:
    """A copy of hello.elf whose program headers are its own (keep) plus `extra`,
    written at the end of the file."""
    data = bytearray(image("hello").read_bytes())
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phnum, = struct.unpack_from("<H", data, 0x38)
    own = [bytes(data[phoff + i * 56:phoff + (i + 1) * 56]) for i in range(phnum)] if keep else []
    headers = own + extra
    struct.pack_into("<Q", data, 0x20, len(data))
    struct.pack_into("<H", data, 0x38, len(headers))
    data += b"".join(headers)
    out = tmp_path / name
    out.write_bytes(bytes(data))
    return out


def hello_load_header() -> bytes:
    data = image("hello").read_bytes()
    ph = first_load_phdr(data)
    return data[ph:ph + 56]


def test_device_file_is_refused():
    """/dev/zero would be read without end: refused before reading."""
    assert_bad_input(run_neve("run", "/dev/zero"), "not a regular file")


def test_fifo_is_refused(tmp_path):
    """Opening a FIFO with no writer blocks for ever: refused before opening."""
    fifo = tmp_path / "pipe.elf"
    os.mkfifo(fifo)
    assert_bad_input(run_neve("run", fifo, timeout=30), "not a regular file")


def test_duplicate_segment_is_refused(tmp_path):
    p = with_program_headers(tmp_path, "dup.elf", [hello_load_header()])
    assert_bad_input(run_neve("run", p), "overlap", "0x44000000")


def test_overlapping_segments_are_refused(tmp_path):
    t, f, off, va, pa, filesz, memsz, align = struct.unpack("<IIQQQQQQ", hello_load_header())
    shifted = struct.pack("<IIQQQQQQ", t, f, off, va + 0x10, pa + 0x10, filesz, memsz, align)
    assert_bad_input(run_neve("run", with_program_headers(tmp_path, "ovl.elf", [shifted])), "overlap", "0x44000010")


def test_65535_duplicate_segments_are_refused(tmp_path):
    p = with_program_headers(tmp_path, "dup64k.elf", [hello_load_header()] * 65535, keep=False)
    assert_bad_input(run_neve("run", p), "overlap")


def test_overlapping_images_are_refused():
    """Two images whose segments overlap: the second is refused (QEMU: 'Some ROM
    regions are overlapping')."""
    assert_bad_input(run_neve("run", image("hello"), image("hello")), "overlaps", "hello.elf")


def test_adjacent_segments_are_accepted(tmp_path):
    """A segment right after another (no byte in common) is fine."""
    t, f, off, va, pa, filesz, memsz, align = struct.unpack("<IIQQQQQQ", hello_load_header())
    end = (pa + memsz + 0xFFF) & ~0xFFF
    after = struct.pack("<IIQQQQQQ", t, 4, off, end, end, 0, 0x1000, align)
    r = run_neve("run", with_program_headers(tmp_path, "adj.elf", [after]))
    assert r.returncode == 0, r.stderr
    assert r.stdout == image_transcript("hello")


def image_transcript(name: str) -> bytes:
    return run_neve("run", image(name)).stdout


def test_unknown_p_type_runs_without_warning(tmp_path):
    """An unknown p_type is no error (a loader skips what it does not know) and prints
    nothing: lief's warning about the value it cannot name stays inside the loader."""
    bogus = struct.pack("<IIQQQQQQ", 0x0777_7777, 4, 0, 0, 0, 0, 0, 8)
    r = run_neve("run", with_program_headers(tmp_path, "ptype.elf", [bogus]))
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    assert r.stdout == image_transcript("hello")


@pytest.mark.toolchain
def test_non_utf8_symbol(tmp_path):
    """A symbol whose name is not UTF-8 is loaded (shown with escapes), not a traceback."""
    p = assemble(tmp_path, "sym", ".globl _start\n_start:\n"
                 "  ldr x0, =0x84000008\n  hvc #0\n  b .\n", 0x40080000)
    data = bytearray(p.read_bytes())
    i = data.index(b"_start\0")
    data[i:i + 6] = b"\xff\xfe\xa0art"          # every reference to the name "_start" now is not UTF-8
    p.write_bytes(bytes(data))
    r = run_neve("run", "--trace", tmp_path / "t.jsonl", p)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr.decode("utf-8", "replace")
    first = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])
    assert first["symbol"] == "\\xff\\xfe\\xa0art+0x4"


@pytest.mark.parametrize("args, words", [
    (["--mode", "bogus"], ["bogus"]),
    (["--max-insns", "-1"], ["--max-insns"]),
    (["--max-insns", "0"], ["--max-insns"]),
    (["--max-insns", "many"], ["--max-insns"]),
    (["--timeout", "-3"], ["--timeout"]),
    (["--timeout", "soon"], ["--timeout"]),
    (["--timeout", "nan"], ["--timeout", "finite"]),
    (["--timeout", "inf"], ["--timeout", "finite"]),
    (["--ram", "3"], ["--ram"]),
    (["--ram", "12x"], ["--ram"]),
    (["--ram", "4G"], ["--ram"]),
    (["--frobnicate"], ["--frobnicate"]),
])
def test_bad_options(args, words):
    assert_bad_input(run_neve("run", *args, image("hello")), *words)


def test_no_image():
    assert_bad_input(run_neve("run"))


def test_no_command():
    r = run_neve()
    assert r.returncode == EXIT_BAD_INPUT
    assert "Traceback" not in r.stderr.decode()
    assert r.stdout == b""


def test_unwritable_stats(tmp_path):
    assert_bad_input(run_neve("run", "--stats", tmp_path / "no" / "such" / "dir.json", image("hello")), "--stats")


def test_unwritable_timeline(tmp_path):
    # refused before the guest runs: nothing on stdout
    assert_bad_input(run_neve("run", "--timeline", tmp_path / "no" / "such" / "t.json", image("hello")), "--timeline")


def test_unwritable_trace(tmp_path):
    assert_bad_input(run_neve("run", "--trace", tmp_path / "no" / "such" / "dir.jsonl", image("hello")), "--trace")


# --- budgets --------------------------------------------------------------------------------

def test_max_insns_stops_spin(tmp_path):
    stats = tmp_path / "s.json"
    r = run_neve("run", "--max-insns", "200000", "--stats", stats, image("spin"))
    line = one_line_error(r)
    assert r.returncode == EXIT_BUDGET, line
    assert r.stdout == b"spin: looping forever\n"
    assert re.search(r"PC 0x[0-9a-f]+", line), line
    assert "200000" in line
    doc = json.loads(stats.read_text())
    assert doc["exit"] == {"reason": "budget", "status": EXIT_BUDGET}
    assert doc["instructions"] == 200000


def test_max_insns_exact_count_is_deterministic(tmp_path):
    a = run_neve("run", "--max-insns", "12345", image("spin"))
    b = run_neve("run", "--max-insns", "12345", image("spin"))
    assert a.returncode == b.returncode == EXIT_BUDGET
    assert a.stderr == b.stderr


def test_timeout_stops_spin(tmp_path):
    stats = tmp_path / "s.json"
    r = run_neve("run", "--timeout", "0.5", "--stats", stats, image("spin"))
    line = one_line_error(r)
    assert r.returncode == EXIT_BUDGET, line
    assert "timeout" in line and re.search(r"PC 0x[0-9a-f]+", line), line
    assert r.stdout == b"spin: looping forever\n"
    doc = json.loads(stats.read_text())
    assert doc["exit"]["status"] == EXIT_BUDGET
    assert doc["instructions"] > 0


def test_budget_large_enough_does_not_interfere():
    r = run_neve("run", "--max-insns", "10000000", image("hello"))
    assert r.returncode == 0 and r.stderr == b""
    assert r.stdout.startswith(b"hello: neve test kernel running at EL1\n")


# --- the stats JSON --------------------------------------------------------------------------

TRAP_CLASSES = {"sysreg", "eret", "hvc", "smc", "tlbi", "at", "abort", "mmio", "wfx", "semihosting", "irq", "debug"}


def check_stats_schema(doc: dict) -> None:
    """The documented --stats schema (fields may be added, none removed)."""
    assert isinstance(doc["mode"], str) and doc["mode"] in ("vm", "v8.3", "neve", "nv2")
    assert isinstance(doc["exit"]["reason"], str) and doc["exit"]["reason"]
    assert isinstance(doc["exit"]["status"], int)
    assert isinstance(doc["instructions"], int) and doc["instructions"] > 0
    traps = doc["traps"]
    assert isinstance(traps["total"], int) and traps["total"] >= 0
    for k in ("by_class", "by_register"):
        assert isinstance(traps[k], dict)
        for name, n in traps[k].items():
            assert isinstance(name, str) and name
            assert isinstance(n, int) and n > 0, (k, name, n)
    assert set(traps["by_class"]) <= TRAP_CLASSES, traps["by_class"]
    assert traps["total"] == sum(traps["by_class"].values())
    assert traps["total"] == sum(traps["by_register"].values())
    hc = doc["hypercalls"]
    assert isinstance(hc["count"], int) and hc["count"] >= 0
    tpc = hc["traps_per_call"]
    assert isinstance(tpc["min"], int) and isinstance(tpc["max"], int)
    assert isinstance(tpc["median"], (int, float)) and not isinstance(tpc["median"], bool)
    if hc["count"]:
        assert 1 <= tpc["min"] <= tpc["median"] <= tpc["max"]
    else:
        assert tpc == {"min": 0, "median": 0, "max": 0}
    vt = doc["virtual_time"]
    assert vt["frequency_hz"] == 1_000_000_000
    assert vt["counter"] == doc["instructions"] + vt["wfi_skipped"] and vt["wfi_skipped"] >= 0


def run_stats(tmp_path: Path, *images, mode: str = "vm") -> tuple[subprocess.CompletedProcess, dict]:
    stats = tmp_path / f"stats-{mode}.json"
    r = run_neve("run", "--mode", mode, "--stats", stats, *images)
    doc = json.loads(stats.read_text())
    check_stats_schema(doc)
    assert doc["mode"] == mode
    assert doc["exit"]["status"] == r.returncode
    return r, doc


@pytest.mark.parametrize("name, status, reason", [
    ("hello", 0, "system-off"), ("exceptions", 0, "system-off"), ("hypercall", 0, "system-off"),
    ("plainkernel", 0, "system-off"), ("semihost", 3, "semihosting-exit"),
])
def test_stats_schema_vm(tmp_path, name, status, reason):
    r, doc = run_stats(tmp_path, image(name))
    assert r.returncode == status
    assert doc["exit"] == {"reason": reason, "status": status}


def test_stats_vm_hypercall_meaning(tmp_path):
    r, doc = run_stats(tmp_path, image("hypercall"))
    assert r.returncode == 0
    hc = doc["hypercalls"]
    assert hc["count"] == 32
    assert hc["traps_per_call"] == {"min": 1, "median": 1, "max": 1}
    traps = doc["traps"]
    # 32 calls plus the PSCI SYSTEM_OFF that ends the run (its HVC traps, it never returns).
    assert traps["by_class"]["hvc"] == 33
    # Every UART byte is one MMIO store to the PL011 data register.
    assert traps["by_register"]["UART.DR"] == len(r.stdout)
    assert traps["by_class"]["mmio"] >= len(r.stdout)
    assert set(traps["by_class"]) == {"hvc", "mmio"}


def test_stats_vm_hello_meaning(tmp_path):
    r, doc = run_stats(tmp_path, image("hello"))
    # PSCI VERSION and SYSTEM_OFF: two HVCs, one hypercall that returned.
    assert doc["traps"]["by_class"]["hvc"] == 2
    assert doc["hypercalls"]["count"] == 1
    assert doc["traps"]["by_register"]["UART.DR"] == len(r.stdout)


def test_stats_semihosting_counted(tmp_path):
    r, doc = run_stats(tmp_path, image("semihost"))
    assert r.returncode == 3
    assert doc["traps"]["by_class"]["semihosting"] >= 3   # WRITE0, WRITEC, EXIT


def test_stats_virtual_time_counts_wfi_sleep(tmp_path):
    # timer waits in WFI for each of its timer interrupts: the counter runs ahead of the
    # instructions by the ticks skipped, the same on every run.
    docs = [run_stats(tmp_path, image("timer"))[1] for _ in range(2)]
    assert docs[0]["virtual_time"] == docs[1]["virtual_time"]
    assert docs[0]["virtual_time"]["wfi_skipped"] > 0
    _, hello = run_stats(tmp_path, image("hello"))
    assert hello["virtual_time"]["wfi_skipped"] == 0


@pytest.mark.parametrize("mode", ["v8.3", "neve", "nv2"])
def test_stats_schema_nested(tmp_path, mode):
    r, doc = run_stats(tmp_path, image("kvmlike"), image("hypercall"), mode=mode)
    assert r.returncode == 0
    assert doc["exit"] == {"reason": "system-off", "status": 0}
    assert doc["hypercalls"]["count"] == 32


# --- the trace JSONL --------------------------------------------------------------------------

TRACE_KEYS = {"seq", "icount", "pc", "level", "real_el", "class", "name", "rw", "value", "insn", "disasm", "reason"}
HEX = re.compile(r"0x[0-9a-f]+")


@pytest.mark.parametrize("images, mode", [
    (("hypercall",), "vm"),
    (("exceptions",), "vm"),
    (("kvmlike", "hypercall"), "v8.3"),
    (("tinyhyp",), "nv2"),
])
def test_trace(tmp_path, images, mode):
    trace, stats = tmp_path / "t.jsonl", tmp_path / "s.json"
    r = run_neve("run", "--mode", mode, "--trace", trace, "--stats", stats, *(image(i) for i in images))
    assert r.returncode == 0, r.stderr
    doc = json.loads(stats.read_text())
    text = trace.read_text()
    assert text.endswith("\n")
    recs = [json.loads(line) for line in text.splitlines()]
    assert len(recs) == doc["traps"]["total"]
    by_class: dict[str, int] = {}
    prev_seq, prev_icount = 0, 0
    for rec in recs:
        assert isinstance(rec, dict)
        assert TRACE_KEYS <= set(rec), TRACE_KEYS - set(rec)
        assert isinstance(rec["seq"], int) and rec["seq"] > prev_seq
        assert isinstance(rec["icount"], int) and rec["icount"] >= prev_icount
        prev_seq, prev_icount = rec["seq"], rec["icount"]
        assert rec["pc"] is None or HEX.fullmatch(rec["pc"])
        assert rec["level"] in ("EL0", "EL1", "vEL2")
        assert rec["real_el"] in (0, 1)
        assert rec["class"] in TRAP_CLASSES
        assert isinstance(rec["name"], str) and rec["name"]
        assert rec["rw"] in (None, "r", "w")
        assert rec["value"] is None or HEX.fullmatch(rec["value"])
        assert rec["insn"] is None or re.fullmatch(r"0x[0-9a-f]{8}", rec["insn"])
        assert rec["disasm"] is None or isinstance(rec["disasm"], str)
        assert isinstance(rec["reason"], str)
        if rec["class"] in ("sysreg", "eret", "hvc", "smc"):
            assert rec["insn"] is not None and rec["disasm"], rec
        if rec["class"] == "sysreg":
            assert rec["rw"] in ("r", "w")
            assert rec["disasm"].split()[0] in ("mrs", "msr"), rec
        by_class[rec["class"]] = by_class.get(rec["class"], 0) + 1
    assert by_class == doc["traps"]["by_class"]
    if mode == "vm":
        assert {r_["level"] for r_ in recs} <= {"EL1", "EL0"}
    else:
        assert "vEL2" in {r_["level"] for r_ in recs}
        erets = [r_ for r_ in recs if r_["class"] == "eret"]
        assert erets and all(e["level"] == "vEL2" and e["disasm"].startswith("eret") for e in erets)


# --- determinism ------------------------------------------------------------------------------

@pytest.mark.parametrize("images, mode", [
    (("plainkernel",), "vm"),
    (("semihost",), "vm"),
    (("kvmlike", "hypercall"), "v8.3"),
    (("kvmlike", "hypercall"), "nv2"),
    (("tinyhyp",), "neve"),
    (("nv2probe",), "v8.3"),
])
def test_deterministic(tmp_path, images, mode):
    runs = []
    for i in range(2):
        d = tmp_path / f"run{i}"
        d.mkdir()
        r = run_neve("run", "--mode", mode, "--stats", d / "s.json", "--trace", d / "t.jsonl",
                     *(image(n) for n in images))
        runs.append((r.returncode, r.stdout, r.stderr, (d / "s.json").read_bytes(), (d / "t.jsonl").read_bytes()))
    assert runs[0][1], "no transcript"
    for k, what in enumerate(("status", "transcript", "stderr", "stats JSON", "trace")):
        assert runs[0][k] == runs[1][k], f"{what} differs between two runs"


# --- unsupported guest actions ----------------------------------------------------------------

UNKNOWN_EL2_MSR = """
        .globl  _start
_start: ldr     x28, =0x09000000
        mov     w0, #'u'
        strb    w0, [x28]
        mov     w0, #'\\n'
        strb    w0, [x28]
        mov     x0, #1
        b       1f
        .org    0x40
1:      msr     S3_4_C3_C0_0, x0        // DACR32_EL2, at 0x40000040
        b       .
        .ltorg
"""


@pytest.mark.toolchain
@pytest.mark.parametrize("mode", ["v8.3", "neve", "nv2"])
def test_unsupported_el2_register(tmp_path, mode):
    p = assemble(tmp_path, "unk", UNKNOWN_EL2_MSR, 0x40000000)
    stats = tmp_path / "s.json"
    r = run_neve("run", "--mode", mode, "--stats", stats, p)
    line = one_line_error(r)
    assert r.returncode == EXIT_UNSUPPORTED, line
    assert "unsupported" in line.lower()
    assert "0x40000040" in line, line       # the PC of the MSR
    # The Cortex-A72 model has DACR32_EL2 (AArch32 state at EL1); neve does not emulate it.
    assert "S3_4_C3_C0_0" in line.upper(), line
    assert r.stdout == b"u\n"
    doc = json.loads(stats.read_text())
    assert doc["exit"] == {"reason": "unsupported", "status": EXIT_UNSUPPORTED}


@pytest.mark.parametrize("mode", ["vm", "neve"])
def test_sigint_while_the_guest_runs_stops_the_run_between_instructions(mode):
    """SIGINT (Ctrl-C) while Unicorn runs: KeyboardInterrupt once emu_start has returned
    (raised inside one of Unicorn's callbacks it could be lost, and the run go on), with
    the CPU stopped between instructions; the machine can run on afterwards.  SIGINT
    arrives many times to hit every place the run can be in."""
    import signal
    import threading
    import time
    from neve.core import elf
    from neve.core.machine import Machine
    ims = [elf.load(str(image("spin")))] if mode == "vm" else [elf.load(str(image("minhyp"))),
                                                                     elf.load(str(image("spin")))]
    m = Machine(ims, mode=mode, max_insns=10**12, uart_out=lambda b: None)
    for delay in [0.001 * (1 + i % 7) * (1 + i // 7) for i in range(21)]:
        with pytest.raises(KeyboardInterrupt):
            t = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
            t.start()
            start = time.monotonic()
            while time.monotonic() - start < 30:
                m.run(max_slice=1_000_000)
                m.result = None
        t.join()
    before = m.icount()
    m.result = None
    r = m.run(max_slice=10_000)
    assert r.reason == "paused" and m.icount() == before + 10_000
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
