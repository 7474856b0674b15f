// The fuzz harness: a fixed kernel that runs a generated *case* (neve/fuzz/).
//
// The case is a 128 KiB blob at `fuzz_case` (4 KiB aligned), written into a copy of this image by
// the generator.  It holds two programs of 64-byte *slots*: region A runs where the
// image starts (EL1 in vm mode, EL2 on a guest-hypervisor run), region B runs at
// EL1 (in vm mode right after A; at EL2, as the nested VM the harness enters with
// an ERET after A's epilogue slots).  Each slot ends with `bl report`, which prints
// "<r><idx> = <x0>" when the slot's flag byte asks for it.  Every exception prints
// one line, "<r><idx>+<off> <how> <ESR> [<FAR> [<HPFAR>]]", and resumes at the next
// slot, so a transcript locates the first instruction where two runs diverge.
//
//   <how>: 1 taken at EL1; 2 taken at EL2 from EL2; v taken at EL2 from EL1/EL0
//
// The harness never uses the stack and reloads every constant it needs, so what
// a slot does to the general-purpose registers or SP cannot break it.  Handlers
// use x8-x29 freely: a slot never depends on a register it did not set itself.
//
// Layout of the case (offsets from fuzz_case; the generator's neve/fuzz/case.py
// mirrors these):
//   0x0000 magic "NEVEFUZ1"     0x0008 SPSR_EL2 for entering region B at EL2
//   0x0010 exception limit      0x0018 seed (printed first)
//   0x0020 address of the epilogue (region A slots run only at EL2)
//   0x0100 flag bytes of region A's slots     0x0200 of region B's slots
//   0x1000 region A (128 slots)               0x3000 region B (128 slots)
//   0x5000 data pages, page tables (the generator's)

        .equ    UART,           0x09000000
        .equ    PSCI_OFF,       0x84000008
        .equ    REGION,         0x2000
        .equ    H_SPSR,         0x08
        .equ    H_LIMIT,        0x10
        .equ    H_SEED,         0x18
        .equ    H_EPILOGUE,     0x20
        .equ    FLAGS_A,        0x100
        .equ    FLAGS_B,        0x200
        .equ    DONE_SVC,       0xd0e

// ---- printing, without a stack ------------------------------------------------
        .macro  putc_w reg              // clobbers x15
        ldr     x15, =UART
        strb    \reg, [x15]
        .endm

        .macro  putc c                  // clobbers x14, x15
        mov     w14, #\c
        putc_w  w14
        .endm

        .macro  puthex reg, bits        // low \bits of \reg in hex; clobbers x12-x15
        mov     x12, #\bits
91:     sub     x12, x12, #4
        lsr     x13, \reg, x12
        and     x13, x13, #0xf
        add     x14, x13, #'0'
        add     x13, x13, #('a' - 10)
        cmp     x14, #'9'
        csel    x14, x13, x14, hi
        putc_w  w14
        cbnz    x12, 91b
        .endm

// ---- where an address lies: x20 = 'a'/'b' or 0, x21 = slot, x22 = offset -----
        .macro  locate addr
        ldr     x22, =fuzz_case + 0x1000
        sub     x21, \addr, x22
        cmp     x21, #REGION
        b.lo    81f
        ldr     x22, =fuzz_case + 0x3000
        sub     x21, \addr, x22
        cmp     x21, #REGION
        b.lo    82f
        mov     x20, #0
        b       84f
81:     mov     x20, #'a'
        b       83f
82:     mov     x20, #'b'
83:     and     x22, x21, #63
        lsr     x21, x21, #6
84:
        .endm

// ---- "<r><idx>": x20, x21 as set by locate ----------------------------------
        .macro  put_slot
        putc_w  w20
        puthex  x21, 8
        .endm

// ---- PSCI SYSTEM_OFF from EL1: SMC when the image started at EL2 (L0's or
// L1's firmware interface), HVC in vm mode --------------------------------------
        .macro  poweroff_el1
        ldr     x0, =PSCI_OFF
        ldr     x8, =started_el2
        ldr     x8, [x8]
        cbz     x8, 71f
        smc     #0
        b       .
71:     hvc     #0
        b       .
        .endm

        .macro  poweroff_el2
        ldr     x0, =PSCI_OFF
        smc     #0
        b       .
        .endm

