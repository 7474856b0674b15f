"""Assembly macros shared by the small kernels the tests assemble (GNU as).

- `put_hex_x0 BITS`: print the low BITS bits of x0 in lower-case hex on the PL011
  whose data register address is in x1 (clobbers x2-x5).
- `system_off_any_el`: PSCI SYSTEM_OFF over HVC at EL1 and over SMC at EL2, so one
  image runs in vm mode (EL1) and at (virtual) EL2 (clobbers x0, x2).
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

    .macro system_off_any_el
    ldr     x0, =0x84000008
    mrs     x2, CurrentEL
    cmp     x2, #(2 << 2)
    b.eq    92f
    hvc     #0
92: smc     #0
93: b       93b
    .endm
"""
