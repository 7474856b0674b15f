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


def test_an_exception_in_a_raw_hook_is_raised_by_emu_start():
    import pytest
    cpu = CPU()
    cpu.map_ram(0x4000_0000, 0x1000)
    cpu.uc.mem_write(0x4000_0000, (0xD538_0000).to_bytes(4, "little"))     # mrs x0, midr_el1

    def bad(reg, cp):
        raise ValueError("boom")

    cpu.add_sysreg_hook(A.UC_ARM64_INS_MRS, bad)
    with pytest.raises(ValueError, match="boom"):
        cpu.uc.emu_start(0x4000_0000, 0, count=1)


def test_a_raw_sysreg_hook_sees_the_encoding():
    cpu = CPU()
    cpu.map_ram(0x4000_0000, 0x1000)
    cpu.uc.mem_write(0x4000_0000, (0xD518_2000 | 3).to_bytes(4, "little"))  # msr ttbr0_el1, x3
    cpu.set_x(3, 0x1234_5000)
    seen = []

    def hook(reg, cp):
        seen.append((cp.op0, cp.op1, cp.crn, cp.crm, cp.op2, cp.val))
        return 0

    cpu.add_sysreg_hook(A.UC_ARM64_INS_MSR, hook)
    cpu.uc.emu_start(0x4000_0000, 0, count=1)
    assert seen == [(3, 0, 2, 0, 0, 0x1234_5000)]
