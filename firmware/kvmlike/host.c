/* kvmlike host kernel (EL1): the vcpu run loop and exit handling, in the shape
 * of KVM/ARM v4.10's kvm_arch_vcpu_ioctl_run() / handle_exit() / handle_hvc()
 * / kvm_psci_0_2_call().  Nothing here touches a system register between two
 * calls of __kvm_vcpu_run: the only EL2 entry per guest exit is the HVC in
 * kvm_call_hyp(). */
#include <stddef.h>
#include <stdint.h>
#include "kvmlike.h"
#include "vgic.h"                  /* issue 6 */

typedef uint64_t u64;

struct kvm_cpu_context {
    u64 regs[31];
    u64 sp;
    u64 pc;
    u64 pstate;
    u64 sp_el1;
    u64 elr_el1;
    u64 spsr_el1;
    u64 pad;
    u64 sys_regs[NR_SYS_REGS];
};

struct kvm {
    u64 vttbr;
    u64 cntvoff;
};

struct kvm_vcpu {
    struct kvm_cpu_context ctxt;
    struct kvm_cpu_context *host_cpu_context;
    struct kvm *kvm;
    u64 hcr_el2;
    u64 mdcr_el2;
    u64 fault_esr_el2;
    u64 fault_far_el2;
    u64 fault_hpfar_el2;
    u64 irq_lines;
    u64 timer_cntv_ctl;
    u64 timer_cntv_cval;
    u64 timer_enabled;
    u64 vgic_vmcr;
    u64 vgic_sre;
    u64 used_lrs;
};

_Static_assert(offsetof(struct kvm_cpu_context, sp) == CTXT_SP, "sp");
_Static_assert(offsetof(struct kvm_cpu_context, pc) == CTXT_PC, "pc");
_Static_assert(offsetof(struct kvm_cpu_context, pstate) == CTXT_PSTATE, "pstate");
_Static_assert(offsetof(struct kvm_cpu_context, sp_el1) == CTXT_SP_EL1, "sp_el1");
_Static_assert(offsetof(struct kvm_cpu_context, elr_el1) == CTXT_ELR_EL1, "elr_el1");
_Static_assert(offsetof(struct kvm_cpu_context, spsr_el1) == CTXT_SPSR_EL1, "spsr_el1");
_Static_assert(offsetof(struct kvm_cpu_context, sys_regs) == CTXT_SYSREGS, "sys_regs");
_Static_assert(sizeof(struct kvm_cpu_context) == CTXT_SIZE, "ctxt size");
_Static_assert(offsetof(struct kvm_vcpu, ctxt) == VCPU_CONTEXT, "ctxt");
_Static_assert(offsetof(struct kvm_vcpu, host_cpu_context) == VCPU_HOST_CONTEXT, "host");
_Static_assert(offsetof(struct kvm_vcpu, kvm) == VCPU_KVM, "kvm");
_Static_assert(offsetof(struct kvm_vcpu, hcr_el2) == VCPU_HCR_EL2, "hcr");
_Static_assert(offsetof(struct kvm_vcpu, mdcr_el2) == VCPU_MDCR_EL2, "mdcr");
_Static_assert(offsetof(struct kvm_vcpu, fault_esr_el2) == VCPU_FAULT_ESR, "esr");
_Static_assert(offsetof(struct kvm_vcpu, fault_far_el2) == VCPU_FAULT_FAR, "far");
_Static_assert(offsetof(struct kvm_vcpu, fault_hpfar_el2) == VCPU_FAULT_HPFAR, "hpfar");
_Static_assert(offsetof(struct kvm_vcpu, irq_lines) == VCPU_IRQ_LINES, "irq");
_Static_assert(offsetof(struct kvm_vcpu, timer_cntv_ctl) == VCPU_TIMER_CTL, "ctl");
_Static_assert(offsetof(struct kvm_vcpu, timer_cntv_cval) == VCPU_TIMER_CVAL, "cval");
_Static_assert(offsetof(struct kvm_vcpu, timer_enabled) == VCPU_TIMER_ENABLED, "ten");
_Static_assert(offsetof(struct kvm_vcpu, vgic_vmcr) == VCPU_VGIC_VMCR, "vmcr");
_Static_assert(offsetof(struct kvm_vcpu, vgic_sre) == VCPU_VGIC_SRE, "sre");
_Static_assert(offsetof(struct kvm_vcpu, used_lrs) == VCPU_USED_LRS, "lrs");
_Static_assert(sizeof(struct kvm_vcpu) == VCPU_SIZE, "vcpu size");
_Static_assert(offsetof(struct kvm, vttbr) == KVM_VTTBR, "vttbr");
_Static_assert(offsetof(struct kvm, cntvoff) == KVM_CNTVOFF, "cntvoff");

/* lowvisor (kvmlike.S) and host_entry.S */
extern char __kvm_vcpu_run[], __kvm_get_mdcr_el2[];
u64 kvm_call_hyp(void *hypfn, u64 a1, u64 a2, u64 a3);
u64 host_smc(u64 fid, u64 a1, u64 a2, u64 a3, u64 *res);
void host_main(void) __attribute__((noreturn));
void host_exception(u64 vec, u64 esr, u64 elr) __attribute__((noreturn));

static struct kvm the_kvm;
static struct kvm_vcpu the_vcpu;
static struct kvm_cpu_context host_ctxt;        /* kvm_host_cpu_state */
/* ---- stage 2 and MMIO emulation (issue 4) ---------------------------------
 * The guest runs behind stage 2 (HCR_EL2.VM = 1).  Its RAM, IPA
 * 0x44000000-0x47ffffff, is identity-mapped up front with 2 MiB blocks (a
 * pre-faulted VM: no lazy user_mem_abort); the PL011 is left out, so a guest
 * UART access is a stage-2 data abort that kvm_handle_guest_abort() sends to
 * io_mem_abort(), which emulates it from the syndrome (ISV/SAS/SSE/SRT/SF/WnR)
 * and skips the instruction, as KVM v4.10 does for an MMIO exit.
 * The root table is KVM's 40-bit IPA pgd: two concatenated level-1 tables,
 * 8 KiB aligned.  Its address with VMID 1 also makes the vcpu's VTTBR_EL2
 * non-zero, which is how el1_sync tells a guest HVC from a host HVC.
 * The host writes the tables with its MMU off; QEMU and neve do not model the
 * caches that would make this need cleaning on hardware. */
#define PTRS_PER_S2_PGD     1024
#define S2_PMD_SHIFT        21
#define S2_PGD_SHIFT        30
#define S2_BLOCK            UL(1)
#define S2_TABLE            UL(3)
#define S2_MEMATTR_NORMAL   (UL(0xf) << 2)  /* Normal, outer + inner write-back */
#define S2_S2AP_RW          (UL(3) << 6)
#define S2_SH_INNER         (UL(3) << 8)
#define S2_AF               (UL(1) << 10)
#define PAGE_S2_BLOCK       (S2_BLOCK | S2_MEMATTR_NORMAL | S2_S2AP_RW | S2_SH_INNER | S2_AF)
#define HPFAR_MASK          (~UL(0xf))

static u64 stage2_pgd[PTRS_PER_S2_PGD] __attribute__((aligned(8192)));
static u64 stage2_pmd[512] __attribute__((aligned(4096)));

static unsigned long mmio_exits;

static void kvm_stage2_map_guest_ram(void)
{
    for (u64 ipa = GUEST_RAM_BASE; ipa < GUEST_RAM_BASE + GUEST_RAM_SIZE; ipa += UL(1) << S2_PMD_SHIFT)
        stage2_pmd[(ipa >> S2_PMD_SHIFT) & 511] = ipa | PAGE_S2_BLOCK;
    stage2_pgd[(GUEST_RAM_BASE >> S2_PGD_SHIFT) & (PTRS_PER_S2_PGD - 1)] = (u64)stage2_pmd | S2_TABLE;
    __asm__ volatile("dsb ishst" : : : "memory");
}

/* The guest's PL011, as the VMM would model it: DR prints on the real UART,
 * FR says "transmitter empty, nothing received", other registers read 0. */
#define UARTDR          0x00
#define UARTFR          0x18
#define UARTFR_RXFE     (1 << 4)
#define UARTFR_TXFE     (1 << 7)

static void putc_(char c);

static u64 vpl011_read(u64 offset)
{
    return offset == UARTFR ? (UARTFR_TXFE | UARTFR_RXFE) : 0;
}

static void vpl011_write(u64 offset, u64 data)
{
    if (offset == UARTDR)
        putc_((char)data);
}

static u64 vcpu_get_reg(struct kvm_vcpu *vcpu, unsigned rt)
{
    return rt == 31 ? 0 : vcpu->ctxt.regs[rt];
}

static void vcpu_set_reg(struct kvm_vcpu *vcpu, unsigned rt, u64 val)
{
    if (rt != 31)
        vcpu->ctxt.regs[rt] = val;
}

/* io_mem_abort(): decode_hsr(), skip the instruction, do the access.
 * Returns 0 when handled, -1 when the exit cannot be emulated. */
static int io_mem_abort(struct kvm_vcpu *vcpu, u64 fault_ipa)
{
    u64 esr = vcpu->fault_esr_el2;
    unsigned len, rt;
    int is_write, sign_extend, sixty_four;

    if (!(esr & ESR_ELx_ISV))
        return -1;                      /* no syndrome: KVM gives up too */
    if (esr & (UL(1) << ESR_ELx_S1PTW_SHIFT))
        return -1;                      /* not with the guest's MMU off */
    len = 1U << ((esr >> ESR_ELx_SAS_SHIFT) & 3);
    is_write = (esr & ESR_ELx_WNR) != 0;
    sign_extend = (esr & ESR_ELx_SSE) != 0;
    sixty_four = (esr & ESR_ELx_SF) != 0;
    rt = (esr >> ESR_ELx_SRT_SHIFT) & 31;

    if (fault_ipa < PL011_BASE_ADDR || fault_ipa + len > PL011_BASE_ADDR + PL011_SIZE)
        return -1;                      /* no device there */

    /* kvm_skip_instr(): ESR.IL is set for every A64 data abort with ISV */
    vcpu->ctxt.pc += 4;
    mmio_exits++;

    if (is_write) {
        u64 data = vcpu_get_reg(vcpu, rt);
        if (len < 8)
            data &= (UL(1) << (len * 8)) - 1;
        vpl011_write(fault_ipa - PL011_BASE_ADDR, data);
    } else {
        u64 data = vpl011_read(fault_ipa - PL011_BASE_ADDR);
        if (len < 8)
            data &= (UL(1) << (len * 8)) - 1;
        if (sign_extend && len < 8) {
            u64 mask = UL(1) << (len * 8 - 1);
            data = (data ^ mask) - mask;
        }
        if (!sixty_four)
            data &= 0xffffffffUL;
        vcpu_set_reg(vcpu, rt, data);
    }
    return 0;
}

/* kvm_handle_guest_abort(): only MMIO is expected, RAM is all mapped. */
static int kvm_handle_guest_abort(struct kvm_vcpu *vcpu, unsigned ec)
{
    u64 esr = vcpu->fault_esr_el2;
    u64 fsc = esr & ESR_ELx_FSC_TYPE;
    u64 fault_ipa = (vcpu->fault_hpfar_el2 & HPFAR_MASK) << 8;

    if (fsc != FSC_FAULT && fsc != FSC_PERM && fsc != FSC_ACCESS)
        return -1;
    if (fault_ipa >= GUEST_RAM_BASE && fault_ipa < GUEST_RAM_BASE + GUEST_RAM_SIZE)
        return -1;                      /* memslot: never unmapped here */
    if (ec == ESR_ELx_EC_IABT_LOW)
        return -1;                      /* executing from a device */
    fault_ipa |= vcpu->fault_far_el2 & 0xfff;
    return io_mem_abort(vcpu, fault_ipa);
}
/* ---- end of stage 2 and MMIO emulation ------------------------------------ */

