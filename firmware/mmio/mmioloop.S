/* The device-I/O microbenchmark loop: mmio_loop(n, first) reads the PL011 flag
 * register UARTFR (0x09000018) n times (firmware/common/devreadloop.inc). */
#include "../common/devreadloop.inc"
    device_read_loop mmio_loop, 0x0900, 0, 0x18
