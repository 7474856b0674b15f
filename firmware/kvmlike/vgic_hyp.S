/* kvmlike lowvisor, GICv3 virtual CPU interface (issue 6): the list-register
 * half of KVM/ARM v4.10's __vgic_v3_save_state / __vgic_v3_restore_state
 * (virt/kvm/arm/hyp/vgic-v3-sr.c), and __vgic_v3_init_lrs /
 * __vgic_v3_get_ich_vtr_el2 for the host's init.  kvmlike.S calls
 *   __vgic_v3_save_lrs(vcpu)          right after row 45 (mrs ICH_VMCR_EL2),
 *   __vgic_v3_restore_lrs(vtr, vcpu)  right after row 128 (msr ICH_VMCR_EL2).
 * Both are leaves that use x0-x10 only (no stack) and touch no system
 * register when no list register is live, so the hypercall path keeps its
 * 165 accesses.
 *
 * With live list registers (vcpu->used_lrs != 0, v4.10's live_lrs) the exit
 * path adds, in this order:
 *   mrs ICH_ELRSR_EL2
 *   mrs ICH_MISR_EL2    only if a maintenance interrupt is expected
 *                       (ICH_HCR.UIE requested, or a live LR with EOI and not HW)
 *   mrs ICH_EISR_EL2    only if that MISR has EOI set
 *   msr ICH_HCR_EL2     (= En: clears UIE, keeps the interface enabled)
 *   mrs ICH_VTR_EL2
 *   for each live LR n, ascending: mrs ICH_LR<n>_EL2 unless ELRSR says it is
 *                       empty, then msr ICH_LR<n>_EL2 (= 0)
 *   mrs ICH_AP0R<n>_EL2 (n = 3, 2 if 7 priority bits; 1 if >= 6; always 0)
 *   mrs ICH_AP1R<n>_EL2 (likewise)
 * and the entry path, when the in-memory state has live LRs:
 *   msr ICH_HCR_EL2
 *   msr ICH_AP0R<n>_EL2, msr ICH_AP1R<n>_EL2 (same n as above)
 *   msr ICH_LR<n>_EL2 for each live LR, ascending.
 * Two differences from v4.10, neither changing a count: ICH_HCR_EL2 is
 * written with En (v4.10 writes 0), so the virtual CPU interface stays
 * enabled from boot on; and MISR/EISR are read before that write, so MISR.U
 * still reflects the underflow the host asked for. */
#include "vgic.h"

    .text

/* x8 = n: x7 = ICH_LR<n>_EL2 (via x9/x10, returns to x10) */
.macro lr_dispatch table
    adr     x9, \table
    add     x9, x9, x8, lsl #3
    br      x9
.endm

    .balign 8
lr_read_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    mrs     x7, ich_lr\n\()_el2
    br      x10
    .endr
lr_write_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    msr     ich_lr\n\()_el2, x7
    br      x10
    .endr

/* void __vgic_v3_save_lrs(struct kvm_vcpu *vcpu) */
    .global __vgic_v3_save_lrs
__vgic_v3_save_lrs:
    ldr     x1, [x0, #VCPU_USED_LRS]        /* live LRs */
    cbz     x1, 9f
    adrp    x2, kvm_vgic_v3_cpu_if
    add     x2, x2, :lo12:kvm_vgic_v3_cpu_if
    mrs     x3, ich_elrsr_el2
    str     x3, [x2, #VGIC_CPU_ELRSR]

    /* save_maint_int_state: expect_mi = UIE requested || a live LR with EOI && !HW */
    ldr     x4, [x2, #VGIC_CPU_HCR]
    and     x4, x4, #ICH_HCR_UIE
    mov     x8, #0
1:  lsr     x5, x1, x8
    cbz     x5, 3f                          /* no live LR at or above n */
    tbz     x5, #0, 2f
    add     x6, x2, #VGIC_CPU_LR
    ldr     x6, [x6, x8, lsl #3]
    tbnz    x6, #61, 2f                     /* HW: EOI bit is pINTID */
    tbz     x6, #41, 2f
    orr     x4, x4, #1
2:  add     x8, x8, #1
    b       1b
3:  mov     x5, xzr                         /* misr */
    mov     x6, xzr                         /* eisr */
    cbz     x4, 4f
    mrs     x5, ich_misr_el2
    tbz     x5, #0, 4f                      /* MISR.EOI */
    mrs     x6, ich_eisr_el2
4:  str     x5, [x2, #VGIC_CPU_MISR]
    str     x6, [x2, #VGIC_CPU_EISR]

    mov     x4, #ICH_HCR_EN
    msr     ich_hcr_el2, x4
    mrs     x4, ich_vtr_el2

    /* the live LRs: read back the ones not empty, then clear */
    mov     x8, #0
5:  lsr     x5, x1, x8
    cbz     x5, 7f
    tbz     x5, #0, 6f
    add     x6, x2, #VGIC_CPU_LR
    lsr     x5, x3, x8
    tbz     x5, #0, 10f
    ldr     x7, [x6, x8, lsl #3]            /* empty: keep it, state cleared */
    and     x7, x7, #~ICH_LR_STATE
    b       11f
10: adr     x10, 11f
    lr_dispatch lr_read_table               /* mrs ICH_LR<n>_EL2 */
11: str     x7, [x6, x8, lsl #3]
    mov     x7, xzr
    adr     x10, 6f
    lr_dispatch lr_write_table              /* msr ICH_LR<n>_EL2, xzr */
6:  add     x8, x8, #1
    b       5b

7:  /* active priorities, by the number of priority bits */
    ubfx    x4, x4, #ICH_VTR_PRIBITS_SHIFT, #3
    add     x4, x4, #1
    cmp     x4, #7
    b.lo    8f
    mrs     x5, ich_ap0r3_el2
    str     x5, [x2, #(VGIC_CPU_AP0R + 24)]
    mrs     x5, ich_ap0r2_el2
    str     x5, [x2, #(VGIC_CPU_AP0R + 16)]
8:  cmp     x4, #6
    b.lo    12f
    mrs     x5, ich_ap0r1_el2
    str     x5, [x2, #(VGIC_CPU_AP0R + 8)]
12: mrs     x5, ich_ap0r0_el2
    str     x5, [x2, #VGIC_CPU_AP0R]
    cmp     x4, #7
    b.lo    13f
    mrs     x5, ich_ap1r3_el2
    str     x5, [x2, #(VGIC_CPU_AP1R + 24)]
    mrs     x5, ich_ap1r2_el2
    str     x5, [x2, #(VGIC_CPU_AP1R + 16)]
13: cmp     x4, #6
    b.lo    14f
    mrs     x5, ich_ap1r1_el2
    str     x5, [x2, #(VGIC_CPU_AP1R + 8)]
14: mrs     x5, ich_ap1r0_el2
    str     x5, [x2, #VGIC_CPU_AP1R]
    str     xzr, [x0, #VCPU_USED_LRS]
9:  ret

/* void __vgic_v3_restore_lrs(u64 ich_vtr, struct kvm_vcpu *vcpu) */
    .global __vgic_v3_restore_lrs
__vgic_v3_restore_lrs:
    adrp    x2, kvm_vgic_v3_cpu_if
    add     x2, x2, :lo12:kvm_vgic_v3_cpu_if
    add     x6, x2, #VGIC_CPU_LR
    and     x3, x0, #ICH_VTR_LISTREGS_MASK  /* max_lr_idx */
    mov     x4, xzr                         /* live_lrs */
    mov     x8, #0
1:  ldr     x5, [x6, x8, lsl #3]
    tst     x5, #ICH_LR_STATE
    b.eq    2f
    mov     x5, #1
    lsl     x5, x5, x8
    orr     x4, x4, x5
2:  add     x8, x8, #1
    cmp     x8, x3
    b.ls    1b
    str     x4, [x1, #VCPU_USED_LRS]
    cbz     x4, 9f

    ldr     x5, [x2, #VGIC_CPU_HCR]
    msr     ich_hcr_el2, x5
    ubfx    x3, x0, #ICH_VTR_PRIBITS_SHIFT, #3
    add     x3, x3, #1
    cmp     x3, #7
    b.lo    3f
    ldr     x5, [x2, #(VGIC_CPU_AP0R + 24)]
    msr     ich_ap0r3_el2, x5
    ldr     x5, [x2, #(VGIC_CPU_AP0R + 16)]
    msr     ich_ap0r2_el2, x5
3:  cmp     x3, #6
    b.lo    4f
    ldr     x5, [x2, #(VGIC_CPU_AP0R + 8)]
    msr     ich_ap0r1_el2, x5
4:  ldr     x5, [x2, #VGIC_CPU_AP0R]
    msr     ich_ap0r0_el2, x5
    cmp     x3, #7
    b.lo    5f
    ldr     x5, [x2, #(VGIC_CPU_AP1R + 24)]
    msr     ich_ap1r3_el2, x5
    ldr     x5, [x2, #(VGIC_CPU_AP1R + 16)]
    msr     ich_ap1r2_el2, x5
5:  cmp     x3, #6
    b.lo    6f
    ldr     x5, [x2, #(VGIC_CPU_AP1R + 8)]
    msr     ich_ap1r1_el2, x5
6:  ldr     x5, [x2, #VGIC_CPU_AP1R]
    msr     ich_ap1r0_el2, x5

    mov     x8, #0
7:  lsr     x5, x4, x8
    cbz     x5, 9f
    tbz     x5, #0, 8f
    ldr     x7, [x6, x8, lsl #3]
    adr     x10, 8f
    lr_dispatch lr_write_table              /* msr ICH_LR<n>_EL2 */
8:  add     x8, x8, #1
    b       7b
9:  ret

/* Host calls (kvm_call_hyp), at init only. */

/* u64 __vgic_v3_get_ich_vtr_el2(void) */
    .global __vgic_v3_get_ich_vtr_el2
__vgic_v3_get_ich_vtr_el2:
    mrs     x0, ich_vtr_el2
    ret

/* void __vgic_v3_init_lrs(void): every list register and active-priority
 * register cleared, then ICH_HCR_EL2.En set (kept from here on). */
    .global __vgic_v3_init_lrs
__vgic_v3_init_lrs:
    mrs     x0, ich_vtr_el2
    and     x3, x0, #ICH_VTR_LISTREGS_MASK
    mov     x7, xzr
    mov     x8, #0
1:  adr     x10, 2f
    lr_dispatch lr_write_table
2:  add     x8, x8, #1
    cmp     x8, x3
    b.ls    1b
    ubfx    x3, x0, #ICH_VTR_PRIBITS_SHIFT, #3
    add     x3, x3, #1
    cmp     x3, #7
    b.lo    3f
    msr     ich_ap0r3_el2, xzr
    msr     ich_ap0r2_el2, xzr
    msr     ich_ap1r3_el2, xzr
    msr     ich_ap1r2_el2, xzr
3:  cmp     x3, #6
    b.lo    4f
    msr     ich_ap0r1_el2, xzr
    msr     ich_ap1r1_el2, xzr
4:  msr     ich_ap0r0_el2, xzr
    msr     ich_ap1r0_el2, xzr
    mov     x0, #ICH_HCR_EN
    msr     ich_hcr_el2, x0
    isb
    ret
