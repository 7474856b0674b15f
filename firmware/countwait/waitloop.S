/* The counter busy-wait loop, as Linux's __delay() does it without an event stream
 * or WFxT: read the virtual counter (ISB; MRS CNTVCT_EL0, as get_cycles() does),
 * stop once `ticks` have passed since the first read, else read it again.
 *
 * uint64_t counter_wait(uint64_t ticks): returns the ticks that passed (>= ticks).
 * The loop is 5 instructions per counter read, all in registers (x0-x3), no stack.
 * counter_wait_done is the first instruction after the loop (neve bench brackets
 * the wait between counter_wait and counter_wait_done). */
    .text
    .global counter_wait, counter_wait_done
    .type   counter_wait, %function
counter_wait:
    isb
    mrs     x1, cntvct_el0              // start
1:  isb
    mrs     x2, cntvct_el0
    sub     x3, x2, x1                  // ticks since start (wraps as Linux's does)
    cmp     x3, x0
    b.lo    1b
counter_wait_done:
    mov     x0, x3
    ret
    .size   counter_wait, . - counter_wait
