/* Common start-up for the test kernels: entered at EL1 at the image base with the
 * MMU off.  Sets SP to a 16 KiB stack in .bss, zeroes .bss, calls fw_main() and
 * powers off through PSCI SYSTEM_OFF when it returns. */
#include "fw.h"

    .section .text.boot, "ax"
    .global _start
_start:
    adrp    x0, __stack_top
    add     x0, x0, :lo12:__stack_top
    mov     sp, x0
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    2f
    stp     xzr, xzr, [x0], #16
    b       1b
2:  bl      fw_main
    bl      psci_system_off

    .section .bss.stack, "aw", %nobits
    .balign 16
    .global __stack_bottom, __stack_top
__stack_bottom:
    .space  0x4000
__stack_top:
