/* PL011 output for the test kernels: a byte store to UARTDR prints.  FR is not
 * polled (QEMU's and neve's PL011 never fill the transmit FIFO); plainkernel shows
 * the polled style. */
#include "fw.h"

#define UART_DR ((volatile uint8_t *)(PL011_BASE + PL011_DR))

void uart_putc(char c)
{
    *UART_DR = (uint8_t)c;
}

void uart_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

void uart_put_hex(uint64_t v, int digits)
{
    uart_putc('0');
    uart_putc('x');
    for (int i = digits - 1; i >= 0; i--)
        uart_putc("0123456789abcdef"[(v >> (4 * i)) & 0xf]);
}

void uart_put_dec(uint64_t v)
{
    char buf[21];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        uart_putc(buf[--n]);
}
