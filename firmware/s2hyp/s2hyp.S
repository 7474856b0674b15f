/*
 * s2hyp - a small stage-2 hypervisor in plain assembly.
 *
 * Boots at EL2 (MMU off at EL2), builds stage-2 tables for one EL1 guest
 * that lives inside this image, and runs it with HCR_EL2.VM set.
 *
 *   stage 2: 4 KiB granule, 40-bit IPA space, walk starts at level 1 with
 *            two concatenated level-1 tables (8 KiB, IPA[39:30]), VMID 5.
 *
 *   IPA                       PA                   how
 *   0x08000000-0x08ffffff     same                 2 MiB device blocks (GIC)
 *   0x09000000-0x091fffff     -                    not mapped: the UART is
 *                                                  emulated from the abort
 *                                                  syndrome (ISV/SAS/SRT/WnR)
 *   0x40000000-0x7fffffff     0x40000000           1 GiB block (guest RAM)
 *   0x80000000-0xbfffffff     0x40000000           1 GiB block (an alias)
 *   0xc0000000-0xc01fffff     0x42000000 (A)       2 MiB block, moved to
 *                                                  0x42200000 (B) on request
 *   0xc0200000-0xc03fffff     level-3 table        page 0 -> A, 1 -> B,
 *                                                  2 unmapped, 3 -> A+3 with
 *                                                  AF clear, 4 -> A+4 read-only
 *   everything else           -                    translation fault
 *
 * The guest talks to us with HVC: #0 is an SMCCC/PSCI call (SYSTEM_OFF
 * ends the run), #1 asks us to move the 2 MiB block at IPA 0xc0000000 from
 * A to B.  Data aborts: UART page -> emulate; access-flag fault -> set AF
 * and retry; other translation / permission faults -> report and skip the
 * instruction.  Anything else is fatal.
 *
 * Our own console output goes straight to the PL011; the guest's goes
 * through the emulation, one trapped store per character.
 */

        .equ    UART,           0x09000000
        .equ    UARTDR,         0x00
        .equ    UARTFR,         0x18
        .equ    FR_IDLE,        0x90            // TXFE | RXFE
        .equ    PSCI_SYSTEM_OFF, 0x84000008

        // memory we own (PA == IPA for the guest RAM block)
        .equ    S2_PGD,         0x43000000      // 8 KiB, two concatenated tables
        .equ    S2_PMD_LOW,     0x43002000      // level 2, IPA 0 - 1 GiB
        .equ    S2_PMD_HIGH,    0x43003000      // level 2, IPA 3 - 4 GiB
        .equ    S2_PTE,         0x43004000      // level 3, IPA 0xc0200000 - 0xc03fffff
        .equ    TABLES_END,     0x43005000
        .equ    AREA_A,         0x42000000
        .equ    AREA_B,         0x42200000
        .equ    GUEST_PGD,      0x43010000      // the guest's own stage-1 table
        .equ    ALIAS_AREA,     0x41000000      // the guest's alias test words

        .equ    IPA_MOVING,     0xc0000000
        .equ    IPA_PAGES,      0xc0200000
        .equ    VMID,           5

        // stage-2 descriptors
        .equ    D_BLOCK,        0x1
        .equ    D_TABLE,        0x3
        .equ    D_PAGE,         0x3
        .equ    MA_NORMAL_WB,   (0xf << 2)      // MemAttr: Normal, WB outer + inner
        .equ    MA_DEVICE,      (0x1 << 2)      // MemAttr: Device-nGnRE
        .equ    S2AP_RO,        (0x1 << 6)
        .equ    S2AP_RW,        (0x3 << 6)
        .equ    SH_INNER,       (0x3 << 8)
        .equ    AF,             (1 << 10)
        .equ    RAM_BLOCK,      (D_BLOCK | MA_NORMAL_WB | S2AP_RW | SH_INNER | AF)
        .equ    RAM_PAGE,       (D_PAGE | MA_NORMAL_WB | S2AP_RW | SH_INNER | AF)
        .equ    RAM_PAGE_NOAF,  (D_PAGE | MA_NORMAL_WB | S2AP_RW | SH_INNER)
        .equ    RAM_PAGE_RO,    (D_PAGE | MA_NORMAL_WB | S2AP_RO | SH_INNER | AF)
        .equ    DEV_BLOCK,      (D_BLOCK | MA_DEVICE | S2AP_RW | AF)

        // VTCR_EL2: T0SZ=24 (40-bit IPA), SL0=1 (start at level 1), walks
        // non-cacheable (we write the tables with our MMU off), TG0=4K,
        // PS=40 bits, RES1 bit 31.
        .equ    VTCR_VAL,       ((1 << 31) | (2 << 16) | (1 << 6) | 24)

        // HCR_EL2 for the guest: VM, SWIO, TWI, TWE, TSC, RW
        .equ    HCR_GUEST,      ((1 << 31) | (1 << 19) | (1 << 14) | (1 << 13) | (1 << 1) | (1 << 0))

        .equ    SCTLR_EL2_VAL,  0x30c50830
        .equ    SCTLR_EL1_VAL,  0x30d00800
        .equ    CPTR_EL2_VAL,   0x33ff
        .equ    SPSR_EL1H,      0x3c5           // EL1h, DAIF masked

        // ESR_EL2
        .equ    EC_HVC64,       0x16
        .equ    EC_DABT_LOW,    0x24

/* ------------------------------------------------------------------ macros */

// pr "text" -- print a literal on the real UART (clobbers x0-x3, lr)
        .macro  pr text
        .pushsection .rodata.hypstr, "a"
8888:   .asciz  "\text"
        .popsection
        adr     x0, 8888b
        bl      hyp_puts
        .endm

// prx reg -- print a register as 0x + 16 hex digits (clobbers x0-x4, lr)
        .macro  prx reg
        mov     x0, \reg
        bl      hyp_puthex
        .endm

// gpr "text" -- the guest's print, through its (emulated) UART
        .macro  gpr text
        .pushsection .rodata.gueststr, "a"
8889:   .asciz  "\text"
        .popsection
        adr     x0, 8889b
        bl      g_puts
        .endm

        .macro  gprx reg
        mov     x0, \reg
        bl      g_puthex
        .endm

/* -------------------------------------------------------------------- boot */

        .section .text.boot, "ax"
        .globl  _start
_start:
        msr     daifset, #0xf
        ldr     x0, =hyp_stack_top
        mov     sp, x0
        mrs     x0, CurrentEL
        cmp     x0, #(2 << 2)
        b.ne    not_at_el2

        ldr     x0, =hyp_vectors
        msr     vbar_el2, x0
        ldr     x0, =SCTLR_EL2_VAL
        msr     sctlr_el2, x0
        ldr     x0, =CPTR_EL2_VAL
        msr     cptr_el2, x0
        msr     hcr_el2, xzr                    // HCR_EL2.RW set later
        isb

        pr      "s2hyp: a stage-2 hypervisor at EL2\n"

        bl      build_stage2
        bl      fill_areas

        ldr     x19, =VTCR_VAL
        msr     vtcr_el2, x19
        ldr     x20, =(S2_PGD | (VMID << 48))
        msr     vttbr_el2, x20
        isb
        tlbi    vmalls12e1is                    // nothing stale for VMID 5
        dsb     ish
        isb

        pr      "s2hyp: VTCR_EL2=  "
        mrs     x19, vtcr_el2
        prx     x19
        pr      " (4K granule, 40-bit IPA, level 1 start, 2 concatenated tables)\n"
        pr      "s2hyp: VTTBR_EL2= "
        mrs     x20, vttbr_el2
        prx     x20
        pr      " (VMID 5)\n"
        pr      "s2hyp: IPA 0x40000000-0x7fffffff -> PA 0x40000000 (1 GiB block)\n"
        pr      "s2hyp: IPA 0x80000000-0xbfffffff -> PA 0x40000000 (1 GiB block, alias)\n"
        pr      "s2hyp: IPA 0xc0000000-0xc01fffff -> PA 0x42000000 (2 MiB block)\n"
        pr      "s2hyp: IPA 0xc0200000-0xc0204fff -> 4 KiB pages (A, B, -, A+3 AF=0, A+4 RO)\n"
        pr      "s2hyp: IPA 0x08000000-0x08ffffff -> device blocks; UART 0x09000000 left out\n"

        // the guest: EL1h, MMU off, entered at guest_main
        ldr     x0, =SCTLR_EL1_VAL
        msr     sctlr_el1, x0
        msr     cpacr_el1, xzr
        mrs     x0, midr_el1
        msr     vpidr_el2, x0
        mrs     x0, mpidr_el1
        msr     vmpidr_el2, x0
        mrs     x0, cnthctl_el2
        orr     x0, x0, #3                      // EL1PCTEN, EL1PCEN
        msr     cnthctl_el2, x0
        msr     cntvoff_el2, xzr
        ldr     x19, =HCR_GUEST
        msr     hcr_el2, x19
        ldr     x0, =guest_main
        msr     elr_el2, x0
        mov     x0, #SPSR_EL1H
        msr     spsr_el2, x0
        isb
        pr      "s2hyp: HCR_EL2=   "
        mrs     x19, hcr_el2
        prx     x19
        pr      ", entering the guest at EL1\n"
        eret

