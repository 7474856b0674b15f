/* kvmlike host kernel (EL1): the vgic and the arch timer for the vcpu
 * (issue 6), in the shape of KVM/ARM v4.10's virt/kvm/arm/vgic/ and
 * virt/kvm/arm/arch_timer.c, reduced to one vcpu, SGIs/PPIs/SPIs < 64 and no
 * emulated distributor (the VM's interrupts are always enabled, Group 1).
 *
 *  - kvm_vgic_flush_hwstate() (before every run): pending interrupts not yet
 *    in a list register get a free one; if some do not fit, ICH_HCR_EL2.UIE
 *    is requested so that an underflow maintenance interrupt brings the vcpu
 *    back to refill.  Memory only.
 *  - kvm_vgic_sync_hwstate() (after every run): the LR state the lowvisor
 *    saved is folded back (empty = the VM EOIed it); UIE is dropped.
 *  - kvm_timer_sync_hwstate() (after every run): the virtual timer's saved
 *    CNTV_CTL_EL0 says whether its output is asserted (ENABLE, ISTATUS, not
 *    IMASK).  If so and INTID 27 is not already in flight, it is injected as a
 *    *mapped* interrupt (LR.HW = 1, pINTID 27) and the physical PPI 27 is set
 *    active in the redistributor (GICR_ISACTIVER0, one MMIO write), as v4.10's
 *    kvm_timer_flush_hwstate does: the line, asserted again when the lowvisor
 *    restores CNTV_CTL, then cannot fire until the VM's EOI of the virtual
 *    interrupt deactivates the physical one through the HW bit.  No
 *    maintenance interrupt and no exit for the EOI.
 *  - The physical IRQ that made the vcpu exit (PPI 27: the VM's timer, PPI
 *    25: maintenance) is never acknowledged by the host: its line drops when
 *    the lowvisor disables CNTV (row 41) or rewrites ICH_HCR_EL2, and the host
 *    kernel runs with IRQs masked.
 * None of this touches a system register, so the hypercall path is unchanged. */
#include <stddef.h>
#include <stdint.h>
#include "vgic.h"

typedef uint64_t u64;
typedef uint32_t u32;

struct vgic_v3_cpu_if {
    u64 vgic_hcr;
    u64 vgic_elrsr;
    u64 vgic_misr;
    u64 vgic_eisr;
    u64 vgic_ap0r[4];
    u64 vgic_ap1r[4];
    u64 vgic_lr[VGIC_V3_MAX_LRS];
};
_Static_assert(offsetof(struct vgic_v3_cpu_if, vgic_hcr) == VGIC_CPU_HCR, "hcr");
_Static_assert(offsetof(struct vgic_v3_cpu_if, vgic_elrsr) == VGIC_CPU_ELRSR, "elrsr");
_Static_assert(offsetof(struct vgic_v3_cpu_if, vgic_misr) == VGIC_CPU_MISR, "misr");
_Static_assert(offsetof(struct vgic_v3_cpu_if, vgic_eisr) == VGIC_CPU_EISR, "eisr");
_Static_assert(offsetof(struct vgic_v3_cpu_if, vgic_ap0r) == VGIC_CPU_AP0R, "ap0r");
_Static_assert(offsetof(struct vgic_v3_cpu_if, vgic_ap1r) == VGIC_CPU_AP1R, "ap1r");
_Static_assert(offsetof(struct vgic_v3_cpu_if, vgic_lr) == VGIC_CPU_LR, "lr");
_Static_assert(sizeof(struct vgic_v3_cpu_if) == VGIC_CPU_SIZE, "cpu_if size");

struct vgic_v3_cpu_if kvm_vgic_v3_cpu_if;       /* read/written by vgic_hyp.S */

struct vgic_irq {
    uint8_t pending;        /* pending_latch */
    uint8_t active;
    uint8_t hw;             /* mapped: pINTID == INTID */
    int8_t lr;              /* the list register holding it, or -1 */
};

static struct vgic_irq vgic_irqs[VGIC_NR_IRQS];
static unsigned vgic_nr_lr;
static unsigned long vgic_maintenance_exits, vtimer_injections;

extern char __vgic_v3_get_ich_vtr_el2[], __vgic_v3_init_lrs[];
u64 kvm_call_hyp(void *hypfn, u64 a1, u64 a2, u64 a3);

static inline u32 mmio_read32(u64 a) { return *(volatile u32 *)a; }
static inline void mmio_write32(u64 a, u32 v) { *(volatile u32 *)a = v; }

