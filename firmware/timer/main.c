/* timer: EL1 timers and GICv3 interrupts, for vm mode (the kernel owns the GIC).
 *
 * 1. the EL1 virtual timer (CNTV_TVAL/CTL_EL0, PPI 27) fires ROUNDS times,
 * 2. the EL1 physical timer (CNTP_TVAL/CTL_EL0, PPI 30) fires ROUNDS times,
 * 3. an SGI to this CPU (ICC_SGI1R_EL1, INTID 1) is taken ROUNDS times.
 * Each interrupt is acknowledged with ICC_IAR1_EL1, its source masked and
 * stopped (timers: CTL = IMASK, ENABLE = 0), and ended with ICC_EOIR1_EL1.
 * The kernel waits with WFI.  Only INTIDs, counts and pass/fail checks are
 * printed, never times, so the transcript is deterministic.  Ends with PSCI
 * SYSTEM_OFF (hvc) from start.S. */
#include "fw.h"
#include "gic.h"

const char fw_name[] = "timer";      /* (common/bad_exception.c) */

#define ROUNDS      5
#define SGI_INTID   1

extern char irq_vectors[];
void irq_handler(void);

static volatile uint64_t n_virt, n_phys, n_sgi, n_spurious, n_other;
static volatile uint64_t last_intid, n_late_bad;

void irq_handler(void)
{
    uint64_t iar = gic_ack();
    uint32_t intid = (uint32_t)(iar & 0xffffff);

    if (intid == INTID_SPURIOUS) {
        n_spurious++;
        return;                             /* nothing to EOI */
    }
    last_intid = intid;
    switch (intid) {
    case INTID_VTIMER:
        /* The condition must hold: CNTVCT >= CVAL and ISTATUS set. */
        if (!(read_sysreg(cntv_ctl_el0) & CNT_CTL_ISTATUS) ||
            read_sysreg(cntvct_el0) < read_sysreg(cntv_cval_el0))
            n_late_bad++;
        write_sysreg(cntv_ctl_el0, CNT_CTL_IMASK);
        n_virt++;
        break;
    case INTID_PTIMER:
        if (!(read_sysreg(cntp_ctl_el0) & CNT_CTL_ISTATUS) ||
            read_sysreg(cntpct_el0) < read_sysreg(cntp_cval_el0))
            n_late_bad++;
        write_sysreg(cntp_ctl_el0, CNT_CTL_IMASK);
        n_phys++;
        break;
    case SGI_INTID:
        n_sgi++;
        break;
    default:
        n_other++;
        break;
    }
    isb();
    gic_eoi(iar);
}

static void report(const char *what, uint64_t round, uint64_t intid)
{
    uart_puts("timer: ");
    uart_puts(what);
    uart_puts(" interrupt ");
    uart_put_dec(round);
    uart_puts(": INTID ");
    uart_put_dec(intid);
    uart_puts("\n");
}

int fw_main(void)
{
    write_sysreg(vbar_el1, (uint64_t)irq_vectors);
    isb();
    uart_puts("timer: GICv3 distributor, redistributor and CPU interface setup\n");
    gic_dist_init();
    gic_redist_init((1U << SGI_INTID) | (1U << INTID_VTIMER) | (1U << INTID_PTIMER));
    gic_cpuif_init();

    uint64_t period = read_sysreg(cntfrq_el0) / 10000;     /* 100 us */
    if (period == 0)
        period = 1;

    uart_puts("timer: EL1 virtual timer (CNTV), PPI 27\n");
    for (uint64_t i = 1; i <= ROUNDS; i++) {
        write_sysreg(cntv_tval_el0, period);
        write_sysreg(cntv_ctl_el0, CNT_CTL_ENABLE);
        isb();
        wait_irq_count(&n_virt, i);
        irq_disable();
        report("virtual timer", i, last_intid);
    }

    uart_puts("timer: EL1 physical timer (CNTP), PPI 30\n");
    for (uint64_t i = 1; i <= ROUNDS; i++) {
        write_sysreg(cntp_tval_el0, period);
        write_sysreg(cntp_ctl_el0, CNT_CTL_ENABLE);
        isb();
        wait_irq_count(&n_phys, i);
        irq_disable();
        report("physical timer", i, last_intid);
    }

    uart_puts("timer: SGI to self (ICC_SGI1R_EL1), INTID 1\n");
    for (uint64_t i = 1; i <= ROUNDS; i++) {
        gic_sgi_self(SGI_INTID);
        wait_irq_count(&n_sgi, i);
        irq_disable();
        report("SGI", i, last_intid);
    }

    uart_puts("timer: counts: virtual ");
    uart_put_dec(n_virt);
    uart_puts(", physical ");
    uart_put_dec(n_phys);
    uart_puts(", SGI ");
    uart_put_dec(n_sgi);
    uart_puts(", other ");
    uart_put_dec(n_other);
    uart_puts("\n");
    if (n_virt == ROUNDS && n_phys == ROUNDS && n_sgi == ROUNDS && n_other == 0 && n_late_bad == 0)
        uart_puts("timer: PASS\n");
    else
        uart_puts("timer: FAIL\n");
    return 0;
}
