/* The kernel-handled device-I/O loop.
 *
 * uint64_t gicd_loop(uint64_t n, uint32_t *first): n 32-bit loads of GICD_PIDR2
 * (0x0800ffe8), back to back, nothing else in the loop touches a device.  Every
 * load is a plain `ldr w, [x]` (no writeback), so a hypervisor that keeps the
 * distributor out of stage 2 gets a data abort with a valid instruction syndrome.
 * The first value read is stored to *first; returns the number of loads whose
 * value differs from the first. */
    .text
    .global gicd_loop
gicd_loop:
    movz    x9, #0x0800, lsl #16
    movk    x9, #0xffe8
    ldr     w2, [x9]                // the first read
    str     w2, [x1]
    mov     x10, x0
    mov     x11, #0
    subs    x10, x10, #1
    b.eq    2f
1:  ldr     w3, [x9]
    cmp     w3, w2
    cinc    x11, x11, ne
    subs    x10, x10, #1
    b.ne    1b
2:  mov     x0, x11
    ret