/* The host's own GIC setup (the Linux GICv3 driver's part, reduced): the
 * distributor with affinity routing and Group 1, this CPU's redistributor
 * awake, PPIs 25 (maintenance) and 27 (virtual timer) in Group 1, enabled,
 * inactive, not pending; the EL1 CPU interface open (PMR 0xff, Group 1
 * enabled).  The host itself keeps PSTATE.I set: those PPIs only matter
 * while the vcpu runs, when HCR_EL2.IMO routes them to EL2 (an IRQ exit).
 * Then the lowvisor's list registers are cleared and ICH_HCR_EL2.En set. */
void kvm_vgic_init(void)
{
    u32 ppis = (1U << INTID_MAINTENANCE) | (1U << INTID_VTIMER);
    u64 vtr, sre;

    mmio_write32(GICD_BASE_ADDR + GICD_CTLR, GICD_CTLR_ARE_NS);
    while (mmio_read32(GICD_BASE_ADDR + GICD_CTLR) & GICD_CTLR_RWP)
        ;
    mmio_write32(GICD_BASE_ADDR + GICD_CTLR, GICD_CTLR_ARE_NS | GICD_CTLR_ENGRP1NS);
    while (mmio_read32(GICD_BASE_ADDR + GICD_CTLR) & GICD_CTLR_RWP)
        ;
    mmio_write32(GICR_RD_BASE_ADDR + GICR_WAKER,
                 mmio_read32(GICR_RD_BASE_ADDR + GICR_WAKER) & ~GICR_WAKER_PSLEEP);
    while (mmio_read32(GICR_RD_BASE_ADDR + GICR_WAKER) & GICR_WAKER_CASLEEP)
        ;
    mmio_write32(GICR_SGI_BASE_ADDR + GICR_ICENABLER0, ppis);
    mmio_write32(GICR_SGI_BASE_ADDR + GICR_ICPENDR0, ppis);
    mmio_write32(GICR_SGI_BASE_ADDR + GICR_ICACTIVER0, ppis);
    mmio_write32(GICR_SGI_BASE_ADDR + GICR_IGROUPR0,
                 mmio_read32(GICR_SGI_BASE_ADDR + GICR_IGROUPR0) | ppis);
    for (int n = 24; n < 28; n++) {             /* IPRIORITYR word of 24-27 */
        if (!(ppis & (1U << n)))
            continue;
        u64 a = GICR_SGI_BASE_ADDR + GICR_IPRIORITYR(24);
        int sh = 8 * (n - 24);
        mmio_write32(a, (mmio_read32(a) & ~(0xffU << sh)) | ((u32)HOST_IRQ_PRIORITY << sh));
    }
    mmio_write32(GICR_SGI_BASE_ADDR + GICR_ISENABLER0, ppis);

    __asm__ volatile("mrs %0, icc_sre_el1" : "=r"(sre));
    __asm__ volatile("msr icc_sre_el1, %0\n\tisb" : : "r"(sre | 1));
    __asm__ volatile("msr icc_pmr_el1, %0" : : "r"((u64)0xff));
    __asm__ volatile("msr icc_bpr1_el1, %0" : : "r"((u64)0));
    __asm__ volatile("msr icc_igrpen1_el1, %0\n\tisb" : : "r"((u64)1));

    vtr = kvm_call_hyp(__vgic_v3_get_ich_vtr_el2, 0, 0, 0);
    vgic_nr_lr = (unsigned)(vtr & ICH_VTR_LISTREGS_MASK) + 1;
    if (vgic_nr_lr > VGIC_V3_MAX_LRS)
        vgic_nr_lr = VGIC_V3_MAX_LRS;
    kvm_call_hyp(__vgic_v3_init_lrs, 0, 0, 0);
    kvm_vgic_v3_cpu_if.vgic_hcr = ICH_HCR_EN;   /* vgic_v3_enable() */
    for (int i = 0; i < VGIC_NR_IRQS; i++)
        vgic_irqs[i].lr = -1;
}

/* kvm_vgic_inject_irq(): make INTID pending (level or edge: a latch). */
static void vgic_inject(unsigned intid, int hw)
{
    struct vgic_irq *irq = &vgic_irqs[intid];

    irq->hw = (uint8_t)hw;
    if (irq->lr >= 0) {                         /* in an LR: pend it there */
        kvm_vgic_v3_cpu_if.vgic_lr[irq->lr] |= ICH_LR_PENDING_BIT;
        irq->pending = 1;
        return;
    }
    irq->pending = 1;
}

static u64 vgic_make_lr(unsigned intid, const struct vgic_irq *irq)
{
    u64 lr = (u64)intid | ICH_LR_GROUP | ((u64)VGIC_PRIORITY << ICH_LR_PRIORITY_SHIFT);

    if (irq->pending)
        lr |= ICH_LR_PENDING_BIT;
    if (irq->active)
        lr |= ICH_LR_ACTIVE_BIT;
    if (irq->hw)
        lr |= ICH_LR_HW | ((u64)intid << ICH_LR_PINTID_SHIFT);
    return lr;
}

