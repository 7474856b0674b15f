/* hypercall: 32 unknown SMCCC calls over HVC, each must return NOT_SUPPORTED (-1). */
#include "fw.h"

#define CALLS 32

uint64_t hvc_loop(uint64_t n);
extern uint64_t hvc_last_x0;

int fw_main(void)
{
    uart_puts("hypercall: starting 32 calls of function 0x87000000\n");
    uint64_t bad = hvc_loop(CALLS);
    if (bad == 0) {
        uart_puts("hypercall: 32 calls, all returned NOT_SUPPORTED\n");
    } else {
        uart_puts("hypercall: FAIL: ");
        uart_put_dec(bad);
        uart_puts(" of 32 calls did not return NOT_SUPPORTED\n");
    }
    uart_puts("hypercall: x0 after the last call = ");
    uart_put_hex(hvc_last_x0, 16);
    uart_puts("\n");
    return 0;
}