static unsigned long hvc_exits;

/* ---- console ---- */
static void putc_(char c) { *(volatile unsigned char *)PL011_DR_ADDR = (unsigned char)c; }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void puthex(u64 v)
{
    putc_('0'); putc_('x');
    for (int i = 60; i >= 0; i -= 4)
        putc_("0123456789abcdef"[(v >> i) & 0xf]);
}
static void putdec(u64 v)
{
    char b[21];
    int n = 0;
    do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) putc_(b[--n]);
}

static void __attribute__((noreturn)) system_off(void)
{
    u64 res[3];
    host_smc(PSCI_0_2_FN_SYSTEM_OFF, 0, 0, 0, res);
    puts_("kvmlike: FAIL: SYSTEM_OFF returned\n");
    for (;;)
        __asm__ volatile("wfi");
}

void host_exception(u64 vec, u64 esr, u64 elr)
{
    puts_("kvmlike: host exception: vector ");
    putdec(vec);
    puts_(" ESR_EL1=");
    puthex(esr);
    puts_(" ELR_EL1=");
    puthex(elr);
    putc_('\n');
    system_off();
}

static void __attribute__((noreturn)) guest_shutdown(const char *why)
{
    puts_("kvmlike: guest ");
    puts_(why);
    puts_("; guest exits: ");
    putdec(hvc_exits);
    puts_(" hvc\n");
    system_off();
}

static void kvm_vcpu_init(struct kvm_vcpu *vcpu, u64 host_mdcr)
{
    struct kvm_cpu_context *g = &vcpu->ctxt;

    kvm_stage2_map_guest_ram();                 /* issue 4 */
    the_kvm.vttbr = (1UL << 48) | (u64)stage2_pgd;
    the_kvm.cntvoff = 0;

    vcpu->kvm = &the_kvm;
    vcpu->host_cpu_context = &host_ctxt;
    vcpu->hcr_el2 = HCR_GUEST_FLAGS;
    vcpu->mdcr_el2 = (host_mdcr & MDCR_EL2_HPMN_MASK) | MDCR_EL2_TPM | MDCR_EL2_TPMCR |
                     MDCR_EL2_TDRA | MDCR_EL2_TDOSA | MDCR_EL2_TDA;
    vcpu->timer_enabled = 1;
    vcpu->vgic_vmcr = 0;
    vcpu->vgic_sre = ICC_SRE_EL2_SRE | 0x6;     /* SRE | DFB | DIB */
    vcpu->used_lrs = 0;

    /* kvm_reset_vcpu(): EL1h, DAIF masked, reset EL1 system registers */
    for (int i = 0; i < 31; i++)
        g->regs[i] = 0;
    g->pc = GUEST_ENTRY;
    g->pstate = PSR_MODE_EL1h_DAIF;
    g->sys_regs[MPIDR_EL1] = 1UL << 31;         /* vcpu 0, Aff0 = 0 */
    g->sys_regs[SCTLR_EL1] = SCTLR_EL1_RESET;
}

/* ---- vgic and arch timer (issue 6): vgic.c ---- */
void kvm_vgic_init(void);
void kvm_vgic_flush_hwstate(void);
void kvm_vgic_sync_hwstate(void);
void kvm_timer_sync_hwstate(u64 timer_ctl);
u64 kvm_vgic_hvc_inject(u64 intid, u64 count);
int kvm_vgic_sysreg_sre(u64 esr, u64 vgic_sre, unsigned *rt, u64 *val, int *is_read);

