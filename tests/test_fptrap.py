"""FP/SIMD access traps on code Unicorn has already translated.

neve raises the FP access trap (EC 0x07) from a block hook (neve/core/fptrap.py).  A
kernel that first runs an FP instruction with FP enabled and then, with
CPACR_EL1.FPEN = 0, runs the very same code again must take the trap the second
time, although the block was translated while nothing hooked it.  Same again after
re-enabling and disabling FP a second time (the hook is kept across changes).
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
    ldr     x0, =vectors
    msr     vbar_el1, x0
    mov     x19, #0                     /* traps taken */
    mov     x21, #0                     /* round */
round:
    mov     x1, #(3 << 20)              /* FPEN = 0b11: FP enabled */
    msr     cpacr_el1, x1
    isb
    bl      fpwork                      /* translated with FP enabled */
    ldr     x0, =ran
    bl      puts
    msr     cpacr_el1, xzr              /* FPEN = 0b00: FP traps */
    isb
    bl      fpwork                      /* the same block must trap now */
    add     x21, x21, #1
    cmp     x21, #2
    b.lt    round
    ldr     x0, =done
    bl      puts
    ldr     x0, =0x84000008
    hvc     #0

fpwork:
    fmov    d0, x1
    ret

sync:                                   /* an FP trap: print, enable FP, retry */
    mrs     x3, esr_el1
    lsr     x3, x3, #26
    cmp     x3, #7
    ldr     x0, =fp_trap
    ldr     x4, =other
    csel    x0, x0, x4, eq
    mov     x20, x30
    bl      puts
    mov     x30, x20
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    isb
    eret

    puts_function
    vectors_current_spx sync, .

ran:     .asciz "ran\n"
fp_trap: .asciz "FP trap\n"
other:   .asciz "other exception\n"
done:    .asciz "done\n"
    .balign 16
    .space 4096
stack_top:
"""

EXPECTED = b"ran\nFP trap\nran\nFP trap\ndone\n"


@pytest.mark.toolchain
def test_fp_trap_in_code_translated_while_fp_was_enabled(tmp_path):
    r, qemu = run_kernel(tmp_path, "fptrans", KERNEL)
    assert (r.returncode, r.stdout) == (0, EXPECTED), r.stderr
    assert qemu in (None, (EXPECTED, 0))
