"""An interrupt pending while masked is taken right after the instruction that
unmasks it, also when that `msr daifclr` was written at run time.

Unicorn reports no `msr daifclr`; neve watches PSTATE.I/F at block starts while an
interrupt waits (neve/gic/delivery.py: Interrupts.masked), and Unicorn ends a block
after MSR DAIFClr.  The kernel lets its virtual timer fire with IRQs masked, copies a
`msr daifclr, #2` and two NOPs into RAM, runs them, and prints where the IRQ was
taken (ELR_EL1) relative to the copied DAIFClr: +4 on QEMU and on hardware.
"""
from __future__ import annotations

import pytest

from conftest import run_kernel
from guest_asm import MACROS

KERNEL = MACROS + r"""
    .global _start
_start:
    ldr x28, =0x09000000
    ldr x0, =stack_top
    mov sp, x0
    ldr x0, =vectors
    msr vbar_el1, x0
    isb
    gic_enable_ppi 27, 0xa0         // the virtual timer's PPI
    // Copy the unmasking code into RAM (run time: not part of the loaded image).
    ldr x0, =tramp
    ldr x1, =0xd50342ff             // msr daifclr, #2
    str w1, [x0]
    ldr x1, =0xd503201f             // nop
    str w1, [x0, #4]
    str w1, [x0, #8]
    ldr x1, =0xd65f03c0             // ret
    str w1, [x0, #12]
    dc cvau, x0
    dsb ish
    ic ivau, x0
    dsb ish
    isb
    // The timer fires while IRQs are masked.
    msr daifset, #2
    mov x0, #200
    msr cntv_tval_el0, x0
    mov x0, #1
    msr cntv_ctl_el0, x0
    isb
2:  mrs x0, cntv_ctl_el0            // wait for ISTATUS
    tbz x0, #2, 2b
    mov x0, #3000                   // ... and run on masked for a while
3:  subs x0, x0, #1
    b.ne 3b
    ldr x0, =tramp
    blr x0                          // unmasks: the IRQ is taken after the DAIFClr
    ldr x0, =elr
    ldr x1, [x0]
    ldr x2, =tramp
    sub x1, x1, x2
    adr x0, msg_at
    bl puts
    add w1, w1, #'0'
    strb w1, [x28]
    mov w1, #10
    strb w1, [x28]
    ldr x0, =0x84000008
    hvc #0

irq_handler:
    mrs x2, S3_0_C12_C12_0          // ICC_IAR1_EL1
    mrs x3, elr_el1
    ldr x4, =elr
    str x3, [x4]
    msr cntv_ctl_el0, xzr
    isb
    msr S3_0_C12_C12_1, x2          // ICC_EOIR1_EL1
    eret

    puts_function

msg_at: .asciz "IRQ taken at DAIFClr + "
    vectors_current_spx ., irq_handler
    .balign 64
tramp: .space 64
elr:   .quad 0
    .balign 16
    .space 4096
stack_top:
"""

EXPECTED = b"IRQ taken at DAIFClr + 4\n"


@pytest.mark.toolchain
def test_irq_taken_right_after_a_daifclr_written_at_run_time(tmp_path):
    r, qemu = run_kernel(tmp_path, "unmask", KERNEL)
    assert (r.returncode, r.stdout) == (0, EXPECTED), r.stderr
    assert qemu in (None, (EXPECTED, 0))