/* kvm_psci_0_2_call(): returns 0 to go on running the guest */
static void handle_hvc(struct kvm_vcpu *vcpu)
{
    struct kvm_cpu_context *g = &vcpu->ctxt;
    uint32_t fn = (uint32_t)g->regs[0];
    u64 res[3];

    switch (fn) {
    case PSCI_0_2_FN_SYSTEM_OFF:
        guest_shutdown("called PSCI SYSTEM_OFF");
    case PSCI_0_2_FN_SYSTEM_RESET:
        guest_shutdown("called PSCI SYSTEM_RESET");
    case PSCI_0_2_FN_PSCI_VERSION:
    case PSCI_0_2_FN_MIGRATE_INFO_TYPE:
    case PSCI_1_0_FN_PSCI_FEATURES:
        /* Queries: forwarded to the firmware, the answer goes to the guest. */
        g->regs[0] = host_smc(fn, g->regs[1], g->regs[2], g->regs[3], res);
        break;
    case KVMLIKE_HVC_VGIC_INJECT:       /* issue 6: vgic.c */
        g->regs[0] = kvm_vgic_hvc_inject(g->regs[1], g->regs[2]);
        break;
    default:
        g->regs[0] = (u64)SMCCC_RET_NOT_SUPPORTED;
        break;
    }
    /* ELR_EL2 of an HVC already points after the instruction: no PC skip. */
}

/* handle_exit(): 1 to resume the guest */
static void handle_exit(struct kvm_vcpu *vcpu, u64 exit_code)
{
    u64 esr = vcpu->fault_esr_el2;
    unsigned ec = (unsigned)(esr >> ESR_ELx_EC_SHIFT) & 0x3f;

    if (exit_code == ARM_EXCEPTION_TRAP) {
        switch (ec) {
        case ESR_ELx_EC_HVC64:
            hvc_exits++;
            handle_hvc(vcpu);
            return;
        case ESR_ELx_EC_SMC64:          /* HCR_EL2.TSC: same service, skip it */
            handle_hvc(vcpu);
            vcpu->ctxt.pc += 4;
            return;
        case ESR_ELx_EC_WFx:            /* no interrupts to wait for: skip */
            vcpu->ctxt.pc += 4;
            return;
        case ESR_ELx_EC_DABT_LOW:       /* stage-2 abort (issue 4) */
        case ESR_ELx_EC_IABT_LOW:
            if (kvm_handle_guest_abort(vcpu, ec) == 0)
                return;
            break;
        case ESR_ELx_EC_SYS64: {        /* ICC_SRE_EL1 (issue 6) */
            unsigned rt;
            u64 val;
            int is_read;
            if (kvm_vgic_sysreg_sre(esr, vcpu->vgic_sre, &rt, &val, &is_read)) {
                if (is_read && rt != 31)
                    vcpu->ctxt.regs[rt] = val;
                vcpu->ctxt.pc += 4;
                return;
            }
            break;
        }
        default:
            break;
        }
    } else if (exit_code == ARM_EXCEPTION_IRQ) {
        return;
    }
    puts_("kvmlike: unhandled exit: code ");
    putdec(exit_code);
    puts_(" ESR_EL2=");
    puthex(esr);
    puts_(" PC=");
    puthex(vcpu->ctxt.pc);
    putc_('\n');
    guest_shutdown("stopped");
}

void host_main(void)
{
    struct kvm_vcpu *vcpu = &the_vcpu;
    u64 host_mdcr;

    puts_("kvmlike: host kernel at EL1, running the vcpu at ");
    puthex(GUEST_ENTRY);
    putc_('\n');
    host_mdcr = kvm_call_hyp(__kvm_get_mdcr_el2, 0, 0, 0);
    kvm_vcpu_init(vcpu, host_mdcr);
    kvm_vgic_init();                            /* issue 6 */

    for (;;) {
        kvm_vgic_flush_hwstate();               /* issue 6: memory only */
        u64 exit_code = kvm_call_hyp(__kvm_vcpu_run, (u64)vcpu, 0, 0);
        kvm_vgic_sync_hwstate();                /* issue 6: memory only */
        kvm_timer_sync_hwstate(vcpu->timer_cntv_ctl);  /* MMIO only to inject */
        handle_exit(vcpu, exit_code);
    }
}
