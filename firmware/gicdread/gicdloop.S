/* The kernel-handled device-I/O loop: gicd_loop(n, first) reads GICD_PIDR2
 * (0x0800ffe8) n times (firmware/common/devreadloop.inc). */
#include "../common/devreadloop.inc"
    device_read_loop gicd_loop, 0x0800, 0xffe8, 0
