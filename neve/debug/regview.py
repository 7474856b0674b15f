"""The guest's view of its registers, shared by `neve debug` (neve/debug/shell.py)
and `neve gdb` (neve/debug/gdb.py).

PSTATE as the guest sees it: at virtual EL2, M reads EL2h/EL2t although the
hardware runs the guest hypervisor at EL1.  System registers (`sysreg_value`): at
virtual EL2 the EL2 registers as L1 set them (from `vel2`), the EL1 registers of the
context L1 runs (from `vel2` storage while vEL2 runs, from the hardware while that
context runs), everything else from the hardware.  Writes (`set_sysreg_value`) go
to the same places, with the effects an MSR would have.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from neve.arch import sysregs

if TYPE_CHECKING:                       # types only: no import at run time
    from neve.core.machine import Machine


def guest_pstate(m: Machine) -> int:
    """PSTATE as the guest sees it: at vEL2, M reads EL2h/EL2t (hardware: EL1h/EL1t)."""
    ps = m.cpu.pstate()
    if m.vel2 is not None and m.vel2.active and (ps >> 2) & 3 == 1:
        ps += 4
    return ps


def set_guest_pstate(m: Machine, ps: int) -> None:
    if m.vel2 is not None and m.vel2.active and (ps >> 2) & 3 == 2:
        ps -= 4
    m.cpu.set_pstate(ps)


def is_el2_row(row: sysregs.SysReg) -> bool:
    return row.group == "el2"


def view_rows(m: Machine) -> list[sysregs.SysReg]:
    """The rows shown by `sysregs` and the GDB system-register feature: every row of
    the table except the _EL12/_EL02 aliases (the same storage under another name),
    and without the EL2 rows when there is no virtual EL2 (vm mode)."""
    return [r for r in sysregs.REGISTERS
            if r.group != "el12" and (m.vel2 is not None or not is_el2_row(r))]


def _nested_rows(m: Machine) -> set[str]:
    v = m.vel2
    return set() if v is None else v.context


def sysreg_value(m: Machine, row: sysregs.SysReg) -> int | None:
    """The guest's own view of `row`; None when it cannot be read."""
    v, cpu = m.vel2, m.cpu
    name = row.name
    if is_el2_row(row):
        if v is None:
            return None
        try:
            return v.read(row)
        except Exception:
            return v.get(name)
    if v is not None and v.active and name in _nested_rows(m):
        return v.get(name)              # the nested context's EL1 register, saved by L0
    if name == "CurrentEL":
        return (guest_pstate(m) >> 2 & 3) << 2
    if name == "SP_EL1":
        return cpu.sp_el(1)
    if name == "SP_EL0":
        return cpu.sp_el(0)
    t = m.timer_read(row.key)
    if t is not None:
        return t
    try:
        return cpu.cpr_read(*row.key)
    except Exception:
        return None


def set_sysreg_value(m: Machine, row: sysregs.SysReg, value: int) -> bool:
    v, cpu = m.vel2, m.cpu
    name = row.name
    if is_el2_row(row):
        if v is None or row.access == "ro":
            return False
        v.write(row, value)          # as an MSR at EL2: the regime, the GIC's view follow
        return True
    if v is not None and v.active and name in _nested_rows(m):
        v.set(name, value)
        return True
    if name == "SP_EL1":
        cpu.set_sp_el(1, value)
        return True
    if name == "SP_EL0":
        cpu.set_sp_el(0, value)
        return True
    try:
        cpu.cpr_write(*row.key, value)
    except Exception:
        return False
    cpu.flush_tlb()
    m.regime_changed()               # SCTLR_EL1, TTBR*, CPACR_EL1: what neve checks follows
    return True


def hardware_value(m: Machine, row: sysregs.SysReg) -> int | None:
    """The hardware register behind `row` (what L0 loaded), whatever the guest's view;
    None when it cannot be read."""
    try:
        return m.cpu.cpr_read(*row.key)
    except Exception:
        return None
