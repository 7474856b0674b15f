/* virteoi: nested-VM kernel of the `virtual-eoi` benchmark.
 *
 * The VM enables its GIC CPU interface (ICC_SRE/PMR/BPR1/IGRPEN1_EL1) and then,
 * ROUNDS times, asks its hypervisor for one interrupt and takes it: the IRQ
 * handler acknowledges it with ICC_IAR1_EL1 and ends it with ICC_EOIR1_EL1.
 * Under a hypervisor that injects through list registers (kvmlike) those two
 * accesses go to the virtual CPU interface and never trap (with shadow list
 * registers: in every nested mode).  Then one burst of BURST interrupts is
 * requested with a single call, more than a GIC's usual 4 list registers, so
 * kvmlike has to refill them on an underflow maintenance interrupt.
 *
 * The request is the hypercall KVMLIKE_HVC_VGIC_INJECT (SMCCC vendor-specific
 * hypervisor service, fast call):
 *     x0 = 0x86000001, x1 = INTID, x2 = count  ->  x0 = 0 (done) or < 0
 * It is probed once with x1 = 1023, which injects nothing.  A hypervisor
 * without it (vm mode: the kernel runs alone on QEMU or neve, whose PSCI
 * answers NOT_SUPPORTED; Linux KVM, whose 0x86000001 is its PTP call, which
 * answers NOT_SUPPORTED for counter 1023) is replaced by the kernel itself: it
 * programs the GIC distributor and redistributor and sends itself the same
 * INTIDs as SGIs (ICC_SGI1R_EL1; under KVM a trap that its vGIC turns into
 * list-register injections).  Under kvmlike the kernel never touches the
 * distributor.
 *
 * Nothing is printed between the first request and the last interrupt (a
 * UART write is an MMIO exit under a stage-2 hypervisor), and only counts
 * and INTIDs are printed, never times. */
#include "fw.h"
#include "gic.h"

const char fw_name[] = "virteoi";      /* (common/bad_exception.c) */

#define KVMLIKE_HVC_VGIC_INJECT 0x86000001
#define ROUNDS          16
#define ROUND_INTID     1
#define BURST_INTID     2       /* INTIDs 2..7 */
#define BURST           6

extern char irq_vectors[];
void irq_handler(void);

static volatile uint64_t n_irq, n_spurious, n_wrong, seen_mask;
static volatile uint64_t expect_lo, expect_hi;      /* INTIDs allowed now */
static int nested;

void irq_handler(void)
{
    uint64_t iar = gic_ack();
    uint64_t intid = iar & 0xffffff;

    if (intid == INTID_SPURIOUS) {
        n_spurious++;
        return;
    }
    if (intid < expect_lo || intid > expect_hi || (seen_mask & (1UL << intid) && intid != ROUND_INTID))
        n_wrong++;
    if (intid < 64)
        seen_mask |= 1UL << intid;
    n_irq++;
    gic_eoi(iar);
}

/* Ask for INTIDs intid .. intid+count-1. */
static int request(unsigned intid, unsigned count)
{
    if (nested)
        return hvc_call(KVMLIKE_HVC_VGIC_INJECT, intid, count, 0) == 0;
    irq_disable();
    for (unsigned i = 0; i < count; i++)
        gic_sgi_self(intid + i);
    return 1;
}

int fw_main(void)
{
    int ok = 1;

    write_sysreg(vbar_el1, (uint64_t)irq_vectors);
    isb();
    nested = hvc_call(KVMLIKE_HVC_VGIC_INJECT, INTID_SPURIOUS, 0, 0) == 0;
    if (nested) {
        uart_puts("virteoi: interrupts injected by the hypervisor (hvc 0x86000001)\n");
    } else {
        uart_puts("virteoi: no injection hypercall: SGIs to self, GIC programmed here\n");
        gic_dist_init();
        gic_redist_init(((1U << BURST) - 1) << BURST_INTID | (1U << ROUND_INTID));
    }
    gic_cpuif_init();

    uart_puts("virteoi: 16 rounds of request, IAR, EOI for INTID 1\n");
    expect_lo = expect_hi = ROUND_INTID;
    for (uint64_t i = 1; i <= ROUNDS; i++) {
        if (!request(ROUND_INTID, 1))
            ok = 0;
        spin_irq_count(&n_irq, i);
        irq_disable();
    }
    uint64_t rounds = n_irq, wrong_rounds = n_wrong;

    expect_lo = BURST_INTID;
    expect_hi = BURST_INTID + BURST - 1;
    seen_mask = 0;
    if (!request(BURST_INTID, BURST))
        ok = 0;
    spin_irq_count(&n_irq, ROUNDS + BURST);
    irq_disable();
    uint64_t left = gic_ack();              /* nothing may be left pending */
    if ((left & 0xffffff) != INTID_SPURIOUS) {
        gic_eoi(left);
        ok = 0;
    }

    uart_puts("virteoi: rounds: ");
    uart_put_dec(rounds);
    uart_puts(" interrupts, INTID 1, ");
    uart_put_dec(wrong_rounds);
    uart_puts(" unexpected\n");
    uart_puts("virteoi: burst: ");
    uart_put_dec(n_irq - rounds);
    uart_puts(" interrupts, INTID mask ");
    uart_put_hex(seen_mask, 4);
    uart_puts(", ");
    uart_put_dec(n_wrong - wrong_rounds);
    uart_puts(" unexpected\n");
    if (ok && rounds == ROUNDS && n_irq == ROUNDS + BURST && n_wrong == 0 &&
        seen_mask == ((1UL << BURST) - 1) << BURST_INTID)
        uart_puts("virteoi: PASS\n");
    else
        uart_puts("virteoi: FAIL\n");
    return 0;
}
