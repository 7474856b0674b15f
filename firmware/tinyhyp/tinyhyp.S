// tinyhyp -- a very small hypervisor, one file, no C.
//
// what it does, in order:
//   1. says hello and prints CurrentEL (expects 0x8: EL2)
//   2. installs its vectors (VBAR_EL2), sets HCR_EL2 = RW|TSC
//   3. takes an SVC at EL2 itself (current-EL vector): prints ESR/ELR/SPSR_EL2
//   4. writes an ERET opcode into RAM, does the cache maintenance dance
//      (DC CVAU, DSB ISH, IC IVAU, DSB ISH, ISB) and jumps to it
//   5. ERETs into its own little EL1 guest (further down in this file) which
//      does a few HVCs and one SMC; the HVC handler reads ESR_EL2/ELR_EL2,
//      plays with SCTLR_EL1, the SMC handler moves ELR_EL2 past the SMC
//   6. on the guest's PSCI SYSTEM_OFF it prints a tally and powers off (smc)
//
// register conventions: x28 = UART data register, everywhere.
// a few system registers are spelt with their encodings on purpose:
//   S3_4_C1_C1_0  = HCR_EL2      S3_4_C12_C0_0 = VBAR_EL2
//   S3_0_C1_C0_0  = SCTLR_EL1

        .equ    UART,           0x09000000
        .equ    OFF,            0x84000008      // PSCI SYSTEM_OFF
        .equ    NOTSUP,         0x86000000      // some function nobody implements
        .equ    HCR_RW,         (1 << 31)
        .equ    HCR_TSC,        (1 << 19)
        .equ    EL2H_MASKED,    0x3c9
        .equ    EL1H_MASKED,    0x3c5
        .equ    OP_ERET,        0xd69f03e0

// say "text": print a string literal (clobbers x0-x2, lr)
        .macro  say str
        .pushsection .rodata.str, "a"
9997:   .asciz  "\str"
        .popsection
        adr     x0, 9997b
        bl      puts
        .endm

// hex reg: print "0x" and 16 hex digits of a register (clobbers x0-x4, lr)
        .macro  hex reg
        mov     x0, \reg
        bl      puthex
        .endm

        .section .text.boot, "ax"
        .globl  _start
_start:
        msr     daifset, #0xf
        ldr     x28, =UART
        ldr     x0, =hyp_stack_end
        mov     sp, x0

        say     "tinyhyp: hello\n"
        say     "tinyhyp: CurrentEL = "
        mrs     x19, CurrentEL
        hex     x19
        say     " (EL"
        ubfx    x0, x19, #2, #2
        add     w0, w0, #'0'
        strb    w0, [x28]
        say     ")\n"

        ldr     x0, =vectors
        msr     S3_4_C12_C0_0, x0               // VBAR_EL2
        ldr     x0, =0x30c50830                 // SCTLR_EL2: RES1 only, MMU off
        msr     sctlr_el2, x0
        ldr     x0, =(HCR_RW | HCR_TSC)
        msr     S3_4_C1_C1_0, x0                // HCR_EL2
        isb

        // ---- 3. an SVC taken by the hypervisor itself ----
        say     "tinyhyp: svc #0x2a at EL2\n"
        mov     x20, #0
        svc     #0x2a
svc_returns_here:
        cmp     x20, #1                         // the handler counts
        b.ne    fail
        say     "tinyhyp: back from svc\n"

        // ---- 4. an ERET written to RAM at run time ----
        ldr     x19, =ram_slot
        ldr     w0, =OP_ERET
        str     w0, [x19]
        dc      cvau, x19
        dsb     ish
        ic      ivau, x19
        dsb     ish
        isb
        adr     x0, 1f
        msr     elr_el2, x0
        mov     x0, #EL2H_MASKED
        msr     spsr_el2, x0
        say     "tinyhyp: eret at "
        hex     x19
        say     " (copied to RAM)\n"
        adr     x0, 1f
        msr     elr_el2, x0                     // say clobbers nothing here, but be sure
        br      x19
