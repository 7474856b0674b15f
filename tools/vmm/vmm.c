/* vmm: the smallest virtual machine monitor that runs one of neve's test kernels
 * (an ELF of images/) under Linux's KVM, for the nested-virtualization runs of issue 15:
 * Linux + KVM is the guest hypervisor (L1), this program its user-space VMM, the
 * test kernel the nested VM (L2).
 *
 *   vmm [-m MIB] [-c CPUS] IMAGE.elf
 *
 * The VM: RAM at 0x40000000 (-m MiB, default 80), CPUS vCPUs (-c, 1 to 8, default 1;
 * KVM_ARM_VCPU_INIT with PSCI 0.2+, so PSCI over HVC is answered by KVM: vCPU 0 starts,
 * the others are powered off until the guest's CPU_ON), each run by its own thread, an
 * in-kernel vGICv3 at the QEMU virt addresses (distributor 0x08000000, redistributors
 * 0x080A0000, 128 KiB per vCPU).  The ELF's PT_LOAD segments are copied into RAM and
 * vCPU 0's PC set to its entry, at EL1h with DAIF masked (the vCPU's reset state).
 *
 * Exits: a byte store to the PL011's data register (0x09000000) is written to
 * stdout; other PL011 accesses are accepted (reads return 0: transmit FIFO never
 * full); PSCI SYSTEM_OFF ends with status 0, SYSTEM_RESET with 0 after a line on
 * stderr (from any vCPU: the process ends).  Anything else (an MMIO access elsewhere,
 * an unexpected exit, a failed ioctl) is reported on stderr, one line starting
 * "vmm: ", with status 1; a bad command line or image has status 2.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RAM_BASE    0x40000000ULL
#define GICD_BASE   0x08000000ULL
#define GICR_BASE   0x080A0000ULL
#define UART_BASE   0x09000000ULL
#define UART_SIZE   0x1000ULL
#define UART_DR     0x0
#define MAX_CPUS    8

static pthread_mutex_t exit_lock = PTHREAD_MUTEX_INITIALIZER;     /* one vCPU's exit handled at a time */

static void die(int status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

static void die(int status, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&exit_lock);         /* (already held by a vCPU thread: this one dies) */
    fflush(stdout);
    fputs("vmm: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

static int xioctl(int fd, unsigned long req, void *arg, const char *what)
{
    int r = ioctl(fd, req, arg);
    if (r < 0)
        die(1, "%s: %s", what, strerror(errno));
    return r;
}

/* Copy the image's PT_LOAD segments into guest RAM; returns the entry point. */
static uint64_t load_elf(const char *path, uint8_t *ram, uint64_t ram_size)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(2, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        die(2, "%s: not a regular file", path);
    size_t size = (size_t)st.st_size;
    uint8_t *f = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    if (f == MAP_FAILED)
        die(2, "%s: cannot read it", path);
    close(fd);
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
    if (size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64
        || eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_AARCH64)
        die(2, "%s: not a 64-bit little-endian AArch64 ELF file", path);
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size
        || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > size - eh->e_phoff)
        die(2, "%s: truncated program header table", path);
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff);
    int loaded = 0;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD)
            continue;
        uint64_t pa = ph[i].p_paddr, fsz = ph[i].p_filesz, msz = ph[i].p_memsz;
        if (fsz > msz || ph[i].p_offset > size || fsz > size - ph[i].p_offset)
            die(2, "%s: segment %d is truncated", path, i);
        if (pa < RAM_BASE || msz > ram_size || pa - RAM_BASE > ram_size - msz)
            die(2, "%s: segment %d (%#llx, %#llx bytes) is outside the VM's RAM", path, i,
                (unsigned long long)pa, (unsigned long long)msz);
        memcpy(ram + (pa - RAM_BASE), f + ph[i].p_offset, fsz);
        memset(ram + (pa - RAM_BASE) + fsz, 0, msz - fsz);
        loaded++;
    }
    if (!loaded)
        die(2, "%s: no loadable segment", path);
    uint64_t entry = eh->e_entry;
    if (entry < RAM_BASE || entry - RAM_BASE >= ram_size)
        die(2, "%s: entry point %#llx outside the VM's RAM", path, (unsigned long long)entry);
    munmap(f, size);
    return entry;
}

static void set_one_reg(int vcpu, uint64_t id, uint64_t value, const char *what)
{
    struct kvm_one_reg reg = {.id = id, .addr = (uint64_t)(uintptr_t)&value};
    xioctl(vcpu, KVM_SET_ONE_REG, &reg, what);
}

static void gic_attr(int dev, uint32_t group, uint64_t attr, void *addr, const char *what)
{
    struct kvm_device_attr a = {.group = group, .attr = attr, .addr = (uint64_t)(uintptr_t)addr};
    xioctl(dev, KVM_SET_DEVICE_ATTR, &a, what);
}

struct vcpu {
    int fd;
    struct kvm_run *run;
};

