/* kvmlike: GICv3 virtual CPU interface and virtual timer for the nested VM
 * (issue 6), shared by vgic_hyp.S (EL2) and vgic.c (host kernel, EL1).
 *
 * The state of the vcpu's virtual CPU interface lives in one
 * struct vgic_v3_cpu_if (a single vcpu: the global kvm_vgic_v3_cpu_if), in
 * the shape of KVM/ARM v4.10's; vcpu->used_lrs (VCPU_USED_LRS) is v4.10's
 * live_lrs: the bitmap of list registers the lowvisor loaded on the last
 * entry, so the exit path only touches the list-register state when one was
 * live.  With no live list register the world switch is exactly the 165
 * accesses of kvm-v4.10-hypercall-path.md. */
#ifndef KVMLIKE_VGIC_H
#define KVMLIKE_VGIC_H

#include "kvmlike.h"

/* struct vgic_v3_cpu_if */
#define VGIC_CPU_HCR        0
#define VGIC_CPU_ELRSR      8
#define VGIC_CPU_MISR       16
#define VGIC_CPU_EISR       24
#define VGIC_CPU_AP0R       32      /* [4] */
#define VGIC_CPU_AP1R       64      /* [4] */
#define VGIC_CPU_LR         96      /* [16] */
#define VGIC_CPU_SIZE       224
#define VGIC_V3_MAX_LRS     16

/* ICH_* fields */
#define ICH_HCR_EN          (UL(1) << 0)
#define ICH_HCR_UIE         (UL(1) << 1)
#define ICH_MISR_EOI        (UL(1) << 0)
#define ICH_MISR_U          (UL(1) << 1)
#define ICH_VTR_LISTREGS_MASK 0x1f
#define ICH_VTR_PRIBITS_SHIFT 29
#define ICH_LR_VINTID_MASK  0xffffffffUL
#define ICH_LR_PINTID_SHIFT 32
#define ICH_LR_EOI          (UL(1) << 41)
#define ICH_LR_PRIORITY_SHIFT 48
#define ICH_LR_GROUP        (UL(1) << 60)
#define ICH_LR_HW           (UL(1) << 61)
#define ICH_LR_PENDING_BIT  (UL(1) << 62)
#define ICH_LR_ACTIVE_BIT   (UL(1) << 63)
#define ICH_LR_STATE        (ICH_LR_PENDING_BIT | ICH_LR_ACTIVE_BIT)

/* The physical GIC (QEMU virt layout) as the host kernel programs it */
#define GICD_BASE_ADDR      0x08000000
#define GICD_CTLR           0x0000
#define GICD_CTLR_RWP       (1U << 31)
#define GICD_CTLR_ARE_NS    (1U << 4)
#define GICD_CTLR_ENGRP1NS  (1U << 1)
#define GICR_RD_BASE_ADDR   0x080A0000
#define GICR_SGI_BASE_ADDR  (GICR_RD_BASE_ADDR + 0x10000)
#define GICR_WAKER          0x0014
#define GICR_WAKER_PSLEEP   (1U << 1)
#define GICR_WAKER_CASLEEP  (1U << 2)
#define GICR_IGROUPR0       0x0080
#define GICR_ISENABLER0     0x0100
#define GICR_ICENABLER0     0x0180
#define GICR_ICPENDR0       0x0280
#define GICR_ISACTIVER0     0x0300
#define GICR_ICACTIVER0     0x0380
#define GICR_IPRIORITYR(n)  (0x0400 + (n))

#define INTID_MAINTENANCE   25
#define INTID_VTIMER        27
#define INTID_SPURIOUS      1023
#define VGIC_NR_IRQS        64      /* SGIs, PPIs and SPIs 32-63 */
#define VGIC_PRIORITY       0xa0    /* of every injected interrupt */
#define HOST_IRQ_PRIORITY   0xa0    /* physical PPIs 25 and 27 */

#define ARCH_TIMER_CTRL_ENABLE  (UL(1) << 0)
#define ARCH_TIMER_CTRL_IT_MASK (UL(1) << 1)
#define ARCH_TIMER_CTRL_IT_STAT (UL(1) << 2)

/* Vendor-specific hypervisor service (SMCCC owner 6, fast, SMC32):
 *   x0 = 0x86000001 KVMLIKE_HVC_VGIC_INJECT, x1 = INTID, x2 = count
 * makes INTIDs x1 .. x1+count-1 (count 0 means 1; INTID < 64, count <= 16)
 * pending for the caller, as purely virtual Group 1 interrupts at priority
 * 0xa0 delivered through list registers.  x1 = 1023 injects nothing: a probe.
 * Returns 0, or -2 (INVALID_PARAMETER).  0x86000000 stays NOT_SUPPORTED (the
 * hypercall image relies on it). */
#define KVMLIKE_HVC_VGIC_INJECT     0x86000001
#define SMCCC_RET_INVALID_PARAMETER (-2L)

/* ICC_SRE_EL1 (S3_0_C12_C12_5) as an ESR_EL2 ISS for EC 0x18, without Rt and
 * direction: a guest access traps while ICC_SRE_EL2.Enable is 0. */
#define ESR_SYS64_OP_MASK   0x3ffc1e
#define ESR_SYS64_ICC_SRE_EL1 ((3U << 20) | (5U << 17) | (0U << 14) | (12U << 10) | (12U << 1))

#endif
