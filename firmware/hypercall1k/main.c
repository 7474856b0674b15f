/* hypercall1k: the hypercall microbenchmark of firmware/hypercall with 1024 calls
 * instead of 32, so that neve bench can time it: 1024 unknown SMCCC calls over HVC,
 * each must return NOT_SUPPORTED (-1).  Same contract (EL1 at 0x44000000, PSCI
 * SYSTEM_OFF at the end), so it also runs as kvmlike's nested VM. */
#include "fw.h"

#define CALLS 1024

uint64_t hvc_loop(uint64_t n);
extern uint64_t hvc_last_x0;

int fw_main(void)
{
    uart_puts("hypercall1k: starting 1024 calls of function 0x87000000\n");
    uint64_t bad = hvc_loop(CALLS);
    if (bad == 0) {
        uart_puts("hypercall1k: 1024 calls, all returned NOT_SUPPORTED\n");
    } else {
        uart_puts("hypercall1k: FAIL: ");
        uart_put_dec(bad);
        uart_puts(" of 1024 calls did not return NOT_SUPPORTED\n");
    }
    uart_puts("hypercall1k: x0 after the last call = ");
    uart_put_hex(hvc_last_x0, 16);
    uart_puts("\n");
    return 0;
}
