"""Hardware breakpoints (self-hosted debug, issue 17), compared with QEMU 10 byte for byte.

Two small kernels, assembled here:
- at EL1 (vm mode; QEMU at EL1): the registers' write behaviour (DBGBCR's BAS copies,
  DBGWVR's RES0 bits), then one breakpoint on one instruction under each condition
  that decides whether it fires: the OS lock (set at reset), MDSCR_EL1.KDE and MDE,
  PSTATE.D, the PMC level filter, BAS = 0; a hit at EL1 (EC 0x31) and one from EL0
  (EC 0x30), each reported by the kernel's handler with ESR_EL1 and ELR_EL1;
- at EL2 (vEL2 in v8.3, neve and nv2; QEMU at real EL2): without MDCR_EL2.TDE debug
  exceptions target EL1 and none is taken at EL2; with TDE a breakpoint with HMC
  fires at EL2 (EC 0x31) and one without HMC does not; a breakpoint and a watchpoint
  in its EL1 guest go to EL2 with TDE (EC 0x30, 0x34, L0 routing them to vEL2) and to
  the guest's EL1 without it;
- watchpoints at EL1 (vm mode): loads and stores, BAS, MASK, LSC, PAC, from EL0.
- software step at EL1 (EL0 stepped from EL1, active-pending, EL1 with KDE), of EL0
  from ERETs at a VA other than their PA, and of an EL2 kernel's EL1 guest with and
  without TDE.
Each is run in neve with the compiled fast path and without it.  Linked watchpoints
are not modelled: enabling one stops the run with `unsupported`."""
from __future__ import annotations

import pytest

from conftest import CROSS, need_tool, run_neve
from guest_asm import MACROS, build_kernel, build_kernels, qemu_transcripts

COMMON = MACROS + r"""
    .macro title letter                     // "case X: "
    mov     x20, #\letter
    say     s_case
    ldr     x1, =0x09000000
    strb    w20, [x1]
    say     s_colon
    .endm

    .macro case letter                      // "case X: ", then call target
    title   \letter
    bl      target
    say     s_ret
    .endm

    .macro arm bcr                          // breakpoint 0 on `target`
    adr     x2, target
    msr     dbgbvr0_el1, x2
    ldr     x2, =\bcr
    msr     dbgbcr0_el1, x2
    isb
    .endm

    .macro sync_vectors label, cur, lower   // a vector table: only its synchronous entries
    .balign 2048                            // for the current EL (SP_ELx) and a lower AArch64 EL
\label:
    .skip   0x200
    b       \cur
    .skip   0x400 - 0x204
    b       \lower
    .skip   0x800 - 0x404
    .endm

    .macro esr_is esr, ec, to               // x9 = the ESR, x10 = its EC; to `to` if it is `ec`
    mrs     x9, \esr
    lsr     x10, x9, #26
    cmp     x10, #\ec
    b.eq    \to
    .endm

    .macro far_disarm_return el, wpt        // x10 = the EC: for a watchpoint (`wpt`) FAR_ELx too;
    cmp     x10, #\wpt                      // then disarm the one that fired and return
    b.ne    2f
    mrs     x9, far_\el
    hex     x9, 64
    say     s_nl
    msr     dbgwcr0_el1, xzr
    isb
    eret
2:  say     s_nl
    msr     dbgbcr0_el1, xzr
    isb
    eret
    .endm

    .macro start_el2                        // at EL2: its vectors, its EL1 guest's, HCR_EL2.RW
    start   vbar_el2
    adr     x0, el1_vectors
    msr     vbar_el1, x0
    mov     x0, #(1 << 31)
    msr     hcr_el2, x0
    .endm

    .macro enter_el1 spsr                   // from EL2 into el1_code with SPSR_EL2 = spsr
    adr     x2, el1_code
    msr     elr_el2, x2
    ldr     x2, =\spsr
    msr     spsr_el2, x2
    ldr     x2, =el1_stack_top
    msr     sp_el1, x2
    isb
    eret
    .endm

    .macro esr_elr el, label                // print label, x9 (an ESR) and ELR_ELx, a newline
    say     \label
    hex     x9, 32
    mrs     x9, elr_\el
    hex     x9, 64
    say     s_nl
    .endm

    .macro step_on el                       // return with SPSR_ELx.SS set: step the next one
    mrs     x2, spsr_\el
    orr     x2, x2, #(1 << 21)
    msr     spsr_\el, x2
    eret
    .endm

    .macro step_data                        // the literal pool, the word the stepped loads read, the stack
    .ltorg
    .balign 16
sdata:  .quad 42
    .skip   2048
stack_top:
    .endm

    .macro step_until el, n                 // return stepping the next one, until x21 reaches n
    mrs     x2, spsr_\el
    orr     x2, x2, #(1 << 21)
    cmp     x21, #\n
    b.ne    2f
    bic     x2, x2, #(1 << 21)
2:  msr     spsr_\el, x2
    eret
    .endm

    .macro mdscr value
    ldr     x2, =\value
    msr     mdscr_el1, x2
    isb
    .endm
"""

