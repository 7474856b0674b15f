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
