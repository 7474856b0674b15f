"""Accesses that cross a page boundary: both pages are checked (stage 1, and stage 2
for the nested VM), a fault of the second page is taken at the right address with the
right syndrome, and unaligned accesses to Normal memory complete while SCTLR.A is clear.

Each kernel runs a list of cases; a case prints its letter, makes one access, and
prints either "ok" and X2 (no fault) or, from the abort handler, ESR and FAR (and HPFAR
for a stage-2 fault taken at EL2).  The output is compared with QEMU's byte for byte.

QEMU runs the cortex-a72 that neve models (QEMU's `max` has FEAT_LSE2, which lets
unaligned exclusives and LDAR/STLR inside 16 bytes complete).

Pages (4 KiB granule, a level-3 table at VA 0x40200000, each page holding bytes
0x00..0x06 and a tag in every doubleword; the same at EL1 and EL0):
  A RW        B invalid        C RW          D read-only     E Access flag 0
  F RW        G RW             H EL1 only    K RW            L RW
  I RW at VA 0x403ff000, the last of the table: the next VA, 0x40400000, has no
  level-2 entry.
Loads that complete read F and G (and G, H); stores that complete write K and L;
stores that fault write the end of A, C and I, which nothing reads (a pair's first
register may or may not have been stored: the Arm ARM leaves it UNKNOWN).
"""
from __future__ import annotations

import pytest

from conftest import assemble, run_neve
from guest_asm import MACROS

A, B, C, D, E, F, G, H, K, L, M, N = (0x4020_0000 + 0x1000 * i for i in range(12))
I_ = 0x403F_F000
NOTHING = 0x1_0000_0000             # a PA with nothing behind it (QEMU virt, 128 MiB)
# (tag of a page of data in the image, or a PA; the descriptor's attributes)
PAGES = [("a", "P_RW"), (None, None), ("c", "P_RW"), ("d", "P_RO"), ("e", "P_NOAF"), ("f", "P_RW"),
         ("g", "P_RW"), ("h", "P_RW1"), ("k", "P_RW"), ("l", "P_RW"), ("m", "P_RW"), (NOTHING, "P_RW"),
         (None, None)]

# (instructions, address in x1); x2, x3 and v0..v3 are preset.
CASES = [
    # loads that cross into a mapped page, or are unaligned inside one: no fault
    ("ldr x2, [x1]", F + 0xFFD),
    ("ldr x2, [x1]", F + 3),
    ("ldrh w2, [x1]", F + 0xFFF),
    ("ldp x2, x3, [x1]", F + 0xFFC),
    ("ldp w3, w2, [x1]", F + 0xFFE),
    ("ldr q0, [x1]\n fmov x2, d0", F + 0xFFB),
    ("ldp q0, q1, [x1]\n fmov x2, v1.d[1]", F + 0xFF8),
    ("ld1 {v0.16b, v1.16b, v2.16b, v3.16b}, [x1]\n fmov x2, v2.d[1]", F + 0xFD4),
    ("ldr x2, [x1, #8]!\n ldr x2, [x1, #-4]", F + 0xFF5),
    # stores into a mapped page, read back
    ("str x2, [x1]\n ldr x2, [x1, #-2]", K + 0xFFE),
    ("stp q0, q1, [x1]\n ldr x2, [x1, #0xc]", L - 0x14),
    ("stp w3, w2, [x1]\n ldr x2, [x1, #-1]", K + 0xFFD),
    # into an invalid page: a level-3 translation fault, FAR the second page's start
    ("ldr x2, [x1]", A + 0xFFC),
    ("str x2, [x1]", A + 0xFFC),
    ("ldrh w2, [x1]", A + 0xFFF),
    ("ldr w2, [x1]", A + 0xFFD),
    ("ldp x2, x3, [x1]", A + 0xFF8),
    ("ldp x2, x3, [x1]", A + 0xFF4),
    ("stp x2, x3, [x1]", A + 0xFFC),
    ("ldp w2, w3, [x1]", A + 0xFFA),
    ("ldr q0, [x1]", A + 0xFF8),
    ("str q0, [x1]", A + 0xFF4),
    ("stp q0, q0, [x1]", A + 0xFF0),
    ("stp q0, q0, [x1]", A + 0xFE8),
    ("ldp q0, q1, [x1]", A + 0xFE4),
    ("ld1 {v0.16b, v1.16b, v2.16b, v3.16b}, [x1]", A + 0xFD0),
    ("st1 {v0.2d, v1.2d}, [x1]", A + 0xFF0),
    ("ldr x2, [x1, #8]!", A + 0xFF6),
    ("ldr x2, [x1], #8", A + 0xFFA),
    ("ldur x2, [x1, #-3]", A + 0xFFF),
    # exclusives and acquire/release: the alignment fault comes first
    ("ldxr x2, [x1]", A + 0xFFC),
    ("stlr w2, [x1]", A + 0xFFE),
    ("ldaxp x2, x3, [x1]", A + 0xFF8),
    # into a read-only page (stores), a page whose AF is 0, a missing level-2 entry
    ("str x2, [x1]", C + 0xFFC),
    ("stp x2, x3, [x1]", C + 0xFF8),
    ("stp q0, q0, [x1]", C + 0xFF0),
    ("ldr x2, [x1]", D + 0xFFE),
    ("str w2, [x1]", D + 0xFFE),
    ("ldr x2, [x1]", I_ + 0xFFC),
    ("stp q0, q0, [x1]", I_ + 0xFF0),
    # into a page whose PA has nothing behind it: a synchronous external abort; from
    # there into an invalid page: the translation fault comes first
    ("ldr x2, [x1]", M + 0xFFC),
    ("stp q0, q0, [x1]", M + 0xFF0),
    ("ldr x2, [x1]", N + 0xFFC),
    ("ldr x2, [x1]", N + 0x10),
    ("ldp q0, q1, [x1]", N + 0xFF0),
    ("ldr q0, [x1]", N + 0xFF8),
    ("ldp x2, x3, [x1]", N + 0xFFC),
    # into a page EL0 cannot access (a fault at EL0 only)
    ("ldr x2, [x1]", G + 0xFFC),
    ("ldp q0, q1, [x1]\n fmov x2, d1", G + 0xFF0),
]

# SCTLR.A set: unaligned accesses fault, before the translation of either page.
ALIGN_CASES = [
    ("ldr x2, [x1]", F + 3),
    ("ldr x2, [x1]", A + 0xFFC),
    ("ldr x2, [x1]", B + 4),
    ("ldr q0, [x1]", F + 8),
    ("ldp x2, x3, [x1]", A + 0xFF8),
    ("str w2, [x1]", C + 0xFFE),
    ("ldr x2, [x1]", F + 8),
]


def cases_code(prefix: str, cases, tag: str) -> str:
    """Code that runs `cases` (position independent, no stack): each prints its tag
    letter and either ' ok X2' or, from the handler, the syndrome."""
    out = []
    for i, (insn, addr) in enumerate(cases):
        letter = chr(ord("a") + i) if i < 26 else chr(ord("A") + i - 26)
        out.append(f"""
    mov     w0, #'{tag}'
    bl      {prefix}_putc
    mov     w0, #'{letter}'
    bl      {prefix}_putc
    ldr     x2, =0x1716151413121110
    ldr     x3, =0x2726252423222120
    dup     v0.2d, x2
    dup     v1.2d, x3
    dup     v2.2d, x2
    dup     v3.2d, x3
    ldr     x1, ={addr:#x}
    {insn}
    bl      {prefix}_ok""")
    return "\n".join(out)


def helpers(prefix: str) -> str:
    return f"""
{prefix}_putc:
    ldr     x5, =0x09000000
    strb    w0, [x5]
    ret
{prefix}_ok:                            // " ok " X2 "\\n"
    mov     x27, x30
    mov     w0, #' '
    bl      {prefix}_putc
    mov     w0, #'o'
    bl      {prefix}_putc
    mov     w0, #'k'
    bl      {prefix}_putc
    mov     w0, #' '
    bl      {prefix}_putc
    mov     x0, x2
    ldr     x1, =0x09000000
    put_hex_x0 64
    mov     w0, #'\\n'
    bl      {prefix}_putc
    ret     x27
    .ltorg
"""


# Stage-1 descriptors (4K granule): AF, SH inner, AttrIndx 0 (Normal WB) + AP.
P_RW1 = 0x703            # EL1 RW, EL0 none
P_RW = 0x743             # EL1 and EL0 RW
P_RO = 0x7C3             # EL1 and EL0 RO
P_NOAF = 0x343
BLOCK = 0x701
DEV_BLOCK = 0x0060_0000_0000_0445    # Device, AP EL0 RW, PXN UXN

def _page(tag: str, n: int) -> str:
    return f"pg_{tag}: .rept 512\n    .quad 0x{n:02x}06050403020100\n    .endr"


def _l3(t, a) -> str:
    if t is None:
        return "    .quad   0"
    return f"    .quad   {'pg_' + t if isinstance(t, str) else hex(t)} + {globals()[a]:#x}"


_L3 = "\n".join(_l3(t, a) for t, a in PAGES)
_DATA = "\n".join(_page(t, 0xa0 + i) for i, (t, _) in enumerate(PAGES + [("i", 1)]) if isinstance(t, str))

TABLES = f"""
    .balign 4096
l1: .quad   {DEV_BLOCK:#x}
    .quad   l2 + 3
    .fill   510, 8, 0
l2: .quad   0x40000000 + {BLOCK:#x}
    .quad   l3 + 3
    .fill   510, 8, 0
l3:
{_L3}
    .fill   {15 - len(PAGES)}, 8, 0
    .quad   el0_page + {P_RO:#x}           // VA 0x4020f000: EL0's code
    .fill   495, 8, 0
    .quad   pg_i + {P_RW:#x}
{_DATA}
"""


def el1_kernel() -> str:
    """vm mode: the cases at EL1, at EL1 with SCTLR_EL1.A set, then at EL0."""
    return MACROS + f"""
    .global _start
_start:
    ldr     x0, =stack_top
    mov     sp, x0
    ldr     x0, =vectors
    msr     vbar_el1, x0
    mov     x0, #(3 << 20)              // CPACR_EL1.FPEN: SIMD at EL1 and EL0
    msr     cpacr_el1, x0
    ldr     x0, =0xff
    msr     mair_el1, x0
    ldr     x0, =(25 | 0x3500 | (1 << 23) | (2 << 32))
    msr     tcr_el1, x0
    ldr     x0, =l1
    msr     ttbr0_el1, x0
    isb
    ldr     x0, =0x30d01805             // M, C, I, SPAN (PAN untouched), A clear
    msr     sctlr_el1, x0
    isb
{cases_code("k", CASES, "1")}
    ldr     x0, =0x30d01807             // SCTLR_EL1.A
    msr     sctlr_el1, x0
    isb
{cases_code("k", ALIGN_CASES, "A")}
    ldr     x0, =0x30d01805
    msr     sctlr_el1, x0
    isb
    msr     spsr_el1, xzr               // EL0t
    ldr     x0, =0x4020f000           // el0_page's VA
    msr     elr_el1, x0
    eret

done:
    ldr     x0, =0x84000008
    hvc     #0
    b       .

sync:
    mrs     x0, esr_el1
    lsr     x9, x0, #26
    cmp     x9, #0x15                   // SVC from EL0: the end
    b.eq    done
    mov     w0, #' '
    bl      k_putc
    mrs     x0, esr_el1
    ldr     x1, =0x09000000
    put_hex_x0 32
    mov     w0, #' '
    bl      k_putc
    mrs     x0, far_el1
    put_hex_x0 64
    mov     w0, #'\\n'
    bl      k_putc
    mrs     x0, elr_el1
    add     x0, x0, #8                  // skip the access and the "ok"
    msr     elr_el1, x0
    eret
{helpers("k")}

    .balign 2048
vectors:
    .rept 4
    b       .
    .balign 128
    .endr
    b       sync                        // current EL, SP_ELx
    .balign 128
    .rept 3
    b       .
    .balign 128
    .endr
    b       sync                        // lower EL, AArch64
    .balign 128
    .rept 7
    b       .
    .balign 128
    .endr

    .balign 4096
el0_page:
{cases_code("u", CASES, "0")}
    svc     #0
{helpers("u")}
    .org    el0_page + 4096             // (an error if EL0's code outgrew its page)
{TABLES}
    .space 4096
stack_top:
"""


def run_qemu_a72(img, el2: bool = False) -> bytes | None:
    """QEMU's UART output for `img` on the cortex-a72 neve models (None without QEMU);
    the run must end in SYSTEM_OFF."""
    from neve.qemu import qemu_binary, run_qemu_full
    if qemu_binary() is None:
        return None
    r = run_qemu_full([img], el2=el2, cpu="cortex-a72")
    assert r.status == 0, r.stderr
    return r.stdout


@pytest.mark.toolchain
def test_el1_and_el0(tmp_path):
    """vm mode: EL1, EL1 with SCTLR_EL1.A, EL0."""
    img = assemble(tmp_path, "cross1", el1_kernel(), 0x4000_0000)
    r = run_neve("run", img, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    # The bug this fixes: the fault of the second page, not an alignment fault.
    assert "1m 96000007 0000000040201000\n" in out, out
    qemu = run_qemu_a72(img)
    if qemu is not None:
        assert out == qemu.decode()
