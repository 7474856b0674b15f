/* A secondary CPU's entry for the two-CPU test kernels (PSCI CPU_ON's entry point,
 * context id = its number in x0): its own stack, then secondary_main(cpu) in C, which
 * does not return. */
    .text
    .global secondary_entry
secondary_entry:
    adrp    x1, secondary_stack_top
    add     x1, x1, :lo12:secondary_stack_top
    mov     sp, x1
    b       secondary_main

    .section .bss.stack2, "aw", %nobits
    .balign 16
secondary_stack:
    .space  0x2000
    .global secondary_stack_top
secondary_stack_top:
