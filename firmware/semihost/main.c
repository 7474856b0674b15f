/* semihost: output through semihosting SYS_WRITE0 and SYS_WRITEC, then
 * SYS_EXIT_EXTENDED(ADP_Stopped_ApplicationExit, 3). */
#include "fw.h"

int fw_main(void)
{
    static const char line[] = "semihost: SYS_WRITEC\n";
    static uint64_t exit_block[2] = {ADP_Stopped_ApplicationExit, 3};

    uart_puts("semihost: start (UART)\n");
    semihost_call(SEMI_SYS_WRITE0, (uint64_t)"semihost: SYS_WRITE0\n");
    for (const char *p = line; *p; p++)
        semihost_call(SEMI_SYS_WRITEC, (uint64_t)p);
    uart_puts("semihost: exiting with code 3 (UART)\n");
    semihost_call(SEMI_SYS_EXIT_EXTENDED, (uint64_t)exit_block);
    uart_puts("semihost: FAIL: SYS_EXIT_EXTENDED returned\n");
    return 0;
}
