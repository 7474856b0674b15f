/* kvmlike: a KVM/ARM v4.10-like, non-VHE ("split mode") guest hypervisor.
 *
 * This file is the lowvisor: the EL2 boot code, the EL2 vectors (VBAR_EL2),
 * the host-HVC dispatcher, __kvm_vcpu_run (the world switch) and
 * __guest_enter/__guest_exit.  The host kernel (host.c, host_entry.S) runs at
 * EL1 and calls __kvm_vcpu_run with `hvc #0`, as KVM's kvm_call_hyp() does.
 * MMU off everywhere: kernel VA == hyp VA == PA (kern_hyp_va is the identity).
 *
 * ---------------------------------------------------------------------------
 * One guest-hypercall round trip, audited against
 * /work/shared/notes/kvm-v4.10-hypercall-path.md (row numbers of its table).
 * Every system-register access, ERET and HVC executed on the path is listed;
 * nothing else on the path touches a system register.
 *
 *   1        L2: hvc #0                                  (the nested VM)
 *  -- exit path (a), at EL2 ------------------------------------------------
 *   2        el1_sync:        mrs ESR_EL2
 *   3        el1_sync:        mrs VTTBR_EL2       (!= 0: from the guest)
 *   4        el1_trap:        mrs TPIDR_EL2       (vcpu)
 *   5-7      __guest_exit:    mrs ELR_EL2, ESR_EL2, SPSR_EL2 (SError window)
 *   8        __populate_fault_info: mrs ESR_EL2 (EC=HVC64: no FAR/HPFAR)
 *   9        __fpsimd_enabled: mrs CPTR_EL2      (TFP set: FP not used)
 *  10-29     __sysreg_save_state(guest): mrs VMPIDR_EL2, CSSELR_EL1,
 *            SCTLR_EL1, CPACR_EL1, TTBR0_EL1, TTBR1_EL1, TCR_EL1, ESR_EL1,
 *            AFSR0_EL1, AFSR1_EL1, FAR_EL1, MAIR_EL1, VBAR_EL1,
 *            CONTEXTIDR_EL1, AMAIR_EL1, CNTKCTL_EL1, PAR_EL1, SP_EL1,
 *            ELR_EL1, SPSR_EL1
 *  30-37     __sysreg_save_common_state(guest): mrs ACTLR_EL1, TPIDR_EL0,
 *            TPIDRRO_EL0, TPIDR_EL1, MDSCR_EL1, SP_EL0, ELR_EL2, SPSR_EL2
 *  38        __sysreg32_save_state: mrs HCR_EL2  (RW set: AArch64 guest)
 *  39-44     __timer_save_state: mrs CNTV_CTL_EL0, mrs CNTV_CVAL_EL0,
 *            msr CNTV_CTL_EL0, mrs CNTHCTL_EL2, msr CNTHCTL_EL2,
 *            msr CNTVOFF_EL2
 *  45-47     __vgic_v3_save_state: mrs ICH_VMCR_EL2, mrs ICC_SRE_EL2,
 *            msr ICC_SRE_EL2                    (no live list register)
 *  48-49     __vgic_save_state: mrs HCR_EL2, msr HCR_EL2
 *  50-51     __deactivate_traps_nvhe: msr HCR_EL2, msr CPTR_EL2
 *  52-55     __deactivate_traps: msr HSTR_EL2, mrs MDCR_EL2, msr MDCR_EL2,
 *            msr PMUSERENR_EL0
 *  56        __deactivate_vm: msr VTTBR_EL2
 *  57-76     __sysreg_restore_state(host): msr of rows 10-29's registers,
 *            same order
 *  77-84     __sysreg_restore_common_state(host): msr of rows 30-37's
 *            registers, same order
 *  85        el1_sync: eret                     (back to the host kernel)
 *  -- host kernel (b), at EL1 -----------------------------------------------
 *  86        kvm_call_hyp: hvc #0               (no sysreg access in between)
 *  -- entry path (c), at EL2 -----------------------------------------------
 *  87        el1_sync:        mrs ESR_EL2
 *  88        el1_sync:        mrs VTTBR_EL2       (== 0: host HVC)
 *  89        __kvm_vcpu_run:  msr TPIDR_EL2
 *  90-109    __sysreg_save_state(host): as rows 10-29
 *  110-117   __sysreg_save_common_state(host): as rows 30-37
 *  118-123   __activate_traps: msr HCR_EL2, msr HSTR_EL2, msr PMSELR_EL0,
 *            msr PMUSERENR_EL0, msr MDCR_EL2, msr CPTR_EL2
 *  124       __activate_vm: msr VTTBR_EL2
 *  125-126   __vgic_restore_state: mrs HCR_EL2, msr HCR_EL2
 *  127-130   __vgic_v3_restore_state: mrs ICH_VTR_EL2, msr ICH_VMCR_EL2,
 *            mrs ICC_SRE_EL2, msr ICC_SRE_EL2
 *  131-135   __timer_restore_state: mrs CNTHCTL_EL2, msr CNTHCTL_EL2,
 *            msr CNTVOFF_EL2, msr CNTV_CVAL_EL0, msr CNTV_CTL_EL0
 *  136       __sysreg32_restore_state: mrs HCR_EL2
 *  137-156   __sysreg_restore_state(guest): msr, as rows 57-76
 *  157-164   __sysreg_restore_common_state(guest): msr, as rows 77-84
 *  165       __guest_enter: eret
 *
 * Totals: 165 instructions (161 MRS/MSR + 2 ERET + 1 HVC of L1, + the L2 HVC).
 * Non-trapping under ARMv8.3 NV (native EL0/EL1 registers): CSSELR_EL1,
 * CNTKCTL_EL1, PAR_EL1, TPIDR_EL0, TPIDRRO_EL0, TPIDR_EL1, SP_EL0 (x4 each =
 * 28), CNTV_CTL_EL0 x3, CNTV_CVAL_EL0 x2 -> 33 native; 165 - 33 = 132 traps.
 *
 * Issue 6 (vgic_hyp.S): with a live list register the exit path adds 6+
 * accesses after row 45 (ICH_ELRSR R, [ICH_MISR R, [ICH_EISR R]], ICH_HCR W,
 * ICH_VTR R, per live LR: [ICH_LR<n> R] ICH_LR<n> W, ICH_AP0R0 R, ICH_AP1R0 R
 * with 5 priority bits) and the entry path 3+ after row 128 (ICH_HCR W,
 * ICH_AP0R0 W, ICH_AP1R0 W, ICH_LR<n> W per live LR).  With none live, as
 * on the hypercall path, both calls return without any access.
 *
 * One MMIO round trip (issue 4: the guest runs behind stage 2, HCR_EL2.VM,
 * and the PL011 is not in it): the same path with three differences.
 *   1        L2: ldr/str to the UART -> stage-2 data abort (instead of HVC)
 *   3        el1_sync does NOT read VTTBR_EL2 (EC is not HVC64)
 *   8a, 8b   __populate_fault_info: mrs FAR_EL2, mrs HPFAR_EL2 after row 8
 *            (a permission fault would use AT S1E1R + PAR_EL1 instead of
 *            HPFAR_EL2, as __translate_far_to_hpfar; never the case here)
 * The host kernel (b) emulates the access from the syndrome in C, touching
 * no system register (a store to UARTDR becomes its own store to the UART).
 * Totals: 166 instructions; ARMv8.3 NV traps 132 - 1 + 2 = 133 (+1 for the
 * host's own UART store on a guest write); FEAT_NV2 traps 22 + 1 (HPFAR_EL2
 * has no VNCR slot; FAR_EL2 is redirected to FAR_EL1) = 23.
 * ---------------------------------------------------------------------------
 */
