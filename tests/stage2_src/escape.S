// s2escape: a plain-asm guest hypervisor whose stage 2 tries to give its guest
// memory L0 never gave it.  L1 at PA 0x40000000 (vEL2, MMU off); L2 at IPA 0x80200000.
        .section .text.l1, "ax"
        .global _start
_start:
        ldr     x0, =0x40080000
        mov     sp, x0
        adr     x0, l1_vectors
        msr     vbar_el2, x0
        ldr     x0, =s2_l1
        mov     x1, #1
        orr     x0, x0, x1, lsl #48         // VMID 1
        msr     vttbr_el2, x0
        ldr     x0, =0x80023560             // T0SZ=32, SL0=1 (level 1), 4K, IS WB, PS=40 bits
        msr     vtcr_el2, x0
        ldr     x0, =0x80000001             // RW | VM
        msr     hcr_el2, x0
        mov     x0, #0x3c5
        msr     spsr_el2, x0
        ldr     x0, =0x80200000
        msr     elr_el2, x0
        eret

        .balign 2048
l1_vectors:
        .rept   8
        b       .
        .balign 128
        .endr
        // lower EL, AArch64, synchronous
        mrs     x9, esr_el2
        lsr     x10, x9, #26
        cmp     x10, #0x16
        b.eq    1f
        mrs     x14, far_el2
        mrs     x15, hpfar_el2
        ldr     x11, =0x40300000            // log: [0] = next free slot
        ldr     x12, [x11]
        cbnz    x12, 2f
        add     x12, x11, #8
2:      stp     x9, x14, [x12], #16
        str     x15, [x12], #8
        str     x12, [x11]
        mrs     x16, elr_el2
        add     x16, x16, #4
        msr     elr_el2, x16
        eret
1:      ldr     x0, =0x84000008             // PSCI SYSTEM_OFF
        smc     #0
        b       .

        .section .data.s2, "aw"
        .balign 4096
s2_l1:  .quad   s2_l2 + 3                   // IPA 0x00000000: level-2 table
        .quad   0                           // IPA 0x40000000: nothing
        .quad   0x40000000 + 0x7fd          // IPA 0x80000000: 1 GiB block -> L1's RAM
        .quad   0x100000000 + 0x7fd         // IPA 0xc0000000: 1 GiB block -> PA outside L1's RAM
        .balign 4096
s2_l2:  .fill   0x40, 8, 0
        .quad   0x0c000000 + 0x7fd          // IPA 0x08000000: PA of QEMU's platform bus (empty: an external abort there too)
        .fill   7, 8, 0
        .quad   0x09000000 + 0x7fd          // IPA 0x09000000: the PL011, passed through
        .fill   7, 8, 0
        .quad   0x200000000 + 3             // IPA 0x0a000000: a level-3 table outside L1's RAM
        .fill   (512 - 0x51), 8, 0

        .section .text.l2, "ax"
l2_start:
        adr     x0, l2_vectors
        msr     vbar_el1, x0
        mov     x1, #0x09000000
        mov     w2, #'P'
        strb    w2, [x1]                    // passed-through UART: prints
        mov     x1, #0xc0000000
        ldr     x2, [x1, #8]                // PA 0x100000008: SEA to L2
        mov     x1, #0x08000000
        ldr     w3, [x1, #4]                // unmodelled device: SEA to L2
        mov     x1, #0x0a000000
        ldr     x4, [x1, #0x10]             // stage-2 walk outside L1's RAM: to L1
        mov     x1, #0x09000000
        mov     w2, #'\n'
        strb    w2, [x1]
        hvc     #0
        b       .

        .balign 2048
l2_vectors:
        .rept   4
        b       .
        .balign 128
        .endr
        // current EL, SPx, synchronous
        mrs     x9, esr_el1
        mrs     x14, far_el1
        ldr     x11, =0x80310000            // IPA of PA 0x40310000
        ldr     x12, [x11]
        cbnz    x12, 2f
        add     x12, x11, #8
2:      stp     x9, x14, [x12], #16
        str     x12, [x11]
        mrs     x16, elr_el1
        add     x16, x16, #4
        msr     elr_el1, x16
        eret
        .ltorg
