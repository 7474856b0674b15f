/* kvmlike host kernel (EL1): the vcpu run loop and exit handling, in the shape
 * of KVM/ARM v4.10's kvm_arch_vcpu_ioctl_run() / handle_exit() / handle_hvc()
 * / kvm_psci_0_2_call().  Nothing here touches a system register between two
 * calls of __kvm_vcpu_run: the only EL2 entry per guest exit is the HVC in
 * kvm_call_hyp(). */
#include <stddef.h>
#include <stdint.h>
#include "kvmlike.h"

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
/* The (unused: HCR_EL2.VM = 0) stage-2 root table, 4 KiB aligned; its address
 * with VMID 1 makes the vcpu's VTTBR_EL2 non-zero, which is how el1_sync tells
 * a guest HVC from a host HVC. */
static u64 stage2_pgd[512] __attribute__((aligned(4096)));

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

    for (;;) {
        u64 exit_code = kvm_call_hyp(__kvm_vcpu_run, (u64)vcpu, 0, 0);
        handle_exit(vcpu, exit_code);
    }
}
