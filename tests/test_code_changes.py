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


# Code written through a second, non-executable mapping of its page (as Linux writes
# code through its linear map), then made visible by the IC maintenance the
# architecture requires: IC IVAU by the writer's VA, IC IALLU, IC IVAU by the
# executable VA.  neve's unmapped-access hooks leave RAM out, so Unicorn sees a store
# to translated code only through a TLB entry it has not yet marked dirty; the
# alias's entry is made dirty first (a store before the code of the page is
# translated, again before each step), so only the IC maintenance
# (SysregHooks._drop_translations) can drop the stale translation.  QEMU sees every store to code: the same "1234".
ALIAS_KERNEL = MACROS + r"""
    .equ    EXEC, 0x40200000            // the code page, executable
    .equ    ALIAS, 0x40201000           // the same page, PXN/UXN: the writer's
    .global _start
_start:
    ldr     x0, =stack_top
    mov     sp, x0
    ldr     x0, =0x00ff                 // MAIR: 0 Normal WB, 1 Device-nGnRnE
    msr     mair_el1, x0
    ldr     x0, =(25 | 0x3500 | (1 << 23) | (2 << 32))    // T0SZ 25, 4K, WB, EPD1, 40 bits
    msr     tcr_el1, x0
    ldr     x0, =l1
    msr     ttbr0_el1, x0
    isb
    ldr     x0, =0x30d01805             // M, C, I
    msr     sctlr_el1, x0
    isb
    ldr     x19, =ALIAS
    ldr     x20, =EXEC
    str     wzr, [x19, #0x800]          // the alias's TLB entry: dirty
    mov     w21, #0x0020                // movz x0, #1 (imm16 << 5)
    movk    w21, #0xd280, lsl #16
    mov     w22, #0x03c0                // ret
    movk    w22, #0xd65f, lsl #16
    str     w21, [x19]
    str     w22, [x19, #4]
    dc      cvau, x19
    dsb     ish
    ic      ivau, x19
    dsb     ish
    isb
    blr     x20                         // translated now: 1
    bl      putdigit

    str     wzr, [x19, #0x800]          // the alias's entry dirty again (IC maintenance may flush the TLB),
    blr     x20                         // then the code translated: only IC maintenance can drop it
    add     w21, w21, #0x20             // movz x0, #2, through the alias
    str     w21, [x19]
    dc      cvau, x19
    dsb     ish
    ic      ivau, x19                   // by the alias (Linux's linear map)
    dsb     ish
    isb
    blr     x20
    bl      putdigit

    str     wzr, [x19, #0x800]          // the alias's entry dirty again (IC maintenance may flush the TLB),
    blr     x20                         // then the code translated: only IC maintenance can drop it
    add     w21, w21, #0x20             // #3
    str     w21, [x19]
    dc      cvau, x19
    dsb     ish
    ic      iallu
    dsb     ish
    isb
    blr     x20
    bl      putdigit

    str     wzr, [x19, #0x800]          // the alias's entry dirty again (IC maintenance may flush the TLB),
    blr     x20                         // then the code translated: only IC maintenance can drop it
    add     w21, w21, #0x20             // #4
    str     w21, [x19]
    dc      cvau, x19
    dsb     ish
    ic      ivau, x20                   // by the executable VA
    dsb     ish
    isb
    blr     x20
    bl      putdigit

    mov     w0, #'\n'
    bl      putc
    ldr     x0, =0x84000008
    hvc     #0

putdigit:
    add     w0, w0, #'0'
putc:
    ldr     x5, =0x09000000
    strb    w0, [x5]
    ret

    .ltorg
    .balign 4096
l1: .quad   0x0060000000000405          // 0-1 GiB: Device (the UART), XN
    .quad   l2 + 3
    .fill   510, 8, 0
l2: .quad   0x40000701                  // 0x40000000, 2 MiB: this image
    .quad   l3 + 3                      // 0x40200000: the two views of `code`
    .fill   510, 8, 0
l3: .quad   code + 0x703
    .quad   code + 0x0060000000000703
    .fill   510, 8, 0
code:
    .fill   1024, 4, 0xd503201f
    .space  4096
stack_top:
"""


@pytest.mark.toolchain
def test_code_written_through_an_alias_runs_after_ic_maintenance(tmp_path):
    r, qemu = run_kernel(tmp_path, "codealias", ALIAS_KERNEL)
    assert (r.returncode, r.stdout) == (0, b"1234\n"), r.stderr
    assert qemu in (None, (b"1234\n", 0))
