/* countwait: busy-waits a fixed span of virtual time by reading CNTVCT_EL0 in a
 * tight loop (waitloop.S, Linux's udelay), the deadline computed from CNTFRQ_EL0.
 * Only the span asked for is printed, never a time or a read count, so the
 * transcript does not depend on the host's speed: it is the same on QEMU, whose
 * counter follows host time, and on neve, whose counter counts instructions.
 * In neve (CNTFRQ 1 GHz) the wait is about WAIT_MS * 10^6 instructions.
 *
 * WAIT_MS is a build-time constant: 100 here; firmware/countwait10 includes this
 * file with 10.  EL1 at 0x44000000, PSCI SYSTEM_OFF at the end (start.S), so it
 * also runs as kvmlike's nested VM. */
#include "fw.h"

#ifndef WAIT_MS
#define WAIT_MS 100
#endif
#ifndef NAME
#define NAME "countwait"
#endif

uint64_t counter_wait(uint64_t ticks);

int fw_main(void)
{
    uint64_t freq = read_sysreg(cntfrq_el0) & 0xffffffff;
    uart_puts(NAME ": busy-waiting ");
    uart_put_dec(WAIT_MS);
    uart_puts(" ms on CNTVCT_EL0\n");
    if (freq == 0) {
        uart_puts(NAME ": FAIL: CNTFRQ_EL0 is 0\n");
        return 0;
    }
    uint64_t ticks = freq / 1000 * WAIT_MS;
    uint64_t passed = counter_wait(ticks);
    if (passed >= ticks)
        uart_puts(NAME ": waited ");
    else
        uart_puts(NAME ": FAIL: waited less than ");
    uart_put_dec(WAIT_MS);
    uart_puts(" ms\n");
    return 0;
}