not_at_el2:
        pr      "s2hyp: not started at EL2, giving up\n"
        b       power_off

power_off:
        ldr     x0, =PSCI_SYSTEM_OFF
        smc     #0
1:      wfi
        b       1b

/* ------------------------------------------------------------ stage 2 setup */
        .text

// zero [x0, x1) in 16-byte steps
zero_range:
        stp     xzr, xzr, [x0], #16
        cmp     x0, x1
        b.lo    zero_range
        ret

build_stage2:
        mov     x15, lr
        ldr     x0, =S2_PGD
        ldr     x1, =TABLES_END
        bl      zero_range

        ldr     x9, =S2_PGD
        // level 1: [0] -> low table, [1] RAM, [2] alias, [3] -> high table
        ldr     x0, =(S2_PMD_LOW | D_TABLE)
        str     x0, [x9, #0]
        ldr     x0, =(0x40000000 | RAM_BLOCK)
        str     x0, [x9, #8]
        str     x0, [x9, #16]
        ldr     x0, =(S2_PMD_HIGH | D_TABLE)
        str     x0, [x9, #24]

        // low level 2: 0x08000000-0x08ffffff as eight 2 MiB device blocks
        ldr     x9, =S2_PMD_LOW
        mov     x2, #(0x08000000 >> 21)         // index 64
        ldr     x0, =(0x08000000 | DEV_BLOCK)
1:      str     x0, [x9, x2, lsl #3]
        add     x0, x0, #0x200000
        add     x2, x2, #1
        cmp     x2, #(0x09000000 >> 21)         // stop before the UART
        b.lo    1b

        // high level 2: [0] the moving block, [1] -> level-3 table
        ldr     x9, =S2_PMD_HIGH
        ldr     x0, =(AREA_A | RAM_BLOCK)
        str     x0, [x9, #0]
        ldr     x0, =(S2_PTE | D_TABLE)
        str     x0, [x9, #8]

        // level 3
        ldr     x9, =S2_PTE
        ldr     x0, =(AREA_A | RAM_PAGE)
        str     x0, [x9, #0]
        ldr     x0, =(AREA_B | RAM_PAGE)
        str     x0, [x9, #8]
        // [2] stays invalid
        ldr     x0, =((AREA_A + 0x3000) | RAM_PAGE_NOAF)
        str     x0, [x9, #24]
        ldr     x0, =((AREA_A + 0x4000) | RAM_PAGE_RO)
        str     x0, [x9, #32]
        dsb     ish
        mov     lr, x15
        ret

// fill the first word of A's and B's first pages with recognisable values
fill_areas:
        ldr     x9, =AREA_A
        ldr     x0, =0xa0a0a0a0a0a0a0a0
        str     x0, [x9]
        ldr     x0, =0xa1a1a1a1a1a1a1a1
        str     x0, [x9, #0x1000]
        ldr     x0, =0xa3a3a3a3a3a3a3a3
        str     x0, [x9, #0x3000]
        ldr     x0, =0xa4a4a4a4a4a4a4a4
        str     x0, [x9, #0x4000]
        ldr     x9, =AREA_B
        ldr     x0, =0xb0b0b0b0b0b0b0b0
        str     x0, [x9]
        ldr     x0, =0xb1b1b1b1b1b1b1b1
        str     x0, [x9, #0x1000]
        dsb     ish
        ret

/* ------------------------------------------------------- console at EL2 */

hyp_puts:
        movz    x1, #(UART >> 16), lsl #16
1:      ldrb    w2, [x0], #1
        cbz     w2, 2f
        strb    w2, [x1, #UARTDR]
        b       1b
2:      ret

hyp_puthex:
        movz    x1, #(UART >> 16), lsl #16
        mov     w2, #'0'
        strb    w2, [x1]
        mov     w2, #'x'
        strb    w2, [x1]
        mov     x3, #64
1:      sub     x3, x3, #4
        lsr     x2, x0, x3
        and     x2, x2, #0xf
        add     x4, x2, #'0'
        cmp     x2, #9
        b.ls    2f
        add     x4, x2, #('a' - 10)
2:      strb    w4, [x1]
        cbnz    x3, 1b
        ret

// decimal, no leading zeros (clobbers x0-x6)
hyp_putdec:
        movz    x1, #(UART >> 16), lsl #16
        mov     x5, sp
        sub     sp, sp, #32
        mov     x6, #10
1:      udiv    x2, x0, x6
        msub    x3, x2, x6, x0
        add     x3, x3, #'0'
        strb    w3, [x5, #-1]!
        mov     x0, x2
        cbnz    x0, 1b
        add     x4, sp, #32
2:      ldrb    w2, [x5], #1
        strb    w2, [x1]
        cmp     x5, x4
        b.lo    2b
        add     sp, sp, #32
        ret

/* ----------------------------------------------------------------- vectors */

        .balign 2048
hyp_vectors:
        .irp    slot, 0, 1, 2, 3, 4, 5, 6, 7
        .balign 128
        mov     x18, #\slot
        b       fatal
        .endr
        .balign 128                             // lower EL, AArch64, sync
        b       from_guest
        .irp    slot, 9, 10, 11, 12, 13, 14, 15
        .balign 128
        mov     x18, #\slot
        b       fatal
        .endr

fatal:
        pr      "s2hyp: unexpected exception, vector "
        mov     x0, x18
        bl      hyp_putdec
        pr      " ESR_EL2="
        mrs     x0, esr_el2
        bl      hyp_puthex
        pr      " ELR_EL2="
        mrs     x0, elr_el2
        bl      hyp_puthex
        pr      " FAR_EL2="
        mrs     x0, far_el2
        bl      hyp_puthex
        pr      "\n"
        b       power_off

/* ------------------------------------------------------------- guest exits */
//  frame (sp): x0..x30 at 8*n; x19 = frame, x20 = ESR, x21 = return PC

from_guest:
        sub     sp, sp, #256
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
        mov     x19, sp
        mrs     x20, esr_el2
        mrs     x21, elr_el2
        lsr     x22, x20, #26
        cmp     x22, #EC_DABT_LOW
        b.eq    data_abort
        cmp     x22, #EC_HVC64
        b.eq    hypercall
        mov     x18, #8
        b       fatal

back_to_guest:
        msr     elr_el2, x21
        ldp     x0, x1, [sp, #0]
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
        add     sp, sp, #256
        eret

step_over:                                      // ESR.IL is 1 for all of these
        add     x21, x21, #4
        b       back_to_guest

// bump the counter at stats + x0
count:
        ldr     x1, =stats
        ldr     x2, [x1, x0]
        add     x2, x2, #1
        str     x2, [x1, x0]
        ret
        .equ    ST_UART_W,  0
        .equ    ST_UART_R,  8
        .equ    ST_FAULTS,  16
        .equ    ST_AF,      24
        .equ    ST_HVC,     32

/* ---- HVC ---- */
hypercall:
        mov     x0, #ST_HVC
        bl      count
        and     x22, x20, #0xffff               // the immediate
        cmp     x22, #1
        b.eq    move_block
        cbnz    x22, hvc_unknown
        ldr     x0, [x19, #0]                   // SMCCC function id
        ldr     x1, =PSCI_SYSTEM_OFF
        cmp     x0, x1
        b.eq    guest_off
hvc_unknown:
        mov     x0, #-1                         // NOT_SUPPORTED
        str     x0, [x19, #0]
        b       back_to_guest                   // ELR already past the HVC

// Move IPA 0xc0000000's 2 MiB block from A to B: break, invalidate, make.
move_block:
        ldr     x9, =S2_PMD_HIGH
        ldr     x23, [x9]
        str     xzr, [x9]                       // break
        dsb     ishst
        ldr     x0, =(IPA_MOVING >> 12)
        tlbi    ipas2e1is, x0                   // the stage-2 entry for that IPA
        dsb     ish
        tlbi    vmalle1is                       // combined entries of VMID 5
        dsb     ish
        isb
        ldr     x24, =(AREA_B | RAM_BLOCK)
        str     x24, [x9]                       // make
        dsb     ishst
        isb
        pr      "s2hyp: hvc #1: moved IPA 0xc0000000: "
        prx     x23
        pr      " -> "
        prx     x24
        pr      ", TLBI IPAS2E1IS + VMALLE1IS done\n"
        ldr     x0, =AREA_B
        str     x0, [x19, #0]                   // x0 = the new PA
        b       back_to_guest

guest_off:
        pr      "s2hyp: guest asked for SYSTEM_OFF; UART stores "
        ldr     x9, =stats
        ldr     x0, [x9, #ST_UART_W]
        bl      hyp_putdec
        pr      ", UART loads "
        ldr     x9, =stats
        ldr     x0, [x9, #ST_UART_R]
        bl      hyp_putdec
        pr      ", faults reported "
        ldr     x9, =stats
        ldr     x0, [x9, #ST_FAULTS]
        bl      hyp_putdec
        pr      ", AF set "
        ldr     x9, =stats
        ldr     x0, [x9, #ST_AF]
        bl      hyp_putdec
        pr      ", hvc "
        ldr     x9, =stats
        ldr     x0, [x9, #ST_HVC]
        bl      hyp_putdec
        pr      "\n"
        b       power_off

/* ---- data aborts from the guest ---- */
//  x23 = FAR_EL2, x24 = HPFAR_EL2, x25 = faulting IPA, x26 = DFSC
data_abort:
        mrs     x23, far_el2
        mrs     x24, hpfar_el2
        and     x25, x24, #0x00000ffffffffff0   // FIPA, IPA[51:12] in [43:4]
        lsl     x25, x25, #8
        bfxil   x25, x23, #0, #12               // page offset from FAR
        and     x26, x20, #0x3f
        and     x0, x26, #0x3c
        cmp     x0, #0x04                       // translation fault, any level
        b.eq    translation_fault
        cmp     x0, #0x08                       // access flag fault
        b.eq    access_flag_fault
        cmp     x0, #0x0c                       // permission fault
        b.eq    permission_fault
        mov     x18, #8
        b       fatal

translation_fault:
        lsr     x0, x25, #12
        mov     x1, #(UART >> 12)
        cmp     x0, x1
        b.eq    uart_access
        mov     x0, #ST_FAULTS
        bl      count
        pr      "s2hyp: stage-2 translation fault, level "
        and     x0, x26, #3
        bl      hyp_putdec
        pr      ": ESR_EL2="
        prx     x20
        pr      " HPFAR_EL2="
        prx     x24
        pr      " FAR_EL2="
        prx     x23
        pr      "\n"
        pr      "s2hyp:   IPA "
        prx     x25
        pr      " is not mapped; skipping the instruction\n"
        b       step_over

access_flag_fault:
        pr      "s2hyp: stage-2 access flag fault, level "
        and     x0, x26, #3
        bl      hyp_putdec
        pr      ": ESR_EL2="
        prx     x20
        pr      " HPFAR_EL2="
        prx     x24
        pr      " FAR_EL2="
        prx     x23
        pr      "\n"
        // only our level-3 table has AF clear entries
        lsr     x0, x25, #21
        ldr     x1, =(IPA_PAGES >> 21)
        cmp     x0, x1
        b.ne    fatal_abort
        ubfx    x0, x25, #12, #9
        ldr     x9, =S2_PTE
        ldr     x1, [x9, x0, lsl #3]
        orr     x1, x1, #AF
        str     x1, [x9, x0, lsl #3]
        dsb     ishst
        isb
        mov     x0, #ST_AF
        bl      count
        pr      "s2hyp:   AF set in the level-3 entry, retrying the access\n"
        b       back_to_guest                   // no skip: re-execute

permission_fault:
        mov     x0, #ST_FAULTS
        bl      count
        // HPFAR_EL2 is not guaranteed for permission faults: FAR only
        pr      "s2hyp: stage-2 permission fault, level "
        and     x0, x26, #3
        bl      hyp_putdec
        pr      ": ESR_EL2="
        prx     x20
        pr      " FAR_EL2="
        prx     x23
        pr      "; write dropped, skipping\n"
        b       step_over

fatal_abort:
        mov     x18, #8
        b       fatal

// The UART is not in stage 2.  Everything we need is in the syndrome.
uart_access:
        tbz     x20, #24, fatal_abort           // ISV clear: cannot emulate
        ubfx    x22, x20, #22, #2               // SAS: 1 << SAS bytes
        ubfx    x27, x20, #16, #5               // SRT
        and     x26, x25, #0xfff                // register offset
        tbnz    x20, #6, uart_write             // WnR

        mov     x0, #ST_UART_R
        bl      count
        mov     x4, #0
        cmp     x26, #UARTFR
        b.ne    1f
        mov     x4, #FR_IDLE
1:      mov     x5, #8
        lsl     x5, x5, x22                     // access size in bits
        mov     x6, #64
        sub     x6, x6, x5
        lsl     x4, x4, x6
        tbnz    x20, #21, 2f                    // SSE
        lsr     x4, x4, x6
        b       3f
2:      asr     x4, x4, x6
3:      tbnz    x20, #15, 4f                    // SF: 64-bit register
        mov     w4, w4
4:      cmp     x27, #31                        // xzr: value discarded
        b.eq    step_over
        str     x4, [x19, x27, lsl #3]
        b       step_over

uart_write:
        mov     x4, #0
        cmp     x27, #31
        b.eq    1f
        ldr     x4, [x19, x27, lsl #3]
1:      mov     x0, #ST_UART_W
        bl      count
        cbnz    x26, step_over                  // only DR does anything
        movz    x1, #(UART >> 16), lsl #16
        strb    w4, [x1, #UARTDR]
        b       step_over

        .ltorg

/* ================================================================ the guest
 * Runs at EL1 with the MMU off (VA == IPA), later with its own stage 1.
 * x28 = UART (IPA 0x09000000) throughout.
 */
        .balign 64
guest_main:
        ldr     x0, =guest_stack_top
        mov     sp, x0
        movz    x28, #(UART >> 16), lsl #16
        gpr     "guest: hello from EL1; each character here is a trapped UART store\n"

        // UART flag register through several load forms
        mov     x9, #-1
        mov     x10, #-1
        mov     x11, #-1
        mov     x12, #-1
        ldr     w9, [x28, #UARTFR]              // 32-bit, W register
        ldrsb   x10, [x28, #UARTFR]             // byte, sign-extended to 64
        ldrh    w11, [x28, #UARTFR]             // halfword
        ldrsh   w12, [x28, #UARTFR]             // halfword, sign-extended to 32
        gpr     "guest: UARTFR: ldr w "
        gprx    x9
        gpr     ", ldrsb x "
        gprx    x10
        gpr     ", ldrh w "
        gprx    x11
        gpr     ", ldrsh w "
        gprx    x12
        gpr     "\n"
        ldr     x13, [x28, #UARTDR]             // reading DR: nothing received
        gpr     "guest: UARTDR read: "
        gprx    x13
        gpr     "\n"
        // stores of other widths
        mov     x14, #'h'
        str     w14, [x28, #UARTDR]
        mov     x15, #'i'
        strh    w15, [x28, #UARTDR]
        mov     x16, #'!'
        str     x16, [x28, #UARTDR]
        mov     x17, #'\n'
        strb    w17, [x28, #UARTDR]
        str     wzr, [x28, #0x30]               // UARTCR: accepted, ignored

        // two IPAs, one PA
        ldr     x1, =ALIAS_AREA
        mov     x2, #0x40000000
        add     x2, x1, x2                      // its alias, 1 GiB up
        ldr     x20, =0x0123456789abcdef
        str     x20, [x1]
        ldr     x21, [x2]
        ldr     x22, =0xfedcba9876543210
        str     x22, [x2, #8]
        ldr     x23, [x1, #8]
        gpr     "guest: alias: wrote "
        gprx    x20
        gpr     " at 0x41000000, read "
        gprx    x21
        gpr     " at 0x81000000\n"
        gpr     "guest: alias: wrote "
        gprx    x22
        gpr     " at 0x81000008, read "
        gprx    x23
        gpr     " at 0x41000008\n"
        cmp     x20, x21
        ccmp    x22, x23, #0, eq
        b.ne    g_fail

        // blocks and pages
        ldr     x1, =IPA_MOVING
        ldr     x20, [x1]
        ldr     x21, [x1, #0x1000]
        ldr     x1, =IPA_PAGES
        ldr     x22, [x1]
        ldr     x23, [x1, #0x1000]
        gpr     "guest: 0xc0000000: "
        gprx    x20
        gpr     " 0xc0001000: "
        gprx    x21
        gpr     "\n"
        gpr     "guest: 0xc0200000: "
        gprx    x22
        gpr     " 0xc0201000: "
        gprx    x23
        gpr     "\n"

        // ask for the block to move, then look again
        hvc     #1
        mov     x24, x0
        ldr     x1, =IPA_MOVING
        ldr     x20, [x1]
        ldr     x21, [x1, #0x1000]
        gpr     "guest: hvc #1 -> "
        gprx    x24
        gpr     "; now 0xc0000000: "
        gprx    x20
        gpr     " 0xc0001000: "
        gprx    x21
        gpr     "\n"
        ldr     x0, =0xb0b0b0b0b0b0b0b0
        cmp     x20, x0
        b.ne    g_fail

        // an unmapped page (level 3)
        ldr     x8, =(IPA_PAGES + 0x2008)
        ldr     x7, =0x7777777777777777
        ldr     x7, [x8]
        gpr     "guest: load from 0xc0202008 skipped, x7 = "
        gprx    x7
        gpr     "\n"
        // unmapped at level 2 (not the UART)
        movz    x4, #0x0a00, lsl #16
        mov     x3, #0x33
        ldrb    w3, [x4, #0x10]
        gpr     "guest: load from 0x0a000010 skipped, x3 = "
        gprx    x3
        gpr     "\n"
        // unmapped at level 1
        ldr     x6, =0x140000000
        ldr     x5, =0x5555555555555555
        str     w5, [x6, #0x20]
        gpr     "guest: store to 0x140000020 skipped\n"
        // AF clear: fixed by the hypervisor, the load then succeeds
        ldr     x1, =(IPA_PAGES + 0x3000)
        ldr     x10, [x1]
        gpr     "guest: 0xc0203000 (AF was clear): "
        gprx    x10
        gpr     "\n"
        // read-only page: the load works, the store is dropped
        ldr     x1, =(IPA_PAGES + 0x4000)
        mov     x2, #0x1234
        str     x2, [x1]
        ldr     x11, [x1]
        gpr     "guest: 0xc0204000 (read-only) after a store: "
        gprx    x11
        gpr     "\n"

        // now with a stage 1 of our own
        bl      g_enable_mmu
        gpr     "guest: stage 1 on, SCTLR_EL1 = "
        mrs     x0, sctlr_el1
        gprx    x0
        gpr     "\n"
        mov     x1, #0x100000000
        ldr     x20, [x1, #0x1000]              // VA 4 GiB + ... -> IPA 0xc0001000
        add     x1, x1, #0x200, lsl #12         // + 2 MiB
        ldr     x21, [x1, #0x1000]              // -> IPA 0xc0201000
        gpr     "guest: VA 0x100001000: "
        gprx    x20
        gpr     " VA 0x100201000: "
        gprx    x21
        gpr     "\n"
        ldr     x1, =0x100202010                // -> IPA 0xc0202010, unmapped
        mov     x9, #0x99
        ldr     x9, [x1]
        gpr     "guest: load from VA 0x100202010 skipped, x9 = "
        gprx    x9
        gpr     "\n"

        gpr     "guest: done, SYSTEM_OFF\n"
        ldr     x0, =PSCI_SYSTEM_OFF
        hvc     #0
        b       .

g_fail:
        gpr     "guest: FAIL\n"
        ldr     x0, =PSCI_SYSTEM_OFF
        hvc     #0
        b       .

// Guest stage 1: 39-bit VA, 4K granule, level-1 blocks.
//   VA 0 - 1 GiB         device, identity (the UART)
//   VA 1 - 4 GiB         normal, identity
//   VA 4 - 5 GiB         normal, -> IPA 3 GiB
        .equ    G_DEV,      (0x1 | (0 << 2) | (1 << 10))
        .equ    G_MEM,      (0x1 | (1 << 2) | (3 << 8) | (1 << 10))
        .equ    G_TCR,      (25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23) | (2 << 32))
        .equ    G_MAIR,     0xff00
g_enable_mmu:
        ldr     x9, =GUEST_PGD
        mov     x0, x9
        add     x1, x9, #4096
1:      stp     xzr, xzr, [x0], #16
        cmp     x0, x1
        b.lo    1b
        ldr     x0, =(0x00000000 | G_DEV)
        str     x0, [x9, #0]
        ldr     x0, =(0x40000000 | G_MEM)
        str     x0, [x9, #8]
        ldr     x0, =(0x80000000 | G_MEM)
        str     x0, [x9, #16]
        ldr     x0, =(0xc0000000 | G_MEM)
        str     x0, [x9, #24]
        str     x0, [x9, #32]
        dsb     ish
        ldr     x0, =G_MAIR
        msr     mair_el1, x0
        ldr     x0, =G_TCR
        msr     tcr_el1, x0
        msr     ttbr0_el1, x9
        isb
        tlbi    vmalle1
        dsb     nsh
        isb
        mrs     x0, sctlr_el1
        orr     x0, x0, #1
        msr     sctlr_el1, x0
        isb
        ret

// the guest's console: x28 = UART
g_puts:
        ldrb    w1, [x0], #1
        cbz     w1, 1f
        strb    w1, [x28, #UARTDR]
        b       g_puts
1:      ret

g_puthex:
        mov     w1, #'0'
        strb    w1, [x28]
        mov     w1, #'x'
        strb    w1, [x28]
        mov     x2, #60
1:      lsr     x3, x0, x2
        and     x3, x3, #0xf
        cmp     x3, #10
        add     x4, x3, #'0'
        add     x5, x3, #('a' - 10)
        csel    x4, x4, x5, lo
        strb    w4, [x28]
        subs    x2, x2, #4
        b.pl    1b
        ret

        .ltorg

/* -------------------------------------------------------------------- data */
        .data
        .balign 8
stats:  .quad   0, 0, 0, 0, 0

        .bss
        .balign 16
        .space  8192
hyp_stack_top:
        .space  4096
guest_stack_top:
