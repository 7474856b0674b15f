/* GICv3 helpers for the interrupt test kernels (firmware/timer, vtimer and
 * virteoi keep identical copies of this file).
 *
 * QEMU `virt` layout (see /work/shared/notes/platform.md): distributor at
 * 0x08000000, the redistributor of CPU 0 at 0x080A0000 (RD_base) with its
 * SGI_base frame 64 KiB above.  One security state (GICD_CTLR.DS = 1 on QEMU
 * without EL3), so the Non-secure bit layout below is the one that applies.
 * All MMIO is done with 32-bit accesses (priorities by read-modify-write).
 *
 * The distributor/redistributor are only programmed by a kernel that owns the
 * GIC (vm mode).  A nested VM under kvmlike must not touch them: kvmlike has
 * no emulated distributor; the interrupts it injects and the virtual timer
 * PPI are delivered through list registers whatever the VM's GICD/GICR state. */
#ifndef IRQ_GIC_H
#define IRQ_GIC_H
#include <stdint.h>

#define GICD_BASE           0x08000000UL
#define GICD_CTLR           0x0000
#define GICD_CTLR_RWP       (1U << 31)
#define GICD_CTLR_ARE_NS    (1U << 4)
#define GICD_CTLR_ENGRP1NS  (1U << 1)

#define GICR_RD_BASE        0x080A0000UL
#define GICR_SGI_BASE       (GICR_RD_BASE + 0x10000)
#define GICR_WAKER          0x0014
#define GICR_WAKER_PSLEEP   (1U << 1)
#define GICR_WAKER_CASLEEP  (1U << 2)
#define GICR_IGROUPR0       0x0080
#define GICR_ISENABLER0     0x0100
#define GICR_ICENABLER0     0x0180
#define GICR_ICPENDR0       0x0280
#define GICR_ICACTIVER0     0x0380
#define GICR_IPRIORITYR(n)  (0x0400 + (n))      /* byte offset of INTID n */

#define INTID_SPURIOUS      1023
#define INTID_VTIMER        27
#define INTID_PTIMER        30
#define IRQ_PRIORITY        0x80

#define CNT_CTL_ENABLE      (1UL << 0)
#define CNT_CTL_IMASK       (1UL << 1)
#define CNT_CTL_ISTATUS     (1UL << 2)

static inline uint32_t mmio_read32(uintptr_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write32(uintptr_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

/* Distributor: affinity routing, Group 1 (Non-secure) enabled. */
static inline void gic_dist_init(void)
{
    mmio_write32(GICD_BASE + GICD_CTLR, GICD_CTLR_ARE_NS);
    while (mmio_read32(GICD_BASE + GICD_CTLR) & GICD_CTLR_RWP)
        ;
    mmio_write32(GICD_BASE + GICD_CTLR, GICD_CTLR_ARE_NS | GICD_CTLR_ENGRP1NS);
    while (mmio_read32(GICD_BASE + GICD_CTLR) & GICD_CTLR_RWP)
        ;
}

/* Redistributor of this CPU: wake it, then put the SGIs/PPIs in `mask`
 * (bit n = INTID n) in Group 1 at IRQ_PRIORITY, inactive, not pending, enabled. */
static inline void gic_redist_init(uint32_t mask)
{
    uint32_t w = mmio_read32(GICR_RD_BASE + GICR_WAKER);
    mmio_write32(GICR_RD_BASE + GICR_WAKER, w & ~GICR_WAKER_PSLEEP);
    while (mmio_read32(GICR_RD_BASE + GICR_WAKER) & GICR_WAKER_CASLEEP)
        ;
    mmio_write32(GICR_SGI_BASE + GICR_ICENABLER0, mask);
    mmio_write32(GICR_SGI_BASE + GICR_ICPENDR0, mask);
    mmio_write32(GICR_SGI_BASE + GICR_ICACTIVER0, mask);
    mmio_write32(GICR_SGI_BASE + GICR_IGROUPR0, mmio_read32(GICR_SGI_BASE + GICR_IGROUPR0) | mask);
    for (int n = 0; n < 32; n++) {
        if (!(mask & (1U << n)))
            continue;
        uintptr_t a = GICR_SGI_BASE + GICR_IPRIORITYR(n & ~3);
        int sh = 8 * (n & 3);
        mmio_write32(a, (mmio_read32(a) & ~(0xffU << sh)) | ((uint32_t)IRQ_PRIORITY << sh));
    }
    mmio_write32(GICR_SGI_BASE + GICR_ISENABLER0, mask);
}

/* CPU interface (or, under a hypervisor with HCR_EL2.IMO set, the virtual CPU
 * interface): system-register access, priority mask open, Group 1 enabled.
 * ICC_SRE_EL1 is only written if SRE reads as 0 (KVM-style hypervisors trap
 * and emulate it; reading it is enough there). */
static inline void gic_cpuif_init(void)
{
    uint64_t sre;
    __asm__ volatile("mrs %0, icc_sre_el1" : "=r"(sre));
    if (!(sre & 1)) {
        __asm__ volatile("msr icc_sre_el1, %0" : : "r"(sre | 1));
        __asm__ volatile("isb");
    }
    __asm__ volatile("msr icc_pmr_el1, %0" : : "r"((uint64_t)0xff));
    __asm__ volatile("msr icc_bpr1_el1, %0" : : "r"((uint64_t)0));
    __asm__ volatile("msr icc_igrpen1_el1, %0" : : "r"((uint64_t)1));
    __asm__ volatile("isb");
}

static inline uint64_t gic_ack(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, icc_iar1_el1" : "=r"(v) : : "memory");
    return v;
}

static inline void gic_eoi(uint64_t iar)
{
    __asm__ volatile("msr icc_eoir1_el1, %0" : : "r"(iar) : "memory");
}

/* SGI `intid` (0..15) to this CPU only (Aff3.Aff2.Aff1 and the target list bit
 * taken from MPIDR_EL1; IRM = 0). */
static inline void gic_sgi_self(unsigned intid)
{
    uint64_t mpidr;
    __asm__ volatile("mrs %0, mpidr_el1" : "=r"(mpidr));
    uint64_t v = ((uint64_t)(intid & 0xf) << 24) |
                 (((mpidr >> 8) & 0xff) << 16) |            /* Aff1 */
                 (((mpidr >> 16) & 0xff) << 32) |           /* Aff2 */
                 (((mpidr >> 32) & 0xff) << 48) |           /* Aff3 */
                 (1UL << (mpidr & 0xf));                    /* target list: Aff0 */
    __asm__ volatile("msr icc_sgi1r_el1, %0" : : "r"(v) : "memory");
    __asm__ volatile("isb");
}

static inline void irq_enable(void) { __asm__ volatile("msr daifclr, #2\n\tisb" : : : "memory"); }
static inline void irq_disable(void) { __asm__ volatile("msr daifset, #2" : : : "memory"); }

/* Wait until *ctr >= target: IRQs masked around the test so that an interrupt
 * arriving between the test and the WFI still wakes the WFI; the interrupt is
 * then taken at the ISB after unmasking. */
static inline void wait_irq_count(volatile uint64_t *ctr, uint64_t target)
{
    for (;;) {
        irq_disable();
        if (*ctr >= target)
            break;
        __asm__ volatile("wfi" : : : "memory");
        irq_enable();
    }
    irq_enable();
}

/* Spin (no WFI) with IRQs unmasked until *ctr >= target. */
static inline void spin_irq_count(volatile uint64_t *ctr, uint64_t target)
{
    irq_enable();
    while (*ctr < target)
        __asm__ volatile("" : : : "memory");
}
#endif
