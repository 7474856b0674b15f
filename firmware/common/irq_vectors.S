/* EL1 vector table for the interrupt test kernels (firmware/timer, vtimer,
 * virteoi keep identical copies of this file).
 *
 * Only "current EL with SP_ELx, IRQ" (VBAR_EL1 + 0x280) is expected: it saves
 * the caller-saved registers, calls irq_handler() (C) and returns with ERET.
 * IRQs stay masked while the handler runs (no nesting), so ELR_EL1/SPSR_EL1
 * need no saving.  Any other vector calls bad_exception(vector, ESR, ELR),
 * which reports and powers off. */
    .macro  vent target, code
    .balign 0x80
    mov     x0, #\code
    b       \target
    .endm

    .text
    .balign 0x800
    .global irq_vectors
irq_vectors:
    vent    bad_vector, 0       /* current EL, SP_EL0 */
    vent    bad_vector, 1
    vent    bad_vector, 2
    vent    bad_vector, 3
    vent    bad_vector, 4       /* current EL, SP_ELx: sync */
    .balign 0x80
    b       irq_entry           /* current EL, SP_ELx: IRQ */
    vent    bad_vector, 6
    vent    bad_vector, 7
    vent    bad_vector, 8       /* lower EL, AArch64 */
    vent    bad_vector, 9
    vent    bad_vector, 10
    vent    bad_vector, 11
    vent    bad_vector, 12      /* lower EL, AArch32 */
    vent    bad_vector, 13
    vent    bad_vector, 14
    vent    bad_vector, 15

irq_entry:
    sub     sp, sp, #160
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x30, [sp, #144]
    bl      irq_handler
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x30, [sp, #144]
    add     sp, sp, #160
    .global irq_return
irq_return:                     /* the handler's exception return (neve bench's window end) */
    eret

bad_vector:
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    b       bad_exception
