/* kvmlike: shared definitions of the lowvisor (kvmlike.S, EL2) and the host
 * kernel (host.c, EL1).  Layouts follow the shape of KVM/ARM v4.10's
 * struct kvm_cpu_context / struct kvm_vcpu; offsets are checked in host.c. */
#ifndef KVMLIKE_H
#define KVMLIKE_H

#ifdef __ASSEMBLER__
#define UL(x) x
#else
#define UL(x) x##UL
#endif

/* struct kvm_cpu_context */
#define CTXT_REGS           0       /* x0..x30 */
#define CPU_XREG_OFFSET(n)  (CTXT_REGS + 8 * (n))
#define CTXT_SP             248     /* SP_EL0 */
#define CTXT_PC             256     /* ELR_EL2 */
#define CTXT_PSTATE         264     /* SPSR_EL2 */
#define CTXT_SP_EL1         272
#define CTXT_ELR_EL1        280
#define CTXT_SPSR_EL1       288
#define CTXT_SYSREGS        304
#define CTXT_SIZE           (CTXT_SYSREGS + 8 * NR_SYS_REGS)

/* sys_regs[] indices */
#define MPIDR_EL1       0
#define CSSELR_EL1      1
#define SCTLR_EL1       2
#define ACTLR_EL1       3
#define CPACR_EL1       4
#define TTBR0_EL1       5
#define TTBR1_EL1       6
#define TCR_EL1         7
#define ESR_EL1         8
#define AFSR0_EL1       9
#define AFSR1_EL1       10
#define FAR_EL1         11
#define MAIR_EL1        12
#define VBAR_EL1        13
#define CONTEXTIDR_EL1  14
#define TPIDR_EL0       15
#define TPIDRRO_EL0     16
#define TPIDR_EL1       17
#define AMAIR_EL1       18
#define CNTKCTL_EL1     19
#define PAR_EL1         20
#define MDSCR_EL1       21
#define NR_SYS_REGS     22
#define SYSREG(i)       (CTXT_SYSREGS + 8 * (i))

/* struct kvm_vcpu */
#define VCPU_CONTEXT        0
#define VCPU_HOST_CONTEXT   (CTXT_SIZE + 0)
#define VCPU_KVM            (CTXT_SIZE + 8)
#define VCPU_HCR_EL2        (CTXT_SIZE + 16)
#define VCPU_MDCR_EL2       (CTXT_SIZE + 24)
#define VCPU_FAULT_ESR      (CTXT_SIZE + 32)
#define VCPU_FAULT_FAR      (CTXT_SIZE + 40)
#define VCPU_FAULT_HPFAR    (CTXT_SIZE + 48)
#define VCPU_IRQ_LINES      (CTXT_SIZE + 56)
#define VCPU_TIMER_CTL      (CTXT_SIZE + 64)
#define VCPU_TIMER_CVAL     (CTXT_SIZE + 72)
#define VCPU_TIMER_ENABLED  (CTXT_SIZE + 80)
#define VCPU_VGIC_VMCR      (CTXT_SIZE + 88)
#define VCPU_VGIC_SRE       (CTXT_SIZE + 96)
#define VCPU_USED_LRS       (CTXT_SIZE + 104)
#define VCPU_SIZE           (CTXT_SIZE + 112)

/* struct kvm */
#define KVM_VTTBR           0
#define KVM_CNTVOFF         8

/* Exit codes returned by __kvm_vcpu_run */
#define ARM_EXCEPTION_IRQ           0
#define ARM_EXCEPTION_EL1_SERROR    1
#define ARM_EXCEPTION_TRAP          2
#define ARM_EXIT_WITH_SERROR_BIT    31

/* Architectural constants */
#define HCR_VM          (UL(1) << 0)      /* stage 2 for the guest (issue 4) */
#define HCR_FMO         (UL(1) << 3)
#define HCR_IMO         (UL(1) << 4)
#define HCR_AMO         (UL(1) << 5)
#define HCR_INT_OVERRIDE (HCR_FMO | HCR_IMO)
#define HCR_FB          (UL(1) << 9)
#define HCR_BSU_IS      (UL(1) << 10)
#define HCR_TWI         (UL(1) << 13)
#define HCR_TWE         (UL(1) << 14)
#define HCR_TIDCP       (UL(1) << 20)
#define HCR_TACR        (UL(1) << 21)
#define HCR_TSW         (UL(1) << 22)
#define HCR_TSC         (UL(1) << 19)
#define HCR_SWIO        (UL(1) << 1)
#define HCR_VSE         (UL(1) << 8)
#define HCR_RW          (UL(1) << 31)
#define HCR_HOST_NVHE_FLAGS HCR_RW
#define HCR_GUEST_FLAGS (HCR_TSC | HCR_TSW | HCR_TWE | HCR_TWI | HCR_VM | HCR_BSU_IS | HCR_FB | \
                         HCR_TACR | HCR_AMO | HCR_SWIO | HCR_TIDCP | HCR_RW)

