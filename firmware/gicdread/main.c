/* gicdread: the "device I/O handled in the hypervisor's kernel" microbenchmark as a
 * nested-VM kernel.  READS loads of the GIC distributor's GICD_PIDR2: under Linux
 * KVM with an in-kernel vGICv3 (tools/vmm) each is a stage-2 abort that KVM's vGIC
 * emulates in the host kernel, without an exit to the VMM in user space (compare
 * mmio.elf, whose UARTFR reads the VMM serves).  On its own (vm mode, QEMU at EL1) the
 * board's GIC answers.  Each read must give the same value, with ArchRev = 3 (GICv3). */
#include "fw.h"

#define READS 32
#define GICD_PIDR2_ADDR 0x0800ffe8UL

uint64_t gicd_loop(uint64_t n, uint32_t *first);

int fw_main(void)
{
    uint32_t first = 0;

    uart_puts("gicdread: starting 32 reads of GICD_PIDR2 at 0x0800ffe8\n");
    uint64_t differ = gicd_loop(READS, &first);
    if (differ == 0 && ((first >> 4) & 0xf) == 3) {
        uart_puts("gicdread: 32 reads, all ");
        uart_put_hex(first, 8);
        uart_puts(", ArchRev 3 (GICv3)\n");
    } else {
        uart_puts("gicdread: FAIL: first read ");
        uart_put_hex(first, 8);
        uart_puts(", ");
        uart_put_dec(differ);
        uart_puts(" of the other 31 differ\n");
    }
    return 0;
}
