"""Accesses that cross a page boundary: both pages are checked (stage 1, and stage 2
for the nested VM), a fault of the second page is taken at the right address with the
right syndrome, unaligned accesses to Normal memory complete while SCTLR.A is clear and
fault (before any translation fault) when it is set.

Each kernel runs a list of cases; a case prints its tag and number, makes one access,
and prints either "ok" and X2 (no fault) or, from the abort handler, ESR and FAR (and,
from the guest hypervisor, "s2", ESR_EL2, FAR_EL2 and HPFAR_EL2 of a stage-2 fault).
The transcript is compared with QEMU's byte for byte: the VM at EL1 and EL0; a guest
hypervisor at (virtual) EL2 with its own MMU on; the nested VM at EL1 and EL0 under a
guest hypervisor's stage 2 (QEMU runs both hypervisors at real EL2).

QEMU runs the cortex-a72 that neve models (QEMU's `max` has FEAT_LSE2, which lets
unaligned exclusives and LDAR/STLR inside 16 bytes complete).

Pages (4 KiB granule, a level-3 table at VA 0x40200000, each page holding bytes
0x00..0x06 and a tag in every doubleword; the same at EL1, EL0 and EL2):
  A RW        B invalid        C RW          D read-only     E Access flag 0
  F RW        G RW             H EL1 only    K RW            L RW
  M RW        N RW at a PA with nothing behind it            (then an invalid page)
  I RW at VA 0x403ff000, the last of the table: the next VA, 0x40400000, has no
  level-2 entry (in the nested VM: a level-3 table at an IPA stage 2 does not map).
Loads that complete read F and G (and G, H); stores that complete write K and L;
stores that fault write the end of A, C and I, which nothing reads (a pair's first
register may or may not have been stored: the Arm ARM leaves it UNKNOWN).
"""
from __future__ import annotations

import subprocess

import pytest

from conftest import CROSS, need_tool, run_neve
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
    # into a page EL0 cannot access (a fault at EL0 only, and of LDTR/STTR at EL1)
    ("ldr x2, [x1]", G + 0xFFC),
    ("ldp q0, q1, [x1]\n fmov x2, d1", G + 0xFF0),
    ("ldtr x2, [x1]", G + 0xFFC),
    ("sttr w2, [x1]", G + 0xFFE),
    ("ldtr x2, [x1]", H + 8),
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
        out.append(f"""
    mov     w0, #'{tag}'
    bl      {prefix}_putc
    mov     w0, #'{i // 10}'
    bl      {prefix}_putc
    mov     w0, #'{i % 10}'
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


# Stage-2 tests (the nested VM): L2's stage 1 maps VA pages 16.. (P = 0x40210000) to
# IPAs 0x40a0x000 that L1's stage 2 maps (or not): P RW, Q invalid, P2 RW, R read-only,
# P3 RW, S AF = 0, P4 RW, T to a PA with nothing behind it.  VA 0x40400000 (after I)
# has a level-3 table at an IPA that stage 2 does not map (a fault on the walk: S1PTW).
P, Q, P2, R, P3, S, P4, T = (0x4021_0000 + 0x1000 * i for i in range(8))
S2_IPA = 0x40A0_0000
S2_PAGES = [0, 1, 5, 2, 6, 3, 7, 4]                # IPA page of P, Q, P2, R, P3, S, P4, T
S2_L3 = [("p", "S2_RW"), (None, None), ("r", "S2_RO"), ("s", "S2_NOAF"), (NOTHING, "S2_RW"),
         ("p2", "S2_RW"), ("p3", "S2_RW"), ("p4", "S2_RW")]
S2_CASES = [
    ("ldr x2, [x1]", P + 0xFFC),
    ("str x2, [x1]", P + 0xFFC),
    ("ldrsw x2, [x1]", P + 0xFFE),
    ("ldrh w2, [x1]", P + 0xFFF),
    ("str w2, [x1, #-4]!", P + 0x1002),
    ("ldp x2, x3, [x1]", P + 0xFF8),
    ("ldr q0, [x1]", P + 0xFF8),
    ("stp q0, q0, [x1]", P + 0xFF0),
    ("ld1 {v0.16b, v1.16b, v2.16b, v3.16b}, [x1]", P + 0xFD0),
    ("ldxr x2, [x1]", P + 0xFFC),
    ("ldr x2, [x1]", Q + 0xFFC),
    ("dc zva, x1", Q + 0x48),
    ("ldr x2, [x1]", P2 + 0xFFC),
    ("str x2, [x1]", P2 + 0xFFC),
    ("stp q0, q0, [x1]", P2 + 0xFF0),
    ("stp q0, q0, [x1]", P2 + 0xFF8),
    ("ldr x2, [x1]", R),                # no store above reached R
    ("ldr x2, [x1]", P3 + 0xFFC),
    ("ldr x2, [x1]", P4 + 0xFFC),
    ("str x2, [x1]", P4 + 0xFFA),
    ("ldr x2, [x1]", T + 0x10),
    ("ldr x2, [x1]", T + 0xFFC),        # the next VA has no stage-1 entry: that comes first
    ("ldp q0, q1, [x1]", T + 0xFF0),
]

# Stage-1 descriptors (4K granule): AF, SH inner, AttrIndx 0 (Normal WB) + AP.
P_RW1 = 0x703            # EL1 RW, EL0 none (at EL2: RW)
P_RW = 0x743             # EL1 and EL0 RW
P_RO = 0x7C3             # EL1 and EL0 RO
P_NOAF = 0x343
BLOCK = 0x701
DEV_BLOCK = 0x0060_0000_0000_0445    # Device, AP EL0 RW, PXN UXN
# Stage-2 descriptors: page, MemAttr Normal WB, SH inner, AF + S2AP.
S2_RW = 0x7FF
S2_RO = 0x77F
S2_NOAF = 0x3FF
S2_BLOCK = 0x7FD
S2_DEV_BLOCK = 0x4C5
EL0_PAGE = 32                        # VA 0x40220000: EL0's code (two pages)
EL0_VA = 0x4020_0000 + 0x1000 * EL0_PAGE


def _page(tag: str, n: int) -> str:
    return f"pg_{tag}: .rept 512\n    .quad 0x{n:02x}06050403020100\n    .endr"


def _desc(t, a) -> str:
    if t is None:
        return "0"
    return f"{'pg_' + t if isinstance(t, str) else hex(t)} + {globals()[a]:#x}"


def tables(nested: bool) -> str:
    """L2's (or the VM's, or vEL2's) stage-1 tables and data pages."""
    l3 = ["0"] * 512
    for i, (t, a) in enumerate(PAGES):
        l3[i] = _desc(t, a)
    l3[EL0_PAGE] = f"el0_page + {P_RO:#x}"
    l3[EL0_PAGE + 1] = f"el0_page + 0x1000 + {P_RO:#x}"
    l3[511] = f"pg_i + {P_RW:#x}"
    data = [t for t, _ in PAGES if isinstance(t, str)] + ["i"]
    l2_2 = "0"
    if nested:
        for i, ipa_page in enumerate(S2_PAGES):
            l3[16 + i] = f"{S2_IPA + 0x1000 * ipa_page:#x} + {P_RW:#x}"
        data += [t for t, _ in S2_L3 if isinstance(t, str)]
        l2_2 = f"{S2_IPA + 0x1000:#x} + 3"         # a table where stage 2 maps nothing
    quads = "\n".join(f"    .quad   {d}" for d in l3)
    pages = "\n".join(_page(t, 0xa0 + i) for i, t in enumerate(data))
    return f"""
    .balign 4096
l1: .quad   {DEV_BLOCK:#x}
    .quad   l2 + 3
    .fill   510, 8, 0
l2: .quad   0x40000000 + {BLOCK:#x}
    .quad   l3 + 3
    .quad   {l2_2}
    .fill   509, 8, 0
l3:
{quads}
{pages}
"""


def kernel(el: int = 1, nested: bool = False) -> str:
    """The cases at EL`el` with its MMU on, then with SCTLR_ELx.A set, then (EL1) at
    EL0; each prints its tag (the EL, 2 for stage 2, A for SCTLR.A) and number.
    `nested`: as L2, under the guest hypervisor of `nested_l1`, with the stage-2
    cases too."""
    x = f"el{el}"
    if el == 1:
        setup = """
    mov     x0, #(3 << 20)              // CPACR_EL1.FPEN: SIMD at EL1 and EL0
    msr     cpacr_el1, x0
    ldr     x0, =(25 | 0x3500 | (1 << 23) | (2 << 32))    // T0SZ 25, 4K, WB, EPD1, 40 bits
    msr     tcr_el1, x0"""
        sctlr, sctlr_a = 0x30D0_5805, 0x30D0_5807     # M, C, I, DZE, SPAN (PAN kept); A
    else:
        setup = """
    ldr     x0, =0x33ff                 // CPTR_EL2: no FP trap
    msr     cptr_el2, x0
    ldr     x0, =(0x80800000 | 25 | 0x3500 | (2 << 16))   // TCR_EL2: T0SZ 25, 4K, WB, 40 bits
    msr     tcr_el2, x0"""
        sctlr, sctlr_a = 0x30C5_1835, 0x30C5_1837
    el0 = s2 = ""
    if el == 1:
        el0 = f"""
    msr     spsr_el1, xzr               // EL0t
    ldr     x0, ={EL0_VA:#x}             // el0_page's VA
    msr     elr_el1, x0
    eret"""
    if nested:
        s2 = cases_code("k", S2_CASES, "2")
    start = "l2_start" if nested else "_start"
    return MACROS + f"""
    .global {start}
{start}:
    ldr     x0, =stack_top
    mov     sp, x0
    ldr     x0, =vectors
    msr     vbar_{x}, x0
    ldr     x0, =0xff
    msr     mair_{x}, x0{setup}
    ldr     x0, =l1
    msr     ttbr0_{x}, x0
    isb
    ldr     x0, ={sctlr:#x}
    msr     sctlr_{x}, x0
    isb
{cases_code("k", CASES, str(el))}
{s2}
    ldr     x0, ={sctlr_a:#x}             // SCTLR.A
    msr     sctlr_{x}, x0
    isb
{cases_code("k", ALIGN_CASES, "A")}
    ldr     x0, ={sctlr:#x}
    msr     sctlr_{x}, x0
    isb
{el0}

done:
    system_off_any_el

sync:
    mrs     x0, esr_{x}
    lsr     x9, x0, #26
    cmp     x9, #0x15                   // SVC from EL0: the end
    b.eq    done
    mov     w0, #' '
    bl      k_putc
    mrs     x0, esr_{x}
    ldr     x1, =0x09000000
    put_hex_x0 32
    mov     w0, #' '
    bl      k_putc
    mrs     x0, far_{x}
    put_hex_x0 64
    mov     w0, #'\n'
    bl      k_putc
    mrs     x0, elr_{x}
    add     x0, x0, #8                  // skip the access and the "ok"
    msr     elr_{x}, x0
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
{cases_code("u", CASES + (S2_CASES if nested else []), "0") if el == 1 else ""}
    svc     #0
{helpers("u")}
    .org    el0_page + 8192             // (an error if EL0's code outgrew its pages)
{tables(nested)}
    .space 4096
stack_top:
""" + (nested_l1() if nested else "")


def nested_l1() -> str:
    """The guest hypervisor (at EL2, its MMU off): a stage 2 that maps L2's image
    (IPA 0x40000000, 2 MiB) and the PL011 one to one and IPAs 0x40a00000.. as S2_L3
    says; it prints each stage-2 abort's ESR_EL2, FAR_EL2 and HPFAR_EL2 and skips the
    access; L2's HVC (PSCI SYSTEM_OFF) ends the run."""
    s2l3 = "\n".join(f"    .quad   {_desc(t, a)}" for t, a in S2_L3)
    return rf"""
    .section .l1, "ax"
    .global _start
_start:
    ldr     x0, =l1_vectors
    msr     vbar_el2, x0
    ldr     x0, =0x33ff                 // CPTR_EL2: no FP trap
    msr     cptr_el2, x0
    ldr     x0, =s2_l1
    mov     x1, #1
    orr     x0, x0, x1, lsl #48         // VMID 1
    msr     vttbr_el2, x0
    ldr     x0, =0x80023559             // T0SZ 25, SL0 1 (level 1), 4K, WB, 40 bits
    msr     vtcr_el2, x0
    ldr     x0, =0x80000001             // RW, VM
    msr     hcr_el2, x0
    mov     x0, #0x3c5
    msr     spsr_el2, x0
    ldr     x0, =l2_start
    msr     elr_el2, x0
    isb
    eret

l1_putc:
    ldr     x5, =0x09000000
    strb    w0, [x5]
    ret

l1_sync:
    mrs     x0, esr_el2
    lsr     x9, x0, #26
    cmp     x9, #0x16                   // L2's HVC: PSCI SYSTEM_OFF
    b.ne    1f
    ldr     x0, =0x84000008
    smc     #0
1:  mov     x10, x30
    mov     w0, #' '
    bl      l1_putc
    mov     w0, #'s'
    bl      l1_putc
    mov     w0, #'2'
    bl      l1_putc
    mov     w0, #' '
    bl      l1_putc
    mrs     x0, esr_el2
    ldr     x1, =0x09000000
    put_hex_x0 32
    mov     w0, #' '
    bl      l1_putc
    mrs     x0, far_el2
    put_hex_x0 64
    mov     w0, #' '
    bl      l1_putc
    mrs     x0, hpfar_el2
    put_hex_x0 64
    mov     w0, #'\n'
    bl      l1_putc
    mov     x30, x10
    mrs     x0, elr_el2
    add     x0, x0, #8
    msr     elr_el2, x0
    eret
    .ltorg

    .balign 2048
l1_vectors:
    .rept 8
    b       .
    .balign 128
    .endr
    b       l1_sync                     // lower EL, AArch64, synchronous
    .balign 128
    .rept 7
    b       .
    .balign 128
    .endr

    .balign 4096
s2_l1:
    .quad   s2_l2dev + 3                // IPA 0: the PL011
    .quad   s2_l2 + 3                   // IPA 0x40000000
    .fill   510, 8, 0
s2_l2dev:
    .fill   0x48, 8, 0
    .quad   0x09000000 + {S2_DEV_BLOCK:#x}
    .fill   (512 - 0x49), 8, 0
s2_l2:
    .quad   0x40000000 + {S2_BLOCK:#x}    // L2's image
    .fill   4, 8, 0
    .quad   s2_l3 + 3                   // IPA 0x40a00000
    .fill   506, 8, 0
s2_l3:
{s2l3}
    .fill   {512 - len(S2_L3)}, 8, 0
"""


def build(tmp_path, name: str, source: str):
    """Assemble and link: L2's (or the one) image at 0x40000000, the guest
    hypervisor's section .l1 at 0x40800000."""
    as_, ld = need_tool(CROSS + "as"), need_tool(CROSS + "ld")
    src, obj, out = tmp_path / f"{name}.S", tmp_path / f"{name}.o", tmp_path / f"{name}.elf"
    src.write_text(source)
    subprocess.run([as_, str(src), "-o", str(obj)], check=True)
    subprocess.run([ld, "-n", "--build-id=none", "-Ttext=0x40000000", "--section-start=.l1=0x40800000",
                    "-e", "_start", str(obj), "-o", str(out)], check=True)
    return out


def run_qemu_a72(img, el2: bool = False) -> bytes | None:
    """QEMU's UART output for `img` on the cortex-a72 neve models (None without QEMU);
    the run must end in SYSTEM_OFF."""
    from neve.qemu import qemu_binary, run_qemu_full
    if qemu_binary() is None:
        return None
    r = run_qemu_full([img], el2=el2, cpu="cortex-a72")
    assert r.status == 0, r.stderr
    return r.stdout


def el1_kernel() -> str:
    return kernel(1)


def el2_kernel() -> str:
    return kernel(2)


def nested_kernel() -> str:
    return kernel(1, nested=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cross")
    return {n: build(tmp, n, f()) for n, f in (("vm", el1_kernel), ("el2", el2_kernel), ("nested", nested_kernel))}


@pytest.fixture(scope="module")
def qemu_out(images):
    """QEMU's transcripts: the VM at EL1, vEL2 and the nested VM at real EL2."""
    return {n: run_qemu_a72(img, el2=n != "vm") for n, img in images.items()}


@pytest.mark.toolchain
def test_el1_and_el0(images, qemu_out):
    """vm mode: EL1, EL1 with SCTLR_EL1.A, EL0."""
    r = run_neve("run", images["vm"], timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    # The bug this fixes: the fault of the second page, not an alignment fault.
    assert "112 96000007 0000000040201000\n" in out, out
    if qemu_out["vm"] is not None:
        assert out == qemu_out["vm"].decode()


NESTED = ("v8.3", "neve", "nv2")


@pytest.mark.toolchain
@pytest.mark.parametrize("mode", NESTED)
def test_vel2(images, qemu_out, mode):
    """A guest hypervisor with its EL2 MMU on (neve's shadow regime "el2"), also with
    SCTLR_EL2.A; QEMU runs it at real EL2."""
    r = run_neve("run", "--mode", mode, images["el2"], timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "212 96000007 0000000040201000\n" in out, out
    if qemu_out["el2"] is not None:
        assert out == qemu_out["el2"].decode()


@pytest.mark.toolchain
@pytest.mark.parametrize("mode", NESTED)
def test_nested_vm(images, qemu_out, mode):
    """The cases of the VM (stage-1 faults: to L2's EL1) and the stage-2 ones (to the
    guest hypervisor, with ESR_EL2's ISV syndrome, FAR_EL2 and HPFAR_EL2), at L2's EL1
    and EL0; QEMU runs L1 at real EL2."""
    r = run_neve("run", "--mode", mode, images["nested"], timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    # LDR X2 crossing into a page stage 2 does not map: ISV, SAS 3, SRT 2, SF; FAR the
    # second page; HPFAR its IPA (0x40a01000).
    assert "200 s2 93c28007 0000000040211000 000000000040a010\n" in out, out
    if qemu_out["nested"] is not None:
        assert out == qemu_out["nested"].decode()