/* vgic_flush_lr_state() */
void kvm_vgic_flush_hwstate(void)
{
    struct vgic_v3_cpu_if *cpu_if = &kvm_vgic_v3_cpu_if;
    unsigned next_lr = 0;
    int overflow = 0;

    for (unsigned intid = 0; intid < VGIC_NR_IRQS; intid++) {
        struct vgic_irq *irq = &vgic_irqs[intid];

        if (irq->lr >= 0 || !(irq->pending || irq->active))
            continue;
        while (next_lr < vgic_nr_lr && (cpu_if->vgic_lr[next_lr] & ICH_LR_STATE))
            next_lr++;
        if (next_lr == vgic_nr_lr) {
            overflow = 1;
            break;
        }
        cpu_if->vgic_lr[next_lr] = vgic_make_lr(intid, irq);
        irq->lr = (int8_t)next_lr;
    }
    if (overflow)
        cpu_if->vgic_hcr |= ICH_HCR_UIE;        /* vgic_set_underflow() */
}

/* vgic_fold_lr_state() + vgic_v3_process_maintenance() */
void kvm_vgic_sync_hwstate(void)
{
    struct vgic_v3_cpu_if *cpu_if = &kvm_vgic_v3_cpu_if;

    if (cpu_if->vgic_misr & ICH_MISR_U)
        vgic_maintenance_exits++;
    cpu_if->vgic_misr = 0;
    cpu_if->vgic_hcr &= ~ICH_HCR_UIE;
    for (unsigned i = 0; i < vgic_nr_lr; i++) {
        u64 lr = cpu_if->vgic_lr[i];
        unsigned intid = (unsigned)(lr & ICH_LR_VINTID_MASK);
        struct vgic_irq *irq;

        if (lr == 0 || intid >= VGIC_NR_IRQS)
            continue;
        irq = &vgic_irqs[intid];
        if (irq->lr != (int)i)
            continue;
        irq->pending = (lr & ICH_LR_PENDING_BIT) != 0;
        irq->active = (lr & ICH_LR_ACTIVE_BIT) != 0;
        if (!irq->pending && !irq->active) {    /* EOIed: the LR is free */
            cpu_if->vgic_lr[i] = 0;
            irq->lr = -1;
        }
    }
}

/* kvm_timer_sync_hwstate() -> kvm_timer_update_irq(): timer_ctl is the
 * CNTV_CTL_EL0 the lowvisor saved at the exit (row 39). */
void kvm_timer_sync_hwstate(u64 timer_ctl)
{
    struct vgic_irq *irq = &vgic_irqs[INTID_VTIMER];
    int level = (timer_ctl & ARCH_TIMER_CTRL_ENABLE) && (timer_ctl & ARCH_TIMER_CTRL_IT_STAT) &&
                !(timer_ctl & ARCH_TIMER_CTRL_IT_MASK);

    if (!level || irq->pending || irq->active)
        return;
    vgic_inject(INTID_VTIMER, 1);
    /* phys_active: the asserted line must not fire again until the VM's EOI */
    mmio_write32(GICR_SGI_BASE_ADDR + GICR_ISACTIVER0, 1U << INTID_VTIMER);
    vtimer_injections++;
}

/* KVMLIKE_HVC_VGIC_INJECT: returns the value for the guest's x0 */
u64 kvm_vgic_hvc_inject(u64 intid, u64 count)
{
    if (intid == INTID_SPURIOUS)
        return 0;                               /* probe */
    if (count == 0)
        count = 1;
    if (count > 16 || intid >= VGIC_NR_IRQS || intid + count > VGIC_NR_IRQS)
        return (u64)SMCCC_RET_INVALID_PARAMETER;
    for (u64 i = 0; i < count; i++)
        vgic_inject((unsigned)(intid + i), 0);
    return 0;
}

/* access_gic_sre(): a trapped guest access to ICC_SRE_EL1 (EC 0x18) reads
 * SRE | DFB | DIB and ignores writes.  Returns 1 if the ESR was that access
 * (the caller then skips the instruction); *val and *rt give the result. */
int kvm_vgic_sysreg_sre(u64 esr, u64 vgic_sre, unsigned *rt, u64 *val, int *is_read)
{
    if (((u32)esr & ESR_SYS64_OP_MASK) != ESR_SYS64_ICC_SRE_EL1)
        return 0;
    *rt = (unsigned)(esr >> 5) & 31;
    *is_read = (int)(esr & 1);
    *val = vgic_sre;
    return 1;
}
