"""The CPU wrapper's direct register access agrees with Unicorn's binding."""
from __future__ import annotations

from unicorn import arm64_const as A

from neve.core.cpu import CPU, X_REGS


def test_reg_and_set_reg_agree_with_the_binding():
    cpu = CPU()
    uc = cpu.uc
    for i, r in enumerate(X_REGS):
        v = (0x0123_4567_89AB_CDEF * (i + 1)) & 0xFFFF_FFFF_FFFF_FFFF
        cpu.set_reg(r, v)
        assert uc.reg_read(r) == v == cpu.x(i)
        uc.reg_write(r, v ^ 0xFFFF)
        assert cpu.reg(r) == v ^ 0xFFFF
    cpu.pc = 0x4000_1234
    assert uc.reg_read(A.UC_ARM64_REG_PC) == 0x4000_1234
    cpu.sp = 0x4000_8000
    assert uc.reg_read(A.UC_ARM64_REG_SP) == cpu.sp == 0x4000_8000
    assert cpu.pstate() == uc.reg_read(A.UC_ARM64_REG_PSTATE)
    cpu.set_x(0, -1)                             # masked to 64 bits
    assert cpu.x(0) == 0xFFFF_FFFF_FFFF_FFFF
    assert cpu.x(31) == 0                        # XZR



def test_cpr_read_and_write_agree_with_the_binding():
    from neve.arch import sysregs
    cpu = CPU()
    for r in sysregs.REGISTERS:
        if r.group in ("el1", "el0") and r.access == "rw":
            assert cpu.cpr_read(*r.key) == cpu.uc.cpr_read(*r.key), r.name
    cpu.cpr_write(3, 0, 2, 0, 0, 0x4000_1000)                 # TTBR0_EL1
    assert cpu.uc.cpr_read(3, 0, 2, 0, 0) == 0x4000_1000 == cpu.read_sysreg("TTBR0_EL1")
    cpu.write_sysreg("MAIR_EL1", -1)                          # masked to 64 bits
    assert cpu.uc.cpr_read(3, 0, 10, 2, 0) == 0xFFFF_FFFF_FFFF_FFFF
