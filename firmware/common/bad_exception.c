/* bad_exception(): what irq_vectors.S calls for every vector but the current EL's IRQ:
 * "<fw_name>: FAIL: unexpected exception, vector N ESR_EL1=... ELR_EL1=...", then PSCI
 * SYSTEM_OFF.  Each kernel that uses irq_vectors.S names itself in fw_name. */
#include "fw.h"

extern const char fw_name[];
void bad_exception(uint64_t vec, uint64_t esr, uint64_t elr) __attribute__((noreturn));

void bad_exception(uint64_t vec, uint64_t esr, uint64_t elr)
{
    uart_puts(fw_name);
    uart_puts(": FAIL: unexpected exception, vector ");
    uart_put_dec(vec);
    uart_puts(" ESR_EL1=");
    uart_put_hex(esr, 8);
    uart_puts(" ELR_EL1=");
    uart_put_hex(elr, 16);
    uart_puts("\n");
    psci_system_off();
}
