/* Shared definitions for the neve test kernels (firmware/common/).
 *
 * The kernels start at EL1 and may only touch: the PL011 at 0x09000000, PSCI over
 * `hvc #0`, semihosting `hlt #0xf000` and their own memory in [0x44000000, 0x48000000).
 * This header is usable from C and from assembler (.S) files. */
#ifndef NEVE_FW_H
#define NEVE_FW_H

#define PL011_BASE          0x09000000
#define PL011_DR            0x00
#define PL011_FR            0x18
#define PL011_FR_TXFF       (1 << 5)

#define PSCI_VERSION        0x84000000
#define PSCI_SYSTEM_OFF     0x84000008
#define PSCI_SYSTEM_RESET   0x84000009

#define SEMI_SYS_WRITEC         0x03
#define SEMI_SYS_WRITE0         0x04
#define SEMI_SYS_EXIT           0x18
#define SEMI_SYS_EXIT_EXTENDED  0x20
#define ADP_Stopped_ApplicationExit 0x20026

/* ESR_ELx.EC values used by the tests. */
#define EC_UNKNOWN          0x00
#define EC_SVC64            0x15
#define EC_HVC64            0x16
#define EC_DABT_CUR         0x25
#define EC_BRK64            0x3c

#ifndef __ASSEMBLER__
#include <stdint.h>

/* uart.c: polled-free PL011 output (a byte store to DR prints). */
void uart_putc(char c);
void uart_puts(const char *s);
void uart_put_hex(uint64_t v, int digits);   /* "0x" + exactly `digits` hex digits */
void uart_put_dec(uint64_t v);

/* psci.S */
uint64_t hvc_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3);
uint64_t psci_version(void);
void psci_system_off(void) __attribute__((noreturn));

/* semihost.S: `hlt #0xf000` with w0 = op, x1 = arg; returns x0. */
uint64_t semihost_call(uint64_t op, uint64_t arg);

#define read_sysreg(r) ({ uint64_t __v; __asm__ volatile("mrs %0, " #r : "=r"(__v)); __v; })
#define write_sysreg(r, v) __asm__ volatile("msr " #r ", %0" : : "r"((uint64_t)(v)))
#define isb() __asm__ volatile("isb" : : : "memory")

/* Release store and acquire load between CPUs, as ARMv8.0's STLR and LDAR (the
 * compiler's __atomic built-ins may use LRCPC forms, STLUR/LDAPR, that an A72 lacks). */
static inline void store_release(volatile uint64_t *p, uint64_t v)
{
    __asm__ volatile("stlr %1, [%0]" : : "r"(p), "r"(v) : "memory");
}

static inline uint64_t load_acquire(volatile uint64_t *p)
{
    uint64_t v;
    __asm__ volatile("ldar %0, [%1]" : "=r"(v) : "r"(p) : "memory");
    return v;
}
#endif

#endif
