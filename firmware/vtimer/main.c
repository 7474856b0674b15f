/* vtimer: nested-VM kernel of the `timer-interrupt` benchmark.
 *
 * The VM's EL1 virtual timer (CNTV, PPI 27) fires ROUNDS times.  Each
 * interrupt is handled end to end in the IRQ handler: ICC_IAR1_EL1, the timer
 * stopped (CNTV_CTL_EL0 = IMASK), ICC_EOIR1_EL1, then the timer reprogrammed
 * (CNTV_TVAL_EL0, CNTV_CTL_EL0 = ENABLE) for the next round.  The kernel
 * spins with IRQs unmasked (no WFI: a hypervisor that traps WFI would add
 * exits), so under kvmlike every interrupt is one IRQ exit: the physical
 * PPI 27 goes to the guest hypervisor (HCR_EL2.IMO), which injects it back
 * through a list register.
 *
 * Under kvmlike (probe: hvc 0x86000001 with x1 = 1023 returns 0) the kernel
 * does not touch the GIC distributor: the timer PPI is delivered through the
 * virtual CPU interface.  Alone (vm mode: the probe is NOT_SUPPORTED) it
 * programs the distributor and redistributor for PPI 27 itself.  Only counts
 * are printed, never times, and nothing while the timer runs. */
#include "fw.h"
#include "gic.h"

const char fw_name[] = "vtimer";      /* (common/bad_exception.c) */

#define KVMLIKE_HVC_VGIC_INJECT 0x86000001
#define ROUNDS          10

extern char irq_vectors[];
void irq_handler(void);

static volatile uint64_t n_timer, n_spurious, n_wrong, n_not_fired;
static uint64_t period;

static void timer_arm(void)
{
    write_sysreg(cntv_tval_el0, period);
    write_sysreg(cntv_ctl_el0, CNT_CTL_ENABLE);
    isb();
}

void irq_handler(void)
{
    uint64_t iar = gic_ack();
    uint64_t intid = iar & 0xffffff;

    if (intid == INTID_SPURIOUS) {
        n_spurious++;
        return;
    }
    if (intid != INTID_VTIMER) {
        n_wrong++;
        gic_eoi(iar);
        return;
    }
    uint64_t ctl = read_sysreg(cntv_ctl_el0);
    if ((ctl & (CNT_CTL_ENABLE | CNT_CTL_ISTATUS)) != (CNT_CTL_ENABLE | CNT_CTL_ISTATUS))
        n_not_fired++;
    write_sysreg(cntv_ctl_el0, CNT_CTL_IMASK);     /* stop: the line drops */
    isb();
    n_timer++;
    gic_eoi(iar);
    if (n_timer < ROUNDS)
        timer_arm();
}

int fw_main(void)
{
    write_sysreg(vbar_el1, (uint64_t)irq_vectors);
    isb();
    int nested = hvc_call(KVMLIKE_HVC_VGIC_INJECT, INTID_SPURIOUS, 0, 0) == 0;
    if (nested) {
        uart_puts("vtimer: virtual GIC of the hypervisor\n");
    } else {
        uart_puts("vtimer: no hypervisor vGIC: GIC programmed here\n");
        gic_dist_init();
        gic_redist_init(1U << INTID_VTIMER);
    }
    gic_cpuif_init();
    period = read_sysreg(cntfrq_el0) / 10000;      /* 100 us */
    if (period == 0)
        period = 1;

    uart_puts("vtimer: 10 rounds of CNTV fire, IAR, stop, EOI, reprogram\n");
    timer_arm();
    spin_irq_count(&n_timer, ROUNDS);
    irq_disable();
    write_sysreg(cntv_ctl_el0, 0);
    isb();
    uint64_t left = gic_ack();
    int leftover = (left & 0xffffff) != INTID_SPURIOUS;
    if (leftover)
        gic_eoi(left);

    uart_puts("vtimer: ");
    uart_put_dec(n_timer);
    uart_puts(" virtual timer interrupts (INTID 27), ");
    uart_put_dec(n_wrong);
    uart_puts(" other, ");
    uart_put_dec(n_not_fired);
    uart_puts(" without ISTATUS\n");
    if (n_timer == ROUNDS && n_wrong == 0 && n_not_fired == 0 && !leftover)
        uart_puts("vtimer: PASS\n");
    else
        uart_puts("vtimer: FAIL\n");
    return 0;
}
