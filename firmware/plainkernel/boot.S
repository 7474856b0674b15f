// plainkernel: entry point.  We are entered at EL1 with the MMU and caches off.
// Set up a stack, clear .bss, install the exception vectors and jump to C.

        .section .text.boot, "ax"
        .globl  _start
_start:
        msr     daifset, #0xf           // no interrupts, ever
        ldr     x0, =boot_stack_end
        mov     sp, x0
        ldr     x0, =__bss_start
        ldr     x1, =__bss_end
.Lclear:
        cmp     x0, x1
        b.hs    .Lcleared
        str     xzr, [x0], #8
        b       .Lclear
.Lcleared:
        ldr     x0, =vector_table
        msr     vbar_el1, x0
        isb
        bl      kernel_main
.Lhang:
        wfe
        b       .Lhang

        .ltorg

        .section .bss.boot_stack, "aw", %nobits
        .balign 4096
boot_stack:
        .skip   8192
boot_stack_end:
