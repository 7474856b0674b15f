"""The CFI flash (neve/devices/pflash.py) against QEMU's pflash_cfi01 on `virt`: the
CFI query table, device IDs and status, word program, block erase, buffered write
as U-Boot does them, the array contents after a run (--pflash files compared with
QEMU's -drive if=pflash files byte for byte), persistence, and code executed in
place from bank 0 while the bank switches between read-array and command modes."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import assemble, need_qemu, need_tool, run_neve, CROSS
from guest_asm import MACROS

BANK = 64 << 20

PRELUDE = MACROS + r"""
    .macro nl
    mov     w0, #10
    strb    w0, [x1]
    .endm
    .macro cmd addr, value                // a command (x9 = the bank), replicated per device
    ldr     w0, =(\value | (\value << 16))
    ldr     x13, =\addr
    str     w0, [x9, x13]
    .endm
    .macro show addr                      // print the 32-bit word at x9 + addr
    ldr     x13, =\addr
    ldr     w0, [x9, x13]
    put_hex_x0 32
    nl
    .endm
"""

QUERY = PRELUDE + r"""
    .global _start
_start:
    ldr     x1, =0x09000000
    ldr     x9, =0x04000000               // bank 1
    cmd     0x154, 0x98                   // CFI query
    mov     x10, #0
