/* hello: greeting, PSCI version over HVC, then PSCI SYSTEM_OFF. */
#include "fw.h"

int fw_main(void)
{
    uart_puts("hello: neve test kernel running at EL");
    uart_put_dec((read_sysreg(CurrentEL) >> 2) & 3);
    uart_puts("\n");

    uint64_t v = psci_version();
    uart_puts("hello: PSCI version ");
    uart_put_dec((v >> 16) & 0xffff);
    uart_putc('.');
    uart_put_dec(v & 0xffff);
    uart_puts(" (");
    uart_put_hex(v, 8);
    uart_puts(")\n");
    uart_puts("hello: calling PSCI SYSTEM_OFF\n");
    return 0;
}
