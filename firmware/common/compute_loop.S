/* The compute microbenchmark loop: a fixed number of integer instructions and no
 * access to anything but registers, so its speed is the CPU emulator's own.
 *
 * uint64_t compute_loop(uint64_t n, uint64_t seed): n iterations of exactly
 * COMPUTE_LOOP_INSNS (8) instructions: a xorshift64 step of the seed, a multiply
 * and two accumulations.  Returns the accumulator (the checksum).  Everything
 * stays in caller-saved registers x0-x4, so the function needs no stack. */
    .text
    .global compute_loop
    .type   compute_loop, %function
compute_loop:
    mov     x2, #0                      // accumulator
    movz    x4, #0x7f4a, lsl #48        // odd 64-bit multiplier 0x7f4a7c159e3779b9
    movk    x4, #0x7c15, lsl #32
    movk    x4, #0x9e37, lsl #16
    movk    x4, #0x79b9
    cbz     x0, 2f
1:  eor     x1, x1, x1, lsl #13         // xorshift64
    eor     x1, x1, x1, lsr #7
    eor     x1, x1, x1, lsl #17
    mul     x3, x1, x4
    eor     x2, x3, x2, ror #29
    add     x2, x2, x1
    subs    x0, x0, #1
    b.ne    1b
2:  mov     x0, x2
    ret
    .size   compute_loop, . - compute_loop
