// el2mmu: a guest hypervisor that turns on its own EL2 MMU (EL2 descriptors:
// AP[1] RES1 set, bit 54 = XN), runs from a VA alias != PA and ERETs from there.
        .section .text.l1, "ax"
        .global _start
_start:
        ldr     x0, =0x40080000
        mov     sp, x0
        adr     x0, vectors
        msr     vbar_el2, x0
        ldr     x0, =0x00ff
        msr     mair_el2, x0
        ldr     x0, =0x80823520             // T0SZ=32, 4K, WB, PS=40 bits
        msr     tcr_el2, x0
        ldr     x0, =el2_l1
        msr     ttbr0_el2, x0
        isb
        mrs     x0, sctlr_el2
        orr     x0, x0, #1
        msr     sctlr_el2, x0
        isb
        ldr     x1, =0x40300000
        mov     x2, #0xc0000000
        ldr     x3, [x2, #0x100]            // XN block: readable
        str     x3, [x1, #8]
        adr     x4, after_xn
        mov     x5, #0x80000000
        add     x5, x5, x4                  // VA 0xc00xxxxx of after_xn
        br      x5                          // XN: instruction abort at vEL2
after_xn:
        ldr     x0, =high - 0x40000000 + 0x80000000
        br      x0
high:
        ldr     x0, =0x80000000             // RW: the host-kernel context, no stage 2
        msr     hcr_el2, x0
        mov     x0, #0x3c5
        msr     spsr_el2, x0
        ldr     x0, =l2_start
        msr     elr_el2, x0
        tlbi    alle2
        dsb     ish
        isb
        eret                                // from VA 0x800xxxxx

l2_start:
        hvc     #0
        b       .

        .balign 2048
vectors:
        .rept   4
        b       .
        .balign 128
        .endr
        // current EL with SPx, synchronous: the XN fetch
        mrs     x6, esr_el2
        mrs     x7, far_el2
        ldr     x1, =0x40300000
        stp     x6, x7, [x1, #16]
        adr     x8, after_xn
        msr     elr_el2, x8
        eret
        .balign 128
        .rept   3
        b       .
        .balign 128
        .endr
        // lower EL synchronous: the HVC
        ldr     x0, =0x84000008
        smc     #0
        .ltorg

        .section .data.pt, "aw"
        .balign 4096
el2_l1: .quad   el2_l2 + 3                  // VA 0x00000000: 2 MiB blocks
        .quad   0x40000000 + 0x741          // VA 0x40000000: RAM, AP[2:1]=01 (RES1), AF, SH
        .quad   0x40000000 + 0x741          // VA 0x80000000: alias of RAM
        .quad   0x40000000 + 0x741 + (1 << 54)  // VA 0xc0000000: alias, XN
        .balign 4096
el2_l2: .fill   0x48, 8, 0
        .quad   0x09000000 + 0x445          // UART: Device, AP[1]=1, AF
        .fill   (512 - 0x49), 8, 0
