"""The AArch64 exception model's numbers: PSTATE bits and modes, and the offsets of
the exception vectors from VBAR_ELx (Arm ARM D1.10)."""
from __future__ import annotations

# PSTATE.M (AArch64): EL and stack pointer.
M_EL0T, M_EL1T, M_EL1H, M_EL2T, M_EL2H = 0x0, 0x4, 0x5, 0x8, 0x9
# PSTATE.{D,A,I,F} and IL.
PSTATE_F, PSTATE_I = 1 << 6, 1 << 7
PSTATE_IF = PSTATE_I | PSTATE_F
PSTATE_DAIF = 0x3C0
PSTATE_IL = 1 << 20
# What an exception return restores from SPSR (NZCV, SS, IL, DAIF, M).
PSTATE_RESTORED = 0xF000_0000 | 1 << 21 | PSTATE_IL | PSTATE_DAIF | 0x1F

# Vector table: which quarter (from where the exception comes) ...
VEC_CUR_SP0, VEC_CUR_SPX, VEC_LOWER_A64 = 0x000, 0x200, 0x400
# ... and which entry in it (what kind of exception).
VEC_SYNC, VEC_IRQ, VEC_FIQ, VEC_SERROR = 0x000, 0x080, 0x100, 0x180