#include "kvmlike.h"

/* ------------------------------------------------------------------------- */
/* World-switch helpers: the order of the accesses is the order of the table. */

/* rows 10-29 / 90-109: __sysreg_save_state(ctxt) */
.macro sysreg_save_state ctxt
    mrs     x2, vmpidr_el2
    str     x2, [\ctxt, #SYSREG(MPIDR_EL1)]
    mrs     x2, csselr_el1
    str     x2, [\ctxt, #SYSREG(CSSELR_EL1)]
    mrs     x2, sctlr_el1
    str     x2, [\ctxt, #SYSREG(SCTLR_EL1)]
    mrs     x2, cpacr_el1
    str     x2, [\ctxt, #SYSREG(CPACR_EL1)]
    mrs     x2, ttbr0_el1
    str     x2, [\ctxt, #SYSREG(TTBR0_EL1)]
    mrs     x2, ttbr1_el1
    str     x2, [\ctxt, #SYSREG(TTBR1_EL1)]
    mrs     x2, tcr_el1
    str     x2, [\ctxt, #SYSREG(TCR_EL1)]
    mrs     x2, esr_el1
    str     x2, [\ctxt, #SYSREG(ESR_EL1)]
    mrs     x2, afsr0_el1
    str     x2, [\ctxt, #SYSREG(AFSR0_EL1)]
    mrs     x2, afsr1_el1
    str     x2, [\ctxt, #SYSREG(AFSR1_EL1)]
    mrs     x2, far_el1
    str     x2, [\ctxt, #SYSREG(FAR_EL1)]
    mrs     x2, mair_el1
    str     x2, [\ctxt, #SYSREG(MAIR_EL1)]
    mrs     x2, vbar_el1
    str     x2, [\ctxt, #SYSREG(VBAR_EL1)]
    mrs     x2, contextidr_el1
    str     x2, [\ctxt, #SYSREG(CONTEXTIDR_EL1)]
    mrs     x2, amair_el1
    str     x2, [\ctxt, #SYSREG(AMAIR_EL1)]
    mrs     x2, cntkctl_el1
    str     x2, [\ctxt, #SYSREG(CNTKCTL_EL1)]
    mrs     x2, par_el1
    str     x2, [\ctxt, #SYSREG(PAR_EL1)]
    mrs     x2, sp_el1
    str     x2, [\ctxt, #CTXT_SP_EL1]
    mrs     x2, elr_el1
    str     x2, [\ctxt, #CTXT_ELR_EL1]
    mrs     x2, spsr_el1
    str     x2, [\ctxt, #CTXT_SPSR_EL1]
.endm

/* rows 30-37 / 110-117: __sysreg_save_common_state(ctxt) */
.macro sysreg_save_common_state ctxt
    mrs     x2, actlr_el1
    str     x2, [\ctxt, #SYSREG(ACTLR_EL1)]
    mrs     x2, tpidr_el0
    str     x2, [\ctxt, #SYSREG(TPIDR_EL0)]
    mrs     x2, tpidrro_el0
    str     x2, [\ctxt, #SYSREG(TPIDRRO_EL0)]
    mrs     x2, tpidr_el1
    str     x2, [\ctxt, #SYSREG(TPIDR_EL1)]
    mrs     x2, mdscr_el1
    str     x2, [\ctxt, #SYSREG(MDSCR_EL1)]
    mrs     x2, sp_el0
    str     x2, [\ctxt, #CTXT_SP]
    mrs     x2, elr_el2
    str     x2, [\ctxt, #CTXT_PC]
    mrs     x2, spsr_el2
    str     x2, [\ctxt, #CTXT_PSTATE]
.endm

/* rows 57-76 / 137-156: __sysreg_restore_state(ctxt) */
.macro sysreg_restore_state ctxt
    ldr     x2, [\ctxt, #SYSREG(MPIDR_EL1)]
    msr     vmpidr_el2, x2
    ldr     x2, [\ctxt, #SYSREG(CSSELR_EL1)]
    msr     csselr_el1, x2
    ldr     x2, [\ctxt, #SYSREG(SCTLR_EL1)]
    msr     sctlr_el1, x2
    ldr     x2, [\ctxt, #SYSREG(CPACR_EL1)]
    msr     cpacr_el1, x2
    ldr     x2, [\ctxt, #SYSREG(TTBR0_EL1)]
    msr     ttbr0_el1, x2
    ldr     x2, [\ctxt, #SYSREG(TTBR1_EL1)]
    msr     ttbr1_el1, x2
    ldr     x2, [\ctxt, #SYSREG(TCR_EL1)]
    msr     tcr_el1, x2
    ldr     x2, [\ctxt, #SYSREG(ESR_EL1)]
    msr     esr_el1, x2
    ldr     x2, [\ctxt, #SYSREG(AFSR0_EL1)]
    msr     afsr0_el1, x2
    ldr     x2, [\ctxt, #SYSREG(AFSR1_EL1)]
    msr     afsr1_el1, x2
    ldr     x2, [\ctxt, #SYSREG(FAR_EL1)]
    msr     far_el1, x2
    ldr     x2, [\ctxt, #SYSREG(MAIR_EL1)]
    msr     mair_el1, x2
    ldr     x2, [\ctxt, #SYSREG(VBAR_EL1)]
    msr     vbar_el1, x2
    ldr     x2, [\ctxt, #SYSREG(CONTEXTIDR_EL1)]
    msr     contextidr_el1, x2
    ldr     x2, [\ctxt, #SYSREG(AMAIR_EL1)]
    msr     amair_el1, x2
    ldr     x2, [\ctxt, #SYSREG(CNTKCTL_EL1)]
    msr     cntkctl_el1, x2
    ldr     x2, [\ctxt, #SYSREG(PAR_EL1)]
    msr     par_el1, x2
    ldr     x2, [\ctxt, #CTXT_SP_EL1]
    msr     sp_el1, x2
    ldr     x2, [\ctxt, #CTXT_ELR_EL1]
    msr     elr_el1, x2
    ldr     x2, [\ctxt, #CTXT_SPSR_EL1]
    msr     spsr_el1, x2
.endm

/* rows 77-84 / 157-164: __sysreg_restore_common_state(ctxt) */
.macro sysreg_restore_common_state ctxt
    ldr     x2, [\ctxt, #SYSREG(ACTLR_EL1)]
    msr     actlr_el1, x2
    ldr     x2, [\ctxt, #SYSREG(TPIDR_EL0)]
    msr     tpidr_el0, x2
    ldr     x2, [\ctxt, #SYSREG(TPIDRRO_EL0)]
    msr     tpidrro_el0, x2
    ldr     x2, [\ctxt, #SYSREG(TPIDR_EL1)]
    msr     tpidr_el1, x2
    ldr     x2, [\ctxt, #SYSREG(MDSCR_EL1)]
    msr     mdscr_el1, x2
    ldr     x2, [\ctxt, #CTXT_SP]
    msr     sp_el0, x2
    ldr     x2, [\ctxt, #CTXT_PC]
    msr     elr_el2, x2
    ldr     x2, [\ctxt, #CTXT_PSTATE]
    msr     spsr_el2, x2
.endm

.macro save_callee_saved_regs ctxt
    stp     x19, x20, [\ctxt, #CPU_XREG_OFFSET(19)]
    stp     x21, x22, [\ctxt, #CPU_XREG_OFFSET(21)]
    stp     x23, x24, [\ctxt, #CPU_XREG_OFFSET(23)]
    stp     x25, x26, [\ctxt, #CPU_XREG_OFFSET(25)]
    stp     x27, x28, [\ctxt, #CPU_XREG_OFFSET(27)]
    stp     x29, lr,  [\ctxt, #CPU_XREG_OFFSET(29)]
.endm

.macro restore_callee_saved_regs ctxt
    ldp     x19, x20, [\ctxt, #CPU_XREG_OFFSET(19)]
    ldp     x21, x22, [\ctxt, #CPU_XREG_OFFSET(21)]
    ldp     x23, x24, [\ctxt, #CPU_XREG_OFFSET(23)]
    ldp     x25, x26, [\ctxt, #CPU_XREG_OFFSET(25)]
    ldp     x27, x28, [\ctxt, #CPU_XREG_OFFSET(27)]
    ldp     x29, lr,  [\ctxt, #CPU_XREG_OFFSET(29)]
.endm

.macro mov_imm reg, val
    movz    \reg, #((\val) & 0xffff)
    movk    \reg, #(((\val) >> 16) & 0xffff), lsl #16
.endm

/* ------------------------------------------------------------------------- */
/* Boot: entered at EL2 with the MMU off.  Not on the hypercall path.         */

    .section .text.boot, "ax"
    .global _start
_start:
    mrs     x0, CurrentEL
    cmp     x0, #(2 << 2)
    b.ne    not_el2
    adrp    x0, hyp_stack_top
    add     x0, x0, :lo12:hyp_stack_top
    mov     sp, x0
    /* zero .bss (also done by the loader; harmless) */
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    2f
    stp     xzr, xzr, [x0], #16
    b       1b
2:
    /* EL2 configuration, as KVM's el2_setup + __kvm_hyp_init would leave it */
    adrp    x0, __kvm_hyp_vector
    add     x0, x0, :lo12:__kvm_hyp_vector
    msr     vbar_el2, x0
    mov_imm x0, SCTLR_EL2_RES1              /* MMU, caches, alignment check off */
    msr     sctlr_el2, x0
    isb
    mov_imm x0, HCR_HOST_NVHE_FLAGS
    msr     hcr_el2, x0
    mov_imm x0, CPTR_EL2_DEFAULT
    msr     cptr_el2, x0
    mrs     x0, mdcr_el2                    /* keep HPMN, no traps for the host */
    and     x0, x0, #MDCR_EL2_HPMN_MASK
    msr     mdcr_el2, x0
    msr     hstr_el2, xzr
    mov     x0, #(CNTHCTL_EL1PCTEN | CNTHCTL_EL1PCEN)
    msr     cnthctl_el2, x0
    msr     cntvoff_el2, xzr
    mov     x0, #(ICC_SRE_EL2_SRE | ICC_SRE_EL2_ENABLE)
    msr     icc_sre_el2, x0
    isb
    msr     ich_hcr_el2, xzr
    msr     ich_vmcr_el2, xzr
    msr     vttbr_el2, xzr
    /* __init_stage2_translation (issue 4): VTCR_EL2 for every guest */
    mrs     x0, id_aa64mmfr0_el1
    and     x0, x0, #7                      /* PARange */
    mov     x1, #PARANGE_48
    cmp     x0, x1
    csel    x0, x1, x0, hi
    lsl     x0, x0, #VTCR_EL2_PS_SHIFT
    mov_imm x1, VTCR_EL2_FLAGS
    orr     x0, x0, x1
    mrs     x1, id_aa64mmfr1_el1
    ubfx    x1, x1, #4, #4                  /* VMIDBits */
    cmp     x1, #VMIDBITS_16
    b.ne    7f
    orr     x0, x0, #VTCR_EL2_VS_16BIT
7:  msr     vtcr_el2, x0
    mrs     x0, midr_el1
    msr     vpidr_el2, x0
    mrs     x0, mpidr_el1
    msr     vmpidr_el2, x0
    isb
    adrp    x0, banner
    add     x0, x0, :lo12:banner
    bl      hyp_puts
    /* Drop to the host kernel at EL1h, DAIF masked, EL1 MMU off */
    mov_imm x0, SCTLR_EL1_RESET
    msr     sctlr_el1, x0
    msr     cpacr_el1, xzr
    adrp    x0, host_entry
    add     x0, x0, :lo12:host_entry
    msr     elr_el2, x0
    mov     x0, #PSR_MODE_EL1h_DAIF
    msr     spsr_el2, x0
    isb
    eret

not_el2:
    adrp    x0, msg_not_el2
    add     x0, x0, :lo12:msg_not_el2
    bl      hyp_puts
    mov_imm x0, PSCI_0_2_FN_SYSTEM_OFF
    hvc     #0
3:  wfi
    b       3b

    .text
/* hyp_puts(x0 = string): polled-free PL011 output, clobbers x0-x2 */
hyp_puts:
    mov_imm x1, PL011_DR_ADDR
1:  ldrb    w2, [x0], #1
    cbz     w2, 2f
    strb    w2, [x1]
    b       1b
2:  ret

/* hyp_puthex(x0 = value): "0x" + 16 hex digits, clobbers x0-x4 */
hyp_puthex:
    mov_imm x1, PL011_DR_ADDR
    mov     w2, #'0'
    strb    w2, [x1]
    mov     w2, #'x'
    strb    w2, [x1]
    mov     x3, #60
1:  lsr     x2, x0, x3
    and     x2, x2, #0xf
    cmp     x2, #10
    add     x4, x2, #'0'
    add     x2, x2, #('a' - 10)
    csel    x2, x4, x2, lo
    strb    w2, [x1]
    subs    x3, x3, #4
    b.pl    1b
    ret

/* ------------------------------------------------------------------------- */
/* EL2 vectors (hyp-entry.S)                                                  */

.macro invalid_vector label, code
    .balign 0x80
\label:
    mov     x0, #\code
    b       hyp_panic
.endm

.macro vector target
    .balign 0x80
    b       \target
.endm

    .balign 0x800
    .global __kvm_hyp_vector
__kvm_hyp_vector:
    invalid_vector el2t_sync_invalid, 0
    invalid_vector el2t_irq_invalid, 1
    invalid_vector el2t_fiq_invalid, 2
    invalid_vector el2t_error_invalid, 3
    invalid_vector el2h_sync_invalid, 4
    invalid_vector el2h_irq_invalid, 5
    invalid_vector el2h_fiq_invalid, 6
    invalid_vector el2h_error_invalid, 7
    vector  el1_sync                        /* lower EL, AArch64 */
    vector  el1_irq
    invalid_vector el1_fiq_invalid, 10
    vector  el1_error
    invalid_vector el1_sync_invalid32, 12   /* lower EL, AArch32 */
    invalid_vector el1_irq_invalid32, 13
    invalid_vector el1_fiq_invalid32, 14
    invalid_vector el1_error_invalid32, 15

    .balign 0x80
el1_sync:                                   /* guest trap, or host HVC */
    stp     x0, x1, [sp, #-16]!
    mrs     x1, esr_el2                     /* row 2 / 87 */
    lsr     x0, x1, #ESR_ELx_EC_SHIFT
    cmp     x0, #ESR_ELx_EC_HVC64
    b.ne    el1_trap
    mrs     x1, vttbr_el2                   /* row 3 / 88 */
    cbnz    x1, el1_trap                    /* VTTBR valid: the guest's HVC */

    /* The host kernel called HVC: x0 = hyp function, x1-x3 = arguments */
    ldp     x0, x1, [sp], #16
    str     lr, [sp, #-16]!                 /* do_el2_call */
    mov     lr, x0
    mov     x0, x1
    mov     x1, x2
    mov     x2, x3
    blr     lr
    ldr     lr, [sp], #16
    eret                                    /* row 85 */

el1_trap:
    /* x0: ESR_EC.  FP/SIMD is never lazily switched here: the guest is
     * expected not to use it, an FP trap is an ordinary exit. */
    mrs     x1, tpidr_el2                   /* row 4 */
    mov     x0, #ARM_EXCEPTION_TRAP
    b       __guest_exit

el1_irq:
    stp     x0, x1, [sp, #-16]!
    mrs     x1, tpidr_el2
    mov     x0, #ARM_EXCEPTION_IRQ
    b       __guest_exit

el1_error:
    stp     x0, x1, [sp, #-16]!
    mrs     x1, tpidr_el2
    mov     x0, #ARM_EXCEPTION_EL1_SERROR
    b       __guest_exit

/* hyp_panic(x0 = vector number): an exception we do not expect at EL2 */
hyp_panic:
    mov     x19, x0
    adrp    x0, msg_panic
    add     x0, x0, :lo12:msg_panic
    bl      hyp_puts
    mov     x0, x19
    bl      hyp_puthex
    adrp    x0, msg_esr
    add     x0, x0, :lo12:msg_esr
    bl      hyp_puts
    mrs     x0, esr_el2
    bl      hyp_puthex
    adrp    x0, msg_elr
    add     x0, x0, :lo12:msg_elr
    bl      hyp_puts
    mrs     x0, elr_el2
    bl      hyp_puthex
    adrp    x0, msg_nl
    add     x0, x0, :lo12:msg_nl
    bl      hyp_puts
    mov_imm x0, PSCI_0_2_FN_SYSTEM_OFF
    smc     #0
1:  wfi
    b       1b

/* ------------------------------------------------------------------------- */
/* entry.S: __guest_enter / __guest_exit                                      */

/* u64 __guest_enter(vcpu x0, host_ctxt x1) */
__guest_enter:
    save_callee_saved_regs x1
    stp     x0, x1, [sp, #-16]!             /* vcpu, host_ctxt for the exit */
    add     x18, x0, #VCPU_CONTEXT
    ldp     x0, x1,   [x18, #CPU_XREG_OFFSET(0)]
    ldp     x2, x3,   [x18, #CPU_XREG_OFFSET(2)]
    ldp     x4, x5,   [x18, #CPU_XREG_OFFSET(4)]
    ldp     x6, x7,   [x18, #CPU_XREG_OFFSET(6)]
    ldp     x8, x9,   [x18, #CPU_XREG_OFFSET(8)]
    ldp     x10, x11, [x18, #CPU_XREG_OFFSET(10)]
    ldp     x12, x13, [x18, #CPU_XREG_OFFSET(12)]
    ldp     x14, x15, [x18, #CPU_XREG_OFFSET(14)]
    ldp     x16, x17, [x18, #CPU_XREG_OFFSET(16)]
    restore_callee_saved_regs x18
    ldr     x18, [x18, #CPU_XREG_OFFSET(18)]
    eret                                    /* row 165 */

/* x0: exit code, x1: vcpu, x2-x30: guest, guest x0/x1 on the stack */
__guest_exit:
    add     x1, x1, #VCPU_CONTEXT
    stp     x2, x3,   [x1, #CPU_XREG_OFFSET(2)]
    ldp     x2, x3, [sp], #16               /* guest x0, x1 */
    stp     x2, x3,   [x1, #CPU_XREG_OFFSET(0)]
    stp     x4, x5,   [x1, #CPU_XREG_OFFSET(4)]
    stp     x6, x7,   [x1, #CPU_XREG_OFFSET(6)]
    stp     x8, x9,   [x1, #CPU_XREG_OFFSET(8)]
    stp     x10, x11, [x1, #CPU_XREG_OFFSET(10)]
    stp     x12, x13, [x1, #CPU_XREG_OFFSET(12)]
    stp     x14, x15, [x1, #CPU_XREG_OFFSET(14)]
    stp     x16, x17, [x1, #CPU_XREG_OFFSET(16)]
    str     x18,      [x1, #CPU_XREG_OFFSET(18)]
    save_callee_saved_regs x1
    ldp     x3, x2, [sp], #16               /* vcpu, host_ctxt */
    restore_callee_saved_regs x2
    /* SError window, as KVM v4.10: capture the EL2 exception context */
    mrs     x2, elr_el2                     /* row 5 */
    mrs     x3, esr_el2                     /* row 6 */
    mrs     x4, spsr_el2                    /* row 7 */
    mov     x5, x0
    dsb     sy
    isb
    tbz     x0, #ARM_EXIT_WITH_SERROR_BIT, 1f
    msr     elr_el2, x2                     /* never on the hypercall path */
    msr     esr_el2, x3
    msr     spsr_el2, x4
    orr     x0, x0, x5
1:  ret

/* ------------------------------------------------------------------------- */
/* switch.c: int __kvm_vcpu_run(struct kvm_vcpu *vcpu)                       */

    .global __kvm_vcpu_run
__kvm_vcpu_run:
    stp     x29, x30, [sp, #-64]!
    mov     x29, sp
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    mov     x19, x0                         /* vcpu */
    msr     tpidr_el2, x19                  /* row 89 */
    ldr     x20, [x19, #VCPU_HOST_CONTEXT]  /* host_ctxt */
    add     x21, x19, #VCPU_CONTEXT         /* guest_ctxt */
    ldr     x22, [x19, #VCPU_KVM]           /* kvm */

    /* __sysreg_save_host_state(host_ctxt): rows 90-117 */
    sysreg_save_state x20
    sysreg_save_common_state x20

    /* __activate_traps: rows 118-123 */
    ldr     x0, [x19, #VCPU_HCR_EL2]
    msr     hcr_el2, x0                     /* 118 */
    mov     x0, #(1 << 15)                  /* trap AArch32 cp15 c15 */
    msr     hstr_el2, x0                    /* 119 */
    msr     pmselr_el0, xzr                 /* 120 */
    mov     x0, #ARMV8_PMU_USERENR_MASK
    msr     pmuserenr_el0, x0               /* 121 */
    ldr     x0, [x19, #VCPU_MDCR_EL2]
    msr     mdcr_el2, x0                    /* 122 */
    mov_imm x0, (CPTR_EL2_DEFAULT | CPTR_EL2_TTA | CPTR_EL2_TFP)
    msr     cptr_el2, x0                    /* 123 __activate_traps_nvhe */

    /* __activate_vm: row 124 */
    ldr     x0, [x22, #KVM_VTTBR]
    msr     vttbr_el2, x0                   /* 124 */

    /* __vgic_restore_state: rows 125-130 */
    mrs     x0, hcr_el2                     /* 125 */
    orr     x0, x0, #HCR_INT_OVERRIDE
    ldr     x1, [x19, #VCPU_IRQ_LINES]
    orr     x0, x0, x1
    msr     hcr_el2, x0                     /* 126 */
    mrs     x0, ich_vtr_el2                 /* 127 __vgic_v3_restore_state */
    ldr     x1, [x19, #VCPU_VGIC_VMCR]
    msr     ich_vmcr_el2, x1                /* 128 */
    mov     x1, x19                         /* issue 6: live LRs (vgic_hyp.S); */
    bl      __vgic_v3_restore_lrs           /* no access when none is live */
    mrs     x0, icc_sre_el2                 /* 129 */
    bic     x0, x0, #ICC_SRE_EL2_ENABLE
    msr     icc_sre_el2, x0                 /* 130 */

    /* __timer_restore_state: rows 131-135 */
    mrs     x0, cnthctl_el2                 /* 131 */
    bic     x0, x0, #CNTHCTL_EL1PCEN
    orr     x0, x0, #CNTHCTL_EL1PCTEN
    msr     cnthctl_el2, x0                 /* 132 */
    ldr     x0, [x19, #VCPU_TIMER_ENABLED]
    cbz     x0, 1f
    ldr     x0, [x22, #KVM_CNTVOFF]
    msr     cntvoff_el2, x0                 /* 133 */
    ldr     x0, [x19, #VCPU_TIMER_CVAL]
    msr     cntv_cval_el0, x0               /* 134 */
    isb
    ldr     x0, [x19, #VCPU_TIMER_CTL]
    msr     cntv_ctl_el0, x0                /* 135 */
1:
    /* __sysreg32_restore_state: row 136 */
    mrs     x0, hcr_el2                     /* 136 */
    tbz     x0, #31, hyp_aarch32_unsupported  /* HCR_EL2.RW clear: 32-bit EL1 */

    /* __sysreg_restore_guest_state(guest_ctxt): rows 137-164 */
    sysreg_restore_state x21
    sysreg_restore_common_state x21

    /* Jump in the fire! */
.Lagain:
    mov     x0, x19
    mov     x1, x20
    bl      __guest_enter                   /* row 165: eret */
    mov     x23, x0                         /* exit_code */

    /* And we're baaack!  __populate_fault_info: row 8 */
    cmp     x23, #ARM_EXCEPTION_TRAP
    b.ne    2f
    mrs     x0, esr_el2                     /* 8 */
    str     x0, [x19, #VCPU_FAULT_ESR]
    lsr     x1, x0, #ESR_ELx_EC_SHIFT
    cmp     x1, #ESR_ELx_EC_DABT_LOW
    b.eq    3f
    cmp     x1, #ESR_ELx_EC_IABT_LOW
    b.ne    2f
    /* ---- stage-2 aborts (issue 4); never on the hypercall path ---- */
3:  mrs     x1, far_el2                     /* 8a: FAR_EL2 */
    /* HPFAR_EL2 is not valid for a permission fault that is not on a
     * stage-1 walk: resolve the IPA with AT, as __translate_far_to_hpfar.
     * (Erratum 834220 is not worked around: no affected CPU here.) */
    tbnz    x0, #ESR_ELx_S1PTW_SHIFT, 5f
    and     x2, x0, #ESR_ELx_FSC_TYPE
    cmp     x2, #FSC_PERM
    b.ne    5f
    mrs     x3, par_el1
    at      s1e1r, x1
    isb
    mrs     x2, par_el1
    msr     par_el1, x3
    tbnz    x2, #0, .Lagain                 /* AT failed: back to the guest */
    ubfx    x2, x2, #12, #36                /* PAR.PA -> HPFAR.FIPA */
    lsl     x2, x2, #4
    b       6f
5:  mrs     x2, hpfar_el2                   /* 8b: HPFAR_EL2 */
6:  str     x1, [x19, #VCPU_FAULT_FAR]
    str     x2, [x19, #VCPU_FAULT_HPFAR]
    /* ---- end of stage-2 aborts ---- */
2:
    /* fp_enabled = __fpsimd_enabled_nvhe(): row 9 */
    mrs     x0, cptr_el2                    /* 9 */
    tst     x0, #CPTR_EL2_TFP
    cset    x24, eq                         /* always 0: no lazy FP switch */

    /* __sysreg_save_guest_state(guest_ctxt): rows 10-37 */
    sysreg_save_state x21
    sysreg_save_common_state x21

    /* __sysreg32_save_state: row 38 */
    mrs     x0, hcr_el2                     /* 38 */
    tbz     x0, #31, hyp_aarch32_unsupported

    /* __timer_save_state: rows 39-44 */
    ldr     x0, [x19, #VCPU_TIMER_ENABLED]
    cbz     x0, 4f
    mrs     x0, cntv_ctl_el0                /* 39 */
    str     x0, [x19, #VCPU_TIMER_CTL]
    mrs     x0, cntv_cval_el0               /* 40 */
    str     x0, [x19, #VCPU_TIMER_CVAL]
4:  msr     cntv_ctl_el0, xzr               /* 41 */
    mrs     x0, cnthctl_el2                 /* 42 */
    orr     x0, x0, #(CNTHCTL_EL1PCTEN | CNTHCTL_EL1PCEN)
    msr     cnthctl_el2, x0                 /* 43 */
    msr     cntvoff_el2, xzr                /* 44 */

    /* __vgic_save_state -> __vgic_v3_save_state: rows 45-47 */
    mrs     x0, ich_vmcr_el2                /* 45 */
    str     x0, [x19, #VCPU_VGIC_VMCR]
    mov     x0, x19                         /* issue 6: live LRs (vgic_hyp.S); */
    bl      __vgic_v3_save_lrs              /* no access when none was live */
    mrs     x0, icc_sre_el2                 /* 46 */
    orr     x0, x0, #ICC_SRE_EL2_ENABLE
    msr     icc_sre_el2, x0                 /* 47 */
    mrs     x0, hcr_el2                     /* 48 */
    bic     x0, x0, #HCR_INT_OVERRIDE
    msr     hcr_el2, x0                     /* 49 */

    /* __deactivate_traps: rows 50-55 (VSE never pended: no HCR_EL2 read) */
    mov_imm x0, HCR_HOST_NVHE_FLAGS
    msr     hcr_el2, x0                     /* 50 __deactivate_traps_nvhe */
    mov_imm x0, CPTR_EL2_DEFAULT
    msr     cptr_el2, x0                    /* 51 */
    msr     hstr_el2, xzr                   /* 52 */
    mrs     x0, mdcr_el2                    /* 53 */
    and     x0, x0, #MDCR_EL2_HPMN_MASK
    msr     mdcr_el2, x0                    /* 54 */
    msr     pmuserenr_el0, xzr              /* 55 */

    /* __deactivate_vm: row 56 */
    msr     vttbr_el2, xzr                  /* 56 */

    /* __sysreg_restore_host_state(host_ctxt): rows 57-84 */
    sysreg_restore_state x20
    sysreg_restore_common_state x20

    /* fp_enabled is always false here: nothing to switch; debug not dirty */
    mov     x0, x23
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x29, x30, [sp], #64
    ret                                     /* to el1_sync: eret, row 85 */

hyp_lrs_unsupported:
    mov     x0, #0x100
    b       hyp_panic
hyp_aarch32_unsupported:
    mov     x0, #0x101
    b       hyp_panic

/* u64 __kvm_get_mdcr_el2(void): called once by the host at init */
    .global __kvm_get_mdcr_el2
__kvm_get_mdcr_el2:
    mrs     x0, mdcr_el2
    ret

/* ------------------------------------------------------------------------- */
    .section .rodata
banner:
    .asciz  "kvmlike: guest hypervisor at EL2\n"
msg_not_el2:
    .asciz  "kvmlike: FAIL: not started at EL2\n"
msg_panic:
    .asciz  "kvmlike: hyp panic: vector "
msg_esr:
    .asciz  " ESR_EL2="
msg_elr:
    .asciz  " ELR_EL2="
msg_nl:
    .asciz  "\n"

    .section .bss.hyp_stack, "aw", %nobits
    .balign 16
hyp_stack:
    .space  0x2000
hyp_stack_top:
