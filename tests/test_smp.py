"""Several vCPUs (`--smp N`): a small kernel written for QEMU's virt board brings
its CPUs up with PSCI and makes them work together, and its transcript must equal QEMU
10's with `-smp N` (QEMU runs the CPUs in parallel threads: the kernel prints only what
does not depend on how they interleave).

What it does, from CPU 0 at EL1:
- AFFINITY_INFO of affinities 1..8: OFF for a CPU that exists, INVALID_PARAMETERS past
  the last one;
- CPU_ON of each in turn (context id = its number); each secondary prints its MPIDR_EL1,
  sets up its own GIC redistributor and checks in (a store-release CPU 0 waits for); a
  CPU_ON past the last CPU is INVALID_PARAMETERS, and of CPU 1 again ALREADY_ON; then
  AFFINITY_INFO says ON;
- an SGI to each secondary in turn (ICC_SGI1R_EL1 by target list), then one to all the
  others at once (IRM): each takes it in its IRQ handler (it waits in WFI) and reports
  the INTID it acknowledged;
- a shared counter incremented 3,000 times by every CPU with LDAXR/STLXR: the total is
  exact only if a store-exclusive fails when another CPU wrote the location since the
  load-exclusive (the quanta switch CPUs in the middle of those loops);
- CPU_OFF by each secondary, CPU 0 polling AFFINITY_INFO until it says OFF; then
  SYSTEM_OFF.
"""
from __future__ import annotations

import json

import pytest

from conftest import need_qemu, run_neve
from guest_asm import MACROS, build_kernel

SMP_KERNEL = MACROS + r"""
    .equ    GICD, 0x08000000
    .equ    GICR, 0x080A0000
    .equ    COUNT, 3000

    .macro  newline
    stp     x0, x1, [sp, #-16]!
    ldr     x1, =0x09000000
    mov     w0, #'\n'
    strb    w0, [x1]
    ldp     x0, x1, [sp], #16
    .endm

    .macro  psci fid, a1, a2, a3            // over HVC at EL1, SMC at EL2
    mov     x1, \a1
    mov     x2, \a2
    mov     x3, \a3
    mrs     x0, CurrentEL
    cmp     x0, #(2 << 2)
    ldr     x0, =\fid
    b.eq    98f
    hvc     #0
    b       99f
98: smc     #0
99:
    .endm

    // VBAR of the current EL; at EL2 also HCR_EL2.IMO, so that physical IRQs are
    // taken at EL2 (clobbers x0).
    .macro  set_vectors
    mrs     x0, CurrentEL
    cmp     x0, #(2 << 2)
    adr     x0, vectors
    b.eq    96f
    msr     vbar_el1, x0
    b       97f
96: msr     vbar_el2, x0
    mov     x0, #(1 << 31)                  // HCR_EL2: RW, IMO
    orr     x0, x0, #(1 << 4)
    msr     hcr_el2, x0
    isb
97:
    .endm

    .text
    .global _start
_start:
    mov     x19, #0                         // this CPU's number
    ldr     x0, =stacks + 4096
    mov     sp, x0
    set_vectors
    ldr     x1, =GICD
    mov     w0, #0x12                       // GICD_CTLR: ARE, EnableGrp1
    str     w0, [x1]
    bl      gic_cpu_init
    say     s_up

    mov     x20, #1                         // AFFINITY_INFO of 1..8
1:  psci    0xC4000004, x20, #0, #0
    say     s_aff
    hex     x20, 4
    hex     x0, 16
    newline
    add     x20, x20, #1
    cmp     x20, #9
    b.ne    1b

    mov     x20, #1                         // CPU_ON of each, in turn
2:  adr     x4, secondary
    psci    0xC4000003, x20, x4, x20
    say     s_on
    hex     x20, 4
    hex     x0, 16
    newline
    cbnz    x0, 4f
    ldr     x1, =up
    add     x1, x1, x20, lsl #2
3:  ldar    w0, [x1]                        // its MPIDR_EL1, once it is up
    cbz     w0, 3b
    say     s_sec
    hex     x20, 4
    hex     x0, 32
    newline
    add     x20, x20, #1
    cmp     x20, #9
    b.ne    2b
4:  mov     x21, x20                        // x21 = the number of CPUs

    mov     x5, #1                          // CPU 1 again: ALREADY_ON (or INVALID_PARAMETERS)
    adr     x4, secondary
    psci    0xC4000003, x5, x4, x5
    say     s_again
    hex     x0, 16
    newline
    mov     x5, #1
    psci    0xC4000004, x5, #0, #0
    say     s_aff1
    hex     x0, 16
    newline

    mov     x20, #1                         // an SGI to each secondary in turn
5:  cmp     x20, x21
    b.eq    7f
    mov     x0, #1
    lsl     x0, x0, x20                     // TargetList bit = Aff0
    orr     x0, x0, #(3 << 24)              // INTID 3
    msr     S3_0_C12_C11_5, x0              // ICC_SGI1R_EL1
    isb
    ldr     x1, =acks
    add     x1, x1, x20, lsl #2
6:  ldar    w0, [x1]
    cmp     w0, #3
    b.ne    6b
    say     s_sgi
    hex     x20, 4
    hex     x0, 8
    newline
    add     x20, x20, #1
    b       5b

7:  mov     x0, #(5 << 24)                  // INTID 5 to every CPU but this one (IRM)
    orr     x0, x0, #(1 << 40)
    msr     S3_0_C12_C11_5, x0
    isb
    mov     x20, #1
8:  cmp     x20, x21
    b.eq    10f
    ldr     x1, =acks
    add     x1, x1, x20, lsl #2
9:  ldar    w0, [x1]
    cmp     w0, #5
    b.ne    9b
    add     x20, x20, #1
    b       8b
10: say     s_irm
    newline

    ldr     x1, =go                         // the counter: everyone adds COUNT
    mov     w0, #1
    stlr    w0, [x1]
    bl      wake_all
    bl      add_count
    ldr     x1, =done
11: ldar    w0, [x1]
    cmp     w0, w21
    b.ne    11b
    ldr     x1, =counter
    ldr     w0, [x1]
    say     s_count
    hex     x0, 32
    newline

    ldr     x1, =off                        // CPU_OFF of the secondaries
    mov     w0, #1
    stlr    w0, [x1]
    bl      wake_all
    mov     x20, #1
12: cmp     x20, x21
    b.eq    14f
13: psci    0xC4000004, x20, #0, #0
    cmp     x0, #1
    b.ne    13b
    say     s_off
    hex     x20, 4
    newline
    add     x20, x20, #1
    b       12b
14: say     s_bye
    system_off_any_el

// Every secondary out of WFI (INTID 7, IRM).
wake_all:
    mov     x0, #(7 << 24)
    orr     x0, x0, #(1 << 40)
    msr     S3_0_C12_C11_5, x0
    isb
    ret

// COUNT atomic increments of the shared counter, then one of `done`.
add_count:
    ldr     x1, =counter
    mov     x3, #COUNT
15: ldaxr   w0, [x1]
    add     w0, w0, #1
    stlxr   w2, w0, [x1]
    cbnz    w2, 15b
    subs    x3, x3, #1
    b.ne    15b
    ldr     x1, =done
16: ldaxr   w0, [x1]
    add     w0, w0, #1
    stlxr   w2, w0, [x1]
    cbnz    w2, 16b
    ret

// This CPU's redistributor awake, its SGIs group 1 and enabled, its interface open.
gic_cpu_init:
    ldr     x1, =GICR
    add     x1, x1, x19, lsl #17            // 128 KiB per CPU
    ldr     w0, [x1, #0x14]                 // GICR_WAKER.ProcessorSleep = 0
    bic     w0, w0, #2
    str     w0, [x1, #0x14]
17: ldr     w0, [x1, #0x14]
    tbnz    w0, #2, 17b
    add     x1, x1, #0x10000                // SGI_base
    mov     w0, #0xffff
    str     w0, [x1, #0x80]                 // GICR_IGROUPR0: SGIs group 1
    str     w0, [x1, #0x100]                // GICR_ISENABLER0
    mov     x0, #0xff
    msr     S3_0_C4_C6_0, x0                // ICC_PMR_EL1
    mov     x0, #1
    msr     S3_0_C12_C12_7, x0              // ICC_IGRPEN1_EL1
    isb
    ret

secondary:                                  // x0 = the context id: this CPU's number
    mov     x19, x0
    ldr     x1, =stacks + 4096
    add     x1, x1, x19, lsl #12
    mov     sp, x1
    set_vectors
    bl      gic_cpu_init
    mrs     x0, mpidr_el1                   // checks in with its MPIDR_EL1 (CPU 0 prints it)
    ldr     x1, =up
    add     x1, x1, x19, lsl #2
    stlr    w0, [x1]
    msr     daifclr, #2
18: wfi                                     // SGIs, until CPU 0 says go
    ldr     x1, =go
    ldar    w0, [x1]
    cbz     w0, 18b
    bl      add_count
19: wfi
    ldr     x1, =off
    ldar    w0, [x1]
    cbz     w0, 19b
    psci    0x84000002, #0, #0, #0          // CPU_OFF
20: b       20b

irq:
    stp     x0, x1, [sp, #-16]!
    mrs     x0, S3_0_C12_C12_0              // ICC_IAR1_EL1
    msr     S3_0_C12_C12_1, x0              // ICC_EOIR1_EL1
    cmp     x0, #7
    b.eq    21f
    ldr     x1, =acks
    add     x1, x1, x19, lsl #2
    stlr    w0, [x1]
21: ldp     x0, x1, [sp], #16
    eret

sync:
    say     s_sync
    mrs     x0, CurrentEL
    cmp     x0, #(2 << 2)
    mrs     x0, esr_el1
    b.ne    22f
    mrs     x0, esr_el2
22: hex     x0, 32
    system_off_any_el

    puts_function
    vectors_current_spx sync, irq

    .balign 8
s_up:    .asciz "smp: cpu0 up\n"
s_aff:   .asciz "affinity_info "
s_on:    .asciz "cpu_on "
s_again: .asciz "cpu_on 1 again "
s_aff1:  .asciz "affinity_info 1 "
s_sec:   .asciz "secondary "
s_sgi:   .asciz "sgi3 acked by cpu "
s_irm:   .asciz "sgi5 (irm) acked by every other cpu"
s_count: .asciz "counter "
s_off:   .asciz "off: cpu "
s_bye:   .asciz "bye\n"
s_sync:  .asciz "unexpected exception esr="
    .ltorg

    .data
    .balign 64
up:      .fill 9, 4, 0
    .balign 64
acks:    .fill 9, 4, 0
    .balign 64
go:      .word 0
    .balign 64
off:     .word 0
    .balign 64
done:    .word 0
    .balign 64
counter: .word 0
    .balign 4096
stacks:  .fill 9 * 4096, 1, 0
"""


@pytest.fixture(scope="module")
def smp_kernel(tmp_path_factory):
    return build_kernel(tmp_path_factory.mktemp("smp"), "smp", SMP_KERNEL)


def _neve(kernel, *args, stats=None):
    extra = ["--stats", str(stats)] if stats else []
    if "--mode" not in args:
        args = ("--mode", "vm", *args)
    return run_neve("run", *args, *extra, kernel, "--timeout", "120", timeout=180)


def expected(n: int) -> str:
    """What the kernel prints with n CPUs (the transcript QEMU and neve must give)."""
    lines = ["smp: cpu0 up"]
    lines += [f"affinity_info {a:x} {1 if a < n else 0xfffe:04x} " for a in range(1, 9)]
    for a in range(1, min(n, 8) + 1):
        if a < n:
            lines.append(f"cpu_on {a:x} 0000 ")
            lines.append(f"secondary {a:x} {0x80000000 | a:08x} ")
        else:
            lines.append(f"cpu_on {a:x} fffe ")
    lines.append(f"cpu_on 1 again {'fffc' if n > 1 else 'fffe'} ")
    lines.append(f"affinity_info 1 {'0000' if n > 1 else 'fffe'} ")
    lines += [f"sgi3 acked by cpu {a:x} 03 " for a in range(1, n)]
    lines.append("sgi5 (irm) acked by every other cpu")
    lines.append(f"counter {3000 * n:08x} ")
    lines += [f"off: cpu {a:x} " for a in range(1, n)]
    lines.append("bye")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("mode, n", [("vm", 1), ("vm", 2), ("vm", 4), ("v8.3", 2), ("neve", 4), ("nv2", 2),
                                     ("nv2", 4), ("v8.3", 1)])
def test_smp_kernel_matches_qemu(smp_kernel, mode, n, tmp_path):
    """The transcript with --smp N is QEMU's with -smp N (and what the kernel means): at
    EL1 in vm mode, at virtual EL2 in the nested modes (PSCI over SMC, each CPU_ON
    starting its CPU at vEL2, as QEMU's PSCI starts it at EL2 with virtualization=on)."""
    stats = tmp_path / "s.json"
    r = _neve(smp_kernel, "--mode", mode, "--smp", str(n), stats=stats)
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode()
    assert out == expected(n)
    need_qemu()
    from neve.qemu import run_qemu_full
    q = run_qemu_full([smp_kernel], cpu="cortex-a72", smp=n, semihosting=False, el2=mode != "vm")
    assert q.status == 0, q.stderr
    assert q.stdout.decode() == out


def test_smp_is_deterministic(smp_kernel, tmp_path):
    """Same image and options: the same transcript, instruction and trap counts and
    virtual time, every run; another quantum interleaves the CPUs differently (the
    counter's LDAXR/STLXR loops are cut elsewhere) and prints the same."""
    docs, outs = [], []
    for i, q in enumerate(["100000", "100000", "997", "53"]):
        stats = tmp_path / f"s{i}.json"
        r = _neve(smp_kernel, "--smp", "4", "--quantum", q, stats=stats)
        assert r.returncode == 0, r.stderr.decode()
        outs.append(r.stdout.decode())
        docs.append(json.loads(stats.read_text()))
    assert outs[0] == outs[1] == outs[2] == outs[3] == expected(4)
    strip = lambda d: {k: d[k] for k in ("instructions", "traps", "virtual_time") if k in d}
    assert strip(docs[0]) == strip(docs[1])
    for d in docs:      # each CPU's own count, adding up to the machine's
        assert d["cpus"]["count"] == 4 and sum(d["cpus"]["instructions"]) == d["instructions"]
        assert all(n > 0 for n in d["cpus"]["instructions"])
    assert docs[2]["cpus"]["quantum"] == 997
    assert docs[0]["instructions"] == docs[1]["instructions"]
    assert docs[2]["instructions"] != docs[0]["instructions"] or docs[3]["instructions"] != docs[0]["instructions"]


@pytest.mark.parametrize("args, msg", [
    (["--smp", "0"], "--smp"),
    (["--smp", "99"], "--smp 99: the board has 1 to 8 CPUs"),
    (["--smp", "2", "--quantum", "0"], "--quantum"),
])
def test_smp_bad_input(smp_kernel, args, msg):
    r = run_neve("run", *args, smp_kernel, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert msg in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2


def test_psci_answers_for_several_cpus():
    """PSCI's answers from the power states of the board's CPUs (the PSCI 1.1 return
    codes, as QEMU's virt gives them)."""
    from neve.core import psci
    power = {0: "on", 1: "off", 2: "on"}
    assert psci.call([psci.PSCI_AFFINITY_INFO64, 1, 0, 0], 0, power) == (psci.AFFINITY_OFF, None)
    assert psci.call([psci.PSCI_AFFINITY_INFO64, 2, 0, 0], 0, power) == (psci.AFFINITY_ON, None)
    assert psci.call([psci.PSCI_AFFINITY_INFO64, 3, 0, 0], 0, power) == (psci.INVALID_PARAMETERS, None)
    assert psci.call([psci.PSCI_CPU_ON64, 1, 0x4000_0000, 7], 0, power) == (psci.SUCCESS, "cpu-on")
    assert psci.call([psci.PSCI_CPU_ON64, 2, 0x4000_0000, 7], 0, power) == (psci.ALREADY_ON, None)
    assert psci.call([psci.PSCI_CPU_ON, 9, 0x4000_0000, 7], 0, power) == (psci.INVALID_PARAMETERS, None)
    assert psci.call([psci.PSCI_CPU_ON, 1 | 1 << 31, 0x4000_0000, 7], 0, power)[0] == psci.INVALID_PARAMETERS
    assert psci.call([psci.PSCI_CPU_OFF, 0, 0, 0], 2, power) == (None, "cpu-off")
    # One CPU: as before SMP.
    assert psci.call([psci.PSCI_CPU_ON64, 0, 0, 0], 0) == (psci.ALREADY_ON, None)
    assert psci.call([psci.PSCI_AFFINITY_INFO64, 1, 0, 0], 0) == (psci.INVALID_PARAMETERS, None)
