/* Arm semihosting for AArch64: `hlt #0xf000`, w0 = operation, x1 = parameter. */
    .text
    .global semihost_call
semihost_call:
    hlt     #0xf000
    ret