1:  ldr     w0, [x9, x10, lsl #2]
    put_hex_x0 32
    nl
    add     x10, x10, #1
    cmp     x10, #0x44
    b.ne    1b
    ldrh    w0, [x9, #0x40]               // narrower reads
    put_hex_x0 16
    nl
    ldrb    w0, [x9, #0x44]
    put_hex_x0 8
    nl
    cmd     0, 0xff
    cmd     0, 0x90                       // read ID
    show    0
    show    4
    show    8
    cmd     0, 0x70                       // read status
    show    0
    cmd     0, 0x50                       // clear status: back to read array
    cmd     0, 0x70
    show    0
    cmd     0, 0xff
    show    0
    system_off_any_el
"""

PROGRAM = PRELUDE + r"""
    .global _start
_start:
    ldr     x1, =0x09000000
    ldr     x9, =0x04000000               // bank 1
    cmd     0, 0x20                       // erase the first sector
    cmd     0, 0xd0
    show    0                             // status
    cmd     0, 0xff
    show    0                             // erased
    show    0x3fffc
    show    0x40000                       // the next sector: untouched (zero)
    cmd     0x10, 0x40                    // word program
    ldr     w0, =0x12345678
    str     w0, [x9, #0x10]
    show    0x10                          // status
    cmd     0, 0xff
    show    0x10
    // Buffered write of 8 words at 0x1000, as U-Boot's flash_write_cfibuffer.
    add     x11, x9, #0x1000
    cmd     0x1000, 0xe8
    show    0x1000                        // status: ready
    cmd     0x1000, 7                     // 8 words
    mov     x10, #0
2:  ldr     w0, =0xa5a50000
    orr     w0, w0, w10
    str     w0, [x11, x10, lsl #2]
    add     x10, x10, #1
    cmp     x10, #8
    b.ne    2b
    cmd     0x1000, 0xd0                  // confirm
    show    0x1000
    cmd     0, 0xff
    show    0x1000
    show    0x101c
    show    0x1020
    // An aborted buffered write leaves the array alone.
    cmd     0x2000, 0xe8
    cmd     0x2000, 0
    ldr     w0, =0xdeadbeef
    str     w0, [x9, #0x2000]
    cmd     0x2000, 0xff                  // not a confirm: discarded
    show    0x2000
    // A 64-bit read in read-array mode, and a store in read-array mode that is a
    // command (read status), not data.
    ldr     x0, [x9, #0x1000]
    put_hex_x0 64
    nl
    ldr     x12, =0x00700070
    str     w12, [x9, #0x3000]
    show    0x3000
    cmd     0, 0xff
    show    0x3000
    system_off_any_el
"""

# A single-word buffered write (count 0): QEMU 10 sets SR.4 (programming error),
# writes nothing and refuses the confirm; two words go through.
BUFFER_EDGE = PRELUDE + r"""
    .global _start
_start:
    ldr     x1, =0x09000000
    ldr     x9, =0x04000000
    cmd     0x3000, 0xe8
    show    0x3000
    cmd     0x3000, 0
    show    0x3000
    ldr     w0, =0xdeadbeef
    str     w0, [x9, #0x3000]
    show    0x3000
    cmd     0x3000, 0xd0
    show    0x3000
    cmd     0, 0xff
    show    0x3000
    cmd     0, 0x50
    cmd     0x3000, 0xe8
    cmd     0x3000, 1
    ldr     w0, =0xdeadbeef
    str     w0, [x9, #0x3000]
    show    0x3000
    ldr     w0, =0xfeedf00d
    str     w0, [x9, #0x3004]
    cmd     0x3000, 0xd0
    show    0x3000
    cmd     0, 0xff
    show    0x3000
    show    0x3004
    system_off_any_el
"""

# Bank 0 (x9) and bank 1 (x10): print a word of each, program both, print again.
PERSIST = PRELUDE + r"""
    .global _start
_start:
    ldr     x1, =0x09000000
    ldr     x9, =0x00000000
    show    0x100
    cmd     0x100, 0x40
    ldr     w0, =0x600dcafe
    str     w0, [x9, #0x100]
    cmd     0, 0xff
    show    0x100
    ldr     x9, =0x04000000
    show    0x200
    cmd     0x200, 0x40
    ldr     w0, =0x0b0e0f0a
    str     w0, [x9, #0x200]
    cmd     0, 0xff
    show    0x200
    system_off_any_el
"""

# Runs from flash bank 0 (QEMU's -bios): prints from flash, copies a routine to
# RAM that programs a word of bank 0 (the bank leaves read-array mode, so its code
# cannot run meanwhile) and returns it to read-array mode, then reads the word from
# flash code again.
BIOS = PRELUDE + r"""
    .global _start
_start:
    ldr     x1, =0x09000000
    adr     x0, hello
    bl      puts
    adr     x2, routine                   // copy the routine to RAM
    adr     x3, routine_end
    ldr     x4, =0x40100000
1:  ldr     w5, [x2], #4
    str     w5, [x4], #4
    cmp     x2, x3
    b.ne    1b
    dsb     ish
    ic      iallu
    dsb     ish
    isb
    ldr     x4, =0x40100000
    blr     x4
    ldr     x9, =0
    show    0x10000
    mov     x0, x20                       // the status the routine read
    put_hex_x0 32
    nl
    adr     x0, bye
    bl      puts
    system_off_any_el
    puts_function
hello: .asciz "running from flash\n"
bye:   .asciz "flash code again\n"
    .balign 8                             // its literals stay 8-byte aligned in RAM (MMU off: Device)
routine:
    ldr     x9, =0
    ldr     x13, =0x10000
    ldr     w0, =0x00400040
    str     w0, [x9, x13]                 // word program
    ldr     w0, =0x4b4f4b4f
    str     w0, [x9, x13]
    ldr     w20, [x9, x13]                // status
    ldr     w0, =0x00ff00ff
    str     w0, [x9]                      // read array
    ret
    .ltorg
routine_end:
"""

TRAMPOLINE = ".global _start\n_start:\n    mov x0, #0\n    br x0\n"


def _qemu(tmp_path: Path, img: Path, *extra: str) -> bytes:
    from neve.qemu import qemu_command
    cmd = [c for c in qemu_command([img], semihosting=False)]
    if extra and extra[0] == "-bios":
        i = cmd.index("-kernel")
        del cmd[i:i + 2]
    p = subprocess.run(cmd + list(extra), capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr[-500:]
    return p.stdout


def _both(tmp_path: Path, name: str, source: str, *neve_args: str, qemu_args: tuple = ()):
    img = assemble(tmp_path, name, source, 0x4000_0000)
    r = run_neve("run", *neve_args, img, timeout=120)
    assert r.returncode == 0, r.stderr
    need_qemu()
    return r.stdout, _qemu(tmp_path, img, *qemu_args)


@pytest.mark.toolchain
@pytest.mark.parametrize("name", ["QUERY", "PROGRAM", "BUFFER_EDGE"])
def test_commands_match_qemu(tmp_path, name):
    """CFI query table, IDs, status, clear status; erase, word program, buffered write
    (and its abort, and QEMU's refusal of a single word), a 64-bit read, a command
    written while in read-array mode: the words read equal QEMU's."""
    ours, qemu = _both(tmp_path, name.lower(), globals()[name])
    assert ours == qemu
    assert len(ours.splitlines()) >= 9


def _zero_files(tmp_path: Path, prefix: str) -> list[Path]:
    files = []
    for unit in (0, 1):
        f = tmp_path / f"{prefix}{unit}.img"
        with open(f, "wb") as fh:
            fh.truncate(BANK)
        files.append(f)
    return files


@pytest.mark.toolchain
def test_flash_files_after_a_run_match_qemu(tmp_path):
    """The PROGRAM sequence with the banks backed by files: bank 1's file
    neve leaves equals the one QEMU leaves (-drive if=pflash,unit=1), byte for byte.
    (QEMU boots a unit-0 drive as firmware instead of -kernel, so it gets unit 1 only.)"""
    for name in ("PROGRAM",):
        n0, n1 = _zero_files(tmp_path, f"n{name}")
        _, q1 = _zero_files(tmp_path, f"q{name}")
        ours, qemu = _both(tmp_path, name.lower(), globals()[name], "--pflash", n0, "--pflash", n1,
                           qemu_args=("-drive", f"if=pflash,format=raw,unit=1,file={q1}"))
        assert ours == qemu
        assert n1.read_bytes() == q1.read_bytes()
    assert n1.read_bytes()[0x10:0x14] == bytes.fromhex("78563412")
    assert n0.read_bytes() == bytes(BANK)


@pytest.mark.toolchain
def test_pflash_persists_between_runs(tmp_path):
    img = assemble(tmp_path, "persist", PERSIST, 0x4000_0000)
    f0, f1 = _zero_files(tmp_path, "p")
    runs = [run_neve("run", "--pflash", f0, "--pflash", f1, img, timeout=60) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0]
    assert runs[0].stdout == b"00000000\n600dcafe\n00000000\n0b0e0f0a\n"
    assert runs[1].stdout == b"600dcafe\n600dcafe\n0b0e0f0a\n0b0e0f0a\n"
    # Without a file, the flash lives for the run only.
    r = run_neve("run", img, timeout=60)
    assert r.stdout == runs[0].stdout


@pytest.mark.toolchain
def test_bank0_code_runs_in_place_as_on_qemu(tmp_path):
    """Code in flash bank 0 (QEMU's -bios) runs from it, programs the bank from RAM
    and runs from it again with the new word visible; neve starts it through a RAM
    trampoline, QEMU with -bios: the transcripts are equal."""
    from neve.core import elf
    from neve.core.machine import Machine
    objcopy = need_tool(CROSS + "objcopy")
    bios_elf = assemble(tmp_path, "bios", BIOS, 0)
    bios = tmp_path / "bios.bin"
    subprocess.run([objcopy, "-O", "binary", str(bios_elf), str(bios)], check=True)
    tramp = assemble(tmp_path, "tramp", TRAMPOLINE, 0x4000_0000)
    m = Machine([elf.load(str(tramp))], bios=bios.read_bytes(), max_insns=1_000_000)
    res = m.run()
    assert res.reason == "system-off", res.message
    ours = bytes(m.transcript)
    assert ours == b"running from flash\n4b4f4b4f\n00800080\nflash code again\n"
    need_qemu()
    assert _qemu(tmp_path, tramp, "-bios", str(bios)) == ours


@pytest.mark.toolchain
def test_bad_flash_options(tmp_path, neve_in_process):
    from conftest import one_line_error
    img = assemble(tmp_path, "persist", PERSIST, 0x4000_0000)
    small = tmp_path / "small.img"
    small.write_bytes(b"\0" * 4096)
    for args, msg in ((["--pflash", str(tmp_path / "none.img")], "No such file"),
                      (["--pflash", str(small)], "requires 67108864 bytes"),
                      (["--pflash", str(small)] * 3, "two flash banks")):
        r = neve_in_process("run", *args, str(img))
        assert r.returncode == 2
        assert msg in one_line_error(r)
