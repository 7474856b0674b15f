/* exceptions: the EL1 vector table and the instructions that raise each exception.
 *
 * Every vector entry records (vector offset, ESR_EL1, ELR_EL1, FAR_EL1, SPSR_EL1)
 * in exc_record and bumps exc_record.count.  For everything except SVC (whose
 * preferred return address is already the next instruction) ELR_EL1 is advanced by
 * 4 so the handler returns past the faulting instruction. */
#include "fw.h"

    .macro  ventry off
    .balign 0x80
    sub     sp, sp, #32
    stp     x0, x1, [sp]
    stp     x2, x3, [sp, #16]
    mov     x0, #\off
    b       exc_common
    .endm

    .text
    .balign 0x800
    .global exc_vectors
exc_vectors:
    ventry  0x000       // current EL, SP_EL0: sync
    ventry  0x080       //   IRQ
    ventry  0x100       //   FIQ
    ventry  0x180       //   SError
    ventry  0x200       // current EL, SP_ELx: sync
    ventry  0x280       //   IRQ
    ventry  0x300       //   FIQ
    ventry  0x380       //   SError
    ventry  0x400       // lower EL, AArch64
    ventry  0x480
    ventry  0x500
    ventry  0x580
    ventry  0x600       // lower EL, AArch32
    ventry  0x680
    ventry  0x700
    ventry  0x780

exc_common:
    adrp    x1, exc_record
    add     x1, x1, :lo12:exc_record
    str     x0, [x1, #0]            // vector offset
    mrs     x2, esr_el1
    str     x2, [x1, #8]
    mrs     x3, elr_el1
    str     x3, [x1, #16]
    mrs     x0, far_el1
    str     x0, [x1, #24]
    mrs     x0, spsr_el1
    str     x0, [x1, #32]
    ldr     x0, [x1, #40]
    add     x0, x0, #1
    str     x0, [x1, #40]           // count
    lsr     x2, x2, #26             // ESR_EL1.EC
    cmp     x2, #EC_SVC64
    b.eq    1f
    add     x3, x3, #4
    msr     elr_el1, x3
1:  ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp]
    add     sp, sp, #32
    eret

    .bss
    .balign 8
    .global exc_record
exc_record:
    .space  48

/* Each trigger sets NZCV to N=1,C=1 (0xa0000000) so SPSR_EL1.NZCV is checkable,
 * then executes the instruction at its global *_insn label. */
    .macro  trigger name
    .text
    .global \name, \name\()_insn
\name:
    movz    x9, #0xa000, lsl #16
    msr     nzcv, x9
    .endm

    trigger t_svc
t_svc_insn:
    svc     #0x1234
    ret

    trigger t_udf
t_udf_insn:
    udf     #0x5a
    ret

    trigger t_brk
t_brk_insn:
    brk     #0x42
    ret

    /* Load (64-bit) from an address QEMU virt leaves unassigned, MMU off. */
    trigger t_load
    movz    x1, #0x0b00, lsl #16
t_load_insn:
    ldr     x2, [x1]
    ret

    /* Store (32-bit) to the same unassigned region. */
    trigger t_store
    movz    x1, #0x0b00, lsl #16
    movk    x1, #0x0010
    mov     w2, #0x55
t_store_insn:
    str     w2, [x1]
    ret

    /* Byte load from the first address after 128 MiB of RAM (0x48000000). */
    trigger t_load_ram_end
    movz    x1, #0x4800, lsl #16
t_load_ram_end_insn:
    ldrb    w2, [x1]
    ret
