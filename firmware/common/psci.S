/* PSCI / SMCCC calls over the HVC conduit (the image runs at EL1). */
#include "fw.h"

    .text
    /* uint64_t hvc_call(fn, a1, a2, a3): SMC Calling Convention call, returns x0. */
    .global hvc_call
hvc_call:
    hvc     #0
    ret

    .global psci_version
psci_version:
    movz    x0, #(PSCI_VERSION >> 16), lsl #16
    hvc     #0
    ret

    .global psci_system_off
psci_system_off:
    movz    x0, #(PSCI_SYSTEM_OFF >> 16), lsl #16
    movk    x0, #(PSCI_SYSTEM_OFF & 0xffff)
    hvc     #0
    /* SYSTEM_OFF does not return; if it does, say so and stop here. */
    adrp    x0, off_failed
    add     x0, x0, :lo12:off_failed
    bl      uart_puts
1:  wfi
    b       1b

    .section .rodata
off_failed:
    .asciz  "FAIL: PSCI SYSTEM_OFF returned\n"
