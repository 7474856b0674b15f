"""Code written at run time that neve must hook, found at the guest's instruction-cache
maintenance, while the guest goes on in the same translation block.

neve watches every ERET/LDAR/STLR word in RAM (neve/core/eret.py); code the guest writes
is scanned when it does its IC maintenance, from inside the SYS hook, and the hook
covering the new word is re-registered between slices (CPU.between_slices).  Doing
that from inside the hook pulled the running block from under Unicorn in Debian's
kernel, which then took an instruction abort right after its IC IALLU; this small
kernel did not trip over it, so it checks the deferred path itself: the block after
the IC goes on, and the written LDAR is hooked and runs (the Linux boot is the
boot issue's test).  This kernel has one LDAR in its image; it
writes another, and a RET, to RAM past it (outside the range hooked so far), does IC
IALLU, prints, and calls them.
"""
from __future__ import annotations

import pytest

from conftest import run_kernel
from guest_asm import MACROS

KERNEL = MACROS + r"""
    .global _start
_start:
    ldr     x0, =stack_top
    mov     sp, x0
    ldr     x3, =value
    ldar    x9, [x3]                    // hooked from the start (the image's own)
    ldr     x4, =snippet
    mov     w1, #0xfc62                 // ldar x2, [x3]
    movk    w1, #0xc8df, lsl #16
    str     w1, [x4]
    mov     w1, #0x03c0                 // ret
    movk    w1, #0xd65f, lsl #16
    str     w1, [x4, #4]
    dc      cvau, x4
    dsb     ish
    ic      iallu
    dsb     ish
    isb
    ldr     x0, =after                  // the same block goes on
    bl      puts
    ldr     x3, =value
    blr     x4
    ldr     x0, =ok
    ldr     x5, =0x5eed
    cmp     x2, x5
    b.eq    1f
    ldr     x0, =bad
1:  bl      puts
    ldr     x0, =0x84000008
    hvc     #0

    puts_function

after:  .asciz "after the IC\n"
ok:     .asciz "the written LDAR ran\n"
bad:    .asciz "the written LDAR read something else\n"
    .balign 8
value:  .quad 0x5eed
    .balign 4096
snippet: .space 64
    .balign 16
    .space 4096
stack_top:
"""

EXPECTED = b"after the IC\nthe written LDAR ran\n"


@pytest.mark.toolchain
def test_code_written_at_run_time_is_hooked_without_disturbing_the_running_block(tmp_path):
    r, qemu = run_kernel(tmp_path, "codechange", KERNEL)
    assert (r.returncode, r.stdout) == (0, EXPECTED), r.stderr
    assert qemu in (None, (EXPECTED, 0))