#define CPTR_EL2_DEFAULT    0x33ff
#define CPTR_EL2_TFP        (UL(1) << 10)
#define CPTR_EL2_TTA        (UL(1) << 20)

#define MDCR_EL2_HPMN_MASK  0x1f
#define MDCR_EL2_TPMCR      (UL(1) << 5)
#define MDCR_EL2_TPM        (UL(1) << 6)
#define MDCR_EL2_TDA        (UL(1) << 9)
#define MDCR_EL2_TDOSA      (UL(1) << 10)
#define MDCR_EL2_TDRA       (UL(1) << 11)

#define CNTHCTL_EL1PCTEN    (UL(1) << 0)
#define CNTHCTL_EL1PCEN     (UL(1) << 1)

#define ICC_SRE_EL2_SRE     (UL(1) << 0)
#define ICC_SRE_EL2_ENABLE  (UL(1) << 3)

#define ARMV8_PMU_USERENR_MASK 0xf

#define ESR_ELx_EC_SHIFT    26
#define ESR_ELx_EC_WFx      0x01
#define ESR_ELx_EC_FP_ASIMD 0x07
#define ESR_ELx_EC_HVC64    0x16
#define ESR_ELx_EC_SMC64    0x17
#define ESR_ELx_EC_SYS64    0x18
#define ESR_ELx_EC_IABT_LOW 0x20
#define ESR_ELx_EC_DABT_LOW 0x24

#define SCTLR_EL2_RES1      0x30c50830
#define SCTLR_EL1_RESET     0x30d00800      /* RES1 bits, MMU and caches off */
#define PSR_MODE_EL1h_DAIF  0x3c5

#define PL011_DR_ADDR       0x09000000
#define PSCI_0_2_FN_PSCI_VERSION        0x84000000
#define PSCI_0_2_FN_MIGRATE_INFO_TYPE   0x84000006
#define PSCI_0_2_FN_SYSTEM_OFF          0x84000008
#define PSCI_0_2_FN_SYSTEM_RESET        0x84000009
#define PSCI_1_0_FN_PSCI_FEATURES       0x8400000a
#define SMCCC_RET_NOT_SUPPORTED         (-1L)

#define GUEST_ENTRY         0x44000000

/* ---- stage 2 and MMIO emulation (issue 4) -------------------------------
 * VTCR_EL2 as KVM v4.10's __init_stage2_translation for 4 KiB pages: 40-bit
 * IPA (T0SZ 24), walk from level 1 with two concatenated tables (an 8 KiB
 * pgd, VTTBR_X = 13), inner-shareable write-back walks; PS from
 * ID_AA64MMFR0_EL1.PARange (at most 48 bits), VS from ID_AA64MMFR1_EL1. */
#define VTCR_EL2_RES1       (UL(1) << 31)
#define VTCR_EL2_VS_16BIT   (UL(1) << 19)
#define VTCR_EL2_PS_SHIFT   16
#define VTCR_EL2_SH0_INNER  (UL(3) << 12)
#define VTCR_EL2_ORGN0_WBWA (UL(1) << 10)
#define VTCR_EL2_IRGN0_WBWA (UL(1) << 8)
#define VTCR_EL2_SL0_LVL1   (UL(1) << 6)
#define VTCR_EL2_T0SZ_40B   24
#define VTCR_EL2_FLAGS      (VTCR_EL2_RES1 | VTCR_EL2_SH0_INNER | VTCR_EL2_ORGN0_WBWA | \
                             VTCR_EL2_IRGN0_WBWA | VTCR_EL2_SL0_LVL1 | VTCR_EL2_T0SZ_40B)
#define PARANGE_48          5
#define VMIDBITS_16         2

#define ESR_ELx_S1PTW_SHIFT 7
#define ESR_ELx_ISV         (UL(1) << 24)
#define ESR_ELx_SAS_SHIFT   22
#define ESR_ELx_SSE         (UL(1) << 21)
#define ESR_ELx_SRT_SHIFT   16
#define ESR_ELx_SF          (UL(1) << 15)
#define ESR_ELx_WNR         (UL(1) << 6)
#define ESR_ELx_FSC_TYPE    0x3c
#define FSC_FAULT           0x04    /* translation */
#define FSC_ACCESS          0x08    /* access flag */
#define FSC_PERM            0x0c    /* permission */

#define GUEST_RAM_BASE      0x44000000
#define GUEST_RAM_SIZE      0x04000000
#define PL011_BASE_ADDR     0x09000000
#define PL011_SIZE          0x1000
/* ---- end of stage 2 and MMIO emulation ------------------------------------ */

#endif
