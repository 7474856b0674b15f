/* kvmlike host kernel: EL1 entry, EL1 vectors and the calls out of EL1.
 * The host kernel runs at EL1 with the MMU off on its own stack (SP_EL1). */
#include "kvmlike.h"

    .text
    .global host_entry
host_entry:                         /* from the EL2 boot code's ERET */
    adrp    x0, host_stack_top
    add     x0, x0, :lo12:host_stack_top
    mov     sp, x0
    adrp    x0, host_vectors
    add     x0, x0, :lo12:host_vectors
    msr     vbar_el1, x0
    isb
    bl      host_main
1:  wfi
    b       1b

/* u64 kvm_call_hyp(void *hypfn, u64 a1, u64 a2, u64 a3): row 86 on the path */
    .global kvm_call_hyp
kvm_call_hyp:
    hvc     #0
    ret

/* u64 host_smc(u64 fid, u64 a1, u64 a2, u64 a3, u64 *res): SMCCC via the
 * firmware conduit (smc #0); x1-x3 of the result are stored to res[0..2]. */
    .global host_smc
host_smc:
    mov     x9, x4
    smc     #0
    stp     x1, x2, [x9]
    str     x3, [x9, #16]
    ret

/* EL1 vectors of the host kernel: any exception is fatal. */
.macro host_vector code
    .balign 0x80
    mov     x0, #\code
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    b       host_exception
.endm

    .balign 0x800
host_vectors:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    host_vector \n
    .endr

    .section .bss.host_stack, "aw", %nobits
    .balign 16
host_stack:
    .space  0x4000
    .global host_stack_top
host_stack_top:
