/* exceptions: take SVC, UDF, BRK and synchronous external data aborts at EL1 through
 * our own VBAR_EL1 table and check ESR_EL1, ELR_EL1, FAR_EL1 and SPSR_EL1. */
#include "fw.h"

struct exc_record {
    uint64_t vector, esr, elr, far, spsr, count;
};
extern volatile struct exc_record exc_record;
extern char exc_vectors[];

#define DECL(n) void n(void); extern char n##_insn[];
DECL(t_svc)
DECL(t_udf)
DECL(t_brk)
DECL(t_load)
DECL(t_store)
DECL(t_load_ram_end)

#define NO_FAR 1    /* FAR_EL1 is UNKNOWN for this exception: print and check nothing */

struct test {
    const char *name;
    void (*fn)(void);
    const char *insn;       /* address of the instruction that raises the exception */
    uint64_t esr;           /* expected ESR_EL1 */
    uint64_t elr_offset;    /* expected ELR_EL1 - insn */
    uint64_t far;           /* expected FAR_EL1, or NO_FAR */
};

static const struct test tests[] = {
    {"svc #0x1234", t_svc, t_svc_insn, 0x56001234, 4, NO_FAR},
    {"udf #0x5a", t_udf, t_udf_insn, 0x02000000, 0, NO_FAR},
    {"brk #0x42", t_brk, t_brk_insn, 0xf2000042, 0, NO_FAR},
    {"ldr x2, [0x0b000000]", t_load, t_load_insn, 0x96000010, 0, 0x0b000000},
    {"str w2, [0x0b000010]", t_store, t_store_insn, 0x96000050, 0, 0x0b000010},
    {"ldrb w2, [0x48000000]", t_load_ram_end, t_load_ram_end_insn, 0x96000010, 0, 0x48000000},
};

static int check(const char *what, uint64_t got, uint64_t want, int digits)
{
    uart_puts("  ");
    uart_puts(what);
    uart_puts(" = ");
    uart_put_hex(got, digits);
    if (got == want) {
        uart_puts(" ok\n");
        return 1;
    }
    uart_puts(" expected ");
    uart_put_hex(want, digits);
    uart_puts("\n");
    return 0;
}

int fw_main(void)
{
    int failures = 0;
    const int n = sizeof(tests) / sizeof(tests[0]);

    write_sysreg(vbar_el1, (uint64_t)exc_vectors);
    isb();
    uart_puts("exceptions: VBAR_EL1 = ");
    uart_put_hex(read_sysreg(vbar_el1), 16);
    uart_puts("\n");

    for (int i = 0; i < n; i++) {
        const struct test *t = &tests[i];
        /* What SPSR_EL1 must hold: NZCV as set by the trigger, our DAIF, EL1h. */
        uint64_t spsr_want = 0xa0000000 | (read_sysreg(daif) & 0x3c0) | 0x5;
        uint64_t count = exc_record.count;
        int ok = 1;

        uart_puts("exceptions: ");
        uart_puts(t->name);
        uart_puts("\n");
        t->fn();
        ok &= check("taken", exc_record.count - count, 1, 1);
        ok &= check("vector offset", exc_record.vector, 0x200, 3);
        ok &= check("ESR_EL1", exc_record.esr, t->esr, 8);
        ok &= check("ELR_EL1", exc_record.elr, (uint64_t)t->insn + t->elr_offset, 16);
        if (t->far != NO_FAR)
            ok &= check("FAR_EL1", exc_record.far, t->far, 16);
        uart_puts("  SPSR_EL1 = ");
        uart_put_hex(exc_record.spsr, 16);
        if ((exc_record.spsr & 0xf00003cf) == spsr_want) {
            uart_puts(" ok (NZCV, DAIF, M)\n");
        } else {
            uart_puts(" expected NZCV/DAIF/M ");
            uart_put_hex(spsr_want, 8);
            uart_puts("\n");
            ok = 0;
        }
        uart_puts(ok ? "PASS: " : "FAIL: ");
        uart_puts(t->name);
        uart_puts("\n");
        failures += !ok;
    }

    if (failures == 0) {
        uart_puts("exceptions: PASS: all ");
        uart_put_dec(n);
        uart_puts(" cases\n");
    } else {
        uart_puts("exceptions: FAIL: ");
        uart_put_dec(failures);
        uart_puts(" of ");
        uart_put_dec(n);
        uart_puts(" cases failed\n");
    }
    return 0;
}
