// minhyp -- the smallest useful guest hypervisor: one file, plain assembly.
//
// It is the `hypercall-minimal` benchmark of `neve bench`: the cheapest nested
// hypercall a guest hypervisor can serve.
//
//   1. starts at EL2 (says so; started anywhere else it says that and powers off)
//   2. installs its vectors (VBAR_EL2) and sets HCR_EL2 = RW: an AArch64 EL1 and
//      nothing trapped, no stage 2.  HVC from EL1 goes to EL2 anyway (HCR_EL2.HCD
//      is 0), so that is all a guest's hypercalls need.
//   3. ERETs into the guest, the second image: an EL1 kernel entered at 0x44000000
//      with the MMU off (images/hypercall1k.elf or images/hypercall.elf).
//   4. serves every HVC with exactly one MRS ESR_EL2 and an ERET: an SMCCC call
//      other than PSCI SYSTEM_OFF is answered NOT_SUPPORTED (x0 = -1) and counted.
//      The guest's registers are its own: the handler touches only x9-x11, which
//      SMCCC lets a call clobber.
//   5. on the guest's PSCI SYSTEM_OFF it prints how many calls it served and
//      powers the machine off (PSCI SYSTEM_OFF over SMC).
//
// a few system registers are spelt with their encodings on purpose:
//   S3_4_C1_C1_0 = HCR_EL2     S3_4_C12_C0_0 = VBAR_EL2     S3_0_C1_C0_0 = SCTLR_EL1

        .equ    UART,           0x09000000
        .equ    GUEST_ENTRY,    0x44000000
        .equ    PSCI_SYSTEM_OFF, 0x84000008
        .equ    HCR_RW,         (1 << 31)
        .equ    SCTLR_EL2_RES1, 0x30c50830      // MMU and caches off
        .equ    SCTLR_EL1_RES1, 0x30d00800      // MMU and caches off
        .equ    EL1H_MASKED,    0x3c5
        .equ    EC_HVC64,       0x16

// say "text": print a string literal (clobbers x0, x1, lr)
        .macro  say str
        .pushsection .rodata.str, "a"
9997:   .asciz  "\str"
        .popsection
        adr     x0, 9997b
        bl      puts
        .endm

        .section .text.boot, "ax"
        .globl  _start
_start:
        msr     daifset, #0xf
        ldr     x28, =UART
        mrs     x19, CurrentEL
        cmp     x19, #8
        b.ne    not_el2
        say     "minhyp: hello at EL2\n"

        ldr     x0, =vectors
        msr     S3_4_C12_C0_0, x0               // VBAR_EL2
        ldr     x0, =SCTLR_EL2_RES1
        msr     sctlr_el2, x0
        ldr     x0, =HCR_RW
        msr     S3_4_C1_C1_0, x0                // HCR_EL2
        ldr     x0, =SCTLR_EL1_RES1
        msr     S3_0_C1_C0_0, x0                // SCTLR_EL1: the guest starts with its MMU off
        ldr     x0, =GUEST_ENTRY
        msr     elr_el2, x0
        mov     x0, #EL1H_MASKED
        msr     spsr_el2, x0
        isb
        say     "minhyp: HCR_EL2 = RW, entering the guest at EL1, 0x44000000\n"
        eret

not_el2:                                        // e.g. `neve run --mode vm`: we are the kernel
        say     "minhyp: not started at EL2 (needs a nested mode or QEMU's virtualization=on)\n"
        ldr     x0, =PSCI_SYSTEM_OFF
        hvc     #0
        b       .

// ---------------------------------------------------------------- helpers
        .text
puts:   ldrb    w1, [x0], #1
        cbz     w1, 1f
        strb    w1, [x28]
        b       puts
1:      ret

// putdec: print x0 in decimal (clobbers x0-x3)
putdec: adr     x1, decbuf_end
        mov     x3, #10
2:      udiv    x2, x0, x3
        msub    x0, x2, x3, x0                  // x0 = the lowest digit
        add     w0, w0, #'0'
        strb    w0, [x1, #-1]!
        mov     x0, x2
        cbnz    x0, 2b
        adr     x2, decbuf_end
3:      ldrb    w0, [x1], #1
        strb    w0, [x28]
        cmp     x1, x2
        b.ne    3b
        ret

// puthex: print "0x" and 16 hex digits of x0 (clobbers x0-x4)
puthex: mov     w1, #'0'
        strb    w1, [x28]
        mov     w1, #'x'
        strb    w1, [x28]
        adr     x2, digits
        mov     w3, #16
4:      ror     x0, x0, #60
        and     x4, x0, #15
        ldrb    w1, [x2, x4]
        strb    w1, [x28]
        subs    w3, w3, #1
        b.ne    4b
        ret
digits: .ascii  "0123456789abcdef"
        .balign 4

// ---------------------------------------------------------------- vectors
        .balign 2048
vectors:
        .rept   8                               // current EL (SP_EL0, SP_ELx)
        .balign 128
        b       unexpected
        .endr
        .balign 128                             // lower EL, AArch64: synchronous
        b       guest_sync
        .rept   7
        .balign 128
        b       unexpected
        .endr

// A hypercall: one MRS ESR_EL2, one ERET.
guest_sync:
        mrs     x9, esr_el2
        lsr     x10, x9, #26
        cmp     x10, #EC_HVC64
        b.ne    unexpected_esr
        mov     x10, #(PSCI_SYSTEM_OFF & 0xffff)
        movk    x10, #(PSCI_SYSTEM_OFF >> 16), lsl #16
        cmp     x0, x10
        b.eq    guest_off
        adr     x10, served
        ldr     x11, [x10]
        add     x11, x11, #1
        str     x11, [x10]
        mov     x0, #-1                         // SMCCC NOT_SUPPORTED
        eret

guest_off:
        ldr     x28, =UART
        say     "minhyp: the guest asked for SYSTEM_OFF after "
        ldr     x0, served
        bl      putdec
        say     " hypercalls, each served with one ESR_EL2 read and an ERET\n"
        b       power_off

unexpected:
        mrs     x9, esr_el2
unexpected_esr:
        ldr     x28, =UART
        say     "minhyp: unexpected exception, ESR_EL2="
        mov     x0, x9
        bl      puthex
        say     " ELR_EL2="
        mrs     x0, elr_el2
        bl      puthex
        say     "\n"
power_off:
        ldr     x0, =PSCI_SYSTEM_OFF
        smc     #0
        b       .

        .ltorg

// ---------------------------------------------------------------- data
        .data
        .balign 8
served: .quad   0                               // hypercalls answered NOT_SUPPORTED

        .bss
        .balign 8
decbuf: .space  24
decbuf_end:
