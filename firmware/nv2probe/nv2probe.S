// nv2probe -- a minimal non-VHE hypervisor whose hypercall path is exactly
//
//      HVC (from the EL1 guest) -> mrs ESR_EL2 -> mrs/msr SCTLR_EL1
//      -> mrs/msr ELR_EL2 -> ERET
//
// so the architected cost of one hypercall is easy to state: on ARMv8.3 NV
// every one of those is a trap to the host (7), with FEAT_NV2 only the HVC and
// the ERET remain (2).  Nothing else happens on that path: no printing, no
// stack, no other system register.
//
// Boot (at EL2): print a banner, install VBAR_EL2, HCR_EL2 = RW|TSC (TSC marks
// the EL1 context as a guest), SCTLR_EL1 with the MMU off, then ERET to the
// guest at EL1h.  The guest makes NCALLS hypercalls (hvc #0x10); after each it
// checks the syndrome the handler hands back in x0 and samples SCTLR_EL1.UCI,
// which the handler toggles on every call.  Then it asks to stop with
// hvc #0xdd, and the hypervisor prints a summary and powers off with PSCI
// SYSTEM_OFF over SMC.
//
// Registers: x28 = UART data register.  The handler only uses x0 and x9-x12;
// the guest keeps its state in x19-x23.

        .equ    UART,           0x09000000
        .equ    PSCI_OFF,       0x84000008
        .equ    HCR_RW,         (1 << 31)
        .equ    HCR_TSC,        (1 << 19)
        .equ    SCTLR_EL2_VAL,  0x30c50830      // RES1 bits, MMU and caches off
        .equ    SCTLR_EL1_VAL,  0x30d00800      // RES1 bits, MMU and caches off
        .equ    SCTLR_UCI,      (1 << 26)
        .equ    SPSR_EL1H,      0x3c5           // EL1h, DAIF masked
        .equ    NCALLS,         10
        .equ    IMM_CALL,       0x10
        .equ    IMM_DONE,       0xdd
        .equ    ESR_HVC_CALL,   ((0x16 << 26) | (1 << 25) | IMM_CALL)

        .section .text.boot, "ax"
        .globl  _start
_start:
        msr     daifset, #0xf
        ldr     x28, =UART
        adr     x0, s_hello
        bl      puts
        mrs     x0, CurrentEL
        bl      puthex
        bl      newline

        adr     x0, hyp_vectors
        msr     vbar_el2, x0
        ldr     x0, =SCTLR_EL2_VAL
        msr     sctlr_el2, x0
        ldr     x0, =(HCR_RW | HCR_TSC)
        msr     hcr_el2, x0
        ldr     x0, =SCTLR_EL1_VAL
        msr     sctlr_el1, x0
        adr     x0, guest
        msr     elr_el2, x0
        mov     x0, #SPSR_EL1H
        msr     spsr_el2, x0
        isb
        adr     x0, s_enter
        bl      puts
        eret

// ------------------------------------------------------------ the EL2 vectors
        .balign 2048
hyp_vectors:
        .rept   8                       // current EL, SP_EL0 and SP_ELx
        .balign 128
        b       unexpected
        .endr
        .balign 128                     // lower EL, AArch64, synchronous
        b       hvc_handler
        .rept   7
        .balign 128
        b       unexpected
        .endr

// The hypercall path.  x0 <- ESR_EL2 for the guest to check.
hvc_handler:
        mrs     x9, esr_el2
        ubfx    x12, x9, #26, #6
        cmp     x12, #0x16              // EC = HVC64?
        b.ne    unexpected
        and     x12, x9, #0xffff
        cmp     x12, #IMM_DONE
        b.eq    done
        mrs     x10, sctlr_el1
        eor     x10, x10, #SCTLR_UCI
        msr     sctlr_el1, x10
        mrs     x11, elr_el2
        msr     elr_el2, x11
        mov     x0, x9
        eret

// Not on the hypercall path: the guest has finished.
done:
        adr     x0, s_sum1
        bl      puts
        mov     x0, x19
        bl      putdec
        adr     x0, s_sum2
        bl      puts
        mov     x0, x20
        bl      putdec
        adr     x0, s_sum3
        bl      puts
        mov     x0, x21
        bl      putdec
        bl      newline
        adr     x0, s_esr
        bl      puts
        mov     x0, x22
        bl      puthex
        adr     x0, s_elr
        bl      puts
        mrs     x0, elr_el2
        bl      puthex
        bl      newline
        adr     x0, s_sctlr
        bl      puts
        mrs     x0, sctlr_el1
        bl      puthex
        bl      newline
        cmp     x19, #NCALLS
        b.ne    failed
        cmp     x20, #NCALLS
        b.ne    failed
        cmp     x21, #(NCALLS / 2)
        b.ne    failed
        adr     x0, s_pass
        bl      puts
        b       power_off