EL1_KERNEL = COMMON + r"""
    start   vbar_el1
    isb
    ldr     x2, =0x1a1                      // BAS 0b1101: BAS[1] copies BAS[0], BAS[3] BAS[2]
    msr     dbgbcr1_el1, x2
    mrs     x9, dbgbcr1_el1
    say     s_bcr
    hex     x9, 32
    ldr     x2, =0x40001003                 // bits [1:0] RES0
    msr     dbgwvr1_el1, x2
    mrs     x9, dbgwvr1_el1
    say     s_wvr
    hex     x9, 64
    mrs     x9, oslsr_el1
    say     s_oslsr
    hex     x9, 32
    say     s_nl
    arm     0x1e7                           // E, PMC = EL1 and EL0, BAS = 0b1111
    mdscr   0xa000                          // MDE, KDE
    msr     daifclr, #8
    isb
    case    65                               // the OS lock is set at reset: no hit
    msr     oslar_el1, xzr
    arm     0x1e7
    case    66                               // hit (EC 0x31)
    arm     0x1e7
    mdscr   0x8000
    case    67                               // KDE clear: no hit at the same EL
    mdscr   0xa000
    msr     daifset, #8
    isb
    case    68                               // PSTATE.D set: no hit
    msr     daifclr, #8
    arm     0x1e5                           // PMC = EL0 only
    case    69                               // no hit at EL1
    arm     0x1e7
    mdscr   0x2000
    case    70                               // MDE clear: no hit
    mdscr   0xa000
    arm     0x7                             // BAS = 0
    case    71                               // no hit
    arm     0x1e7
    case    72                               // hit again
    // From EL0: a breakpoint on el0_code (KDE is not needed from a lower EL).
    adr     x2, el0_code
    msr     dbgbvr0_el1, x2
    ldr     x2, =0x1e7
    msr     dbgbcr0_el1, x2
    mdscr   0x8000
    say     s_el0
    adr     x2, el0_code
    msr     elr_el1, x2
    msr     spsr_el1, xzr                   // EL0t, D clear
    ldr     x2, =el0_stack_top
    msr     sp_el0, x2
    isb
    eret

target:
    ret

el0_code:
    nop
    svc     #0x11

finish:
    say     s_done
    system_off_any_el

el1_sync:                                   // current EL: a breakpoint hit
    mrs     x9, esr_el1
    esr_elr el1, s_hit
    msr     dbgbcr0_el1, xzr                // disarm, and run the instruction
    isb
    eret

lower_sync:                                 // from EL0: a breakpoint, then its SVC
    esr_is  esr_el1, 0x15, 1f
    esr_elr el1, s_hit0
    msr     dbgbcr0_el1, xzr
    isb
    eret
1:  say     s_svc
    hex     x9, 32
    say     s_nl
    b       finish

    puts_function

    sync_vectors vectors, el1_sync, lower_sync

s_bcr:   .asciz "dbgbcr1 "
s_wvr:   .asciz "dbgwvr1 "
s_oslsr: .asciz "oslsr "
s_nl:    .asciz "\n"
s_case:  .asciz "case "
s_colon: .asciz ": "
s_ret:   .asciz "returned\n"
s_hit:   .asciz "hit at EL1, ESR ELR "
s_hit0:  .asciz "hit from EL0, ESR ELR "
s_el0:   .asciz "EL0: "
s_svc:   .asciz "svc, ESR "
s_done:  .asciz "done\n"
    stacks  el0_stack_top
"""

EL2_KERNEL = COMMON + r"""
    start_el2
    msr     mdcr_el2, xzr
    msr     oslar_el1, xzr
    arm     0x21e7                          // HMC, E, PMC = EL1 and EL0, BAS = 0b1111
    mdscr   0xa000
    msr     daifclr, #8
    isb
    case    65                               // debug target EL1: nothing at EL2
    mov     x2, #(1 << 8)                   // MDCR_EL2.TDE: debug exceptions to EL2
    msr     mdcr_el2, x2
    isb
    case    66                               // hit at EL2 (EC 0x31)
    arm     0x1e7                           // no HMC
    case    67                               // no hit at EL2
    // The EL1 guest: a breakpoint on el1_code, with TDE (to EL2), then without (to EL1).
    adr     x2, el1_code
    msr     dbgbvr0_el1, x2
    ldr     x2, =0x1e7
    msr     dbgbcr0_el1, x2
    adr     x2, wdata
    msr     dbgwvr0_el1, x2
    ldr     x2, =0x1fff                     // E, PAC = EL1 and EL0, LSC = load and store, BAS = 0xff
    msr     dbgwcr0_el1, x2
    isb
    mov     x21, #0
    say     s_el1
    b       run_el1
el1_again:                                  // back from the guest's HVC
    cbnz    x21, finish
    mov     x21, #1
    msr     mdcr_el2, xzr                   // TDE clear: the guest's own EL1 takes it
    ldr     x2, =0x1e7
    msr     dbgbcr0_el1, x2
    ldr     x2, =0x1fff
    msr     dbgwcr0_el1, x2
    isb
    say     s_el1b
run_el1:
    enter_el1 0x5                           // EL1h, D clear

target:
    ret

el1_code:
    nop
    adr     x3, wdata
    ldr     x4, [x3]                        // watched
    hvc     #0x12

finish:
    say     s_done
    system_off_any_el

el2_sync:                                   // current EL: a breakpoint hit at EL2
    mrs     x9, esr_el2
    esr_elr el2, s_hit
    msr     dbgbcr0_el1, xzr
    isb
    eret

lower_sync:                                 // from EL1: a breakpoint or watchpoint (TDE), or its HVC
    esr_is  esr_el2, 0x16, 1f
    say     s_hit1
    hex     x9, 32
    mrs     x9, elr_el2
    hex     x9, 64
    far_disarm_return el2, 0x34
1:  say     s_hvc
    hex     x9, 32
    say     s_nl
    b       el1_again

el1_bp:                                     // the guest's EL1: a breakpoint or watchpoint without TDE
    say     s_hit1own
    mrs     x9, esr_el1
    hex     x9, 32
    mrs     x9, elr_el1
    hex     x9, 64
    mrs     x9, esr_el1
    lsr     x10, x9, #26
    far_disarm_return el1, 0x35

    puts_function

    sync_vectors vectors, el2_sync, lower_sync
    sync_vectors el1_vectors, el1_bp, .

s_case:   .asciz "case "
s_colon:  .asciz ": "
s_ret:    .asciz "returned\n"
s_nl:     .asciz "\n"
s_hit:    .asciz "hit at EL2, ESR ELR "
s_hit1:   .asciz "EL1's hit at EL2, ESR ELR "
s_hit1own: .asciz "EL1's hit at EL1, ESR ELR "
s_el1:    .asciz "EL1 guest, MDCR_EL2.TDE set\n"
s_el1b:   .asciz "EL1 guest, MDCR_EL2.TDE clear\n"
s_hvc:    .asciz "hvc, ESR "
s_done:   .asciz "done\n"
    .ltorg
    .balign 16
wdata:    .quad 0x1122334455667788
    .skip   2048
stack_top:
    .skip   1024
el1_stack_top:
"""

# Watchpoints at EL1 (vm mode; QEMU at EL1): each case arms watchpoint 0 and makes one
# access; the handler prints ESR, FAR and ELR, disarms it and returns, so the access is
# then made (its value printed after it).
WP_KERNEL = COMMON + r"""
    .macro watch wcr, off
    adr     x2, wdata
    add     x2, x2, #\off
    msr     dbgwvr0_el1, x2
    ldr     x2, =\wcr
    msr     dbgwcr0_el1, x2
    isb
    .endm

    start   vbar_el1
    msr     oslar_el1, xzr
    mdscr   0xa000
    msr     daifclr, #8
    isb
    adr     x19, wdata
    watch   0x1fff, 0                       // bytes 0-7, load and store
    title   65
    ldr     x3, [x19]                       // hit, WnR = 0
    hex     x3, 64
    say     s_nl
    watch   0x1e17, 0                       // bytes 4-7 (BAS 0xf0), store only (LSC 0b10)
    title   66
    ldr     x3, [x19]                       // a load: no hit
    hex     x3, 64
    say     s_nl
    title   67
    mov     x4, #0x55
    str     w4, [x19, #4]                   // hit, WnR = 1; the store made after it
    ldr     x3, [x19]
    hex     x3, 64
    say     s_nl
    watch   0x1fff, 0
    title   68
    ldrb    w3, [x19, #3]                   // one byte inside: FAR is its address
    hex     x3, 32
    say     s_nl
    watch   0x1fff, 8
    title   69
    ldr     x3, [x19]                       // the next 8 bytes are watched: no hit
    hex     x3, 64
    say     s_nl
    watch   0x05001fff, 0                   // MASK = 5: the 32 bytes from wdata
    title   70
    ldr     x3, [x19, #24]
    hex     x3, 64
    say     s_nl
    watch   0x1ffb, 0                       // PAC = EL1 only ... from EL0: no hit
    title   71
    adr     x2, el0_code
    msr     elr_el1, x2
    msr     spsr_el1, xzr
    ldr     x2, =el0_stack_top
    msr     sp_el0, x2
    isb
    eret
el0_done:
    watch   0x1ffd, 0                       // PAC = EL0 only: a hit from EL0 (EC 0x34)
    title   72
    adr     x2, el0_code
    msr     elr_el1, x2
    msr     spsr_el1, xzr
    isb
    mov     x22, #1
    eret

el0_code:
    ldr     x3, [x19]
    svc     #0x11

finish:
    say     s_done
    system_off_any_el

el1_sync:
    say     s_hit
    mrs     x9, esr_el1
    hex     x9, 32
    mrs     x9, far_el1
    hex     x9, 64
    mrs     x9, elr_el1
    hex     x9, 64
    msr     dbgwcr0_el1, xzr
    isb
    eret

lower_sync:
    esr_is  esr_el1, 0x15, 1f
    say     s_hit0
    hex     x9, 32
    mrs     x9, far_el1
    hex     x9, 64
    msr     dbgwcr0_el1, xzr
    isb
    eret
1:  say     s_svc
    hex     x3, 64
    say     s_nl
    cbnz    x22, finish
    b       el0_done

    puts_function

    sync_vectors vectors, el1_sync, lower_sync

s_case:  .asciz "case "
s_colon: .asciz ": "
s_nl:    .asciz "\n"
s_hit:   .asciz "hit, ESR FAR ELR "
s_hit0:  .asciz "hit from EL0, ESR FAR "
s_svc:   .asciz "EL0 read "
s_done:  .asciz "done\n"
    .ltorg
    .balign 64
wdata:   .quad 0x1122334455667788, 0x99aabbccddeeff00, 0x0123456789abcdef, 0xfedcba9876543210
    .skip   2048
stack_top:
    .skip   1024
el0_stack_top:
"""

# Software step (MDSCR_EL1.SS): EL0 code stepped from EL1 (a load-exclusive among its
# instructions: EX), a return with SPSR.SS clear (active-pending: ISV = 0), EL1 code
# stepped at EL1 (KDE); the handler prints ESR and ELR and steps on until the code's
# SVC, or for EL1 until 4 steps.
STEP_KERNEL = COMMON + r"""
    start   vbar_el1
    msr     oslar_el1, xzr
    mdscr   0xa001                          // SS, KDE, MDE
    adr     x19, sdata
    mov     x21, #0                         // steps taken at EL1
    say     s_el0
    adr     x2, el0_code
    msr     elr_el1, x2
    mov     x2, #(1 << 21)                  // EL0t, SS: active-not-pending
    msr     spsr_el1, x2
    isb
    eret
pending:
    say     s_pending
    adr     x2, el0_code
    msr     elr_el1, x2
    msr     spsr_el1, xzr                   // SS clear: active-pending, a step before anything runs
    mov     x22, #1
    isb
    eret
el1_part:
    say     s_el1
    adr     x2, el1_code
    msr     elr_el1, x2
    ldr     x2, =(0x5 | 1 << 21)            // EL1h, D clear, SS
    msr     spsr_el1, x2
    isb
    eret

el0_code:
    mov     x5, #1
    ldxr    x6, [x19]
    add     x5, x5, #1
    svc     #0x11

el1_code:
    mov     x5, #1
    add     x5, x5, #2
    add     x5, x5, #3
    add     x5, x5, #4
    add     x5, x5, #5
    b       finish

finish:
    mdscr   0xa000
    say     s_done
    system_off_any_el

el1_sync:                                   // EL1 stepped at EL1 (EC 0x33)
    mrs     x9, esr_el1
    esr_elr el1, s_step
    add     x21, x21, #1
    cmp     x21, #4
    b.ne    1f
    mdscr   0xa000                          // enough: MDSCR_EL1.SS clear, and SPSR.SS
1:  step_until el1, 4

lower_sync:                                 // from EL0: a step (EC 0x32), or its SVC
    esr_is  esr_el1, 0x15, 1f
    esr_elr el1, s_step
    step_on el1
1:  mov     x23, x5
    say     s_svc
    hex     x23, 32
    say     s_nl
    cbz     x22, pending
    b       el1_part

    puts_function

    sync_vectors vectors, el1_sync, lower_sync

s_el0:     .asciz "EL0, stepped from EL1\n"
s_pending: .asciz "EL0 again, SPSR.SS clear\n"
s_el1:     .asciz "EL1, stepped at EL1\n"
s_step:    .asciz "step, ESR ELR "
s_svc:     .asciz "svc, x5 = "
s_nl:      .asciz "\n"
s_done:    .asciz "done\n"
    step_data
"""

# Software step of an EL2 kernel's EL1 guest: with MDCR_EL2.TDE the steps go to EL2
# (EC 0x32, from a lower EL), without it to the guest's own EL1 (EC 0x33); 3 steps
# each, then the guest's HVC.
STEP2_KERNEL = COMMON + r"""
    start_el2
    msr     oslar_el1, xzr
    mdscr   0xa001                          // the guest's MDSCR_EL1: SS, KDE, MDE
    mov     x2, #(1 << 8)                   // MDCR_EL2.TDE
    msr     mdcr_el2, x2
    mov     x21, #0
    mov     x22, #0
    say     s_tde
run_el1:
    enter_el1 (0x5 | 1 << 21)               // EL1h, D clear, SS

el1_code:
    mov     x5, #1
    add     x5, x5, #2
    add     x5, x5, #3
    add     x5, x5, #4
    hvc     #0x12

finish:
    say     s_done
    system_off_any_el

lower_sync:                                 // the guest's step (TDE), or its HVC
    esr_is  esr_el2, 0x16, 1f
    esr_elr el2, s_step2
    add     x21, x21, #1
    step_until el2, 3
1:  cbnz    x22, finish
    mov     x22, #1
    mov     x21, #0
    msr     mdcr_el2, xzr                   // TDE clear: the guest's EL1 takes its steps
    say     s_notde
    b       run_el1

el1_step:                                   // the guest's own EL1: its step (EC 0x33)
    mrs     x9, esr_el1
    esr_elr el1, s_step1
    add     x21, x21, #1
    step_until el1, 3

el2_sync:
    say     s_bad
    b       finish

    puts_function

    sync_vectors vectors, el2_sync, lower_sync
    sync_vectors el1_vectors, el1_step, .

s_tde:    .asciz "EL1 guest stepped, MDCR_EL2.TDE set\n"
s_notde:  .asciz "EL1 guest stepped, MDCR_EL2.TDE clear\n"
s_step2:  .asciz "step at EL2, ESR ELR "
s_step1:  .asciz "step at EL1, ESR ELR "
s_bad:    .asciz "unexpected exception at EL2\n"
s_nl:     .asciz "\n"
s_done:   .asciz "done\n"
    stacks  el1_stack_top
"""

# Stepping EL0 after an ERET neve does not hook: the EL1 kernel turns its MMU on with
# RAM mapped twice (at its PA, open to EL0, and at PA + 1 GiB, EL1 only) and runs its
# vectors and its ERETs at the second mapping, as a kernel's linear map differs from
# its PAs; EL0 runs at the first.
STEP_ALIAS_KERNEL = COMMON + r"""
    start   vbar_el1
    mmu_on_at_alias
    msr     oslar_el1, xzr
    mdscr   0x8001                          // SS, MDE
    adr     x19, sdata
    sub     x19, x19, x9                    // EL0's view
    say     s_el0
    adr     x2, el0_code
    sub     x2, x2, x9
    msr     elr_el1, x2
    mov     x2, #(1 << 21)                  // EL0t, SS
    msr     spsr_el1, x2
    isb
    eret                                    // at VA PA + 1 GiB: neve does not hook it

el0_code:
    mov     x5, #1
    ldxr    x6, [x19]
    add     x5, x5, #1
    svc     #0x11

lower_sync:
    esr_is  esr_el1, 0x15, 1f
    esr_elr el1, s_step
    step_on el1
1:  mdscr   0x8000
    say     s_done
    system_off_any_el

el1_sync:
    say     s_bad
    system_off_any_el

    puts_function

    sync_vectors vectors, el1_sync, lower_sync

s_el0:  .asciz "EL0 stepped, ERETs at VA = PA + 1 GiB\n"
s_step: .asciz "step, ESR ELR "
s_nl:   .asciz "\n"
s_done: .asciz "done\n"
s_bad:  .asciz "unexpected exception at EL1\n"
    step_data
    .balign 4096
tbl:    .skip 4096
"""


# A kernel stepping itself at EL1 (KDE), as kgdb does, at VA = PA + 1 GiB: neve hooks
# none of its ERETs, and tells the steps apart by SPSR_EL1 (active-not-pending, with EX
# for the LDXR) and an ERET with SPSR.SS clear (active-pending: before anything runs).
STEP_EL1_ALIAS_KERNEL = COMMON + r"""
    start   vbar_el1
    mmu_on_at_alias
    msr     oslar_el1, xzr
    mdscr   0xa001                          // SS, KDE, MDE
    adr     x19, sdata
    mov     x21, #0
    say     s_el1
    adr     x2, el1_code
    msr     elr_el1, x2
    ldr     x2, =(0x5 | 1 << 21)            // EL1h, D clear, SS: active-not-pending
    msr     spsr_el1, x2
    isb
    eret                                    // at the VA: neve does not hook it
pending:
    say     s_pending
    mdscr   0xa001
    adr     x2, el1_code2
    msr     elr_el1, x2
    mov     x2, #0x5                        // SS clear: active-pending
    msr     spsr_el1, x2
    isb
    eret

el1_code:
    mov     x5, #1
    ldxr    x6, [x19]
    add     x5, x5, #2
    add     x5, x5, #3
    b       pending
el1_code2:
    mov     x5, #7
    b       finish

finish:
    say     s_done
    system_off_any_el

el1_sync:                                   // a step at EL1 (EC 0x33)
    mrs     x9, esr_el1
    esr_elr el1, s_step
    add     x21, x21, #1
    cmp     x21, #4
    b.eq    1f
    cmp     x21, #5
    b.eq    1f
    step_on el1
1:  mdscr   0xa000                          // enough: MDSCR_EL1.SS clear, and SPSR.SS
    mrs     x2, spsr_el1
    bic     x2, x2, #(1 << 21)
    msr     spsr_el1, x2
    eret

lower_sync:
    say     s_bad
    system_off_any_el

    puts_function

    sync_vectors vectors, el1_sync, lower_sync

s_el1:     .asciz "EL1 stepping itself, ERETs at VA = PA + 1 GiB\n"
s_pending: .asciz "again, SPSR.SS clear\n"
s_step:    .asciz "step, ESR ELR "
s_nl:      .asciz "\n"
s_done:    .asciz "done\n"
s_bad:     .asciz "unexpected exception from EL0\n"
    step_data
    .balign 4096
tbl:    .skip 4096
"""

@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return build_kernels(tmp_path_factory.mktemp("bkpt"), {
        "el1": EL1_KERNEL, "el2": EL2_KERNEL, "wp": WP_KERNEL, "step": STEP_KERNEL, "step2": STEP2_KERNEL,
        "stepa": STEP_ALIAS_KERNEL, "step1a": STEP_EL1_ALIAS_KERNEL})


@pytest.fixture(scope="module")
def qemu_out(images):
    return qemu_transcripts(images, el2=("el2", "step2"))


# The Arm ARM's AArch64.GenerateDebugExceptionsFrom() takes no debug exception while
# OSLSR_EL1.OSLK is set, which it is at reset; QEMU 10.0 takes the breakpoint anyway.
OS_LOCKED_ARM = "case A: returned"
OS_LOCKED_QEMU = "case A: hit at EL1, ESR ELR c6000022 {target:016x} \nreturned"


@pytest.mark.toolchain
@pytest.mark.parametrize("fast", ["1", "0"], ids=["compiled", "python"])
def test_breakpoints_at_el1(images, qemu_out, monkeypatch, fast):
    monkeypatch.setenv("NEVE_FASTPATH", fast)
    r = run_neve("run", images["el1"])
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    lines = out.splitlines()
    assert lines[0] == "dbgbcr1 000001e1 dbgwvr1 0000000040001000 oslsr 0000000a ", lines
    target = int(next(ln for ln in lines if ln.startswith("case B")).split()[-1], 16)
    # B and H fire at EL1 before `target` runs; the others do not; then the hit from EL0.
    expect = [OS_LOCKED_ARM, f"case B: hit at EL1, ESR ELR c6000022 {target:016x} ", "returned",
              *(f"case {c}: returned" for c in "CDEFG"),
              f"case H: hit at EL1, ESR ELR c6000022 {target:016x} ", "returned"]
    assert lines[1:11] == expect, lines
    assert lines[11].startswith("EL0: hit from EL0, ESR ELR c2000022 "), lines
    assert lines[12:] == ["svc, ESR 56000011 ", "done"], lines
    if qemu_out:
        assert out.replace(OS_LOCKED_ARM, OS_LOCKED_QEMU.format(target=target)) == qemu_out["el1"]


@pytest.mark.toolchain
@pytest.mark.parametrize("fast", ["1", "0"], ids=["compiled", "python"])
@pytest.mark.parametrize("mode", ["v8.3", "neve", "nv2"])
def test_breakpoints_at_vel2_and_in_its_guest(images, qemu_out, monkeypatch, mode, fast):
    monkeypatch.setenv("NEVE_FASTPATH", fast)
    r = run_neve("run", "--mode", mode, images["el2"])
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    lines = out.splitlines()
    assert [ln.split("ELR ")[1].split()[0] for ln in lines if "hit" in ln] == \
        ["c6000022", "c2000022", "d2000022", "c6000022", "d6000022"], lines
    assert lines[0] == "case A: returned" and lines[3] == "case C: returned", lines
    assert "EL1's hit at EL2" in lines[5] and "EL1's hit at EL1" in lines[9] and lines[-1] == "done", lines
    if qemu_out:
        assert out == qemu_out["el2"]


@pytest.mark.toolchain
@pytest.mark.parametrize("fast", ["1", "0"], ids=["compiled", "python"])
def test_watchpoints_at_el1(images, qemu_out, monkeypatch, fast):
    """Loads and stores, byte select, MASK, LSC and PAC, at EL1 and from EL0: each hit
    taken before the access (a store's value appears only after the handler disarmed
    the watchpoint and returned), with QEMU's ESR and FAR."""
    monkeypatch.setenv("NEVE_FASTPATH", fast)
    r = run_neve("run", images["wp"])
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    lines = out.splitlines()
    hits = [ln.split("hit")[1].split()[4] for ln in lines if "hit" in ln]
    assert hits == ["d6000022", "d6000062", "d6000022", "d6000022", "d2000022"], lines
    assert lines[1] == "case B: 1122334455667788 " and lines[4] == "case E: 0000005555667788 ", lines
    assert lines[-1] == "done", lines
    if qemu_out:
        assert out == qemu_out["wp"]


@pytest.mark.toolchain
@pytest.mark.parametrize("fast", ["1", "0"], ids=["compiled", "python"])
def test_software_step_at_el1(images, qemu_out, monkeypatch, fast):
    """EL0 stepped from EL1 (ISV = 1, EX for the LDXR), a return with SPSR.SS clear
    (active-pending: ISV = 0, before anything runs), EL1 stepped at EL1 with KDE."""
    monkeypatch.setenv("NEVE_FASTPATH", fast)
    r = run_neve("run", images["step"])
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    esrs = [ln.split()[3] for ln in out.splitlines() if ln.startswith("step")]
    assert esrs == ["cb000022", "cb000062", "cb000022", "ca000022", "cb000022", "cb000062", "cb000022",
                    "cf000022", "cf000022", "cf000022", "cf000022"], out
    if qemu_out:
        assert out == qemu_out["step"]


@pytest.mark.toolchain
@pytest.mark.parametrize("fast", ["1", "0"], ids=["compiled", "python"])
@pytest.mark.parametrize("mode", ["v8.3", "neve", "nv2"])
def test_software_step_of_an_el2_guest(images, qemu_out, monkeypatch, mode, fast):
    """vEL2 steps its EL1 guest: with MDCR_EL2.TDE each step reaches vEL2 (EC 0x32),
    without it the guest's own EL1 (EC 0x33)."""
    monkeypatch.setenv("NEVE_FASTPATH", fast)
    r = run_neve("run", "--mode", mode, images["step2"])
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    lines = out.splitlines()
    assert lines[1] == "step at EL2, ESR ELR cb000022 0000000040000088 ", lines
    assert "step at EL1, ESR ELR cf000022 0000000040000088 " in lines and lines[-1] == "done", lines
    if qemu_out:
        assert out == qemu_out["step2"]


@pytest.mark.toolchain
@pytest.mark.parametrize("fast", ["1", "0"], ids=["compiled", "python"])
def test_software_step_of_el0_after_an_eret_neve_does_not_hook(images, qemu_out, monkeypatch, fast):
    """The kernel's ERETs run at VA = PA + 1 GiB, where neve (vm mode: Unicorn walks the
    kernel's tables) does not hook them: EL0's steps are still told apart by
    SPSR_EL1.SS, which EL0 cannot change (a Linux kernel's ptrace step)."""
    monkeypatch.setenv("NEVE_FASTPATH", fast)
    r = run_neve("run", images["stepa"])
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert [ln.split()[3] for ln in out.splitlines() if ln.startswith("step")] == \
        ["cb000022", "cb000062", "cb000022"], out
    if qemu_out:
        assert out == qemu_out["stepa"]


NOKDE = ("    mdscr   0xa001                          // the guest's MDSCR_EL1: SS, KDE, MDE",
         "    mdscr   0x8001                          // the guest's MDSCR_EL1: SS, MDE (KDE clear)")


@pytest.mark.toolchain
@pytest.mark.parametrize("fast", ["1", "0"], ids=["compiled", "python"])
@pytest.mark.parametrize("mode", ["v8.3", "neve", "nv2"])
def test_a_step_routed_to_el2_with_the_guests_kde_clear(tmp_path, mode, fast, monkeypatch):
    """L1 routes its guest's debug exceptions to EL2 (TDE) and steps the guest's EL1
    while the guest's MDSCR_EL1.KDE is clear (as KVM steps a guest kernel): the
    architecture steps it, active-not-pending and, after a return with SPSR.SS clear,
    active-pending; Unicorn, whose debug target is EL1, would not, so the hardware's
    KDE is set while the guest runs.  Without TDE the guest's own EL1 is not stepped
    (KDE clear).  As on QEMU."""
    need_tool(CROSS + "as")
    monkeypatch.setenv("NEVE_FASTPATH", fast)
    entry = "lower_sync:                                 // the guest's step (TDE), or its HVC\n"
    assert NOKDE[0] in STEP2_KERNEL and entry in STEP2_KERNEL
    src = STEP2_KERNEL.replace(*NOKDE).replace(entry, entry + "    mrs     x9, mdscr_el1\n    hex     x9, 32\n")
    img = build_kernel(tmp_path, "nokde", src)
    r = run_neve("run", "--mode", mode, img)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    lines = out.splitlines()
    # Each exit first prints MDSCR_EL1 as L1 reads it: the guest's value, never KDE.
    assert [ln.split()[6] for ln in lines if "step at EL2" in ln] == \
        ["cb000022", "cb000022", "cb000022", "ca000022", "cb000022"], out
    assert all(ln.startswith("00008001 ") for ln in lines[1:-1]), out
    assert lines[-2:] == ["00008001 EL1 guest stepped, MDCR_EL2.TDE clear", "00008001 done"], out
    from neve.qemu import qemu_binary, run_qemu_full
    if qemu_binary() is not None:
        q = run_qemu_full([img], el2=True, cpu="cortex-a72")
        assert q.status == 0 and q.stdout.decode() == out