/* A vCPU's run loop: KVM_RUN, and its exits (a powered-off vCPU waits in KVM_RUN). */
static void *vcpu_loop(void *arg)
{
    struct vcpu *v = arg;
    struct kvm_run *run = v->run;
    for (;;) {
        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            die(1, "KVM_RUN: %s", strerror(errno));
        }
        pthread_mutex_lock(&exit_lock);
        switch (run->exit_reason) {
        case KVM_EXIT_MMIO: {
            uint64_t a = run->mmio.phys_addr;
            if (a < UART_BASE || a - UART_BASE >= UART_SIZE) {
                pthread_mutex_unlock(&exit_lock);
                die(1, "unexpected MMIO %s at %#llx (%u bytes)", run->mmio.is_write ? "write" : "read",
                    (unsigned long long)a, run->mmio.len);
            }
            if (run->mmio.is_write) {
                if (a - UART_BASE == UART_DR)
                    putchar(run->mmio.data[0]);
            } else {
                memset(run->mmio.data, 0, sizeof run->mmio.data);
            }
            break;
        }
        case KVM_EXIT_SYSTEM_EVENT:
            if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
                exit(0);
            if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
                fputs("vmm: the guest asked for a system reset\n", stderr);
                exit(0);
            }
            pthread_mutex_unlock(&exit_lock);
            die(1, "unexpected system event %u", run->system_event.type);
        case KVM_EXIT_FAIL_ENTRY:
            pthread_mutex_unlock(&exit_lock);
            die(1, "KVM_EXIT_FAIL_ENTRY (hardware reason %#llx)",
                (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        case KVM_EXIT_INTERNAL_ERROR:
            pthread_mutex_unlock(&exit_lock);
            die(1, "KVM_EXIT_INTERNAL_ERROR (suberror %u)", run->internal.suberror);
        default:
            pthread_mutex_unlock(&exit_lock);
            die(1, "unexpected exit reason %u", run->exit_reason);
        }
        pthread_mutex_unlock(&exit_lock);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    uint64_t mib = 80;
    int ncpus = 1;
    int opt;
    while ((opt = getopt(argc, argv, "m:c:")) != -1) {
        char *end;
        if (opt == 'm') {
            mib = strtoull(optarg, &end, 0);
            if (*end || mib == 0 || mib > 1024)
                die(2, "-m %s: a size in MiB from 1 to 1024", optarg);
        } else if (opt == 'c') {
            long n = strtol(optarg, &end, 0);
            if (*end || n < 1 || n > MAX_CPUS)
                die(2, "-c %s: a number of vCPUs from 1 to %d", optarg, MAX_CPUS);
            ncpus = (int)n;
        } else {
            die(2, "usage: vmm [-m MIB] [-c CPUS] IMAGE.elf");
        }
    }
    if (optind != argc - 1)
        die(2, "usage: vmm [-m MIB] [-c CPUS] IMAGE.elf");
    setvbuf(stdout, NULL, _IONBF, 0);

    uint64_t ram_size = mib << 20;
    uint8_t *ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED)
        die(1, "cannot map %llu MiB of guest RAM", (unsigned long long)mib);
    uint64_t entry = load_elf(argv[optind], ram, ram_size);

    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        die(1, "/dev/kvm: %s", strerror(errno));
    if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
        die(1, "/dev/kvm: unexpected KVM API version");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        die(1, "KVM_CREATE_VM: %s", strerror(errno));
    struct kvm_userspace_memory_region mem = {
        .slot = 0, .guest_phys_addr = RAM_BASE, .memory_size = ram_size, .userspace_addr = (uint64_t)(uintptr_t)ram};
    xioctl(vm, KVM_SET_USER_MEMORY_REGION, &mem, "KVM_SET_USER_MEMORY_REGION");

    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(struct kvm_run))
        die(1, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
    struct vcpu vcpus[MAX_CPUS];
    for (int i = 0; i < ncpus; i++) {
        vcpus[i].fd = ioctl(vm, KVM_CREATE_VCPU, i);
        if (vcpus[i].fd < 0)
            die(1, "KVM_CREATE_VCPU %d: %s", i, strerror(errno));
        vcpus[i].run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpus[i].fd, 0);
        if (vcpus[i].run == MAP_FAILED)
            die(1, "cannot map vCPU %d's kvm_run: %s", i, strerror(errno));
    }

    /* The vGICv3 before the vCPUs' init, as KVM wants its redistributors placed. */
    struct kvm_create_device gic = {.type = KVM_DEV_TYPE_ARM_VGIC_V3};
    xioctl(vm, KVM_CREATE_DEVICE, &gic, "KVM_CREATE_DEVICE (vGICv3)");
    uint64_t gicd = GICD_BASE, gicr = GICR_BASE;
    gic_attr(gic.fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &gicd, "vGICv3 distributor address");
    gic_attr(gic.fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &gicr, "vGICv3 redistributor address");

    struct kvm_vcpu_init init;
    xioctl(vm, KVM_ARM_PREFERRED_TARGET, &init, "KVM_ARM_PREFERRED_TARGET");
    init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
    for (int i = 0; i < ncpus; i++) {
        struct kvm_vcpu_init vi = init;
        if (i)
            vi.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;     /* until the guest's PSCI CPU_ON */
        xioctl(vcpus[i].fd, KVM_ARM_VCPU_INIT, &vi, "KVM_ARM_VCPU_INIT");
    }
    gic_attr(gic.fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL, "vGICv3 init");

    set_one_reg(vcpus[0].fd, KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
                      (offsetof(struct kvm_regs, regs.pc) / sizeof(uint32_t)), entry, "setting PC");

    for (int i = 1; i < ncpus; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, vcpu_loop, &vcpus[i]))
            die(1, "cannot start the thread of vCPU %d", i);
    }
    vcpu_loop(&vcpus[0]);
    return 0;
}
