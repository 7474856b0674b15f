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

from conftest import assemble, run_neve
from neve.qemu import qemu_binary, run_qemu

KERNEL = r"""
    .equ GICD, 0x08000000
    .equ GICR, 0x080A0000
    .equ SGI_BASE, 0x080B0000
    .global _start
_start:
    ldr x28, =0x09000000
    ldr x0, =stack_top
    mov sp, x0
    ldr x0, =vectors
    msr vbar_el1, x0
    isb
    ldr x1, =GICD
    mov w0, #2                      // GICD_CTLR.EnableGrp1
    str w0, [x1]
    ldr x1, =GICR
    ldr w0, [x1, #0x14]             // GICR_WAKER: wake the redistributor
    bic w0, w0, #2
    str w0, [x1, #0x14]
1:  ldr w0, [x1, #0x14]
    tbnz w0, #2, 1b
    ldr x1, =SGI_BASE
    ldr w0, [x1, #0x80]             // PPI 27: group 1, priority 0xa0, enabled
    orr w0, w0, #(1 << 27)
    str w0, [x1, #0x80]
    mov w0, #0xa0
    strb w0, [x1, #(0x400 + 27)]
    mov w0, #(1 << 27)
    str w0, [x1, #0x100]
    mov x0, #0xff
    msr S3_0_C4_C6_0, x0            // ICC_PMR_EL1
    mov x0, #1
    msr S3_0_C12_C12_7, x0          // ICC_IGRPEN1_EL1
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

puts:
    ldrb w9, [x0], #1
    cbz w9, 1f
    strb w9, [x28]
    b puts
1:  ret

msg_at: .asciz "IRQ taken at DAIFClr + "
    .balign 2048
vectors:
    .rept 5
    b .
    .balign 128
    .endr
    b irq_handler                   // current EL, SPx, IRQ
    .balign 128
    .rept 10
    b .
    .balign 128
    .endr
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
    img = assemble(tmp_path, "unmask", KERNEL, 0x40000000)
    r = run_neve("run", img, timeout=60)
    assert (r.returncode, r.stdout) == (0, EXPECTED), r.stderr
    if qemu_binary() is not None:
        assert run_qemu([img]) == (EXPECTED, 0)
