/* ipi: two-CPU kernel of the `virtual-ipi` benchmark.
 *
 * CPU 0 starts CPU 1 with PSCI CPU_ON (over HVC: QEMU's or neve's PSCI at EL1, KVM's
 * under Linux), both set up their GIC redistributor and CPU interface, and then
 * ROUNDS times CPU 0 sends SGI 1 to CPU 1 (ICC_SGI1R_EL1, target list), CPU 1's IRQ
 * handler acknowledges it and answers with SGI 2 to CPU 0, whose handler counts the
 * answer: one round trip, from `ipi_send` until `ipi_done` (symbols the benchmark
 * hooks).  CPU 1 waits in WFI between rounds, CPU 0 waits in WFI for the answer.
 *
 * Nothing is printed during the rounds (a UART write is an MMIO exit under a stage-2
 * hypervisor), and only counts are printed, never times.  Every CPU's redistributor
 * is at 0x080A0000 + 128 KiB x its number (QEMU virt, KVM's vGICv3 as tools/vmm
 * places it). */
#include "fw.h"
#include "gic.h"

const char fw_name[] = "ipi";      /* (common/bad_exception.c) */

#define PSCI_CPU_ON64   0xC4000003
#define ROUNDS          32
#define PING            1
#define PONG            2

extern char irq_vectors[];
extern char secondary_entry[];
void irq_handler(void);
void secondary_main(uint64_t cpu) __attribute__((noreturn));
void ipi_send(void);
void ipi_done(void);

static volatile uint64_t cpu1_up, pings, pongs, wrong;

static unsigned this_cpu(void)
{
    return read_sysreg(mpidr_el1) & 0xff;
}

/* SGI `intid` to the CPU whose Aff0 is `cpu` (Aff1..3 zero: one cluster). */
static void sgi_to(unsigned cpu, unsigned intid)
{
    uint64_t v = ((uint64_t)intid << 24) | (1UL << cpu);
    __asm__ volatile("msr icc_sgi1r_el1, %0\n\tisb" : : "r"(v) : "memory");
}

/* This CPU's redistributor: awake, SGIs 1 and 2 group 1, enabled, priority 0x80. */
static void redist_init(unsigned cpu)
{
    uintptr_t rd = GICR_RD_BASE + 0x20000UL * cpu, sgi = rd + 0x10000;
    uint32_t mask = 1U << PING | 1U << PONG;
    mmio_write32(rd + GICR_WAKER, mmio_read32(rd + GICR_WAKER) & ~GICR_WAKER_PSLEEP);
    while (mmio_read32(rd + GICR_WAKER) & GICR_WAKER_CASLEEP)
        ;
    mmio_write32(sgi + GICR_IGROUPR0, mmio_read32(sgi + GICR_IGROUPR0) | mask);
    mmio_write32(sgi + GICR_IPRIORITYR(0), (uint32_t)IRQ_PRIORITY << 8 * PING | (uint32_t)IRQ_PRIORITY << 8 * PONG);
    mmio_write32(sgi + GICR_ISENABLER0, mask);
}

void irq_handler(void)
{
    uint64_t iar = gic_ack();
    uint64_t intid = iar & 0xffffff;
    if (intid == INTID_SPURIOUS)
        return;
    if (intid == PING && this_cpu() == 1) {
        pings++;
        sgi_to(0, PONG);
    } else if (intid == PONG && this_cpu() == 0) {
        pongs++;
    } else {
        wrong++;
    }
    gic_eoi(iar);
}

void secondary_main(uint64_t cpu)
{
    write_sysreg(vbar_el1, (uint64_t)irq_vectors);
    isb();
    redist_init((unsigned)cpu);
    gic_cpuif_init();
    store_release(&cpu1_up, 1);   /* its GIC set up before the flag */
    for (;;) {                       /* interrupts, for ever (CPU 0 ends the run) */
        __asm__ volatile("dsb sy\n\twfi" : : : "memory");
        irq_enable();
        irq_disable();
    }
}

/* One round trip: SGI 1 out, until SGI 2 came back.  Out of line, so that the two
 * symbols bracket exactly one round. */
__attribute__((noinline)) static void round_trip(uint64_t n)
{
    __asm__ volatile(".global ipi_send\nipi_send:" : : : "memory");
    sgi_to(1, PING);
    wait_irq_count(&pongs, n);
    __asm__ volatile(".global ipi_done\nipi_done:" : : : "memory");
    irq_enable();
    irq_disable();
}

int fw_main(void)
{
    write_sysreg(vbar_el1, (uint64_t)irq_vectors);
    isb();
    gic_dist_init();
    redist_init(0);
    gic_cpuif_init();
    uint64_t r = hvc_call(PSCI_CPU_ON64, 1, (uint64_t)secondary_entry, 1);
    uart_puts("ipi: CPU_ON of cpu 1: ");
    uart_put_dec(r);
    uart_puts("\n");
    if (r != 0)
        return 0;
    while (!load_acquire(&cpu1_up))
        ;
    uart_puts("ipi: cpu 1 up; 32 round trips of SGI 1 to cpu 1, SGI 2 back\n");
    for (uint64_t i = 1; i <= ROUNDS; i++)
        round_trip(i);
    uart_puts("ipi: pings ");
    uart_put_dec(pings);
    uart_puts(", pongs ");
    uart_put_dec(pongs);
    uart_puts(", unexpected ");
    uart_put_dec(wrong);
    uart_puts(pings == ROUNDS && pongs == ROUNDS && !wrong ? "\nipi: PASS\n" : "\nipi: FAIL\n");
    return 0;
}