1:      mrs     x0, CurrentEL
        cmp     x0, #8
        b.ne    fail
        say     "tinyhyp: eret from RAM came back at EL2\n"

        // ---- 5. run the guest ----
        ldr     x0, =0x30d00800
        msr     S3_0_C1_C0_0, x0                // SCTLR_EL1
        ldr     x0, =guest
        msr     elr_el2, x0
        mov     x0, #EL1H_MASKED
        msr     spsr_el2, x0
        say     "tinyhyp: entering the guest at EL1\n"
        eret

fail:
        say     "tinyhyp: FAIL\n"
        b       power_off

power_off:
        ldr     x0, =OFF
        smc     #0
        b       .

// ---------------------------------------------------------------- helpers
        .text
puts:   ldrb    w1, [x0], #1
        cbz     w1, 2f
        strb    w1, [x28]
        b       puts
2:      ret

puthex: mov     w1, #'0'
        strb    w1, [x28]
        mov     w1, #'x'
        strb    w1, [x28]
        adr     x2, digits
        mov     w3, #16
3:      ror     x0, x0, #60
        and     x4, x0, #15
        ldrb    w1, [x2, x4]
        strb    w1, [x28]
        subs    w3, w3, #1
        b.ne    3b
        ret
digits: .ascii  "0123456789abcdef"
        .balign 4

// ---------------------------------------------------------------- vectors
        .balign 2048
vectors:
        .rept   4                               // current EL with SP_EL0
        .balign 128
        b       unexpected
        .endr
        .balign 128                             // current EL with SP_ELx: sync
        b       el2_sync
        .rept   3
        .balign 128
        b       unexpected
        .endr
        .balign 128                             // lower EL, AArch64: sync
        b       guest_sync
        .rept   7
        .balign 128
        b       unexpected
        .endr

unexpected:
        say     "tinyhyp: unexpected exception, ESR_EL2="
        mrs     x19, esr_el2
        hex     x19
        say     " ELR_EL2="
        mrs     x19, elr_el2
        hex     x19
        say     "\n"
        b       power_off

// the hypervisor's own SVC
el2_sync:
        mrs     x21, esr_el2
        mrs     x22, elr_el2
        mrs     x23, spsr_el2
        lsr     x0, x21, #26
        cmp     x0, #0x15
        b.ne    unexpected
        say     "tinyhyp: el2 sync: ESR_EL2="
        hex     x21
        say     " ELR_EL2="
        hex     x22
        say     " SPSR_EL2="
        hex     x23
        say     "\n"
        adr     x0, svc_returns_here
        cmp     x0, x22
        b.ne    fail
        add     x20, x20, #1
        eret

