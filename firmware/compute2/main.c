/* compute2: compute's loop (compute_loop, 6,250,000 iterations of 8 instructions) on
 * two CPUs at once: CPU 0 starts CPU 1 with PSCI CPU_ON, each runs the loop with its
 * own seed, CPU 0 waits for CPU 1's result and prints both checksums.  neve bench runs
 * it with --smp 2 for the guest instructions per second of two CPUs (both loops run
 * with no trap; CPU 0 spins on CPU 1's flag at the end). */
#include "fw.h"

#define PSCI_CPU_ON64   0xC4000003
#define ITERATIONS      6250000u
#define SEED            0x243f6a8885a308d3ull

uint64_t compute_loop(uint64_t n, uint64_t seed);
extern char secondary_entry[];
void secondary_main(uint64_t cpu) __attribute__((noreturn));

static volatile uint64_t sum1, done1;

void secondary_main(uint64_t cpu)
{
    sum1 = compute_loop(ITERATIONS, SEED ^ cpu);
    store_release(&done1, 1);      /* sum1 before the flag */
    for (;;)
        __asm__ volatile("wfi");
}

int fw_main(void)
{
    uart_puts("compute2: two CPUs, 6250000 iterations of an 8-instruction loop each\n");
    uint64_t r = hvc_call(PSCI_CPU_ON64, 1, (uint64_t)secondary_entry, 1);
    if (r != 0) {
        uart_puts("compute2: no second CPU (CPU_ON returned ");
        uart_put_hex(r, 16);
        uart_puts(")\n");
        return 0;
    }
    uint64_t sum0 = compute_loop(ITERATIONS, SEED);
    while (!load_acquire(&done1))
        ;
    uart_puts("compute2: checksums ");
    uart_put_hex(sum0, 16);
    uart_puts(" ");
    uart_put_hex(sum1, 16);
    uart_puts("\n");
    return 0;
}
