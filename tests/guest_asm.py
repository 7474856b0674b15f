"""Assembly macros shared by the small kernels the tests assemble (GNU as).

- `put_hex_x0 BITS`: print the low BITS bits of x0 in lower-case hex on the PL011
  whose data register address is in x1 (clobbers x2-x5).
- `system_off_any_el`: PSCI SYSTEM_OFF over HVC at EL1 and over SMC at EL2, so one
  image runs in vm mode (EL1) and at (virtual) EL2 (clobbers x0, x2).
- `puts_function`: a function `puts` that prints the NUL-terminated string at x0 on
  the PL011 (clobbers x5, x6).
- `vectors_current_spx SYNC, IRQ`: a vector table labelled `vectors` whose current-EL
  SP_ELx synchronous and IRQ entries branch to SYNC and IRQ; every other entry spins.
- `gic_enable_ppi INTID, PRIO`: the GICv3 of QEMU's virt board ready to signal PPI
  INTID (group 1, priority PRIO) to this CPU's EL1: distributor group 1 on, the
  redistributor awake, the PPI enabled, ICC_PMR_EL1 open, ICC_IGRPEN1_EL1 set
  (clobbers x0, x1).
"""

MACROS = r"""
    .macro put_hex_x0 bits
    mov     x2, #\bits
91: sub     x2, x2, #4
    lsr     x3, x0, x2
    and     x3, x3, #0xf
    add     x4, x3, #'0'
    add     x5, x3, #('a' - 10)
    cmp     x3, #10
    csel    x4, x5, x4, ge
    strb    w4, [x1]
    cbnz    x2, 91b
    .endm

    .macro puts_function
puts:
    ldr     x5, =0x09000000
95: ldrb    w6, [x0], #1
    cbz     w6, 96f
    strb    w6, [x5]
    b       95b
96: ret
    .endm

    .macro vectors_current_spx sync, irq
    .balign 2048
vectors:
    .rept 4
    b       .
    .balign 128
    .endr
    b       \sync                       // current EL, SP_ELx, synchronous
    .balign 128
    b       \irq                        // current EL, SP_ELx, IRQ
    .balign 128
    .rept 10
    b       .
    .balign 128
    .endr
    .endm

    // GICR_WAKER.ProcessorSleep cleared, and ChildrenAsleep waited for (clobbers x0, x1).
    .macro gic_wake_redistributor
    ldr     x1, =0x080A0000
    ldr     w0, [x1, #0x14]
    bic     w0, w0, #2
    str     w0, [x1, #0x14]
97: ldr     w0, [x1, #0x14]
    tbnz    w0, #2, 97b
    .endm

    // The GICv3 ready to signal SPI INTID (group 1, PRIO, routed to this CPU) to EL1.
    .macro gic_enable_spi intid, prio
    ldr     x1, =0x08000000
    mov     w0, #0x12                     // GICD_CTLR: ARE, EnableGrp1
    str     w0, [x1]
    gic_wake_redistributor
    ldr     x1, =0x08000000
    ldr     w0, [x1, #(0x80 + (\intid / 32) * 4)]
    orr     w0, w0, #(1 << (\intid % 32))
    str     w0, [x1, #(0x80 + (\intid / 32) * 4)]
    mov     w0, #\prio
    strb    w0, [x1, #(0x400 + \intid)]
    str     xzr, [x1, #(0x6000 + 8 * \intid)]
    mov     w0, #(1 << (\intid % 32))
    str     w0, [x1, #(0x100 + (\intid / 32) * 4)]
    mov     x0, #0xff
    msr     S3_0_C4_C6_0, x0              // ICC_PMR_EL1
    mov     x0, #1
    msr     S3_0_C12_C12_7, x0            // ICC_IGRPEN1_EL1
    isb
    .endm

    .macro gic_enable_ppi intid, prio
    ldr     x1, =0x08000000             // GICD_CTLR.EnableGrp1
    mov     w0, #2
    str     w0, [x1]
    gic_wake_redistributor
    ldr     x1, =0x080B0000             // SGI_base: group 1, priority, enable
    ldr     w0, [x1, #0x80]
    orr     w0, w0, #(1 << \intid)
    str     w0, [x1, #0x80]
    mov     w0, #\prio
    strb    w0, [x1, #(0x400 + \intid)]
    mov     w0, #(1 << \intid)
    str     w0, [x1, #0x100]
    mov     x0, #0xff
    msr     S3_0_C4_C6_0, x0            // ICC_PMR_EL1
    mov     x0, #1
    msr     S3_0_C12_C12_7, x0          // ICC_IGRPEN1_EL1
    isb
    .endm

    .macro system_off_any_el
    ldr     x0, =0x84000008
    mrs     x2, CurrentEL
    cmp     x2, #(2 << 2)
    b.eq    92f
    hvc     #0
92: smc     #0
93: b       93b
    .endm
"""
