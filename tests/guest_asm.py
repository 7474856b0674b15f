"""Assembly macros shared by the small kernels the tests assemble (GNU as), and
`build_kernel`, which assembles and links one at RAM's base (`build_kernels`: several),
and `qemu_transcripts`, what QEMU prints for each.

- `put_hex_x0 BITS`: print the low BITS bits of x0 in lower-case hex on the PL011
  whose data register address is in x1 (clobbers x2-x5).
- `system_off_any_el`: PSCI SYSTEM_OFF over HVC at EL1 and over SMC at EL2, so one
  image runs in vm mode (EL1) and at (virtual) EL2 (clobbers x0, x2).
- `puts_function`: a function `puts` that prints the NUL-terminated string at x0 on
  the PL011 (clobbers x5, x6).
- `vectors_current_spx SYNC, IRQ`: a vector table labelled `vectors` whose current-EL
  SP_ELx synchronous and IRQ entries branch to SYNC and IRQ; every other entry spins.
- `gic_enable_ppi INTID, PRIO`: the GICv3 of QEMU's virt board ready to signal PPI
  INTID (group 1, priority PRIO) to this CPU's EL1: distributor group 1 on, the
  redistributor awake, the PPI enabled, ICC_PMR_EL1 open, ICC_IGRPEN1_EL1 set
  (clobbers x0, x1).
- `start VBAR`: `_start`, with SP at `stack_top` and VBAR (e.g. vbar_el2) at `vectors`.
- `stacks LOWER`: the literal pool, a 2 KiB stack ending at `stack_top` and a 1 KiB
  one ending at LOWER (for a lower EL).
- `say LABEL`, `hex REG, BITS` (with `puts_function`): print the string at LABEL, or
  REG's low BITS bits in hex and a space, on the PL011 (keep x0-x4 and x30; need a
  stack).
- `mmu_on_at_alias`: the EL1&0 stage 1 on with RAM mapped twice, at its PA (EL1 only,
  then EL0 too) and at PA + 1 GiB (EL1 only), the devices at theirs (XN); the code
  goes on at the second mapping, as a kernel's linear map differs from its PAs, with
  VBAR_EL1 (`vectors`) and SP (`stack_top`) there; x9 = 1 GiB, the offset.  Needs a
  page-aligned, 4 KiB `tbl` (clobbers x0, x2, x3).
"""

MACROS = r"""
    .macro put_hex_x0 bits
    mov     x2, #\bits
91: sub     x2, x2, #4
    lsr     x3, x0, x2
    and     x3, x3, #0xf
    add     x4, x3, #'0'
    add     x5, x3, #('a' - 10)
    cmp     x3, #10
    csel    x4, x5, x4, ge
    strb    w4, [x1]
    cbnz    x2, 91b
    .endm

    .macro puts_function
puts:
    ldr     x5, =0x09000000
95: ldrb    w6, [x0], #1
    cbz     w6, 96f
    strb    w6, [x5]
    b       95b
96: ret
    .endm

    .macro vectors_current_spx sync, irq
    .balign 2048
vectors:
    .rept 4
    b       .
    .balign 128
    .endr
    b       \sync                       // current EL, SP_ELx, synchronous
    .balign 128
    b       \irq                        // current EL, SP_ELx, IRQ
    .balign 128
    .rept 10
    b       .
    .balign 128
    .endr
    .endm

    // GICR_WAKER.ProcessorSleep cleared, and ChildrenAsleep waited for (clobbers x0, x1).
    .macro gic_wake_redistributor
    ldr     x1, =0x080A0000
    ldr     w0, [x1, #0x14]
    bic     w0, w0, #2
    str     w0, [x1, #0x14]
97: ldr     w0, [x1, #0x14]
    tbnz    w0, #2, 97b
    .endm

    // The GICv3 ready to signal SPI INTID (group 1, PRIO, routed to this CPU) to EL1.
    .macro gic_enable_spi intid, prio
    ldr     x1, =0x08000000
    mov     w0, #0x12                     // GICD_CTLR: ARE, EnableGrp1
    str     w0, [x1]
    gic_wake_redistributor
    ldr     x1, =0x08000000
    ldr     w0, [x1, #(0x80 + (\intid / 32) * 4)]
    orr     w0, w0, #(1 << (\intid % 32))
    str     w0, [x1, #(0x80 + (\intid / 32) * 4)]
    mov     w0, #\prio
    strb    w0, [x1, #(0x400 + \intid)]
    str     xzr, [x1, #(0x6000 + 8 * \intid)]
    mov     w0, #(1 << (\intid % 32))
    str     w0, [x1, #(0x100 + (\intid / 32) * 4)]
    mov     x0, #0xff
    msr     S3_0_C4_C6_0, x0              // ICC_PMR_EL1
    mov     x0, #1
    msr     S3_0_C12_C12_7, x0            // ICC_IGRPEN1_EL1
    isb
    .endm

    .macro gic_enable_ppi intid, prio
    ldr     x1, =0x08000000             // GICD_CTLR.EnableGrp1
    mov     w0, #2
    str     w0, [x1]
    gic_wake_redistributor
    ldr     x1, =0x080B0000             // SGI_base: group 1, priority, enable
    ldr     w0, [x1, #0x80]
    orr     w0, w0, #(1 << \intid)
    str     w0, [x1, #0x80]
    mov     w0, #\prio
    strb    w0, [x1, #(0x400 + \intid)]
    mov     w0, #(1 << \intid)
    str     w0, [x1, #0x100]
    mov     x0, #0xff
    msr     S3_0_C4_C6_0, x0            // ICC_PMR_EL1
    mov     x0, #1
    msr     S3_0_C12_C12_7, x0          // ICC_IGRPEN1_EL1
    isb
    .endm

    .macro system_off_any_el
    ldr     x0, =0x84000008
    mrs     x2, CurrentEL
    cmp     x2, #(2 << 2)
    b.eq    92f
    hvc     #0
92: smc     #0
93: b       93b
    .endm

    // _start: SP = stack_top, and VBAR (`vbar`, e.g. vbar_el1) = `vectors` (clobbers x0).
    .macro start vbar
    .text
    .global _start
_start:
    ldr     x0, =stack_top
    mov     sp, x0
    adr     x0, vectors
    msr     \vbar, x0
    .endm

    // The literal pool, a 2 KiB stack (stack_top) and a 1 KiB one for a lower EL (`lower`).
    .macro stacks lower
    .ltorg
    .balign 16
    .skip   2048
stack_top:
    .skip   1024
\lower:
    .endm

    .macro say label
    stp     x0, x1, [sp, #-16]!
    stp     x2, x3, [sp, #-16]!
    stp     x4, x30, [sp, #-16]!
    ldr     x1, =0x09000000
    adr     x0, \label
    bl      puts
    ldp     x4, x30, [sp], #16
    ldp     x2, x3, [sp], #16
    ldp     x0, x1, [sp], #16
    .endm

    .macro hex reg, bits
    stp     x0, x1, [sp, #-16]!
    stp     x2, x3, [sp, #-16]!
    stp     x4, x30, [sp, #-16]!
    mov     x0, \reg
    ldr     x1, =0x09000000
    put_hex_x0 \bits
    mov     w2, #' '
    strb    w2, [x1]
    ldp     x4, x30, [sp], #16
    ldp     x2, x3, [sp], #16
    ldp     x0, x1, [sp], #16
    .endm

    .macro mmu_on_at_alias
    adr     x0, tbl
    ldr     x2, =(0x00000000 | (1 << 10) | 1 | (1 << 54) | (1 << 53))   // devices: XN
    str     x2, [x0, #0]
    ldr     x2, =(0x40000000 | (1 << 10) | (3 << 8) | (1 << 2) | 1)     // RAM, EL1 only (for now)
    str     x2, [x0, #8]
    str     x2, [x0, #16]                   // ... and at VA 0x80000000
    msr     ttbr0_el1, x0
    ldr     x2, =0xff00                     // attr 0 Device-nGnRnE, attr 1 Normal WB
    msr     mair_el1, x2
    ldr     x2, =(25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23))    // T0SZ 25, WB, inner shareable, EPD1
    msr     tcr_el1, x2
    mov     x9, #0x40000000
    adr     x2, vectors
    add     x2, x2, x9
    msr     vbar_el1, x2
    adr     x2, 97f
    add     x2, x2, x9
    ldr     x3, =0x30d01805                 // M, C, I (the A72's RES1 bits)
    isb
    msr     sctlr_el1, x3                   // the MMU on: the next instruction is at the PA ...
    br      x2                              // ... whose mapping is EL1's; on to the alias
97: adr     x0, tbl                         // (now at VA = PA + 1 GiB)
    sub     x0, x0, x9
    ldr     x2, =(0x40000000 | (1 << 10) | (3 << 8) | (1 << 6) | (1 << 2) | 1)   // RAM: EL0 too
    str     x2, [x0, #8]
    dsb     ishst
    tlbi    vmalle1
    dsb     ish
    isb
    ldr     x0, =stack_top
    add     x0, x0, x9
    mov     sp, x0
    .endm
"""


def build_kernel(tmp, name: str, source: str):
    """Assemble `source` and link it at 0x40000000 (QEMU virt's RAM) as tmp/NAME.elf."""
    import subprocess
    from conftest import CROSS, need_tool
    as_, ld = need_tool(CROSS + "as"), need_tool(CROSS + "ld")
    (tmp / f"{name}.S").write_text(source)
    subprocess.run([as_, "-march=armv8-a", str(tmp / f"{name}.S"), "-o", str(tmp / f"{name}.o")], check=True)
    subprocess.run([ld, "-n", "--build-id=none", "-Ttext=0x40000000", "-e", "_start", str(tmp / f"{name}.o"),
                    "-o", str(tmp / f"{name}.elf")], check=True)
    return tmp / f"{name}.elf"


def build_kernels(tmp, sources: dict[str, str]) -> dict:
    """build_kernel for each name -> source: name -> the ELF's path."""
    return {name: build_kernel(tmp, name, src) for name, src in sources.items()}


def qemu_transcripts(images: dict, el2: tuple[str, ...] = (), icount: bool = False) -> dict[str, str]:
    """QEMU 10's UART output for each kernel (cortex-a72; at EL2 for the names in `el2`;
    `icount`: -icount shift=0), or {} without QEMU."""
    from neve.qemu import qemu_binary, run_qemu_full
    if qemu_binary() is None:
        return {}
    out = {}
    for name, img in images.items():
        r = run_qemu_full([img], el2=name in el2, cpu="cortex-a72", icount=icount)
        assert r.status == 0, r.stderr
        out[name] = r.stdout.decode()
    return out
