/* compute: a fixed-length integer loop (6,250,000 iterations of 8 instructions =
 * 50,000,000 instructions in compute_loop), then its checksum on the UART.
 * No traps inside the loop: neve bench uses it for guest instructions per second
 * under neve (vm mode) against raw Unicorn running compute_loop alone. */
#include "fw.h"

#define ITERATIONS 6250000u
#define SEED 0x243f6a8885a308d3ull

uint64_t compute_loop(uint64_t n, uint64_t seed);

int fw_main(void)
{
    uart_puts("compute: 6250000 iterations of an 8-instruction loop\n");
    uint64_t sum = compute_loop(ITERATIONS, SEED);
    uart_puts("compute: checksum ");
    uart_put_hex(sum, 16);
    uart_puts("\n");
    return 0;
}
