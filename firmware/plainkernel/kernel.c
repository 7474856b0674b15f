/*
 * plainkernel - a small, self-contained AArch64 EL1 kernel for the QEMU "virt" board.
 *
 * Brings up the PL011 console, turns on the stage-1 MMU with an identity map
 * (4 KiB granule, 2 MiB blocks for RAM, one Device-nGnRnE page for the UART),
 * does a bit of deterministic computation, makes a system call through SVC,
 * survives a BRK, and powers the machine off through PSCI.
 */
#include <stdint.h>
#include <stddef.h>

typedef uint64_t u64;
typedef uint32_t u32;
typedef uint8_t u8;

/* ---------------------------------------------------------------- hardware */

#define UART0_BASE      0x09000000UL
#define RAM_START       0x44000000UL        /* our slice of RAM ...           */
#define RAM_END         0x48000000UL        /* ... up to the end of 128 MiB   */

struct pl011 {
    volatile u32 dr;            /* 0x00 */
    volatile u32 rsr;           /* 0x04 */
    u32 _reserved0[4];
    volatile u32 fr;            /* 0x18 */
    u32 _reserved1;
    volatile u32 ilpr;          /* 0x20 */
    volatile u32 ibrd;          /* 0x24 */
    volatile u32 fbrd;          /* 0x28 */
    volatile u32 lcr_h;         /* 0x2c */
    volatile u32 cr;            /* 0x30 */
};

#define FR_TXFF         (1u << 5)
#define FR_BUSY         (1u << 3)
#define LCR_H_WLEN8     (3u << 5)
#define LCR_H_FEN       (1u << 4)
#define CR_UARTEN       (1u << 0)
#define CR_TXE          (1u << 8)
#define CR_RXE          (1u << 9)

static struct pl011 *const uart = (struct pl011 *)UART0_BASE;

#define PSCI_0_2_FN_PSCI_VERSION    0x84000000UL
#define PSCI_0_2_FN_SYSTEM_OFF      0x84000008UL

/* ------------------------------------------------------------------ helpers */

#define sysreg_read(name) ({                                    \
    u64 __val;                                                  \
    asm volatile("mrs %0, " #name : "=r" (__val));              \
    __val; })

#define sysreg_write(name, val) do {                            \
    u64 __val = (u64)(val);                                     \
    asm volatile("msr " #name ", %0" : : "r" (__val));          \
} while (0)

#define isb()           asm volatile("isb" : : : "memory")
#define dsb(opt)        asm volatile("dsb " #opt : : : "memory")

static u64 psci_call(u64 fn, u64 a0, u64 a1, u64 a2)
{
    register u64 x0 asm("x0") = fn;
    register u64 x1 asm("x1") = a0;
    register u64 x2 asm("x2") = a1;
    register u64 x3 asm("x3") = a2;

    asm volatile("hvc #0"
                 : "+r" (x0), "+r" (x1), "+r" (x2), "+r" (x3)
                 :
                 : "memory");
    return x0;
}

/* ------------------------------------------------------------------ console */

static void console_init(void)
{
    uart->cr = 0;                               /* disable while we configure */
    while (uart->fr & FR_BUSY)
        ;
    uart->ibrd = 13;                            /* 115200 baud at 24 MHz      */
    uart->fbrd = 1;
    uart->lcr_h = LCR_H_WLEN8 | LCR_H_FEN;      /* 8N1, FIFOs on              */
    uart->cr = CR_UARTEN | CR_TXE | CR_RXE;
}

static void console_putc(char c)
{
    while (uart->fr & FR_TXFF)
        ;
    uart->dr = (u8)c;
}

static void print(const char *s)
{
    while (*s)
        console_putc(*s++);
}

static void print_u(u64 n)
{
    char tmp[24];
    int i = 0;

    do {
        tmp[i++] = '0' + (char)(n % 10);
        n /= 10;
    } while (n != 0);
    while (i > 0)
        console_putc(tmp[--i]);
}

static void print_x(u64 n, int width)
{
    static const char digits[] = "0123456789abcdef";

    print("0x");
    while (width-- > 0)
        console_putc(digits[(n >> (width * 4)) & 15]);
}

/* --------------------------------------------------------------------- MMU */

#define PAGE_SIZE       4096UL
#define BLOCK_SIZE      (2UL << 20)

#define PTE_VALID       (1UL << 0)
#define PTE_TABLE       (1UL << 1)              /* level 0-2: next-level table */
#define PTE_PAGE        (1UL << 1)              /* level 3: page descriptor     */
#define PTE_ATTRIDX(n)  ((u64)(n) << 2)
#define PTE_SH_INNER    (3UL << 8)
#define PTE_AF          (1UL << 10)
#define PTE_PXN         (1UL << 53)
#define PTE_UXN         (1UL << 54)

#define MT_DEVICE_nGnRnE    0                   /* MAIR_EL1 attribute indices  */
#define MT_NORMAL           1
#define MAIR_VALUE      ((0x00UL << (8 * MT_DEVICE_nGnRnE)) | (0xffUL << (8 * MT_NORMAL)))

/* 32-bit VA space: translation starts at level 1 (4 entries of 1 GiB). */
#define TCR_T0SZ(n)     ((u64)(n) << 0)
#define TCR_IRGN0_WBWA  (1UL << 8)
#define TCR_ORGN0_WBWA  (1UL << 10)
#define TCR_SH0_INNER   (3UL << 12)
#define TCR_TG0_4K      (0UL << 14)
#define TCR_EPD1        (1UL << 23)
#define TCR_IPS_4G      (0UL << 32)
#define TCR_VALUE       (TCR_T0SZ(32) | TCR_IRGN0_WBWA | TCR_ORGN0_WBWA | TCR_SH0_INNER | \
                         TCR_TG0_4K | TCR_EPD1 | TCR_IPS_4G)

#define SCTLR_M         (1UL << 0)
#define SCTLR_A         (1UL << 1)
#define SCTLR_C         (1UL << 2)
#define SCTLR_I         (1UL << 12)
#define SCTLR_WXN       (1UL << 19)

static u64 l1_table[512] __attribute__((aligned(4096)));
static u64 l2_low[512] __attribute__((aligned(4096)));     /* 0x00000000 - 0x3fffffff */
static u64 l2_ram[512] __attribute__((aligned(4096)));     /* 0x40000000 - 0x7fffffff */
static u64 l3_uart[512] __attribute__((aligned(4096)));    /* 0x09000000 - 0x091fffff */

static void clean_inval_range(void *start, size_t size)
{
    u64 ctr = sysreg_read(ctr_el0);
    u64 line = 4UL << ((ctr >> 16) & 15);       /* DminLine, in bytes */
    u64 p = (u64)start & ~(line - 1);

    for (; p < (u64)start + size; p += line)
        asm volatile("dc civac, %0" : : "r" (p) : "memory");
    dsb(sy);
}

static void mmu_init(void)
{
    u64 va, sctlr;

    l1_table[0] = (u64)l2_low | PTE_TABLE | PTE_VALID;
    l1_table[1] = (u64)l2_ram | PTE_TABLE | PTE_VALID;

    l2_low[UART0_BASE / BLOCK_SIZE] = (u64)l3_uart | PTE_TABLE | PTE_VALID;
    l3_uart[(UART0_BASE % BLOCK_SIZE) / PAGE_SIZE] =
        UART0_BASE | PTE_PAGE | PTE_VALID | PTE_ATTRIDX(MT_DEVICE_nGnRnE) |
        PTE_AF | PTE_PXN | PTE_UXN;

    for (va = RAM_START; va < RAM_END; va += BLOCK_SIZE)
        l2_ram[(va - 0x40000000UL) / BLOCK_SIZE] =
            va | PTE_VALID | PTE_ATTRIDX(MT_NORMAL) | PTE_SH_INNER | PTE_AF;

    /* The tables were written with the MMU (and so the D-cache) off; make sure
     * no stale lines shadow them once the walker does cacheable lookups. */
    clean_inval_range(l1_table, sizeof(l1_table));
    clean_inval_range(l2_low, sizeof(l2_low));
    clean_inval_range(l2_ram, sizeof(l2_ram));
    clean_inval_range(l3_uart, sizeof(l3_uart));

    sysreg_write(mair_el1, MAIR_VALUE);
    sysreg_write(tcr_el1, TCR_VALUE);
    sysreg_write(ttbr0_el1, (u64)l1_table);
    isb();
    asm volatile("tlbi vmalle1" : : : "memory");
    dsb(nsh);
    isb();

    sctlr = sysreg_read(sctlr_el1);
    sctlr |= SCTLR_M | SCTLR_C | SCTLR_I;
    sctlr &= ~(SCTLR_A | SCTLR_WXN);
    sysreg_write(sctlr_el1, sctlr);
    isb();
}

/* ----------------------------------------------------------------- traps */

struct trap_frame {
    u64 regs[31];
    u64 elr;
    u64 spsr;
    u64 esr;
};

#define ESR_EC(esr)     (((esr) >> 26) & 0x3f)
#define ESR_ISS(esr)    ((esr) & 0x1ffffff)
#define EC_SVC64        0x15
#define EC_BRK64        0x3c

#define SYS_PUTS        1
#define SYS_GETPID      2
#define SYS_ADD3        3

static unsigned int brk_count;
static unsigned int syscall_count;

static u64 do_syscall(struct trap_frame *tf)
{
    syscall_count++;
    switch (tf->regs[8]) {
    case SYS_PUTS:
        print((const char *)tf->regs[0]);
        return 0;
    case SYS_GETPID:
        return 42;
    case SYS_ADD3:
        return tf->regs[0] + tf->regs[1] + tf->regs[2];
    default:
        return (u64)-38;                        /* -ENOSYS */
    }
}

