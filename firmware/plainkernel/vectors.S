// plainkernel: EL1 exception vectors.  Synchronous exceptions from the current EL
// build a full trap frame on the stack and call the C handler, which may modify
// the saved registers, ELR and SPSR before we return.  Anything else is fatal.

#define FRAME_SIZE      (34 * 8)        // x0..x30, elr, spsr, esr

        .macro  save_frame
        sub     sp, sp, #FRAME_SIZE
        stp     x0, x1, [sp, #16 * 0]
        stp     x2, x3, [sp, #16 * 1]
        stp     x4, x5, [sp, #16 * 2]
        stp     x6, x7, [sp, #16 * 3]
        stp     x8, x9, [sp, #16 * 4]
        stp     x10, x11, [sp, #16 * 5]
        stp     x12, x13, [sp, #16 * 6]
        stp     x14, x15, [sp, #16 * 7]
        stp     x16, x17, [sp, #16 * 8]
        stp     x18, x19, [sp, #16 * 9]
        stp     x20, x21, [sp, #16 * 10]
        stp     x22, x23, [sp, #16 * 11]
        stp     x24, x25, [sp, #16 * 12]
        stp     x26, x27, [sp, #16 * 13]
        stp     x28, x29, [sp, #16 * 14]
        mrs     x21, elr_el1
        mrs     x22, spsr_el1
        mrs     x23, esr_el1
        stp     x30, x21, [sp, #16 * 15]
        stp     x22, x23, [sp, #16 * 16]
        .endm

        .macro  restore_frame
        ldp     x30, x21, [sp, #16 * 15]
        ldp     x22, x23, [sp, #16 * 16]
        msr     elr_el1, x21
        msr     spsr_el1, x22
        ldp     x0, x1, [sp, #16 * 0]
        ldp     x2, x3, [sp, #16 * 1]
        ldp     x4, x5, [sp, #16 * 2]
        ldp     x6, x7, [sp, #16 * 3]
        ldp     x8, x9, [sp, #16 * 4]
        ldp     x10, x11, [sp, #16 * 5]
        ldp     x12, x13, [sp, #16 * 6]
        ldp     x14, x15, [sp, #16 * 7]
        ldp     x16, x17, [sp, #16 * 8]
        ldp     x18, x19, [sp, #16 * 9]
        ldp     x20, x21, [sp, #16 * 10]
        ldp     x22, x23, [sp, #16 * 11]
        ldp     x24, x25, [sp, #16 * 12]
        ldp     x26, x27, [sp, #16 * 13]
        ldp     x28, x29, [sp, #16 * 14]
        add     sp, sp, #FRAME_SIZE
        .endm

        .macro  bad_vector kind
        .balign 0x80
        mov     x0, #\kind
        mrs     x1, esr_el1
        mrs     x2, elr_el1
        b       bad_exception
        .endm

        .text
        .balign 0x800
        .globl  vector_table
vector_table:
        bad_vector 0                    // EL1t sync
        bad_vector 1                    // EL1t irq
        bad_vector 2                    // EL1t fiq
        bad_vector 3                    // EL1t serror
        .balign 0x80                    // EL1h sync
        b       el1h_sync
        bad_vector 5                    // EL1h irq
        bad_vector 6                    // EL1h fiq
        bad_vector 7                    // EL1h serror
        bad_vector 8
        bad_vector 9
        bad_vector 10
        bad_vector 11
        bad_vector 12
        bad_vector 13
        bad_vector 14
        bad_vector 15

el1h_sync:
        save_frame
        mov     x0, sp
        bl      sync_exception
        restore_frame
        eret