failed:
        adr     x0, s_fail
        bl      puts
        b       power_off

unexpected:
        adr     x0, s_unexp
        bl      puts
        mrs     x0, esr_el2
        bl      puthex
        adr     x0, s_elr
        bl      puts
        mrs     x0, elr_el2
        bl      puthex
        bl      newline
power_off:
        ldr     x0, =PSCI_OFF
        smc     #0
        b       .

// ------------------------------------------------------------ the guest (EL1)
// x19 = calls made, x20 = calls whose x0 was the expected ESR_EL2,
// x21 = calls after which SCTLR_EL1.UCI was set, x22 = last x0.
guest:
        ldr     x28, =UART
        adr     x0, s_guest
        bl      puts
        mov     x19, #0
        mov     x20, #0
        mov     x21, #0
        ldr     x23, =ESR_HVC_CALL
1:      hvc     #IMM_CALL
        add     x19, x19, #1
        mov     x22, x0
        cmp     x0, x23
        cinc    x20, x20, eq
        mrs     x1, sctlr_el1
        ubfx    x1, x1, #26, #1
        add     x21, x21, x1
        cmp     x19, #NCALLS
        b.lo    1b
        adr     x0, s_gdone
        bl      puts
        hvc     #IMM_DONE
        b       .

// ------------------------------------------------------------ helpers
// puts(x0): print a NUL-terminated string.  Clobbers x0, x1.
puts:   ldrb    w1, [x0], #1
        cbz     w1, 1f
        strb    w1, [x28]
        b       puts
1:      ret

newline:
        mov     w1, #'\n'
        strb    w1, [x28]
        ret

// puthex(x0): "0x" and 16 hex digits.  Clobbers x0-x3.
puthex: mov     w1, #'0'
        strb    w1, [x28]
        mov     w1, #'x'
        strb    w1, [x28]
        mov     w2, #16
1:      ror     x0, x0, #60
        and     x1, x0, #0xf
        cmp     x1, #10
        add     x3, x1, #'0'
        add     x1, x1, #('a' - 10)
        csel    x1, x3, x1, lo
        strb    w1, [x28]
        subs    w2, w2, #1
        b.ne    1b
        ret

// putdec(x0): unsigned decimal, up to 20 digits.  Clobbers x0-x4 and the
// 32 bytes at decbuf.
putdec: adr     x1, decbuf_end
        mov     x2, #10
1:      udiv    x3, x0, x2
        msub    x4, x3, x2, x0
        add     w4, w4, #'0'
        strb    w4, [x1, #-1]!
        mov     x0, x3
        cbnz    x0, 1b
2:      ldrb    w4, [x1], #1
        strb    w4, [x28]
        adr     x3, decbuf_end
        cmp     x1, x3
        b.lo    2b
        ret

        .ltorg

        .section .rodata
s_hello:  .asciz "nv2probe: hypervisor at CurrentEL = "
s_enter:  .asciz "nv2probe: HCR_EL2 = RW|TSC, entering the guest at EL1\n"
s_guest:  .asciz "nv2probe guest: making 10 hypercalls (hvc #0x10)\n"
s_gdone:  .asciz "nv2probe guest: done, hvc #0xdd\n"
s_sum1:   .asciz "nv2probe: "
s_sum2:   .asciz " hypercalls, "
s_sum3:   .asciz " returned the expected ESR_EL2, SCTLR_EL1.UCI seen set after "
s_esr:    .asciz "nv2probe: last ESR_EL2 seen by the guest = "
s_elr:    .asciz " ELR_EL2 = "
s_sctlr:  .asciz "nv2probe: guest SCTLR_EL1 = "
s_pass:   .asciz "nv2probe: PASS\n"
s_fail:   .asciz "nv2probe: FAIL\n"
s_unexp:  .asciz "nv2probe: unexpected exception, ESR_EL2 = "

        .bss
        .balign 16
decbuf: .space  32
decbuf_end:
