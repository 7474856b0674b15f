"""The PMU as guests use it (issue 17), compared with QEMU 10 byte for byte.

QEMU runs with `-icount shift=0`: one virtual nanosecond per instruction, so its PMU
counts CPU_CYCLES (at 1 GHz) and INST_RETIRED exactly as neve's does, one per
instruction, and the counts a kernel prints are the same numbers.  Small kernels,
assembled here:
- at EL1 (vm mode; QEMU at EL1): counters of INST_RETIRED and CPU_CYCLES filtered by
  level (U, P) and the cycle counter with PMCCFILTR, over EL1 and EL0 work joined by
  SVCs and ERETs; EXC_TAKEN and EXC_RETURN (neve's: QEMU has neither, they read 0
  there); the overflow interrupt (PPI 23) of the cycle counter, taken at QEMU's
  instruction, and of a CPU_CYCLES event counter (QEMU 10 raises none for event
  counters); PMCR_EL0.D's divider; SW_INCR filtered at EL0.
- at EL2 (vEL2 in v8.3, neve and nv2; QEMU at real EL2): MDCR_EL2.HPMN splits the
  counters (PMCR_EL0.N read at EL1 is HPMN; counters at or above it run on HPME), NSH
  counts at EL2, HPMD prohibits the lower share at EL2 (the cycle counter with
  PMCR_EL0.DP), the EL1 guest's share counts its instructions.
Each is run in neve with the compiled fast path and without it."""
from __future__ import annotations

import pytest

from conftest import run_neve
from guest_asm import MACROS, build_kernels, qemu_transcripts

COMMON = MACROS + r"""
    .macro evtype n, value                  // PMEVTYPER<n>_EL0 = value
    ldr     x2, =\value
    msr     pmevtyper\n\()_el0, x2
    .endm

    .macro counters label                   // print label, PMEVCNTR0-5 and PMCCNTR, a newline
    say     \label
    mrs     x9, pmevcntr0_el0
    hex     x9, 32
    mrs     x9, pmevcntr1_el0
    hex     x9, 32
    mrs     x9, pmevcntr2_el0
    hex     x9, 32
    mrs     x9, pmevcntr3_el0
    hex     x9, 32
    mrs     x9, pmevcntr4_el0
    hex     x9, 32
    mrs     x9, pmevcntr5_el0
    hex     x9, 32
    mrs     x9, pmccntr_el0
    hex     x9, 64
    say     s_nl
    .endm

    .macro spin n                           // 2n + 1 instructions
    mov     x3, #\n
1:  sub     x3, x3, #1
    cbnz    x3, 1b
    .endm

    .macro vector_table label, cur, cur_irq, lower, lower_irq
    .balign 2048
\label:
    .skip   0x200
    b       \cur
    .skip   0x280 - 0x204
    b       \cur_irq
    .skip   0x400 - 0x284
    b       \lower
    .skip   0x480 - 0x404
    b       \lower_irq
    .skip   0x800 - 0x484
    .endm

    .macro bad_handler el                   // bad: an exception no test expects, its ESR
bad:
    say     s_bad
    mrs     x9, esr_\el
    hex     x9, 32
    system_off_any_el
    .endm

    .macro tail lower                       // the strings all print, the literal pool, the
s_a:    .asciz "A: "                        // stack and a lower EL's (`lower`)
s_nl:   .asciz "\n"
s_done: .asciz "done\n"
s_bad:  .asciz "unexpected exception "
    stacks  \lower
    .endm
"""

EL1_KERNEL = COMMON + r"""
    start   vbar_el1
    isb
    mrs     x9, pmcr_el0
    say     s_pmcr
    hex     x9, 32
    say     s_nl

    // A: levels.  0 INST_RETIRED, 1 CPU_CYCLES not at EL0 (U), 2 INST_RETIRED not at
    // EL1 (P), 3 EXC_TAKEN, 4 EXC_RETURN, 5 EXC_RETURN not at EL1; the cycle counter
    // not at EL1.
    evtype  0, 0x08
    evtype  1, 0x40000011
    evtype  2, 0x80000008
    evtype  3, 0x09
    evtype  4, 0x0a
    evtype  5, 0x8000000a
    ldr     x2, =0x80000000
    msr     pmccfiltr_el0, x2
    ldr     x2, =0x8000003f
    msr     pmcntenset_el0, x2
    mov     x2, #7                          // E, P, C: reset and count
    msr     pmcr_el0, x2
    spin    100
    adr     x2, el0_code
    msr     elr_el1, x2
    msr     spsr_el1, xzr
    eret
el0_code:
    spin    50
    svc     #0
    b       el0_code
svc_handler:                                // three SVCs from EL0, then on at EL1
    add     x21, x21, #1
    cmp     x21, #3
    b.eq    1f
    eret
1:  mov     x2, #0x3f
    orr     x2, x2, #0x80000000
    msr     pmcntenclr_el0, x2
    counters s_a

    // B: overflow interrupts (PPI 23): the INTID, the count when the handler reads it,
    // where it was taken (offset from _start), PMOVSSET after; first of the cycle
    // counter (x27 = 0), then of a CPU_CYCLES event counter (x27 = 1).
    gic_enable_ppi 23, 0x80
    msr     pmccfiltr_el0, xzr
    ldr     x2, =0xffffff00
    msr     pmccntr_el0, x2
    mov     x2, #(1 << 31)
    msr     pmintenset_el1, x2
    msr     pmcntenset_el0, x2
    mov     x27, #0
    msr     daifclr, #2
    spin    200
    msr     daifset, #2
    say     s_b
    hex     x22, 32
    hex     x23, 32
    hex     x24, 64
    mrs     x9, pmovsset_el0
    hex     x9, 32
    say     s_nl
    mov     x2, #(1 << 31)
    msr     pmintenclr_el1, x2
    msr     pmcntenclr_el0, x2
    evtype  0, 0x11
    ldr     x2, =0xffffff00
    msr     pmevcntr0_el0, x2
    mov     x2, #1
    msr     pmintenset_el1, x2
    msr     pmcntenset_el0, x2
    mov     x27, #1
    mov     x22, #0
    mov     x23, #0
    mov     x24, #0
    msr     daifclr, #2
    spin    200
    msr     daifset, #2
    say     s_b2
    hex     x22, 32
    hex     x23, 32
    hex     x24, 64
    mrs     x9, pmovsset_el0
    hex     x9, 32
    say     s_nl
    mov     x2, #1
    msr     pmintenclr_el1, x2
    msr     pmcntenclr_el0, x2
    msr     pmovsclr_el0, x2

    // C: PMCR_EL0.D, the cycle counter every 64 cycles (LC clear), then with LC.
    msr     pmccfiltr_el0, xzr
    mov     x2, #(1 << 31)
    msr     pmcntenset_el0, x2
    mov     x2, #(1 | 4 | 8)                // E, C, D
    msr     pmcr_el0, x2
    spin    500
    mrs     x9, pmccntr_el0
    mov     x2, #(1 | 4 | 8 | 64)           // E, C, D, LC
    msr     pmcr_el0, x2
    spin    20
    mrs     x10, pmccntr_el0
    say     s_c
    hex     x9, 64
    hex     x10, 64
    say     s_nl

    // D: SW_INCR at EL0 with PMUSERENR.SW: counter 0 counts it, counter 1 (U) does not.
    evtype  0, 0x00
    evtype  1, 0x40000000
    msr     pmevcntr0_el0, xzr
    msr     pmevcntr1_el0, xzr
    mov     x2, #3
    msr     pmcntenset_el0, x2
    mov     x2, #2                          // PMUSERENR_EL0.SW
    msr     pmuserenr_el0, x2
    mov     x21, #100
    adr     x2, el0_incr
    msr     elr_el1, x2
    msr     spsr_el1, xzr
    eret
el0_incr:
    mov     x2, #3
    msr     pmswinc_el0, x2
    msr     pmswinc_el0, x2
    svc     #0
    b       .
svc_d:
    mrs     x9, pmevcntr0_el0
    mrs     x10, pmevcntr1_el0
    say     s_d
    hex     x9, 32
    hex     x10, 32
    say     s_nl
    say     s_done
    system_off_any_el

irq_handler:                                // the overflow: the INTID, the counter, where
    mrs     x22, S3_0_C12_C12_0             // ICC_IAR1_EL1
    cbnz    x27, 1f
    mrs     x23, pmccntr_el0
    mov     x2, #(1 << 31)
    b       2f
1:  mrs     x23, pmevcntr0_el0
    mov     x2, #1
2:  msr     pmovsclr_el0, x2
    mrs     x24, elr_el1
    adr     x2, _start
    sub     x24, x24, x2
    msr     S3_0_C12_C12_1, x22             // ICC_EOIR1_EL1
    eret

lower_sync:
    cmp     x21, #100
    b.eq    svc_d
    b       svc_handler

    bad_handler el1

    puts_function
    vector_table vectors, bad, irq_handler, lower_sync, bad

s_pmcr: .asciz "pmcr "
s_b:    .asciz "B: "
s_b2:   .asciz "B2: "
s_c:    .asciz "C: "
s_d:    .asciz "D: "
    tail    el0_stack_top
"""


EL2_KERNEL = COMMON + r"""
    start   vbar_el2
    adr     x0, el1_vectors
    msr     vbar_el1, x0
    mov     x0, #(1 << 31)                  // HCR_EL2.RW
    msr     hcr_el2, x0
    isb

    // A: MDCR_EL2.HPMN = 2 with HPME: counters 0 and 1 are the EL1 guest's (PMCR_EL0.E),
    // 2 to 5 EL2's (HPME).  0 INST_RETIRED with NSH, 1 INST_RETIRED (not at EL2),
    // 2 INST_RETIRED with NSH, 3 INST_RETIRED at EL2 only (P, U, NSH), 4 EXC_TAKEN
    // with NSH, 5 EXC_RETURN with NSH; the cycle counter at EL2 and EL0 (NSH, P).
    mov     x2, #(2 | 0x80)
    msr     mdcr_el2, x2
    evtype  0, 0x08000008
    evtype  1, 0x08
    evtype  2, 0x08000008
    evtype  3, 0xc8000008
    evtype  4, 0x08000009
    evtype  5, 0x0800000a
    ldr     x2, =0x88000000
    msr     pmccfiltr_el0, x2
    ldr     x2, =0x8000003f
    msr     pmcntenset_el0, x2
    mov     x2, #7                          // E, P, C
    msr     pmcr_el0, x2
    spin    100
    adr     x2, el1_code
    msr     elr_el2, x2
    mov     x2, #0x3c5                      // EL1h, DAIF masked
    msr     spsr_el2, x2
    ldr     x2, =el1_stack_top
    msr     sp_el1, x2
    eret
el1_code:
    mrs     x25, pmcr_el0                   // N reads HPMN
    spin    50
    hvc     #0
lower_sync:                                 // the HVC: the guest's share stops (PMCR_EL0.E),
    msr     pmcr_el0, xzr                   // EL2's runs on until HPME is cleared
    spin    20
    mov     x2, #2
    msr     mdcr_el2, x2
    say     s_n
    hex     x25, 32
    say     s_nl
    counters s_a

    // B: MDCR_EL2.HPMD prohibits the guest's share at EL2, and PMCR_EL0.DP the cycle
    // counter with it; EL2's own share still counts.
    ldr     x2, =(2 | 0x80 | 0x20000)       // HPMN 2, HPME, HPMD
    msr     mdcr_el2, x2
    mov     x2, #(1 | 2 | 4 | 0x20)         // E, P, C, DP
    msr     pmcr_el0, x2
    spin    30
    msr     pmcr_el0, xzr
    mov     x2, #2
    msr     mdcr_el2, x2
    counters s_b
    say     s_done
    system_off_any_el

    bad_handler el2
el1_bad:
    b       .

    puts_function
    vector_table vectors, bad, bad, lower_sync, bad
    vector_table el1_vectors, el1_bad, el1_bad, el1_bad, el1_bad

s_n:    .asciz "EL1 reads PMCR_EL0 "
s_b:    .asciz "B: "
    tail    el1_stack_top
"""

# The kernel's code runs at VA = PA + 1 GiB (as Linux's does at its own VAs), where
# Unicorn walks its tables and neve hooks no ERET until the PMU counts EXC_RETURN.
ALIAS_KERNEL = COMMON + r"""
    .text
    .global _start
_start:
    ldr     x0, =stack_top
    mov     sp, x0
    mmu_on_at_alias

    // 0 EXC_RETURN, 1 EXC_TAKEN, 2 INST_RETIRED at EL0 only (P), 3 INST_RETIRED at EL1
    // only (U), 4 CPU_CYCLES, 5 EXC_RETURN at EL0 only (none: EL0 cannot return); the
    // cycle counter everywhere.
    evtype  0, 0x0a
    evtype  1, 0x09
    evtype  2, 0x80000008
    evtype  3, 0x40000008
    evtype  4, 0x11
    evtype  5, 0x8000000a
    ldr     x2, =0x8000003f
    msr     pmcntenset_el0, x2
    mov     x2, #7
    msr     pmcr_el0, x2
    adr     x2, 2f                          // an exception return from EL1 to EL1
    msr     elr_el1, x2
    mov     x2, #0x3c5
    msr     spsr_el1, x2
    eret
2:  mov     x21, #0
    adr     x2, el0_code
    sub     x2, x2, x9                      // EL0 runs at the PA
    msr     elr_el1, x2
    msr     spsr_el1, xzr
    eret
el0_code:
    spin    10
    svc     #0
    b       el0_code

lower_sync:                                 // four SVCs, each returned from at the VA
    add     x21, x21, #1
    cmp     x21, #4
    b.eq    3f
    eret
3:  ldr     x2, =0x8000003f
    msr     pmcntenclr_el0, x2
    counters s_a
    say     s_done
    system_off_any_el

    bad_handler el1

    puts_function
    vector_table vectors, bad, bad, lower_sync, bad

    tail    el0_stack_top
    .balign 4096
tbl:    .skip 4096
"""

# At EL2 with a nested VM behind its stage 2 (at IPA = PA + 1 GiB): counting the VM's
# levels from EL2, and its ERETs where it runs them.
NESTED_KERNEL = COMMON + r"""
    start   vbar_el2
    // L1's stage 2 for its VM: IPA 0 .. 1 GiB -> the devices, IPA 2 GiB .. 3 GiB -> RAM
    // at PA 1 GiB: the VM runs this image's code at IPA = PA + 1 GiB.
    adr     x0, s2tbl
    ldr     x2, =(0x00000000 | (1 << 10) | (3 << 6) | 1)                       // Device, RW
    str     x2, [x0, #0]
    ldr     x2, =(0x40000000 | (1 << 10) | (3 << 8) | (3 << 6) | (0xf << 2) | 1)  // Normal WB, RW
    str     x2, [x0, #16]
    msr     vttbr_el2, x0
    ldr     x2, =0x80023560                 // T0SZ 32, SL0 1, 4K, PS 40 bits
    msr     vtcr_el2, x2
    ldr     x2, =((1 << 31) | 1)            // HCR_EL2.RW, VM
    msr     hcr_el2, x2
    ldr     x2, =(6 | (1 << 6) | (1 << 9))  // MDCR_EL2: HPMN 6, TPM, TDA: the VM's PMU and
    msr     mdcr_el2, x2                    // debug registers trap to EL2
    mov     x9, #0x40000000
    adr     x2, l2_vectors
    add     x2, x2, x9
    msr     vbar_el1, x2
    msr     sctlr_el1, xzr                  // (the VM's stage 1 off: VA = IPA)

    // 0 EXC_RETURN (not at EL2: no NSH), 1 EXC_TAKEN, 2 INST_RETIRED at EL0 only,
    // 3 INST_RETIRED at EL1 only, 4 INST_RETIRED at EL2 only, 5 CPU_CYCLES everywhere;
    // the cycle counter at EL1 only.
    evtype  0, 0x0a
    evtype  1, 0x09
    evtype  2, 0x80000008
    evtype  3, 0x40000008
    evtype  4, 0xc8000008
    evtype  5, 0x08000011
    ldr     x2, =0x40000000
    msr     pmccfiltr_el0, x2
    ldr     x2, =0x8000003f
    msr     pmcntenset_el0, x2
    mov     x2, #7
    msr     pmcr_el0, x2
    adr     x2, l2_el1
    add     x2, x2, x9
    msr     elr_el2, x2
    mov     x2, #0x3c5
    msr     spsr_el2, x2
    ldr     x2, =l2_stack_top
    add     x2, x2, x9
    msr     sp_el1, x2
    isb
    eret

lower_sync:                                 // the VM's trapped PMU/debug accesses: skipped
    mrs     x9, esr_el2
    lsr     x10, x9, #26
    cmp     x10, #0x18
    b.ne    hvc
    say     s_trap
    hex     x9, 32
    say     s_nl
    mrs     x2, elr_el2
    add     x2, x2, #4
    msr     elr_el2, x2
    eret
hvc:                                        // the VM's HVC: stop and print
    ldr     x2, =0x8000003f
    msr     pmcntenclr_el0, x2
    mrs     x9, esr_el2
    say     s_hvc
    hex     x9, 32
    say     s_nl
    counters s_a
    say     s_done
    system_off_any_el

    bad_handler el2

    // The nested VM (at IPA = PA + 1 GiB): EL1 returns to EL0 three times.
l2_el1:
    mov     x21, #0
    adr     x2, l2_el0
    msr     elr_el1, x2
    msr     spsr_el1, xzr
    eret
l2_el0:
    spin    10
    svc     #0
    b       l2_el0
l2_svc:
    add     x21, x21, #1
    cmp     x21, #3
    b.eq    1f
    eret
1:  mrs     x0, pmccntr_el0                 // (TPM)
    msr     dbgbcr0_el1, xzr                // (TDA)
    hvc     #0
l2_bad:
    b       .

    puts_function
    vector_table vectors, bad, bad, lower_sync, bad
    vector_table l2_vectors, l2_bad, l2_bad, l2_svc, l2_bad

s_hvc:  .asciz "HVC, ESR_EL2 "
s_trap: .asciz "trapped, ESR_EL2 "
    tail    l2_stack_top
    .balign 4096
s2tbl:  .skip 4096
"""

@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return build_kernels(tmp_path_factory.mktemp("pmu"), {
        "el1": EL1_KERNEL, "el2": EL2_KERNEL, "alias": ALIAS_KERNEL, "nested": NESTED_KERNEL})


@pytest.fixture(scope="module")
def qemu_out(images):
    return qemu_transcripts(images, el2=("el2", "nested"), icount=True)


def _counts(line: str) -> list[int]:
    return [int(w, 16) for w in line.split(": ")[1].split()]


def _without(line: str, fields: tuple[int, ...]) -> list[int]:
    """A counters line's values with the EXC_TAKEN/EXC_RETURN counters left out (QEMU
    implements neither: they read 0 there)."""
    return [v for i, v in enumerate(_counts(line)) if i not in fields]


@pytest.mark.toolchain
@pytest.mark.parametrize("fast", ["1", "0"], ids=["compiled", "python"])
def test_counting_by_level_events_overflow_and_divider_at_el1(images, qemu_out, monkeypatch, fast):
    monkeypatch.setenv("NEVE_FASTPATH", fast)
    r = run_neve("run", images["el1"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "pmcr 41023000 ", lines
    a = _counts(lines[1])
    # EL1 and EL0 instructions: INST_RETIRED everywhere = CPU_CYCLES at EL1 (not EL0) +
    # INST_RETIRED at EL0 (not EL1), and the cycle counter at EL0 only agrees with it.
    # EL0: three rounds of `spin 50` and the SVC, and the branch back after two returns.
    assert a[0] == a[1] + a[2] and a[6] == a[2] and a[2] == 3 * (2 * 50 + 1 + 1) + 2, a
    assert a[3:6] == [3, 3, 0], a               # 3 SVCs taken, 3 ERETs at EL1, none at EL0
    # B, B2: the overflow interrupts (INTID 23) of the cycle counter and of an event
    # counter, each taken at the instruction count the counter wrapped at (the handler
    # reads 4: its first 3 instructions and the read); B's place is QEMU's (below).
    b, b2 = lines[2].split(), lines[3].split()
    assert b[1:3] == b2[1:3] == ["00000017", "00000004"] and b[4] == b2[4] == "00000000", lines
    c = [int(w, 16) for w in lines[4].split()[1:]]
    assert c == [(2 * 500 + 1 + 3) // 64, 0x2a], lines[4]      # every 64th cycle; not with LC
    assert lines[5:] == ["D: 00000002 00000000 ", "done"], lines
    if qemu_out:
        q = qemu_out["el1"].splitlines()
        assert q[0] == lines[0] and _without(q[1], (3, 4, 5)) == _without(lines[1], (3, 4, 5)), (q, lines)
        assert _counts(q[1])[3:6] == [0, 0, 0]
        assert q[2] == lines[2]                 # the cycle counter's overflow interrupt: QEMU's
        # QEMU 10 raises no overflow interrupt for an event counter (its line B2 is zeros).
        assert q[3] == "B2: 00000000 00000000 0000000000000000 00000000 "
        # QEMU's divider counts the 64-cycle boundaries of its own clock since reset: its
        # phase may differ, the count by one; with LC it counts every cycle.
        qc = [int(w, 16) for w in q[4].split()[1:]]
        assert abs(qc[0] - c[0]) <= 1 and qc[1] == c[1], (q[4], lines[4])
        assert q[5:] == lines[5:]


@pytest.mark.toolchain
@pytest.mark.parametrize("fast", ["1", "0"], ids=["compiled", "python"])
@pytest.mark.parametrize("mode", ["v8.3", "neve", "nv2"])
def test_hpmn_partition_nsh_and_hpmd_at_vel2(images, qemu_out, monkeypatch, mode, fast):
    monkeypatch.setenv("NEVE_FASTPATH", fast)
    r = run_neve("run", "--mode", mode, images["el2"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "EL1 reads PMCR_EL0 41021001 ", lines          # N = HPMN = 2
    a, b = _counts(lines[1]), _counts(lines[2])
    # 0 (NSH) counts EL2 and EL1 until PMCR.E is cleared; 1 only EL1's 2*50+1+1 (MRS, HVC);
    # 2 and 3 (EL2's share) run on after PMCR.E is cleared, 3 at EL2 only.
    assert a[0] - a[1] == a[3] - (a[2] - a[0]) and a[1] == 2 * 50 + 1 + 2, a
    assert a[4:6] == [1, 1], a                  # the HVC taken from EL1, the ERET at EL2
    assert b[0] == b[1] == 0 and b[2] == b[3] > 0 and b[6] == 0, b    # HPMD, with DP the cycle counter
    assert lines[3:] == ["done"], lines
    if qemu_out:
        q = qemu_out["el2"].splitlines()
        assert q[0] == lines[0] and _without(q[1], (4, 5)) == _without(lines[1], (4, 5)), (q, lines)
        assert q[2:] == lines[2:]


@pytest.mark.toolchain
@pytest.mark.parametrize("fast", ["1", "0"], ids=["compiled", "python"])
def test_exception_returns_at_a_va_other_than_their_pa(images, qemu_out, monkeypatch, fast):
    """The kernel runs at VA = PA + 1 GiB (Unicorn walks its tables): its ERETs are
    hooked where they run once EXC_RETURN is counted, one to EL1 and four to EL0."""
    monkeypatch.setenv("NEVE_FASTPATH", fast)
    r = run_neve("run", images["alias"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    a = _counts(lines[0])
    assert a[0:2] == [5, 4] and a[5] == 0, a
    assert a[4] == a[6] == a[2] + a[3], a        # cycles: every instruction, at EL0 or EL1
    assert lines[1:] == ["done"], lines
    if qemu_out:
        q = qemu_out["alias"].splitlines()
        assert _without(q[0], (0, 1, 5)) == _without(lines[0], (0, 1, 5)) and q[1:] == lines[1:], (q, lines)


@pytest.mark.toolchain
@pytest.mark.parametrize("fast", ["1", "0"], ids=["compiled", "python"])
@pytest.mark.parametrize("mode", ["v8.3", "neve", "nv2"])
def test_the_nested_vm_counted_from_vel2(images, qemu_out, monkeypatch, mode, fast):
    """The guest hypervisor counts its VM's EL0, EL1 and its own EL2 apart; the VM's
    ERETs, at IPA = PA + 1 GiB behind L1's stage 2, are EXC_RETURNs (hooked where the
    shadow stage 2 maps them), its SVCs, trapped accesses and HVC EXC_TAKENs."""
    monkeypatch.setenv("NEVE_FASTPATH", fast)
    r = run_neve("run", "--mode", mode, images["nested"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    # L1's MDCR_EL2.TPM and TDA: the VM's PMCCNTR_EL0 read and DBGBCR0_EL1 write trap to
    # it (EC 0x18), as on QEMU.
    assert lines[:3] == ["trapped, ESR_EL2 6230e41b ", "trapped, ESR_EL2 622a03e0 ",
                         "HVC, ESR_EL2 5a000000 "], lines
    a = _counts(lines[3])
    assert a[0:2] == [3, 6], a                  # 3 ERETs at the VM's EL1; 3 SVCs, 2 traps, the HVC
    assert a[2] == 3 * (2 * 10 + 1 + 1) + 2, a  # the VM's EL0: 3 rounds, 2 branches back
    assert a[5] == a[2] + a[3] + a[4] and a[6] == a[3], a
    assert lines[4:] == ["done"], lines
    if qemu_out:
        q = qemu_out["nested"].splitlines()
        assert q[:3] == lines[:3] and _without(q[3], (0, 1)) == _without(lines[3], (0, 1)), (q, lines)
        assert q[4:] == lines[4:]