void sync_exception(struct trap_frame *tf)
{
    switch (ESR_EC(tf->esr)) {
    case EC_SVC64:
        /* ELR already points past the svc */
        tf->regs[0] = do_syscall(tf);
        return;
    case EC_BRK64:
        print("  [trap] brk #");
        print_x(ESR_ISS(tf->esr) & 0xffff, 4);
        print(" at ");
        print_x(tf->elr, 8);
        print(", skipping it\n");
        brk_count++;
        tf->elr += 4;
        return;
    default:
        print("PANIC: unexpected synchronous exception, ESR=");
        print_x(tf->esr, 8);
        print(" ELR=");
        print_x(tf->elr, 16);
        print("\n");
        psci_call(PSCI_0_2_FN_SYSTEM_OFF, 0, 0, 0);
        for (;;)
            ;
    }
}

void bad_exception(u64 kind, u64 esr, u64 elr)
{
    print("PANIC: unexpected exception, vector ");
    print_u(kind);
    print(" ESR=");
    print_x(esr, 8);
    print(" ELR=");
    print_x(elr, 16);
    print("\n");
    psci_call(PSCI_0_2_FN_SYSTEM_OFF, 0, 0, 0);
    for (;;)
        ;
}

static u64 syscall3(u64 nr, u64 a0, u64 a1, u64 a2)
{
    register u64 x8 asm("x8") = nr;
    register u64 x0 asm("x0") = a0;
    register u64 x1 asm("x1") = a1;
    register u64 x2 asm("x2") = a2;

    asm volatile("svc #0" : "+r" (x0) : "r" (x8), "r" (x1), "r" (x2) : "memory");
    return x0;
}

/* -------------------------------------------------------------- workload */

static u8 sieve[200];

static u32 crc32(const void *data, size_t len)
{
    const u8 *p = data;
    u32 crc = 0xffffffffu;

    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
    }
    return ~crc;
}

static size_t str_len(const char *s)
{
    size_t n = 0;

    while (s[n])
        n++;
    return n;
}

static void primes(void)
{
    unsigned int count = 0, sum = 0;

    for (unsigned int i = 2; i < sizeof(sieve); i++)
        sieve[i] = 1;
    for (unsigned int i = 2; i * i < sizeof(sieve); i++)
        if (sieve[i])
            for (unsigned int j = i * i; j < sizeof(sieve); j += i)
                sieve[j] = 0;

    print("primes below 200:");
    for (unsigned int i = 2; i < sizeof(sieve); i++) {
        if (!sieve[i])
            continue;
        print(count % 16 == 0 ? "\n  " : " ");
        print_u(i);
        count++;
        sum += i;
    }
    print("\ncount=");
    print_u(count);
    print(" sum=");
    print_u(sum);
    print("\n");
}

/* ------------------------------------------------------------------ main */

void kernel_main(void)
{
    static const char fox[] = "The quick brown fox jumps over the lazy dog";
    u64 ret, sctlr;

    console_init();
    print("plainkernel: booting at EL");
    print_u((sysreg_read(CurrentEL) >> 2) & 3);
    print("\n");

    mmu_init();
    sctlr = sysreg_read(sctlr_el1);
    print("plainkernel: MMU ");
    print((sctlr & SCTLR_M) ? "on" : "off");
    print(", D-cache ");
    print((sctlr & SCTLR_C) ? "on" : "off");
    print(", I-cache ");
    print((sctlr & SCTLR_I) ? "on" : "off");
    print("\n");

    primes();
    print("crc32(\"");
    print(fox);
    print("\") = ");
    print_x(crc32(fox, str_len(fox)), 8);
    print("\n");

    syscall3(SYS_PUTS, (u64)"syscall: hello from svc #0\n", 0, 0);
    ret = syscall3(SYS_GETPID, 0, 0, 0);
    print("syscall: getpid() = ");
    print_u(ret);
    print("\n");
    ret = syscall3(SYS_ADD3, 1000, 200, 34);
    print("syscall: add3(1000, 200, 34) = ");
    print_u(ret);
    print("\n");
    ret = syscall3(99, 0, 0, 0);
    print("syscall: nr 99 = ");
    print_u(-ret);
    print(" (-ENOSYS)\n");

    asm volatile("brk #0x7");
    print("brk: survived, handled ");
    print_u(brk_count);
    print(" breakpoint(s), ");
    print_u(syscall_count);
    print(" syscall(s)\n");

    ret = psci_call(PSCI_0_2_FN_PSCI_VERSION, 0, 0, 0);
    print("psci: version ");
    print_u(ret >> 16);
    print(".");
    print_u(ret & 0xffff);
    print(", powering off\n");
    psci_call(PSCI_0_2_FN_SYSTEM_OFF, 0, 0, 0);
    print("PANIC: SYSTEM_OFF returned\n");
    for (;;)
        ;
}