def test_a_step_unicorn_would_not_take_is_unsupported(tmp_path):
    """L1 steps its guest's EL1 under TDE with SPSR.D set: the architecture steps it
    (the debug target, EL2, is higher), Unicorn would not, and PSTATE.D is the guest's
    to see; neve says so instead of missing the step."""
    need_tool(CROSS + "as")
    old = "    enter_el1 (0x5 | 1 << 21)               // EL1h, D clear, SS"
    assert old in STEP2_KERNEL
    img = build_kernel(tmp_path, "dset", STEP2_KERNEL.replace(old, "    enter_el1 (0x205 | 1 << 21)"))
    r = run_neve("run", "--mode", "v8.3", img)
    assert r.returncode == 125, (r.returncode, r.stderr)
    assert r.stderr.decode().startswith("neve: unsupported: software step of L1's EL1 routed to EL2 "
                                        "(MDCR_EL2.TDE or HCR_EL2.TGE) with SPSR.D set"), r.stderr


def test_linked_watchpoints_are_unsupported(tmp_path):
    """Enabling a linked watchpoint (WT = 1) stops the run with `unsupported: ...` (exit
    status 125), not a watchpoint that silently never fires."""
    need_tool(CROSS + "as")
    src = MACROS + r"""
    .text
    .global _start
_start:
    ldr     x2, =0x101fff
    msr     dbgwcr0_el1, x2
    system_off_any_el
"""
    img = build_kernel(tmp_path, "wp", src)
    r = run_neve("run", img)
    assert r.returncode == 125, (r.returncode, r.stderr)
    assert r.stderr.decode().startswith("neve: unsupported: a linked watchpoint (MSR DBGWCR0_EL1, WT = 1, E = 1) "
                                        "at PC 0x"), r.stderr


@pytest.mark.toolchain
def test_the_debuggers_breakpoints_and_the_guests_are_apart(images):
    """gdb (neve gdb's stub) and the guest each have their own breakpoints: the guest's
    hardware breakpoint on `target` never stops gdb (its debug exception is the guest's,
    so gdb stops only at the handler it set a breakpoint on), and gdb's breakpoints
    (Z0, and Z1, which neve serves with its own stops, not the guest's DBGBCR/DBGBVR)
    change nothing the guest sees: its transcript is the one of a run without gdb."""
    from neve.core import elf
    from neve.core.machine import Machine
    from test_gdbstub import Wire, noack
    plain = run_neve("run", images["el1"])
    assert plain.returncode == 0, plain.stderr
    out = bytearray()
    m = Machine([elf.load(images["el1"])], mode="vm", uart_out=out.extend)
    sym = m.symbols.by_name
    w = Wire(m)
    try:
        noack(w)
        assert w.ask(f"Z0,{sym['el1_sync']:x},4") == "OK" and w.ask(f"Z1,{sym['lower_sync']:x},4") == "OK"
        stops = []
        for _ in range(4):
            r = w.ask("c")
            assert r.startswith("T05"), r
            stops.append(m.symbols.lookup(m.cpu.pc))
        # B and H at EL1, then from EL0 the breakpoint and the SVC: never at `target`.
        assert stops == ["el1_sync", "el1_sync", "lower_sync", "lower_sync"], stops
        assert w.ask(f"z0,{sym['el1_sync']:x},4") == "OK" and w.ask(f"z1,{sym['lower_sync']:x},4") == "OK"
        r = w.ask("c")
        assert r.startswith("W"), r
    finally:
        w.close()
    assert bytes(out) == plain.stdout


@pytest.mark.toolchain
@pytest.mark.parametrize("fast", ["1", "0"], ids=["compiled", "python"])
def test_a_kernel_stepping_itself_at_a_va_other_than_its_pa(images, qemu_out, monkeypatch, fast):
    """kgdb's case: EL1 steps its own code after ERETs neve does not hook (VA = PA +
    1 GiB); SPSR_EL1 tells active-not-pending (ISV = 1, EX for the LDXR) from
    active-pending (ISV = 0), as on QEMU."""
    monkeypatch.setenv("NEVE_FASTPATH", fast)
    r = run_neve("run", images["step1a"])
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert [ln.split()[3] for ln in out.splitlines() if ln.startswith("step")] == \
        ["cf000022", "cf000062", "cf000022", "cf000022", "ce000022"], out
    if qemu_out:
        assert out == qemu_out["step1a"]


def test_a_step_of_an_msr_to_the_return_state_after_an_unseen_eret_is_unsupported(tmp_path):
    """The one instruction after an ERET neve did not see writes ELR_EL1: the step's
    syndrome can no longer be told from SPSR_EL1/ELR_EL1, and neve says so."""
    need_tool(CROSS + "as")
    src = STEP_EL1_ALIAS_KERNEL.replace("el1_code:\n    mov     x5, #1\n", "el1_code:\n    msr     elr_el1, x5\n")
    assert src != STEP_EL1_ALIAS_KERNEL
    r = run_neve("run", build_kernel(tmp_path, "msrstep", src))
    assert r.returncode == 125, (r.returncode, r.stderr)
    assert r.stderr.decode().startswith("neve: unsupported: software step of an MSR to SPSR_EL1 or ELR_EL1 "
                                        "after an exception return neve did not see"), r.stderr
