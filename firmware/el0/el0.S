/* EL1 kernel that runs a user task at EL0: ERET to EL0, SVCs from EL0 (lower-EL
 * vector, SP_EL0 vs SP_EL1 banking), an EL0 data abort on a kernel-only page is not
 * possible with the MMU off, so the task also executes an UNDEFINED instruction
 * (MRS CurrentEL is not accessible at EL0) and a BRK; the kernel prints ESR/ELR/SPSR
 * for each, checks SP_EL0 survived, then powers off via PSCI over HVC. */
    .section .text.boot, "ax"
    .global _start
_start:
    ldr     x0, =kstack_top
    mov     sp, x0
    ldr     x0, =vectors
    msr     vbar_el1, x0
    isb
    ldr     x0, =msg_start
    bl      uart_puts
    ldr     x0, =ustack_top
    msr     sp_el0, x0
    ldr     x0, =user
    msr     elr_el1, x0
    mov     x0, #0                  /* EL0t, interrupts unmasked */
    msr     spsr_el1, x0
    eret

    .text
user:
    mov     x19, sp                 /* SP_EL0 as the task sees it */
    mov     x8, #1
    svc     #0x10                   /* print x0 (string) */
    mrs     x1, CurrentEL           /* UNDEFINED at EL0 */
    brk     #0x77
    mov     x1, sp
    cmp     x1, x19
    cset    x0, eq
    mov     x8, #2
    svc     #0x20                   /* report sp check, then exit */
1:  b       1b

sync_lower:
    sub     sp, sp, #32
    stp     x29, x30, [sp]
    stp     x0, x1, [sp, #16]
    ldr     x0, =msg_exc
    bl      uart_puts
    mrs     x0, esr_el1
    mov     x1, #8
    bl      uart_put_hex
    ldr     x0, =msg_elr
    bl      uart_puts
    mrs     x0, elr_el1
    ldr     x1, =_start
    sub     x0, x0, x1
    mov     x1, #4
    bl      uart_put_hex
    ldr     x0, =msg_spsr
    bl      uart_puts
    mrs     x0, spsr_el1
    mov     x1, #8
    bl      uart_put_hex
    ldr     x0, =msg_sp
    bl      uart_puts
    mov     x0, sp
    ldr     x1, =kstack_top - 32
    cmp     x0, x1
    cset    x0, eq
    mov     x1, #1
    bl      uart_put_hex
    mov     x0, #'\n'
    bl      uart_putc
    mrs     x0, esr_el1
    lsr     x0, x0, #26
    cmp     x0, #0x15
    b.eq    do_svc
    mrs     x0, elr_el1             /* UNDEF / BRK: skip the instruction */
    add     x0, x0, #4
    msr     elr_el1, x0
    b       ret_user
do_svc:
    ldp     x0, x1, [sp, #16]
    cmp     x8, #2
    b.eq    do_exit
    ldr     x0, =msg_hello
    bl      uart_puts
ret_user:
    ldp     x29, x30, [sp]
    ldp     x0, x1, [sp, #16]
    add     sp, sp, #32
    eret
do_exit:
    mov     x19, x0
    ldr     x0, =msg_spchk
    bl      uart_puts
    mov     x0, x19
    mov     x1, #1
    bl      uart_put_hex
    mov     x0, #'\n'
    bl      uart_putc
    movz    x0, #0x0008
    movk    x0, #0x8400, lsl #16
    hvc     #0

unexpected:
    ldr     x0, =msg_unexp
    bl      uart_puts
2:  b       2b

    .balign 2048
vectors:
    .rept 8
    b unexpected
    .balign 128
    .endr
    b sync_lower                    /* lower EL AArch64 synchronous */
    .balign 128
    .rept 7
    b unexpected
    .balign 128
    .endr

    .section .rodata
msg_start:  .asciz "el0: entering the user task at EL0\n"
msg_exc:    .asciz "el0: exception from EL0: ESR_EL1="
msg_elr:    .asciz " ELR-_start="
msg_spsr:   .asciz " SPSR_EL1="
msg_sp:     .asciz " on SP_EL1="
msg_hello:  .asciz "el0: svc #0x10 from the user task\n"
msg_spchk:  .asciz "el0: SP_EL0 preserved across exceptions = "
msg_unexp:  .asciz "el0: FAIL: unexpected exception\n"

    .bss
    .balign 16
    .space 4096
kstack_top:
    .space 4096
ustack_top:
