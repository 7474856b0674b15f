/* spin: one line on the UART, then an endless loop (instruction-budget test). */
#include "fw.h"

int fw_main(void)
{
    uart_puts("spin: looping forever\n");
    __asm__ volatile(
        "   mov x0, #0\n"
        "1: add x0, x0, #1\n"
        "   b   1b\n" ::: "x0");
    return 0;
}
