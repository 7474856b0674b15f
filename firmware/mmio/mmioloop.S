/* The device-I/O microbenchmark loop.
 *
 * uint64_t mmio_loop(uint64_t n, uint32_t *first): n 32-bit loads of the
 * PL011 flag register UARTFR (0x09000018), back to back, nothing else in the
 * loop touches a device.  Every load is a plain `ldr w, [x]` (no writeback),
 * so a hypervisor that keeps the UART out of stage 2 gets a data abort with
 * a valid instruction syndrome (ISV=1, SAS=2, SRT=2, WnR=0) for each one.
 * The first value read is stored to *first; returns the number of loads whose
 * value differs from the first. */
    .text
    .global mmio_loop
mmio_loop:
    movz    x9, #0x0900, lsl #16
    ldr     w2, [x9, #0x18]         // the first read
    str     w2, [x1]
    mov     x10, x0
    mov     x11, #0
    subs    x10, x10, #1
    b.eq    2f
1:  ldr     w3, [x9, #0x18]
    cmp     w3, w2
    cinc    x11, x11, ne
    subs    x10, x10, #1
    b.ne    1b
2:  mov     x0, x11
    ret