// ---- count an exception; power off past the case's limit ----------------------
        .macro  count_exception how, off
        ldr     x8, =exc_count
        ldr     x9, [x8]
        add     x9, x9, #1
        str     x9, [x8]
        ldr     x8, =fuzz_case
        ldr     x8, [x8, #H_LIMIT]
        cmp     x9, x8
        b.ls    61f
        putc    '#'
        putc    ' '
        putc    \how
        putc    10
        \off
61:
        .endm

// ---- an exception line and the resume address ---------------------------------
// x16 = ESR, x17 = FAR, x18 = HPFAR (or -1 for none), x11 = ELR.  Resumes at the
// slot after the one that took the exception: x11 := its address.
        .macro  report_exception how, off
        locate  x11
        cbnz    x20, 51f
        putc    '!'
        putc    ' '
        putc    \how
        putc    ' '
        puthex  x16, 32
        putc    ' '
        puthex  x11, 64
        putc    10
        \off
51:     put_slot
        putc    '+'
        puthex  x22, 8
        putc    ' '
        putc    \how
        putc    ' '
        puthex  x16, 32
        // FAR is valid for instruction/data aborts, PC alignment and watchpoints.
        lsr     x8, x16, #26
        cmp     x8, #0x20
        b.lo    52f
        cmp     x8, #0x25
        b.ls    53f
        cmp     x8, #0x34
        b.eq    53f
        cmp     x8, #0x35
        b.ne    52f
53:     putc    ' '
        puthex  x17, 64
        cmn     x18, #1
        b.eq    52f
        putc    ' '
        puthex  x18, 64
52:     putc    10
        ldr     x8, =fuzz_case + 0x1000
        cmp     x20, #'a'
        b.eq    54f
        ldr     x8, =fuzz_case + 0x3000
54:     add     x21, x21, #1
        add     x11, x8, x21, lsl #6
        .endm

        .macro  interrupt how, kind, elr, off
        mrs     x11, \elr
        putc    'i'
        putc    ' '
        putc    \how
        putc    ' '
        putc    \kind
        putc    ' '
        puthex  x11, 64
        putc    10
        \off
        .endm

        .section .text.boot, "ax"
        .globl  _start
_start:
        msr     daifset, #0xf
        ldr     x8, =fuzz_case
        ldr     x9, [x8]
        ldr     x10, =0x315a55464556454e        // "NEVEFUZ1"
        cmp     x9, x10
        b.eq    1f
        putc    'n'
        putc    'o'
        putc    ' '
        putc    'c'
        putc    'a'
        putc    's'
        putc    'e'
        putc    10
        mrs     x8, CurrentEL
        cmp     x8, #(2 << 2)
        b.eq    2f
        ldr     x0, =PSCI_OFF
        hvc     #0
2:      poweroff_el2

1:      putc    'f'
        putc    'u'
        putc    'z'
        putc    'z'
        putc    ' '
        ldr     x8, =fuzz_case
        ldr     x9, [x8, #H_SEED]
        puthex  x9, 64
        putc    10
        ldr     x0, =vectors_el1
        msr     vbar_el1, x0
        mrs     x8, CurrentEL
        cmp     x8, #(2 << 2)
        b.ne    3f
        ldr     x8, =started_el2
        mov     x9, #1
        str     x9, [x8]
        ldr     x0, =vectors_el2
        msr     vbar_el2, x0
3:      isb
        ldr     x8, =fuzz_case + 0x1000
        br      x8

// Region A's last slot branches here.
        .globl  after_a
after_a:
        ldr     x8, =started_el2
        ldr     x8, [x8]
        cbz     x8, 1f
        ldr     x8, =fuzz_case
        ldr     x8, [x8, #H_EPILOGUE]
        br      x8
1:      ldr     x8, =fuzz_case + 0x3000
        br      x8

// The epilogue's last slot branches here: enter region B as the nested VM.
        .globl  enter_l2
enter_l2:
        ldr     x8, =fuzz_case
        ldr     x9, [x8, #H_SPSR]
        msr     spsr_el2, x9
        ldr     x9, =fuzz_case + 0x3000
        msr     elr_el2, x9
        eret

// Region B's last slot branches here.
        .globl  done_b
done_b:
        putc    'e'
        putc    'n'
        putc    'd'
        putc    10
        svc     #DONE_SVC
        b       .

// bl report: the slot's flag byte bit 0 asks for "<r><idx> = <x0>".
        .globl  report
report:
        sub     x11, x30, #4
        locate  x11
        cbz     x20, 2f
        ldr     x8, =fuzz_case + FLAGS_A
        cmp     x20, #'a'
        b.eq    1f
        ldr     x8, =fuzz_case + FLAGS_B
1:      ldrb    w8, [x8, x21]
        tbz     w8, #0, 2f
        put_slot
        putc    ' '
        putc    '='
        putc    ' '
        puthex  x0, 64
        putc    10
2:      ret

// ---- EL1: vm mode's kernel, the nested VM's own EL1 ------------------------------
el1_sync:
        .globl  el1_read_esr, el1_read_far
el1_read_esr:
        mrs     x16, esr_el1            // HCR_EL2.TRVM: L1 emulates these two reads
el1_read_far:
        mrs     x17, far_el1
        mrs     x11, elr_el1
        mov     x18, #-1
        // The harness's own SVC at the end of region B: power off.
        lsr     x8, x16, #26
        cmp     x8, #0x15
        b.ne    1f
        and     x9, x16, #0xffff
        cmp     x9, #DONE_SVC
        b.ne    1f
        poweroff_el1
1:      count_exception '1', poweroff_el1
        report_exception '1', poweroff_el1
        msr     elr_el1, x11
        eret

el1_irq:
        interrupt '1', 'I', elr_el1, poweroff_el1
el1_fiq:
        interrupt '1', 'F', elr_el1, poweroff_el1
el1_serror:
        interrupt '1', 'S', elr_el1, poweroff_el1
el1_aarch32:
        mrs     x16, esr_el1
        mrs     x11, elr_el1
        putc    '!'
        putc    ' '
        putc    '1'
        putc    ' '
        putc    'a'
        putc    '3'
        putc    '2'
        putc    ' '
        puthex  x16, 32
        putc    ' '
        puthex  x11, 64
        putc    10
        poweroff_el1

// ---- EL2: the guest hypervisor's own exceptions ------------------------------
el2_sync:
        mrs     x16, esr_el2
        mrs     x17, far_el2
        mrs     x11, elr_el2
        mov     x18, #-1
        count_exception '2', poweroff_el2
        report_exception '2', poweroff_el2
        msr     elr_el2, x11
        eret

// ---- EL2: exceptions of the nested VM ------------------------------------------
el2_lower_sync:
        mrs     x8, esr_el2
        mrs     x9, elr_el2
        lsr     x10, x8, #26
        cmp     x10, #0x18              // HCR_EL2.TRVM trapped the harness's own reads
        b.ne    2f
        ldr     x10, =el1_read_esr
        cmp     x9, x10
        b.ne    1f
        mrs     x16, esr_el1
        b       3f
1:      ldr     x10, =el1_read_far
        cmp     x9, x10
        b.ne    2f
        mrs     x17, far_el1
3:      add     x9, x9, #4
        msr     elr_el2, x9
        eret
2:      lsr     x10, x8, #26
        // The harness's own way out from below: its power-off SMC trapped by
        // HCR_EL2.TSC, or its final SVC routed here by HCR_EL2.TGE.  Both come
        // from harness code, outside the two regions.
        cmp     x10, #0x17
        b.eq    4f
        cmp     x10, #0x15
        b.ne    5f
4:      locate  x9
        cbnz    x20, 5f
        poweroff_el2
5:      mov     x16, x8
        mrs     x17, far_el2
        mov     x11, x9
        mov     x18, #-1
        lsr     x10, x16, #26
        // HPFAR_EL2 for a stage-2 fault: an instruction/data abort from below
        // with a translation, access flag, permission or address size DFSC, or
        // one on a stage-1 walk (S1PTW).
        cmp     x10, #0x20
        b.eq    7f
        cmp     x10, #0x24
        b.ne    8f
7:      tbnz    x16, #7, 9f
        and     x10, x16, #0x3f
        cmp     x10, #0x10
        b.hs    8f
9:      mrs     x18, hpfar_el2
8:      count_exception 'v', poweroff_el2
        report_exception 'v', poweroff_el2
        msr     elr_el2, x11
        eret

el2_irq:
        interrupt '2', 'I', elr_el2, poweroff_el2
el2_fiq:
        interrupt '2', 'F', elr_el2, poweroff_el2
el2_serror:
        interrupt '2', 'S', elr_el2, poweroff_el2
el2_lower_irq:
        interrupt 'v', 'I', elr_el2, poweroff_el2
el2_lower_fiq:
        interrupt 'v', 'F', elr_el2, poweroff_el2
el2_lower_serror:
        interrupt 'v', 'S', elr_el2, poweroff_el2
el2_aarch32:
        mrs     x16, esr_el2
        mrs     x11, elr_el2
        putc    '!'
        putc    ' '
        putc    'v'
        putc    ' '
        putc    'a'
        putc    '3'
        putc    '2'
        putc    ' '
        puthex  x16, 32
        putc    ' '
        puthex  x11, 64
        putc    10
        poweroff_el2

        .ltorg

// ---- vector tables ------------------------------------------------------------
        .macro  vector target
        .balign 128
        b       \target
        .endm

        .balign 2048
        .globl  vectors_el1
vectors_el1:
        vector  el1_sync                // current EL, SP0
        vector  el1_irq
        vector  el1_fiq
        vector  el1_serror
        vector  el1_sync                // current EL, SPx
        vector  el1_irq
        vector  el1_fiq
        vector  el1_serror
        vector  el1_sync                // lower EL, AArch64
        vector  el1_irq
        vector  el1_fiq
        vector  el1_serror
        vector  el1_aarch32             // lower EL, AArch32
        vector  el1_aarch32
        vector  el1_aarch32
        vector  el1_aarch32

        .balign 2048
        .globl  vectors_el2
vectors_el2:
        vector  el2_sync
        vector  el2_irq
        vector  el2_fiq
        vector  el2_serror
        vector  el2_sync
        vector  el2_irq
        vector  el2_fiq
        vector  el2_serror
        vector  el2_lower_sync
        vector  el2_lower_irq
        vector  el2_lower_fiq
        vector  el2_lower_serror
        vector  el2_aarch32
        vector  el2_aarch32
        vector  el2_aarch32
        vector  el2_aarch32

        .data
        .balign 8
        .globl  started_el2, exc_count
started_el2:
        .quad   0
exc_count:
        .quad   0

        .balign 4096
        .globl  fuzz_case
fuzz_case:
        .space  0x20000
