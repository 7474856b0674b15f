/* mmio: the paper's "Device I/O" microbenchmark as a nested-VM kernel.
 * READS loads of an MMIO register the hypervisor emulates: the PL011's UARTFR.
 * Each must read the same value with the transmit FIFO not full (TXFF clear). */
#include "fw.h"

#define READS 32
#define UARTFR_ADDR (PL011_BASE + PL011_FR)

uint64_t mmio_loop(uint64_t n, uint32_t *first);

int fw_main(void)
{
    uint32_t first = 0;

    uart_puts("mmio: starting 32 reads of UARTFR at 0x09000018\n");
    uint64_t differ = mmio_loop(READS, &first);
    if (differ == 0 && !(first & PL011_FR_TXFF)) {
        uart_puts("mmio: 32 reads, all ");
        uart_put_hex(first, 8);
        uart_puts(", TXFF clear\n");
    } else {
        uart_puts("mmio: FAIL: first read ");
        uart_put_hex(first, 8);
        uart_puts(", ");
        uart_put_dec(differ);
        uart_puts(" of the other 31 differ\n");
    }
    return 0;
}
