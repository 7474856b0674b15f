/* The hypercall microbenchmark loop.
 *
 * uint64_t hvc_loop(uint64_t n): performs n SMCCC calls with function id 0x87000000
 * (owner 7, which SMCCC reserves, so every PSCI/SMCCC implementation answers
 * NOT_SUPPORTED = -1 in x0: QEMU's, neve's, kvmlike's and Linux KVM's, whose vendor
 * hypervisor owner 6 would answer 0x86000000 with its feature bitmap) and returns the number of calls whose x0 was not 0xffffffffffffffff.
 * The x0 of the last call is left in hvc_last_x0.  The loop state lives in
 * callee-saved x19/x20 because SMCCC 1.0 lets a call clobber x4-x17. */
    .text
    .global hvc_loop
hvc_loop:
    stp     x19, x20, [sp, #-16]!
    mov     x19, x0                 // remaining calls
    mov     x20, #0                 // failures
1:  movz    x0, #0x8700, lsl #16
    hvc     #0
    cmn     x0, #1                  // x0 == -1 (all 64 bits)?
    cinc    x20, x20, ne
    subs    x19, x19, #1
    b.ne    1b
    adrp    x9, hvc_last_x0
    str     x0, [x9, :lo12:hvc_last_x0]
    mov     x0, x20
    ldp     x19, x20, [sp], #16
    ret

    .bss
    .balign 8
    .global hvc_last_x0
hvc_last_x0:
    .space  8
