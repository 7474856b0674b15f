"""External aborts through the guest's own stage 1: FAR_EL1 holds the virtual address.

Unicorn reports an access to unbacked memory by its *physical* address; with the
MMU on and VA != PA, neve must still give the guest the VA of the faulting byte, as
QEMU does.  The kernel maps VA 0x80000000 onto the unbacked PA 0xC0000000 with a
1 GiB block, loads from VA 0x80000010 and, with an 8-byte access that straddles a
page boundary, from VA 0x80000ffc, and prints whether its abort handler saw the VA.
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
    /* level-1 table: VA 0 -> PA 0 (device, for the UART), VA 0x40000000 -> PA
       0x40000000, VA 0x80000000 -> PA 0xC0000000 (nothing there) */
    ldr     x0, =l1
    ldr     x1, =0x00000405             /* block, AF, attr 1 (device) */
    str     x1, [x0]
    ldr     x1, =0x40000401             /* block, AF, attr 0 (normal) */
    str     x1, [x0, #8]
    ldr     x1, =0xC0000401
    str     x1, [x0, #16]
    ldr     x1, =0x00ff                 /* attr 0 normal WB, attr 1 Device-nGnRnE */
    msr     mair_el1, x1
    ldr     x1, =(25 | (1 << 23))       /* T0SZ 25, EPD1, 4K */
    msr     tcr_el1, x1
    msr     ttbr0_el1, x0
    isb
    mrs     x1, sctlr_el1
    orr     x1, x1, #1
    msr     sctlr_el1, x1
    isb
    ldr     x1, =0x80000010
    ldr     x2, [x1]                    /* abort 1: FAR must be 0x80000010 */
    ldr     x1, =0x80000ffc
    ldr     x2, [x1]                    /* abort 2: FAR must be 0x80000ffc */
    ldr     x0, =done
    bl      puts
    ldr     x0, =0x84000008
    hvc     #0

sync:                                   /* print "FAR ok" or "FAR bad", skip the load */
    mrs     x3, far_el1
    cmp     x3, x1
    ldr     x0, =far_ok
    ldr     x4, =far_bad
    csel    x0, x0, x4, eq
    mov     x20, x30
    bl      puts
    mov     x30, x20
    mrs     x3, elr_el1
    add     x3, x3, #4
    msr     elr_el1, x3
    eret

    puts_function
    vectors_current_spx sync, .

far_ok:  .asciz "FAR ok\n"
far_bad: .asciz "FAR bad\n"
done:    .asciz "done\n"
    .balign 4096
l1:      .space 4096
    .space 4096
stack_top:
"""

EXPECTED = b"FAR ok\nFAR ok\ndone\n"


@pytest.mark.toolchain
def test_far_is_the_virtual_address_with_the_mmu_on(tmp_path):
    r, qemu = run_kernel(tmp_path, "farva", KERNEL)
    assert (r.returncode, r.stdout) == (0, EXPECTED), r.stderr
    assert qemu in (None, (EXPECTED, 0))