// everything the guest throws at us
guest_sync:
        sub     sp, sp, #(20 * 16)
        stp     x0, x1, [sp, #0]
        stp     x2, x3, [sp, #16]
        stp     x4, x5, [sp, #32]
        stp     x6, x7, [sp, #48]
        stp     x8, x9, [sp, #64]
        stp     x10, x11, [sp, #80]
        stp     x12, x13, [sp, #96]
        stp     x14, x15, [sp, #112]
        stp     x16, x17, [sp, #128]
        stp     x18, x19, [sp, #144]
        stp     x20, x21, [sp, #160]
        stp     x22, x23, [sp, #176]
        stp     x24, x25, [sp, #192]
        stp     x26, x27, [sp, #208]
        stp     x28, x29, [sp, #224]
        str     x30, [sp, #240]
        ldr     x28, =UART

        mrs     x21, esr_el2
        mrs     x22, elr_el2
        lsr     x23, x21, #26
        adr     x24, tally
        cmp     x23, #0x16
        b.eq    on_hvc
        cmp     x23, #0x17
        b.eq    on_smc
        b       unexpected

on_hvc: ldr     x0, [x24]
        add     x0, x0, #1
        str     x0, [x24]
        say     "tinyhyp: hvc: ESR_EL2="
        hex     x21
        say     " ELR_EL2="
        hex     x22
        say     "\n"
        and     x25, x21, #0xffff               // the immediate
        ldr     x26, [sp, #0]                   // guest x0
        cmp     x25, #0x22
        b.eq    hvc_sctlr
        cbnz    x25, hvc_unknown
        ldr     x0, =OFF
        cmp     x26, x0
        b.eq    guest_off
hvc_unknown:
        mov     x0, #-1                         // NOT_SUPPORTED
        str     x0, [sp, #0]
        b       back

hvc_sctlr:                                      // flip SCTLR_EL1.UCI, report both
        mrs     x25, S3_0_C1_C0_0
        eor     x26, x25, #(1 << 26)
        msr     sctlr_el1, x26
        mrs     x27, sctlr_el1
        say     "tinyhyp: SCTLR_EL1 "
        hex     x25
        say     " -> "
        hex     x27
        say     "\n"
        stp     x25, x27, [sp, #0]              // guest x0, x1
        b       back

on_smc: ldr     x0, [x24, #8]
        add     x0, x0, #1
        str     x0, [x24, #8]
        say     "tinyhyp: smc trapped (TSC): ESR_EL2="
        hex     x21
        say     " ELR_EL2="
        hex     x22
        say     "\n"
        add     x22, x22, #4                    // step over the SMC
        msr     elr_el2, x22
        mov     x0, #-1
        str     x0, [sp, #0]
        b       back

back:   ldp     x0, x1, [sp, #0]
        ldp     x2, x3, [sp, #16]
        ldp     x4, x5, [sp, #32]
        ldp     x6, x7, [sp, #48]
        ldp     x8, x9, [sp, #64]
        ldp     x10, x11, [sp, #80]
        ldp     x12, x13, [sp, #96]
        ldp     x14, x15, [sp, #112]
        ldp     x16, x17, [sp, #128]
        ldp     x18, x19, [sp, #144]
        ldp     x20, x21, [sp, #160]
        ldp     x22, x23, [sp, #176]
        ldp     x24, x25, [sp, #192]
        ldp     x26, x27, [sp, #208]
        ldp     x28, x29, [sp, #224]
        ldr     x30, [sp, #240]
        add     sp, sp, #(20 * 16)
        eret

guest_off:
        say     "tinyhyp: guest asked for SYSTEM_OFF after "
        ldr     x0, [x24]
        add     x0, x0, #'0'                    // single digit tallies
        strb    w0, [x28]
        say     " hvc and "
        ldr     x0, [x24, #8]
        add     x0, x0, #'0'
        strb    w0, [x28]
        say     " smc\n"
        b       power_off

// ---------------------------------------------------------------- the guest (EL1)
guest:
        ldr     x0, =guest_stack_end
        mov     sp, x0
        ldr     x28, =UART
        say     "guest: CurrentEL = "
        mrs     x19, CurrentEL
        hex     x19
        say     "\n"

        ldr     x0, =NOTSUP
        hvc     #0x11
        mov     x19, x0
        say     "guest: hvc #0x11 -> x0 = "
        hex     x19
        say     "\n"

        hvc     #0x22
        mov     x19, x0
        mov     x20, x1
        mrs     x21, sctlr_el1
        say     "guest: hvc #0x22 -> old "
        hex     x19
        say     " new "
        hex     x20
        say     " now "
        hex     x21
        say     "\n"

        ldr     x0, =NOTSUP
        smc     #0x33
        mov     x19, x0
        say     "guest: smc #0x33 -> x0 = "
        hex     x19
        say     "\n"

        ldr     x0, =OFF
        hvc     #0
        b       .

        .ltorg

// ---------------------------------------------------------------- data
        .data
        .balign 8
tally:  .quad   0, 0                            // hvc, smc

        .bss
        .balign 64
ram_slot:
        .space  64
        .balign 16
        .space  4096
hyp_stack_end:
        .space  4096
guest_stack_end:
